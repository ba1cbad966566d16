"""Incident state: small plain records, saved and loaded by the one codec (``codec.record``).

An incident is data attached to the lifecycle machine only for the length of a step. Invariants:
- ``ClockState.elapsed`` is the counted time at ``checkpoint``; while running, elapsed at t is
  ``elapsed + calendar.counted(checkpoint, t)``. Ticks never move the checkpoint; only events do,
  so a late event can still be applied at its own time.
- ``fired`` holds the thresholds already emitted in the current cycle (key -> instant); nothing in
  it fires again in that cycle, which is what makes every output once-only.
- ``alert`` is the clock's open on-call alert (DESIGN.md §11), None when nothing went to
  ``notifications`` since the cycle began or since the last ``escalation.resolved``.
- ``pauses`` lists the paused intervals of the current cycle, so a clock can be recomputed from
  its start under another calendar (``recompute_from_start``).
- ``Incident.seen`` lists the input ids applied to the incident and ``Incident.digests`` (same
  length, same order) a 64-bit digest of each one's content (``events.content_digest``; 0 = not
  recorded, in state saved before digests existed), so a repeated id with other content is told
  apart from a redelivery: 8 bytes per id. Tombstones keep both lists (``seen_digest`` reads
  either form).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from escalation.core.codec import record

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
    pauses: list[list[datetime | None]] = field(default_factory=list)  # [[start, end | None], ...]
    fired: dict[str, datetime] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)  # level key -> repeats emitted
    breached_at: datetime | None = None
    stops: int = 0
    note: str | None = None                                 # last policy applied, for explain
    alert: Alert | None = None                              # the open alert of this clock's dedup_key
    alerts: int = 0                                         # alerts opened in this cycle



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
    seen: list[str] = field(default_factory=list)     # input event ids applied (idempotent input)
    digests: Annotated[array, "Q"] = field(default_factory=lambda: array("Q"))  # content digest per ``seen`` id
    # DESIGN.md §13 parties (``engagements.py``, ``obligations.py``); saved only when used
    vendor: str | None = None              # the vendor the ticket waits on (ticket.status_changed)
    engagements: list["Incident"] = field(default_factory=list)  # one per supporting agreement
    obligations: dict[str, dict] = field(default_factory=dict)   # customer obligation id -> its clock

    def remember(self, event_id: str, digest: int) -> None:
        """Record an applied input id with its content digest."""
        self.seen.append(event_id)
        self.digests.append(digest)

    def tombstone(self) -> dict:
        """What is kept of a closed incident: its input ids (with digests) and opening instant."""
        return {"seen": list(self.seen), "digests": list(self.digests), "opened_at": self.opened_at.isoformat()}


def seen_digest(ids: Sequence[str], digests: Sequence[int], event_id: str) -> int | None:
    """The content digest remembered with ``event_id`` (0: not recorded), or None if never seen."""
    try:
        i = ids.index(event_id)
    except ValueError:
        return None
    return digests[i] if i < len(digests) else 0
