"""The engine: many incidents, one simulated clock, deadlines and closes in one scheduler each.

This is the core as replay, the live partitions and the tests use it. It is pure: no I/O, no wall
clock; time moves only through the inputs' own times and :class:`~escalation.core.events.Tick`.

Every input enters through ``Engine.step(input) -> StepResult``, nothing else: a ticket event,
a metric slice, an agreement termination, or a tick. An event is checked against the current
state first (``_plan``, which reads only), and only an accepted event advances the clock to its
start and is applied. So a record is applied or rejected, and a rejected record (or an ignored
repeat) changes nothing: no deadline fires, no period closes, ``now`` stays (DESIGN.md §10). A
``Tick(at, inclusive)`` fires what is due before ``at`` (at it too when inclusive).

Invariants:
- ``now`` never goes backwards; advancing to T fires every deadline before T (or at T when
  inclusive) in (instant, incident key) order, so outputs come out in time order and identically
  on every run. SLO and reporting period closes (``metrics``) are interleaved in that order.
- Applying either raises ``Rejected`` before changing any state, or applies the event fully;
  the checks live in one place (``_plan``).
- What ``_plan`` accepts, advancing to its start does not make applying refuse: advancing never
  changes an incident's lifecycle, its input ids or the registry, and closes only SLO periods
  that end before the slice starts (the property test ``test_step_rejection_changes_nothing``).
- A repeated input ``id`` (per incident, or per metric stream) is ignored (no outputs,
  ``duplicate`` is True); if its content differs from the first one's (``content_digest``),
  ``conflict`` says so, for a dead letter marked ``duplicate``.
- Money and reports go through a :class:`~escalation.core.money.desk.Desk` with this engine as its
  only source, marked at every instant it fires at, so ``penalty.assessed``/``credit.issued``
  come out right after what caused them and ``report.published`` at its close instant. With
  ``desk=None`` (the live partitions) the ``PenaltyDue``/``CreditDue``/``PartialReport``/
  ``Termination`` records come out as the step's ``settlements`` instead, for a shared desk
  downstream; ``outputs`` then hold only contract outputs.
- ``StepResult.changed`` names every state entry the step changed (an incident, a service, an
  agreement's report figures), so a store writes back exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from escalation.agreement.durations import iso_duration
from escalation.core.changes import INCIDENTS, SERVICES
from escalation.core.contract import term
from escalation.core.contract.registry import Registry
from escalation.core.events import (
    INPUT_KINDS,
    METRIC,
    OPENING,
    TERMINATION,
    TICK,
    MetricObserved,
    Rejected,
    StepFailed,
    as_written,
    content_digest,
    input_kind,
)
from escalation.core.money.desk import DESK_ITEMS, Desk
from escalation.core.outputs import Output
from escalation.core.scheduler import Scheduler
from escalation.core.services.metric_side import MetricEngine
from escalation.core.tickets import ticket as tk
from escalation.core.tickets.state import Incident, Tombstone, remembered, upgrade


@dataclass(slots=True)
class StepResult:
    """What one :meth:`Engine.step` did.

    - ``outputs``: the contract outputs, in the order they happened;
    - ``settlements``: desk records (``PenaltyDue``, ``CreditDue``, ``PartialReport``,
      ``Termination``) for a desk downstream, when the engine has no desk of its own (else the
      desk books them at once and its outputs are among ``outputs``); never mixed into ``outputs``;
    - ``changed``: the ``(table, key)`` state entries the step changed (tables named in
      ``core/changes.py``), for a store that writes back only what changed;
    - ``duplicate``: a repeated input id, ignored; ``conflict``: its reason when its content
      differs from the first one's (for a dead letter); ``late_by``: how late an applied event was.
    """

    outputs: list
    settlements: list = field(default_factory=list)
    changed: set = field(default_factory=set)
    duplicate: bool = False
    late_by: timedelta | None = None
    conflict: str | None = None


def _repeat(event, remembered: int | None) -> StepResult | None:
    """The verdict on a repeated id (``remembered``: the first one's content digest, 0 when it was
    not recorded), or None when the id is new."""
    if remembered is None:
        return None
    if remembered and remembered != content_digest(event):
        return StepResult([], duplicate=True, conflict=f"duplicate id {event.id!r} with different content")
    return StepResult([], duplicate=True)


def _note_lateness(outputs: list, event, late) -> None:
    """Outputs caused by a late event say so in their explain block (DESIGN.md §6)."""
    note = {"event": event.id, "event_time": as_written(event.time, event).isoformat(), "late_by": iso_duration(late)}
    for out in outputs:
        if isinstance(out, Output):
            out.data["explain"]["late_event"] = note


@dataclass
class Engine:
    """The core: every input enters through :meth:`step` (see the module docstring)."""

    registry: Registry
    incidents: dict[str, Incident] = field(default_factory=dict)
    now: datetime | None = None
    # --- SLOs, credits and period reports (metric_side.py) ---
    metric_grace: timedelta = timedelta(0)      # a period closes at its end + this grace
    metrics: MetricEngine | None = None
    desk: Desk | None = ...  # type: ignore[assignment]  # default: a desk of its own; None: settlements out
    # live pruning: a closed incident shrinks to a tombstone (its input id and content digests and opening instant),
    # enough to ignore repeats and refuse later events as replay does, without its clocks
    forget_closed: bool = False
    closed: dict[str, Tombstone] = field(default_factory=dict)
    _deadlines: Scheduler = field(default_factory=Scheduler, repr=False)  # incident key -> next deadline
    _changed: set = field(default_factory=set, repr=False)       # (table, key) changed in this step
    _settlements: list = field(default_factory=list, repr=False)  # desk records of this step (desk=None)

    def __post_init__(self) -> None:
        if self.metrics is None:
            self.metrics = MetricEngine(self.registry, self.metric_grace)
        if self.desk is ...:
            self.desk = Desk(self.registry, 1, self.metric_grace)

    # --- input ---------------------------------------------------------------------------

    def step(self, item) -> StepResult:
        """The one entry point: a ticket event, a metric slice, a termination or a :class:`Tick`.

        An event is checked first, then the clock advances to its start, then it is applied; the
        result's outputs are those of the advance followed by the event's. Raises ``Rejected``
        with the state untouched; an ignored repeat (``duplicate``) leaves it untouched too. A
        metric slice ``[start, end)`` is applied once the clock reaches its start and then
        advances to its end, so a slice straddling a period end is split. A tick fires what is
        due before its instant (at it too when ``inclusive``).
        """
        kind = INPUT_KINDS.get(type(item)) or input_kind(item)
        if kind == TICK:
            result = StepResult(self._advance_to(item.at, item.inclusive))
        else:
            verdict = self._plan(item, kind)
            if isinstance(verdict, StepResult):
                return verdict  # a repeat: nothing changed
            outputs = self._advance_to(item.start if kind == METRIC else item.time)
            try:  # a failure now must not lose what the advance fired (StepFailed)
                # a ticket event's plan still holds after the advance (deadlines change no lifecycle
                # or revision); a slice's or a termination's is taken again at the new clock
                if kind == METRIC or kind == TERMINATION:
                    verdict = self._plan(item, kind)
                result = self._apply(item, verdict, kind)
            except Exception as err:
                if outputs:
                    raise StepFailed(outputs, err) from err
                raise
            if outputs:
                result.outputs[:0] = outputs
        result.changed, self._changed = self._changed, set()
        if self.metrics.changed:
            result.changed |= self.metrics.changed
            self.metrics.changed.clear()
        if self._settlements:
            result.settlements, self._settlements = self._settlements, []
        return result

    def _plan(self, event, kind: int = 0):
        """Every reason to refuse an event, read from the state without changing it: Rejected,
        a ``StepResult`` verdict for a repeated id, or what ``_apply`` needs to go on. ``kind``:
        the event's ``input_kind``, when the caller has it."""
        kind = kind or input_kind(event)
        if kind == METRIC:
            covering, first = self.metrics.check(event, self.now)
            return _repeat(event, first) or covering
        if kind == TERMINATION:
            return term.check(self.registry, event)  # repeats: the desk keeps the first termination
        incident = self.incidents.get(event.ticket)
        if incident is not None:
            verdict = _repeat(event, remembered(incident.inputs, event.id))
            if verdict is not None:
                return verdict
            if kind == OPENING:
                raise Rejected(f"ticket {event.ticket!r} is already open (opened at {incident.opened_at.isoformat()})")
            compiled = self.registry.get(incident.agreement, incident.revision)
            # the lifecycle it leads to goes to ``_apply`` with the agreement, so it is not checked twice
            return compiled, tk.check_event(self.registry, compiled, incident, event)
        tomb = self.closed.get(event.ticket)
        if tomb is not None:
            verdict = _repeat(event, remembered(tomb.inputs, event.id))
            if verdict is not None:
                return verdict
            if kind == OPENING:
                raise Rejected(f"ticket {event.ticket!r} is already open (opened at {tomb.opened_at.isoformat()})")
            raise Rejected(f"{event.type} does not apply to ticket {event.ticket!r} in state 'closed'")
        if kind != OPENING:
            raise Rejected(f"unknown ticket {event.ticket!r}: no ticket.opened seen for it")
        return tk.for_opening(self.registry, event), None

    def _apply(self, event, plan, kind: int) -> StepResult:
        """Apply ``event`` (of ``input_kind`` ``kind``) with what ``_plan`` returned for it (a repeat's
        verdict is returned as is)."""
        if isinstance(plan, StepResult):
            return plan
        if kind == METRIC:
            return self._apply_metric(event, plan)
        if kind == TERMINATION:  # for the desk that keeps the agreement's term
            item = term.Termination(event.agreement, plan.revision, event.id, event.time, event.by)
            self.now = max(self.now or event.time, event.time)
            return StepResult(self._settle([item], event.time))
        late = self.now - event.time if self.now is not None and event.time < self.now else None
        compiled, lifecycle = plan
        if kind == OPENING:
            incident, outputs, next_at = tk.open_incident(self.registry, compiled, event)
            self.incidents[event.ticket] = incident
            self.metrics.ticket_opened(compiled.id, event.time, event.priority)
        else:
            incident = self.incidents[event.ticket]
            outputs, next_at = tk.apply_event(self.registry, compiled, incident, event, lifecycle)
        incident.remember(event.id, content_digest(event))
        if self.now is None or event.time > self.now:  # ``max``, without the call
            self.now = event.time
        self._changed.add((INCIDENTS, event.ticket))
        self._deadlines.schedule(incident.ticket, next_at)
        if self.forget_closed and incident.lifecycle == "closed":
            del self.incidents[event.ticket]
            self.closed[event.ticket] = incident.tombstone()
        if late is not None:
            _note_lateness(outputs, event, late)
        return StepResult(self._settle(outputs, event.time) if outputs else [], late_by=late)

    def _apply_metric(self, event: MetricObserved, covering: list) -> StepResult:
        """Count the slice, advance to its end (closing a period it straddles, after counting
        its share), then evaluate burn rates at the end: outputs stay in time order."""
        pending = self.metrics.count(event, covering, content_digest(event))
        late = self.now - event.time if self.now is not None and event.time < self.now else None
        outputs = self._advance_to(event.time)
        outputs += self._settle(self.metrics.burn(pending, event), event.time, recorded=True)
        self.now = max(self.now or event.time, event.time)
        return StepResult(outputs, late_by=late)

    # --- time ----------------------------------------------------------------------------

    def _advance_to(self, until: datetime, inclusive: bool = False) -> list:
        """Fire every deadline and period close before ``until`` (or at it when ``inclusive``), in time order.

        Ticket deadlines due at a period close instant fire before the close.
        """
        outputs: list = []
        while True:
            slo_close = self.metrics.next_close()
            desk_close = None if self.desk is None else self.desk.next_close()
            close = desk_close if slo_close is None or (desk_close is not None and desk_close < slo_close) else slo_close
            if close is None or not (close < until or (inclusive and close == until)):
                break
            outputs += self._fire_deadlines(close, inclusive=True)
            if slo_close == close:  # SLO and this side's report closes first, then the desk's
                outputs += self._settle(self.metrics.close_at(close), close, recorded=True)
            else:
                self.desk.mark(0, close, inclusive=True)
                outputs += self.desk.release()
        if self._deadlines.may_be_due(until, inclusive):  # most steps have no deadline due
            outputs += self._fire_deadlines(until, inclusive)
        if self.now is None or until > self.now:
            self.now = until
        return outputs

    def _fire_deadlines(self, until: datetime, inclusive: bool) -> list:
        outputs: list = []
        for due, key in self._deadlines.pop_due(until, inclusive):
            incident = self.incidents[key]
            compiled = self.registry.get(incident.agreement, incident.revision)
            fired, next_at = tk.advance_and_next(self.registry, compiled, incident, due, inclusive=True)
            self._changed.add((INCIDENTS, key))
            outputs += self._settle(fired, due)
            self._schedule(compiled, incident, next_at)
        return outputs

    def _schedule(self, compiled, incident: Incident, due: object = ...) -> None:
        if due is ...:
            due = tk.next_due(self.registry, compiled, incident)
        self._deadlines.schedule(incident.ticket, due)

    def _settle(self, outputs: list, at: datetime, recorded: bool = False) -> list:
        """Feed the reports (unless the metric side already ``recorded`` them); hand desk records
        (penalties, credits, report partials, terminations) to the desk, which books them at once
        (this engine is its only source, now at ``at``), or, without a desk, to this step's
        ``settlements``. Returns the contract outputs."""
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
            self._settlements += items
            return kept
        for item in items:
            self.desk.submit(item)
        self.desk.mark(0, at, inclusive=False)
        kept[first:first] = self.desk.release()
        return kept

    # --- state ---------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest instant something is due at: a ticket deadline, an SLO or report period
        close (after its grace), a desk close or term event; None when nothing is. What a tick at
        or after it will fire (the live ticker ticks a partition early for it)."""
        first = self._deadlines.next_due()
        for due in (self.metrics.next_close(), None if self.desk is None else self.desk.next_close()):
            if due is not None and (first is None or due < first):  # ``min`` of the known ones, without a generator
                first = due
        return first

    def due_count(self) -> int:
        """How many incidents have a deadline scheduled (the due index's size)."""
        return len(self._deadlines)

    def adopt(self, incident: Incident) -> None:
        """Take over a saved incident (the live engine loading a partition) and schedule it."""
        self.incidents[incident.ticket] = incident
        self._schedule(self.registry.get(incident.agreement, incident.revision), incident)

    def due_of(self, ticket: str) -> datetime | None:
        """The instant open incident ``ticket`` is next due at; None when nothing of it is due."""
        return self._deadlines.due_of(ticket)

    def schedule_saved(self, ticket: str, due: datetime | None) -> None:
        """Schedule a saved incident without decoding it (a restart with many open incidents):
        the caller has put it in ``incidents`` in a form that decodes on first read, and ``due`` is
        what ``due_of`` said when it was saved, under the same agreement content (else ``adopt``)."""
        self._deadlines.schedule(ticket, due)

    def snapshot(self) -> dict:
        """All state as JSON-ready data; ``restore`` of it continues exactly where this left off."""
        return {
            "now": None if self.now is None else self.now.isoformat(),
            "incidents": {k: i.to_dict() for k, i in self.incidents.items()},
            "forget_closed": self.forget_closed, "closed": {k: v.to_dict() for k, v in self.closed.items()},
            "metrics": self.metrics.to_dict(),  # SLOs and this side's report figures
            "desk": None if self.desk is None else self.desk.to_dict(),  # money and reports
        }

    @classmethod
    def restore(cls, registry: Registry, snap: dict) -> "Engine":
        metrics = MetricEngine.from_dict(registry, snap["metrics"])
        desk = None if snap["desk"] is None else Desk.from_dict(registry, snap["desk"])
        engine = cls(registry, now=None if snap["now"] is None else datetime.fromisoformat(snap["now"]),
                     metric_grace=metrics.grace, metrics=metrics, desk=desk)
        engine.closed = {k: Tombstone.from_dict(upgrade(v)) for k, v in snap.get("closed", {}).items()}
        engine.forget_closed = snap.get("forget_closed", False)
        for data in snap["incidents"].values():
            engine.adopt(Incident.from_dict(upgrade(data)))
        return engine

    # --- saved entries (a store writes back what ``StepResult.changed`` names) ---------------

    def entry(self, table: str, key: str):
        """The JSON-ready saved form of one state entry, or None when there is nothing to save."""
        if table == INCIDENTS:
            incident = self.incidents.get(key)
            if incident is not None:
                return {"incident": incident.to_dict()}
            tomb = self.closed.get(key)
            return None if tomb is None else {"closed": tomb.to_dict()}
        if table == SERVICES:
            return self.metrics.service_state(key)
        return self.metrics.report_state(key)

    def load_entry(self, table: str, key: str, value) -> None:
        """Install one saved entry (``entry``'s form); call ``loaded`` after the last one."""
        if table == INCIDENTS:
            if "incident" in value:
                self.adopt(Incident.from_dict(upgrade(value["incident"])))
            else:
                self.closed[key] = Tombstone.from_dict(upgrade(value["closed"]))
        elif table == SERVICES:
            self.metrics.load_service(key, value)
        else:
            self.metrics.load_report(key, value)

    def loaded(self) -> None:
        """Loading is over: rebuild the close schedule; nothing counts as changed by it."""
        self.metrics.reschedule()
        self.metrics.changed.clear()
        self._changed.clear()
