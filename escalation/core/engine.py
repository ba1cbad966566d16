"""The in-memory engine: many incidents, one simulated clock, deadlines in a heap.

This is the core as replay and the tests use it (the live shell keeps the same records in Faust
tables and calls the same per-incident functions). It is pure: no I/O, no wall clock; time moves
only through ``advance_to`` and the events' own times.

Input enters through ``step(event)`` (replay and the live partitions call exactly this): the event
is checked against the current state first (``check``, which reads only), and only an accepted
event advances the clock to its start and is applied. So a record is applied or rejected, and a
rejected record (or an ignored repeat) changes nothing: no deadline fires, no period closes,
``now`` stays (DESIGN.md §10).

Invariants:
- ``now`` never goes backwards; ``advance_to(T)`` fires every deadline before T (or at T when
  inclusive) in (instant, incident key) order, so outputs come out in time order and identically
  on every run. SLO and reporting period closes (``slo_engine``) are interleaved in that order.
- ``apply`` either raises ``Rejected`` before changing any state, or applies the event fully;
  ``check`` runs the same checks (one place: ``_plan``) and changes nothing.
- What ``check`` accepts, ``advance_to(start)`` does not make ``apply`` refuse: advancing never
  changes an incident's lifecycle, its input ids or the registry, and closes only SLO periods
  that end before the slice starts (the property test ``test_step_rejection_changes_nothing``).
- A repeated input ``id`` (per incident, or per metric stream) is ignored (returns no outputs,
  ``duplicate`` is True); if its content differs from the first one's (``content_digest``),
  ``conflict`` says so, for a dead letter marked ``duplicate``.
- Money and reports go through a :class:`~escalation.core.money.desk.Desk` with this processor as its
  only source, marked at every instant it fires at, so ``penalty.assessed``/``credit.issued``
  come out right after what caused them and ``report.published`` at its close instant. With
  ``desk=None`` (the live engine's partitions) the ``PenaltyDue``/``CreditDue``/``PartialReport``
  records are returned among the outputs instead, for a shared desk downstream.
- With ``track_touched``, ``touched`` collects the keys of the incidents changed since the caller
  last cleared it (the live engine writes those back; replay does not track).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from escalation.agreement.durations import iso_duration
from escalation.core.contract import term
from escalation.core.contract.registry import Registry
from escalation.core.events import (
    AgreementTerminated,
    MetricObserved,
    Rejected,
    TicketOpened,
    content_digest,
)
from escalation.core.money.desk import DESK_ITEMS, Desk
from escalation.core.services.metric_side import MetricEngine
from escalation.core.tickets import ticket as tk
from escalation.core.tickets.state import Incident, seen_digest


@dataclass(slots=True)
class Applied:
    outputs: list
    duplicate: bool = False
    late_by: object = None
    conflict: str | None = None  # a repeated id with other content: the reason, for a dead letter


def _repeat(event, remembered: int | None) -> Applied | None:
    """The verdict on a repeated id (``remembered``: the first one's content digest, 0 when it was
    not recorded), or None when the id is new."""
    if remembered is None:
        return None
    if remembered and remembered != content_digest(event):
        return Applied([], duplicate=True, conflict=f"duplicate id {event.id!r} with different content")
    return Applied([], duplicate=True)


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
    now: datetime | None = None
    _heap: list = field(default_factory=list)
    _scheduled: dict[str, datetime] = field(default_factory=dict)
    # --- SLOs, credits and period reports (slo_engine.py) ---
    metric_grace: timedelta = timedelta(0)      # a period closes at its end + this grace
    metrics: MetricEngine | None = None
    desk: Desk | None = ...  # type: ignore[assignment]  # default: a desk of its own; None: pass records out
    track_touched: bool = False
    touched: set = field(default_factory=set)
    # live pruning: a closed incident shrinks to a tombstone (its input ids and opening instant),
    # enough to ignore repeats and refuse later events as replay does, without its clocks
    forget_closed: bool = False
    closed: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metrics is None:
            self.metrics = MetricEngine(self.registry, self.metric_grace)
        if self.desk is ...:
            self.desk = Desk(self.registry, 1, self.metric_grace)

    # --- input ---------------------------------------------------------------------------

    def step(self, event) -> Applied:
        """The one entry point for input: check, then advance to the event's start, then apply.

        Returns the outputs of the advance followed by the event's. Raises ``Rejected`` with the
        state untouched; an ignored repeat (``duplicate``) leaves it untouched too. A metric
        slice ``[start, end)`` is applied once the clock reaches its start; ``apply`` then
        advances to its end, so a slice straddling a period end is split.
        """
        verdict = self._plan(event)
        if isinstance(verdict, Applied):
            return verdict
        outputs = self.advance_to(getattr(event, "start", event.time))
        # a ticket event's plan still holds after the advance (deadlines change no lifecycle or
        # revision); a slice's or a termination's is taken again at the new clock
        ticket_event = not isinstance(event, (MetricObserved, AgreementTerminated))
        applied = self._apply(event, verdict) if ticket_event else self.apply(event)
        applied.outputs[:0] = outputs
        return applied

    def check(self, event) -> Applied | None:
        """Changes nothing: Rejected if ``event`` cannot be applied now, the verdict on a
        repeated id (``duplicate``), or None when ``apply`` would apply it."""
        verdict = self._plan(event)
        return verdict if isinstance(verdict, Applied) else None

    def _plan(self, event):
        """Every reason to refuse an event, read from the state without changing it: Rejected,
        an ``Applied`` verdict for a repeated id, or what ``apply`` needs to go on."""
        if isinstance(event, MetricObserved):
            covering, remembered = self.metrics.check(event, self.now)
            return _repeat(event, remembered) or covering
        if isinstance(event, AgreementTerminated):
            return term.check(self.registry, event)  # repeats: the desk keeps the first termination
        incident = self.incidents.get(event.ticket)
        if incident is not None:
            verdict = _repeat(event, seen_digest(incident.seen, incident.digests, event.id))
            if verdict is not None:
                return verdict
            if isinstance(event, TicketOpened):
                raise Rejected(f"ticket {event.ticket!r} is already open (opened at {incident.opened_at.isoformat()})")
            compiled = self.registry.get(incident.agreement, incident.revision)
            tk.check_event(self.registry, compiled, incident, event)
            return compiled
        tomb = self.closed.get(event.ticket)
        if tomb is not None:
            verdict = _repeat(event, seen_digest(tomb["seen"], tomb.get("digests", ()), event.id))
            if verdict is not None:
                return verdict
            if isinstance(event, TicketOpened):
                raise Rejected(f"ticket {event.ticket!r} is already open (opened at {tomb['opened_at']})")
            raise Rejected(f"{event.type} does not apply to ticket {event.ticket!r} in state 'closed'")
        if not isinstance(event, TicketOpened):
            raise Rejected(f"unknown ticket {event.ticket!r}: no ticket.opened seen for it")
        return tk.for_opening(self.registry, event)

    def apply(self, event) -> Applied:
        """Apply ``event`` at the current clock (``step`` advances first); Rejected before any change."""
        plan = self._plan(event)
        if isinstance(plan, Applied):
            return plan
        return self._apply(event, plan)

    def _apply(self, event, plan) -> Applied:
        """Apply ``event`` with what ``_plan`` returned for it (not a repeat, not rejected)."""
        if isinstance(event, MetricObserved):
            return self._apply_metric(event, plan)
        if isinstance(event, AgreementTerminated):  # for the desk that keeps the agreement's term
            item = term.Termination(event.agreement, plan.revision, event.id, event.time, event.by)
            self.now = max(self.now or event.time, event.time)
            return Applied(self._settle([item], event.time))
        late = self.now - event.time if self.now is not None and event.time < self.now else None
        compiled = plan
        if isinstance(event, TicketOpened):
            incident, outputs = tk.open_incident(self.registry, compiled, event)
            self.incidents[event.ticket] = incident
            self.metrics.ticket_opened(compiled.id, event.time, event.priority)
        else:
            incident = self.incidents[event.ticket]
            outputs = tk.apply_event(self.registry, compiled, incident, event)
        incident.remember(event.id, content_digest(event))
        self.now = max(self.now or event.time, event.time)
        if self.track_touched:
            self.touched.add(event.ticket)
        self._schedule(compiled, incident)
        if self.forget_closed and incident.lifecycle == "closed":
            del self.incidents[event.ticket]
            self.closed[event.ticket] = incident.tombstone()
        if late is not None:
            _note_lateness(outputs, event, late)
        return Applied(self._settle(outputs, event.time), late_by=late)

    def _apply_metric(self, event: MetricObserved, covering: list) -> Applied:
        """Count the slice, advance to its end (closing a period it straddles, after counting
        its share), then evaluate burn rates at the end: outputs stay in time order."""
        pending = self.metrics.count(event, covering, content_digest(event))
        late = self.now - event.time if self.now is not None and event.time < self.now else None
        outputs = self.advance_to(event.time)
        outputs += self._settle(self.metrics.burn(pending, event), event.time, recorded=True)
        self.now = max(self.now or event.time, event.time)
        return Applied(outputs, late_by=late)

    def advance_to(self, until: datetime, inclusive: bool = False) -> list:
        """Fire every deadline and period close before ``until`` (or at it when ``inclusive``), in time order.

        Ticket deadlines due at a period close instant fire before the close.
        """
        outputs: list = []
        while True:
            slo_close = self.metrics.next_close()
            desk_close = None if self.desk is None else self.desk.next_close()
            close = min((c for c in (slo_close, desk_close) if c is not None), default=None)
            if close is None or not (close < until or (inclusive and close == until)):
                break
            outputs += self._advance_incidents(close, inclusive=True)
            if slo_close == close:  # SLO and this side's report closes first, then the desk's
                outputs += self._settle(self.metrics.close_at(close), close, recorded=True)
            else:
                self.desk.mark(0, close, inclusive=True)
                outputs += self.desk.release()
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
            fired, next_at = tk.advance_and_next(self.registry, compiled, incident, due, inclusive=True)
            if self.track_touched:
                self.touched.add(key)
            outputs += self._settle(fired, due)
            self._schedule(compiled, incident, next_at)
        return outputs

    def _schedule(self, compiled, incident: Incident, due: object = ...) -> None:
        if due is ...:
            due = tk.next_due(self.registry, compiled, incident)
        if due is None:
            self._scheduled.pop(incident.ticket, None)
        elif self._scheduled.get(incident.ticket) != due:
            self._scheduled[incident.ticket] = due
            heapq.heappush(self._heap, (due, incident.ticket))

    def _settle(self, outputs: list, at: datetime, recorded: bool = False) -> list:
        """Feed the reports (unless the metric side already ``recorded`` them); hand desk records
        (penalties, credits, report partials) to the desk, which books them at once (this
        processor is its only source, now at ``at``)."""
        kept, items, first = [], [], None
        for out in outputs:
            if isinstance(out, DESK_ITEMS):
                items.append(out)
                if first is None:
                    first = len(kept)  # the desk's outputs go where its first record was
            else:
                kept.append(out)
                if not recorded:
                    self.metrics.record(out)  # period report figures
        if not items:
            return kept
        if self.desk is None:
            return kept + items
        for item in items:
            self.desk.submit(item)
        self.desk.mark(0, at, inclusive=False)
        kept[first:first] = self.desk.release()
        return kept

    def due_count(self) -> int:
        """How many incidents have a deadline scheduled (the due index's size)."""
        return len(self._scheduled)

    def adopt(self, incident: Incident) -> None:
        """Take over a saved incident (the live engine loading a partition) and schedule it."""
        self.incidents[incident.ticket] = incident
        self._schedule(self.registry.get(incident.agreement, incident.revision), incident)

    def snapshot(self) -> dict:
        """All state as JSON-ready data; ``restore`` of it continues exactly where this left off."""
        return {
            "now": None if self.now is None else self.now.isoformat(),
            "incidents": {k: i.to_dict() for k, i in self.incidents.items()},
            "forget_closed": self.forget_closed, "closed": {k: dict(v) for k, v in self.closed.items()},
            "metrics": self.metrics.to_dict(),  # SLOs and this side's report figures
            "desk": None if self.desk is None else self.desk.to_dict(),  # money and reports
        }

    @classmethod
    def restore(cls, registry: Registry, snap: dict) -> "Processor":
        metrics = MetricEngine.from_dict(registry, snap["metrics"])
        desk = None if snap["desk"] is None else Desk.from_dict(registry, snap["desk"])
        engine = cls(registry, now=None if snap["now"] is None else datetime.fromisoformat(snap["now"]),
                     metric_grace=metrics.grace, metrics=metrics, desk=desk)
        engine.closed = {k: dict(v) for k, v in snap.get("closed", {}).items()}
        engine.forget_closed = snap.get("forget_closed", False)
        for key, data in snap["incidents"].items():
            incident = engine.incidents[key] = Incident.from_dict(data)
            engine._schedule(registry.get(incident.agreement, incident.revision), incident)
        return engine
