"""Incident state: small plain records, serialisable to JSON-ready dicts.

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

RUNNING, PAUSED, STOPPED = "running", "paused", "stopped"


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

    def to_dict(self) -> dict:
        return {"number": self.number, "recipients": [dict(r) for r in self.recipients], "levels": list(self.levels),
                "acked_at": _t(self.acked_at), "acked_by": self.acked_by}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Alert | None":
        if d is None:
            return None
        return cls(d["number"], [dict(r) for r in d["recipients"]], list(d["levels"]), _p(d["acked_at"]), d["acked_by"])


@dataclass(slots=True)
class ClockState:
    status: str
    cycle_start: datetime
    checkpoint: datetime
    elapsed: timedelta = timedelta(0)
    cycle: int = 1
    pauses: list[list] = field(default_factory=list)     # [[start, end | None], ...]
    fired: dict[str, datetime] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)  # level key -> repeats emitted
    breached_at: datetime | None = None
    stops: int = 0
    note: str | None = None                                 # last policy applied, for explain
    alert: Alert | None = None                              # the open alert of this clock's dedup_key
    alerts: int = 0                                         # alerts opened in this cycle

    def to_dict(self) -> dict:
        return {
            "status": self.status, "cycle_start": _t(self.cycle_start), "checkpoint": _t(self.checkpoint),
            "elapsed_us": self.elapsed // _US, "cycle": self.cycle,
            "pauses": [[_t(a), _t(b)] for a, b in self.pauses],
            "fired": {k: _t(v) for k, v in self.fired.items()}, "repeats": dict(self.repeats),
            "breached_at": _t(self.breached_at), "stops": self.stops, "note": self.note,
            "alert": None if self.alert is None else self.alert.to_dict(), "alerts": self.alerts,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ClockState":
        """State saved before alerts existed reads as "no alert open" (nothing to acknowledge or resolve)."""
        return cls(
            d["status"], _p(d["cycle_start"]), _p(d["checkpoint"]), d["elapsed_us"] * _US, d["cycle"],
            [[_p(a), _p(b)] for a, b in d["pauses"]], {k: _p(v) for k, v in d["fired"].items()},
            dict(d["repeats"]), _p(d["breached_at"]), d["stops"], d["note"],
            Alert.from_dict(d.get("alert")), d.get("alerts", 0),
        )


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
    digests: array = field(default_factory=lambda: array("Q"))  # content digest per ``seen`` id
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

    def to_dict(self) -> dict:
        return {
            "ticket": self.ticket, "agreement": self.agreement, "revision": self.revision,
            "priority": self.priority, "service": self.service, "opened_at": _t(self.opened_at),
            "last_time": _t(self.last_time), "lifecycle": self.lifecycle, "acknowledged": self.acknowledged,
            "status": self.status, "assignee": self.assignee, "group": self.group, "customer": self.customer,
            "clocks": {k: c.to_dict() for k, c in self.clocks.items()}, "seen": list(self.seen),
            "digests": list(self.digests), **self._parties_dict(),
        }

    def _parties_dict(self) -> dict:
        """The §13 keys, only when set, so state without parties saves as it always did."""
        out: dict = {}
        if self.vendor is not None:
            out["vendor"] = self.vendor
        if self.engagements:
            out["engagements"] = [e.to_dict() for e in self.engagements]
        if self.obligations:
            out["obligations"] = {k: dict(v) for k, v in self.obligations.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Incident":
        return cls(
            d["ticket"], d["agreement"], d["revision"], d["priority"], d["service"], _p(d["opened_at"]),
            _p(d["last_time"]), d["lifecycle"], d["acknowledged"], d["status"], d["assignee"], d["group"],
            d["customer"], {k: ClockState.from_dict(c) for k, c in d["clocks"].items()}, list(d["seen"]),
            _digests(d), d.get("vendor"), [Incident.from_dict(e) for e in d.get("engagements", ())],
            {k: dict(v) for k, v in d.get("obligations", {}).items()},
        )


def _digests(d: dict) -> array:
    """The digests of a saved incident or tombstone, 0 (not recorded) where state predates them."""
    saved = d.get("digests", ())
    return array("Q", list(saved) + [0] * (len(d["seen"]) - len(saved)))


def seen_digest(ids: Sequence[str], digests: Sequence[int], event_id: str) -> int | None:
    """The content digest remembered with ``event_id`` (0: not recorded), or None if never seen."""
    try:
        i = ids.index(event_id)
    except ValueError:
        return None
    return digests[i] if i < len(digests) else 0


_US = timedelta(microseconds=1)


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _p(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
