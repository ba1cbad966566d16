"""The pure per-incident step: apply one ticket event, or advance time, and collect outputs.

Entry points (no I/O, no wall clock; time is the event's own or the ``until`` argument):
- ``open_incident(compiled, event)``      -> (incident, outputs, next due)
- ``check_event(compiled, incident, event)`` -> the lifecycle state after it, or Rejected (reads only)
- ``apply_event(compiled, incident, event)`` -> (outputs, next due)   (updates ``incident`` in place)
- ``advance(compiled, incident, until, inclusive)`` -> outputs
- ``next_due(compiled, incident)``        -> the next instant something fires, or None

Ordering rule at one instant: an event at time T is applied before deadlines due exactly at T
(a ticket acknowledged at exactly its 15-minute target is met). A late event (older than what the
incident already saw) is applied at the incident's latest instant; what was emitted stays.
Outputs include ``PenaltyDue`` records for per-breach remedies; caps are applied by ``ledger``.
On-call alerts (DESIGN.md §11) are kept by ``alerts``: every fired output opens or extends its
clock's alert, and whoever acknowledges a clock or ends its cycle (stop, restart, close, a priority
the agreement no longer covers) lets ``alerts`` emit ``escalation.acknowledged``/``resolved`` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from escalation.core.codec import record
from escalation.core.contract.compiled import (
    ALWAYS,
    BREACH,
    LEVEL,
    CompiledAgreement,
    TargetRule,
    Threshold,
)
from escalation.core.contract.registry import check_priority
from escalation.core.events import TicketOpened, as_written
from escalation.core.outputs import ResolveReason
from escalation.core.tickets import alerts, obligations
from escalation.core.tickets import clocks as ck
from escalation.core.tickets.lifecycle import lifecycle_for
from escalation.core.tickets.notices import (
    level_notice,
    met_notice,
    repeat_due,
    threshold_notice,
)
from escalation.core.tickets.state import EMPTY, PAUSED, RUNNING, STOPPED, Incident


@record
@dataclass(frozen=True, slots=True)
class PenaltyDue:
    """A per-breach remedy owed at ``at``; the ledger caps it and words ``penalty.assessed``."""

    source: str
    agreement: str
    revision: int
    remedy: str
    ticket: str
    clock: str
    cycle: int
    priority: str
    at: datetime
    amount: Decimal


def _calendar(compiled: CompiledAgreement, incident: Incident, clock: str, priority: str | None = None):
    return _calendar_of(compiled.rule_of(incident, clock, priority))


def _calendar_of(rule: TargetRule | None):
    """The calendar a clock accrues in under ``rule``: its target's, 24x7 when it has none."""
    return rule.calendar if rule else ALWAYS


def _pauses(compiled: CompiledAgreement, clock: str, status: str | None) -> bool:
    return status is not None and status in compiled.agreement.clocks[clock].pause_when


def open_incident(compiled: CompiledAgreement, event: TicketOpened) -> tuple[Incident, list, datetime | None]:
    """The new incident, what fires at its opening instant and the next instant something is due."""
    t = event.time
    # opened_at as written: it is quoted (an "already open" reason, the tombstone), never compared often
    incident = Incident(event.ticket, compiled.id, compiled.revision, event.priority, event.service,
                        as_written(t, event), t,
                        assignee=event.assignee, group=event.group, customer=event.customer)
    for name, spec in compiled.agreement.clocks.items():
        if spec.starts == "opened":
            incident.clocks[name] = ck.start(t, paused=False)
    return (incident, *advance_and_next(compiled, incident, t, inclusive=True))


def check_event(compiled: CompiledAgreement, incident: Incident, event) -> str:
    """The lifecycle state ``event`` (not ``ticket.opened``) leads to, or Rejected naming why it
    does not fit. Reads the incident, never writes it: every reason to refuse an event lives
    here, so ``apply_event`` cannot fail half-way for a reason it could have seen first."""
    lifecycle = lifecycle_for(compiled.source).fire(incident.lifecycle, incident.acknowledged, event.type, incident.ticket)
    if event.type == "ticket.priority_changed" and event.priority != incident.priority:
        check_priority(compiled, event.priority)
    elif event.type == "notification.acknowledged":
        alerts.clock_of(incident, event.dedup_key)
    return lifecycle


