"""Incident state: small plain records, saved and loaded by the one codec (``codec.record``).

An incident is data attached to the lifecycle machine only for the length of a step. Invariants:
- ``ClockState.elapsed`` is the counted time at ``checkpoint``; while running, elapsed at t is
  ``elapsed + calendar.counted(checkpoint, t)``. Ticks never move the checkpoint; only events do,
  so a late event can still be applied at its own time.
- ``fired`` holds the thresholds already emitted in the current cycle (key -> instant); nothing in
  it fires again in that cycle, which is what makes every output once-only. ``fired``, ``repeats``
  and ``pauses`` are None while empty (read them through ``or``; ``clocks.py`` writes them).
- ``alert`` is the clock's open on-call alert (DESIGN.md §11), None when nothing went to
  ``notifications`` since the cycle began or since the last ``escalation.resolved``.
- ``pauses`` lists the paused intervals of the current cycle, so a clock can be recomputed from
  its start under another calendar (``recompute_from_start``).
- ``Incident.inputs`` holds, per input applied to the incident in order, the 64-bit digest of its
  id (``events.id_hash``) followed by that of its content (``events.content_digest``; 0 = not
  recorded, in state saved before content digests existed), so a repeated id is recognised and
  one with other content is told apart from a redelivery: 16 bytes per input, whatever the ids
  look like, packed in one immutable ``bytes`` (native 64-bit words; saved as the same list of
  integers an ``array('Q')`` gave): 33 bytes of object plus exactly the inputs, where an array
  costs 64 plus over-allocation (~100 bytes more per open incident).
- A closed incident shrinks to a :class:`Tombstone`, one ``bytes`` object: its opening instant as
  written (microseconds since the epoch and the offset it was written in, two 64-bit words) and
  then its inputs as above. Replay keeps one per ticket ever closed, so it is packed: ~64 bytes
  less than a record holding a datetime and a bytes. Saved as before (the opening instant as
  ISO text with its offset, the inputs as a list of integers).
  State saved with the input ids themselves (``seen``/``digests``) loads too (``upgrade``).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Annotated

from escalation.core.codec import record
from escalation.core.events import id_hash

RUNNING, PAUSED, STOPPED = "running", "paused", "stopped"


@record
@dataclass(slots=True)
class Alert:
    """What on-call tools hold open for one clock's ``dedup_key`` (DESIGN.md §11): opened by the
    first output of a cycle that goes to ``notifications``, closed by ``escalation.resolved``.

    ``number`` counts the alerts of the cycle (1, 2, ...: a resumed or re-covered cycle may open a
    second one), so acknowledged/resolved ids never collide. ``recipients`` are those of every
    output of this alert, deduplicated, in first-seen order; ``levels`` the keys of the levels
    fired in it (their ack timeouts run while it is open and unacknowledged).
    """

    number: int
    recipients: list[dict] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    acked_at: datetime | None = None
    acked_by: str | None = None



@record
@dataclass(slots=True)
class ClockState:
    status: str
    cycle_start: datetime
    checkpoint: datetime
    elapsed: timedelta = timedelta(0)
    cycle: int = 1
    # The three below stay None until first used (most clocks never pause, fire or repeat): an
    # empty list or dict per clock would cost ~180 bytes per clock of every open incident.
    pauses: list[list[datetime | None]] | None = None  # [[start, end | None], ...]
    fired: dict[str, datetime] | None = None           # threshold key -> instant it fired
    repeats: dict[str, int] | None = None              # level key -> repeats emitted
    breached_at: datetime | None = None
    stops: int = 0
    note: str | None = None                                 # last policy applied, for explain
    alert: Alert | None = None                              # the open alert of this clock's dedup_key
    alerts: int = 0                                         # alerts opened in this cycle



#: the shared, read-only empty mapping: an incident's obligations before its first one starts
#: (``obligations.py`` puts a dict of its own in its place on the first write), and what a clock's
#: unused ``fired``/``repeats`` read as
EMPTY: Mapping = MappingProxyType({})


@record
@dataclass(slots=True)
class Incident:
    ticket: str
    agreement: str
    revision: int
    priority: str
    service: str
    opened_at: datetime
    last_time: datetime                  # latest instant an event was applied at
    lifecycle: str = "open"
    acknowledged: bool = False
    status: str | None = None
    assignee: str | None = None
    group: str | None = None
    customer: str | None = None
    clocks: dict[str, ClockState] = field(default_factory=dict)
    inputs: Annotated[bytes, "Q"] = b""  # (id hash, content digest) per input, packed
    # DESIGN.md §13 parties (``engagements.py``, ``obligations.py``); saved only when used
    vendor: str | None = None              # the vendor the ticket waits on (ticket.status_changed)
    # both stay the shared empty values below until a ticket has parties (most never do)
    engagements: list["Incident"] = field(default=())  # one per supporting agreement (a list once any)
    obligations: dict[str, dict] = field(default_factory=lambda: EMPTY)  # obligation id -> its clock

    def remember(self, event_id: str, digest: int) -> None:
        """Record an applied input id with its content digest."""
        self.inputs += _PAIR.pack(id_hash(event_id), digest)  # a new exact-size bytes: ~7 inputs a ticket

    def tombstone(self) -> "Tombstone":
        """What is kept of a closed incident: its opening instant (as written) and its inputs."""
        return Tombstone.pack(self.opened_at, self.inputs)


_WORD = struct.Struct("=Q")
_PAIR = struct.Struct("=QQ")
_OPENED = struct.Struct("=qq")  # opening instant: µs since the epoch, offset as written in µs
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


class Tombstone(bytes):
    """A closed incident: enough to ignore its repeated inputs and to refuse new ones with a
    reason. Packed in one immutable ``bytes`` (see the module docstring): 16 bytes of opening
    instant, then the inputs. ``__slots__ = ()`` keeps it exactly a bytes object (no ``__dict__``)."""

    __slots__ = ()

    @classmethod
    def pack(cls, opened_at: datetime, inputs: bytes = b"") -> "Tombstone":
        offset = opened_at.utcoffset()
        return cls(_OPENED.pack((opened_at - _EPOCH) // _US, offset // _US) + inputs)

    @property
    def opened_at(self) -> datetime:
        """The opening instant in the offset it was written in (quoted by "already open (opened at ...)")."""
        at, offset = _OPENED.unpack_from(self)
        return (_EPOCH + at * _US).astimezone(timezone(offset * _US))

    @property
    def inputs(self) -> bytes:
        """The inputs, as ``Incident.inputs`` (a copy: read only for repeats of closed tickets)."""
        return bytes(self[_OPENED.size:])

    def to_dict(self) -> dict:
        """The saved form of the record this used to be: ``{"opened_at": ISO text, "inputs": [...]}``
        (no ``inputs`` when there are none)."""
        out: dict = {"opened_at": self.opened_at.isoformat()}
        if len(self) > _OPENED.size:
            out["inputs"] = memoryview(self)[_OPENED.size:].cast("Q").tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Tombstone":
        words = data.get("inputs") or ()
        return cls.pack(datetime.fromisoformat(data["opened_at"]), array("Q", words).tobytes())


def remembered(inputs: bytes, event_id: str) -> int | None:
    """The content digest remembered with ``event_id`` (0: not recorded), or None if never seen.

    A byte search for the id's 8 bytes; a hit counts only at the start of a pair (offset a
    multiple of 16), since the same bytes may also occur across words or as a content digest."""
    needle = _WORD.pack(id_hash(event_id))
    at = inputs.find(needle)
    while at >= 0:
        if not at & 15:
            return _WORD.unpack_from(inputs, at + 8)[0]
        at = inputs.find(needle, at + 1)
    return None


def upgrade(saved: dict) -> dict:
    """An incident or tombstone saved with its input ids (``seen``, ``digests``) in today's form."""
    if "seen" not in saved:
        return saved
    out = {k: v for k, v in saved.items() if k not in ("seen", "digests")}
    contents = list(saved.get("digests") or ())
    out["inputs"] = [x for i, event_id in enumerate(saved["seen"])
                     for x in (id_hash(event_id), contents[i] if i < len(contents) else 0)]
    return out
