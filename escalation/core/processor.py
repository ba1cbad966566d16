"""The in-memory engine: many incidents, one simulated clock, deadlines in a heap.

This is the core as replay and the tests use it (the live shell keeps the same records in Faust
tables and calls the same per-incident functions). It is pure: no I/O, no wall clock; time moves
only through ``advance_to`` and the events' own times.

Invariants:
- ``now`` never goes backwards; ``advance_to(T)`` fires every deadline before T (or at T when
  inclusive) in (instant, incident key) order, so outputs come out in time order and identically
  on every run. SLO and reporting period closes (``slo_engine``) are interleaved in that order.
- ``apply`` either raises ``Rejected`` before changing any state, or applies the event fully.
- A repeated input ``id`` is ignored (returns no outputs, ``duplicate`` is True).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from escalation.agreement.durations import iso_duration

from .events import MetricObserved, Rejected, TicketOpened
from .incident import PenaltyDue, advance_and_next, apply_event, next_due, open_incident
from .ledger import Ledger, assess_penalty
from .registry import Registry
from .slo_engine import MetricEngine
from .state import Incident


@dataclass(slots=True)
class Applied:
    outputs: list
    duplicate: bool = False
    late_by: object = None


def _note_lateness(outputs: list, event, late) -> None:
    """Outputs caused by a late event say so in their explain block (DESIGN.md §6)."""
    note = {"event": event.id, "event_time": event.time.isoformat(), "late_by": iso_duration(late)}
    for out in outputs:
        if isinstance(out, dict):
            out["data"]["explain"]["late_event"] = note


@dataclass
class Processor:
    registry: Registry
    incidents: dict[str, Incident] = field(default_factory=dict)
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    now: datetime | None = None
    _heap: list = field(default_factory=list)
    _scheduled: dict[str, datetime] = field(default_factory=dict)
    # --- SLOs, credits and period reports (slo_engine.py) ---
    metric_grace: timedelta = timedelta(0)      # a period closes at its end + this grace
    metrics: MetricEngine | None = None

    def __post_init__(self) -> None:
        if self.metrics is None:
            self.metrics = MetricEngine(self.registry, self.metric_grace)

    def _apply_metric(self, event: MetricObserved) -> Applied:
        """Count the slice, advance to its end (closing a period it straddles, after counting
        its share), then evaluate burn rates at the end: outputs stay in time order."""
        pending, duplicate = self.metrics.apply(event, self.now)
        if duplicate:
            return Applied([], duplicate=True)
        late = self.now - event.time if self.now is not None and event.time < self.now else None
        outputs = self.advance_to(event.time)
        outputs += self.metrics.burn(pending, event)
        self.now = max(self.now or event.time, event.time)
        return Applied(outputs, late_by=late)
    # --- end SLOs ---

    def apply(self, event) -> Applied:
        if isinstance(event, MetricObserved):
            return self._apply_metric(event)
        incident = self.incidents.get(event.ticket)
        if incident is not None and event.id in incident.seen:
            return Applied([], duplicate=True)
        late = self.now - event.time if self.now is not None and event.time < self.now else None
        if isinstance(event, TicketOpened):
            if incident is not None:
                raise Rejected(f"ticket {event.ticket!r} is already open (opened at {incident.opened_at.isoformat()})")
            compiled = self.registry.for_opening(event)
            incident, outputs = open_incident(compiled, event)
            self.incidents[event.ticket] = incident
            self.metrics.ticket_opened(compiled.id, event.time, event.priority)
        else:
            if incident is None:
                raise Rejected(f"unknown ticket {event.ticket!r}: no ticket.opened seen for it")
            compiled = self.registry.get(incident.agreement, incident.revision)
            outputs = apply_event(compiled, incident, event)
        self.now = max(self.now or event.time, event.time)
        self._schedule(compiled, incident)
        if late is not None:
            _note_lateness(outputs, event, late)
        return Applied(self._settle(outputs), late_by=late)

    def advance_to(self, until: datetime, inclusive: bool = False) -> list:
        """Fire every deadline and period close before ``until`` (or at it when ``inclusive``), in time order.

        Ticket deadlines due at a period close instant fire before the close.
        """
        outputs: list = []
        while (close := self.metrics.next_close()) is not None and (close < until or (inclusive and close == until)):
            outputs += self._advance_incidents(close, inclusive=True)
            outputs += self.metrics.close_at(close, self.ledgers)
        outputs += self._advance_incidents(until, inclusive)
        if self.now is None or until > self.now:
            self.now = until
        return outputs

    def _advance_incidents(self, until: datetime, inclusive: bool) -> list:
        outputs: list = []
        heap = self._heap
        while heap and (heap[0][0] < until or (inclusive and heap[0][0] == until)):
            due, key = heapq.heappop(heap)
            if self._scheduled.get(key) != due:
                continue  # stale entry: the incident was rescheduled since
            del self._scheduled[key]
            incident = self.incidents[key]
            compiled = self.registry.get(incident.agreement, incident.revision)
            fired, next_at = advance_and_next(compiled, incident, due, inclusive=True)
            outputs += self._settle(fired)
            self._schedule(compiled, incident, next_at)
        return outputs

    def _schedule(self, compiled, incident: Incident, due: object = ...) -> None:
        if due is ...:
            due = next_due(compiled, incident)
        if due is None:
            self._scheduled.pop(incident.ticket, None)
        elif self._scheduled.get(incident.ticket) != due:
            self._scheduled[incident.ticket] = due
            heapq.heappush(self._heap, (due, incident.ticket))

    def _settle(self, outputs: list) -> list:
        """Turn per-breach penalties into capped ``penalty.assessed`` outputs, in place."""
        for i, out in enumerate(outputs):
            if isinstance(out, PenaltyDue):
                compiled = self.registry.get(out.agreement, out.revision)
                ledger = self.ledgers.setdefault(out.agreement, Ledger())
                outputs[i] = assess_penalty(compiled, ledger, out)
            self.metrics.record(outputs[i])  # period report figures
        return outputs

    def snapshot(self) -> dict:
        """All state as JSON-ready data; ``restore`` of it continues exactly where this left off."""
        return {
            "now": None if self.now is None else self.now.isoformat(),
            "incidents": {k: i.to_dict() for k, i in self.incidents.items()},
            "ledgers": {k: l.to_dict() for k, l in self.ledgers.items()},
            "metrics": self.metrics.to_dict(),  # SLOs, credits and period reports
        }

    @classmethod
    def restore(cls, registry: Registry, snap: dict) -> "Processor":
        engine = cls(registry, now=None if snap["now"] is None else datetime.fromisoformat(snap["now"]))
        engine.ledgers = {k: Ledger.from_dict(v) for k, v in snap["ledgers"].items()}
        if "metrics" in snap:  # SLOs, credits and period reports
            engine.metrics = MetricEngine.from_dict(registry, snap["metrics"])
            engine.metric_grace = engine.metrics.grace
        for key, data in snap["incidents"].items():
            incident = engine.incidents[key] = Incident.from_dict(data)
            engine._schedule(registry.get(incident.agreement, incident.revision), incident)
        return engine