def apply_event(compiled: CompiledAgreement, incident: Incident, event,
                lifecycle: str | None = None) -> tuple[list, datetime | None]:
    """Apply one ticket event (not ``ticket.opened``); Rejected (before any change) if it does not
    fit. Returns the outputs and the next instant something is due (what ``next_due`` would say,
    from the same scan). The caller records the event's id (``Incident.remember``).
    ``lifecycle``: what ``check_event`` said of this event on the incident as it is, when the
    caller has already asked (the engine's plan); the event is then not checked twice."""
    outputs = apply_only(compiled, incident, event, lifecycle)
    if incident.lifecycle == "closed":
        return outputs, None  # closed or cancelled: the incident ends, nothing more fires
    fired, next_at = advance_and_next(compiled, incident, incident.last_time, inclusive=True)
    return outputs + fired, next_at


def apply_only(compiled: CompiledAgreement, incident: Incident, event, lifecycle: str | None = None) -> list:
    """``apply_event`` without firing what falls due at the event's instant (``ticket.py`` fires
    that over the ticket's obligations and engagements too); ``lifecycle`` as there."""
    if lifecycle is None:
        lifecycle = check_event(compiled, incident, event)
    t = max(event.time, incident.last_time)
    incident.last_time = t
    handler = _HANDLERS.get(event.type)
    outputs = handler(compiled, incident, event, t) if handler else []
    incident.lifecycle = lifecycle
    return outputs


def _stop(compiled, incident, name, t, stopped_by) -> list:
    clock = incident.clocks[name]
    if clock.status == STOPPED:
        return []
    rule = compiled.rule_of(incident, name)  # one lookup for the calendar and the verdict
    cal = _calendar_of(rule)
    ck.stop(clock, cal, t)
    outputs = []
    if rule is not None and BREACH not in (clock.fired or ()):
        deadline = cal.add(t, rule.within - clock.elapsed) if rule.within > clock.elapsed else t
        outputs.append(met_notice(compiled, incident, name, clock, rule, t, deadline, stopped_by))
    if clock.alert is not None:  # the cycle ended: close what it opened on the on-call side (after the verdict)
        outputs += alerts.close(compiled, incident, name, t, ResolveReason.CLOCK_STOPPED, f"{name} stopped by {stopped_by}")
    return outputs


def _acknowledged(compiled, incident, event, t) -> list:
    """Stops the clocks that stop on acknowledge; each one's open alert is acknowledged first
    (by the assignee, else ``ticket``: the ticket tool), then resolved as its cycle ends."""
    incident.acknowledged = True
    by = incident.assignee or "ticket"
    outputs = []
    for name, spec in compiled.agreement.clocks.items():
        if spec.stops == "acknowledged":
            outputs += alerts.acknowledge(compiled, incident, name, t, by, "ticket.acknowledged")
            outputs += _stop(compiled, incident, name, t, "ticket.acknowledged")
    return outputs


def _notification_acknowledged(compiled, incident, event, t) -> list:
    """An on-call tool took the alert: no clock changes; its levels stop repeating (DESIGN.md §11)."""
    name = alerts.clock_of(incident, event.dedup_key)
    return alerts.acknowledge(compiled, incident, name, t, event.by, event.type, event.source)


def _resolved(compiled, incident, event, t) -> list:
    # A resolution also answers the customer, so clocks that stop on acknowledge stop too.
    return [o for name, spec in compiled.agreement.clocks.items() if spec.stops in ("resolved", "acknowledged")
            for o in _stop(compiled, incident, name, t, "ticket.resolved")]


def _closed(compiled, incident, event, t) -> list:
    """Ends the incident: every clock stops; the only outputs are the ``escalation.resolved`` of
    the alerts still open (DESIGN.md §3)."""
    outputs = []
    for name, clock in incident.clocks.items():
        if clock.status != STOPPED:
            ck.stop(clock, _calendar(compiled, incident, name), t)
        outputs += alerts.close(compiled, incident, name, t, alerts.CLOSE_REASONS[event.type], event.type)
    return outputs


def _updated(compiled, incident, event, t) -> list:
    if not event.public:
        return []
    outputs = []
    for name, spec in compiled.agreement.clocks.items():
        clock = incident.clocks.get(name)
        if spec.restarts != "updated" or clock is None or clock.status == STOPPED:
            continue
        paused = clock.status == PAUSED
        outputs += _stop(compiled, incident, name, t, "ticket.updated")
        ck.new_cycle(clock, t, paused, None)
    return outputs


def _status_changed(compiled, incident, event, t) -> list:
    incident.status = event.status
    for name, clock in incident.clocks.items():
        if _pauses(compiled, name, event.status):
            ck.pause(clock, _calendar(compiled, incident, name), t)
        else:
            ck.resume(clock, t)
    return []


def _assigned(compiled, incident, event, t) -> list:
    incident.assignee, incident.group = event.assignee, event.group if event.group is not None else incident.group
    return []


def _priority_changed(compiled, incident, event, t) -> list:
    old, new = incident.priority, event.priority
    if new == old:
        return []
    policy = compiled.agreement.on_priority_change
    note = f"{policy}: priority {old} -> {new} at {as_written(t, event).isoformat()}"
    # Alerts close under the old priority (the target they were about), before anything changes.
    outputs = _priority_alerts(compiled, incident, t, new, policy, note)
    for name, clock in incident.clocks.items():
        if clock.status == STOPPED:
            continue
        if policy == "restart":
            ck.new_cycle(clock, t, clock.status == PAUSED, note)
            continue
        ck.checkpoint(clock, _calendar(compiled, incident, name, old), t)
        if policy == "recompute_from_start":
            ck.recompute(clock, _calendar(compiled, incident, name, new), t)
        clock.note = note
    incident.priority = new
    return outputs


def _priority_alerts(compiled, incident, t, new: str, policy: str, note: str) -> list:
    """The alerts a priority change closes: under ``restart`` every running cycle ends (its clock
    restarts); otherwise those the agreement no longer covers at ``new`` (``alerts.covered``)."""
    outputs = []
    for name, clock in incident.clocks.items():
        if clock.status == STOPPED:
            continue
        if policy == "restart":
            outputs += alerts.close(compiled, incident, name, t, ResolveReason.CLOCK_STOPPED, f"{name} restarted ({note})")
        elif not alerts.covered(compiled, incident, name, new):
            outputs += alerts.close(compiled, incident, name, t, ResolveReason.POLICY_NO_LONGER_APPLIES,
                                    f"no target or escalation policy covers it at priority {new} ({note})")
    return outputs


def _reopened(compiled, incident, event, t) -> list:
    policy = compiled.agreement.on_reopen
    for name, spec in compiled.agreement.clocks.items():
        clock = incident.clocks.get(name)
        if spec.stops != "resolved" or clock is None or clock.status != STOPPED:
            continue
        paused = _pauses(compiled, name, incident.status)
        if policy == "new_cycle":
            ck.new_cycle(clock, t, paused, f"new_cycle: reopened at {as_written(t, event).isoformat()}")
        else:
            ck.restart_stopped(clock, t, paused)
            clock.note = f"resume: reopened at {as_written(t, event).isoformat()}"
    return []


_HANDLERS = {
    "ticket.acknowledged": _acknowledged, "ticket.resolved": _resolved, "ticket.closed": _closed,
    "ticket.cancelled": _closed, "ticket.updated": _updated, "ticket.status_changed": _status_changed,
    "ticket.assigned": _assigned, "ticket.priority_changed": _priority_changed, "ticket.reopened": _reopened,
    "notification.acknowledged": _notification_acknowledged,
}


# --- time -------------------------------------------------------------------------------------

def _next_item(compiled: CompiledAgreement, incident: Incident):
    """(at, order, index, clock name, rule, threshold, repeat n, due, cause) of the earliest
    pending item, or None. ``cause``: the level whose ack timeout makes ``threshold`` (the next
    level) fire, else None. Repeats and ack timeouts run only while the alert their level fired
    in is open and unacknowledged: an acknowledgement or a resolve stops them for the rest of the
    cycle, even when the clock runs again (a resumed reopen, a priority change back)."""
    best = None
    best_at = None
    last_time = incident.last_time
    priority, service = incident.priority, incident.service
    targets = compiled.targets
    variable = bool(compiled.choices) or compiled.clock_windows is not None
    # Candidates come in increasing (order, index) (clock order, then thresholds before repeats),
    # so "item[:3] < best[:3]" reduces to a strictly earlier instant.
    for order, (name, clock) in enumerate(incident.clocks.items()):
        status = clock.status
        if status == STOPPED:
            continue
        rule = compiled.rule_of(incident, name) if variable else targets.get((name, priority))
        if rule is None:
            continue
        fired = clock.fired or EMPTY
        if status == RUNNING:
            for index, thr in enumerate(rule.thresholds):
                if thr.key not in fired and thr.applies_to(service):
                    due = ck.due_of(clock, rule.calendar, thr.offset)
                    at = last_time if last_time > due else due  # max(due, last_time), same object
                    if best is None or at < best_at:
                        best, best_at = (at, order, index, name, rule, thr, 0, due, None), at
                    break
        alert = clock.alert
        if alert is not None and alert.acked_at is None and alert.levels:
            item = _wall_clock_item(compiled, incident, order, name, clock, rule)
            if item is not None and (best is None or item[0] < best_at):
                best, best_at = item, item[0]
    return best


def _wall_clock_item(compiled: CompiledAgreement, incident: Incident, order: int, name: str, clock, rule: TargetRule):
    """The earliest wall-clock item (``_next_item``'s form) of a clock whose open, unacknowledged
    alert has levels fired in it: a repeat of one of those levels, or the next level of an ack
    timeout that ran out."""
    best = None
    last_time = incident.last_time
    fired = clock.fired or EMPTY
    levels = clock.alert.levels
    for index, thr in enumerate(rule.thresholds):
        if (thr.repeat_every is None or thr.key not in levels or thr.key not in fired
                or not thr.applies_to(incident.service)):
            continue
        done = (clock.repeats or EMPTY).get(thr.key, 0)
        if done < thr.level.repeat.times:
            due = repeat_due(fired[thr.key], thr.repeat_every, done)
            at = last_time if last_time > due else due
            if best is None or at < best[0]:
                best = (at, order, 1000 + index, name, rule, thr, done + 1, due, None)
    for due, next_name, next_rule, nxt, cause in alerts.timeouts(compiled, incident, clock, rule):
        at = last_time if last_time > due else due
        if best is None or at < best[0]:
            best = (at, order, 2000, next_name, next_rule, nxt, 0, due, cause)
    return best


def next_due(compiled: CompiledAgreement, incident: Incident) -> datetime | None:
    if incident.lifecycle == "closed":
        return None
    item = _next_item(compiled, incident)
    return None if item is None else item[0]


def advance(compiled: CompiledAgreement, incident: Incident, until: datetime, inclusive: bool) -> list:
    """Fire, in time order, everything due before ``until`` (or at it, when ``inclusive``)."""
    return advance_and_next(compiled, incident, until, inclusive)[0]


def advance_and_next(compiled: CompiledAgreement, incident: Incident, until: datetime,
                     inclusive: bool) -> tuple[list, datetime | None]:
    """``advance``, plus the instant of the next pending item (what ``next_due`` would return),
    found by the same scan that stopped the loop, so rescheduling costs nothing extra."""
    outputs: list = []
    if incident.lifecycle == "closed":
        return outputs, None
    while (item := _next_item(compiled, incident)) is not None:
        at = item[0]
        if at > until or (at == until and not inclusive):
            break
        outputs += _fire(compiled, incident, *item[3:], at)
    if incident.lifecycle == "closed":
        return outputs, None
    return outputs, None if item is None else item[0]


def _fire(compiled, incident, name, rule: TargetRule, thr: Threshold, repeat: int, due: datetime,
          cause: Threshold | None, at: datetime) -> list:
    """Emit one pending item; whatever goes to ``notifications`` opens or extends the clock's alert."""
    clock = incident.clocks[name]
    outputs = _fired(compiled, incident, name, clock, rule, thr, repeat, due, cause, at)
    alerts.track(clock, outputs[0], thr.key if thr.kind == LEVEL and not repeat else None)
    return outputs


def _fired(compiled, incident, name, clock, rule: TargetRule, thr: Threshold, repeat: int, due: datetime,
           cause: Threshold | None, at: datetime) -> list:
    if repeat:
        ck.mark_repeat(clock, thr.key, repeat)
        return [level_notice(compiled, incident, name, clock, rule, thr, at, due, repeat)]
    ck.mark_fired(clock, thr.key, at)
    if thr.kind == LEVEL:
        return [level_notice(compiled, incident, name, clock, rule, thr, at, due, cause=cause)]
    if thr.kind != BREACH:
        deadline = ck.due_of(clock, rule.calendar, rule.within) or at
        return [threshold_notice(compiled, incident, name, clock, rule, thr, at, due, deadline)]
    clock.breached_at = at
    out = [threshold_notice(compiled, incident, name, clock, rule, thr, at, due, due)]
    if incident.obligations and obligations.excuse(compiled, incident, out[0], at):
        return out  # DESIGN.md §13: a customer obligation was missed; no penalty is owed
    for remedy in compiled.penalties.get((name, incident.priority), ()):
        out.append(PenaltyDue(compiled.source, compiled.id, compiled.revision, remedy.id, incident.ticket,
                              name, clock.cycle, incident.priority, at, compiled.penalty_amount(remedy)))
    return out
