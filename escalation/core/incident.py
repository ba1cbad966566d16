"""The pure per-incident step: apply one ticket event, or advance time, and collect outputs.

Entry points (no I/O, no wall clock; time is the event's own or the ``until`` argument):
- ``open_incident(compiled, event)``      -> (incident, outputs)
- ``check_event(compiled, incident, event)`` -> the lifecycle state after it, or Rejected (reads only)
- ``apply_event(compiled, incident, event)`` -> outputs   (updates ``incident`` in place)
- ``advance(compiled, incident, until, inclusive)`` -> outputs
- ``next_due(compiled, incident)``        -> the next instant something fires, or None

Ordering rule at one instant: an event at time T is applied before deadlines due exactly at T
(a ticket acknowledged at exactly its 15-minute target is met). A late event (older than what the
incident already saw) is applied at the incident's latest instant; what was emitted stays.
Outputs include ``PenaltyDue`` records for per-breach remedies; caps are applied by ``ledger``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import clocks as ck
from .compiled import ALWAYS, BREACH, LEVEL, CompiledAgreement, TargetRule, Threshold
from .events import TicketOpened
from .lifecycle import lifecycle_for
from .registry import check_priority
from .notices import level_notice, met_notice, repeat_due, threshold_notice
from .state import PAUSED, RUNNING, STOPPED, Incident


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
    amount: object


def _calendar(compiled: CompiledAgreement, clock: str, priority: str):
    rule = compiled.target(clock, priority)
    return rule.calendar if rule else ALWAYS


def _pauses(compiled: CompiledAgreement, clock: str, status: str | None) -> bool:
    return status is not None and status in compiled.agreement.clocks[clock].pause_when


def open_incident(compiled: CompiledAgreement, event: TicketOpened) -> tuple[Incident, list]:
    t = event.time
    incident = Incident(event.ticket, compiled.id, compiled.revision, event.priority, event.service, t, t,
                        assignee=event.assignee, group=event.group, customer=event.customer)
    for name, spec in compiled.agreement.clocks.items():
        if spec.starts == "opened":
            incident.clocks[name] = ck.start(t, paused=False)
    return incident, advance(compiled, incident, t, inclusive=True)


def check_event(compiled: CompiledAgreement, incident: Incident, event) -> str:
    """The lifecycle state ``event`` (not ``ticket.opened``) leads to, or Rejected naming why it
    does not fit. Reads the incident, never writes it: every reason to refuse an event lives
    here, so ``apply_event`` cannot fail half-way for a reason it could have seen first."""
    lifecycle = lifecycle_for(compiled.source).fire(incident.lifecycle, incident.acknowledged, event.type, incident.ticket)
    if event.type == "ticket.priority_changed" and event.priority != incident.priority:
        check_priority(compiled, event.priority)
    return lifecycle


def apply_event(compiled: CompiledAgreement, incident: Incident, event) -> list:
    """Apply one ticket event (not ``ticket.opened``); Rejected (before any change) if it does not
    fit. The caller records the event's id (``Incident.remember``)."""
    lifecycle = check_event(compiled, incident, event)
    t = max(event.time, incident.last_time)
    incident.last_time = t
    handler = _HANDLERS.get(event.type)
    outputs = handler(compiled, incident, event, t) if handler else []
    incident.lifecycle = lifecycle
    if lifecycle == "closed":
        return outputs  # closed or cancelled: the incident ends, nothing more fires
    return outputs + advance(compiled, incident, t, inclusive=True)


def _stop(compiled, incident, name, t, stopped_by) -> list:
    clock = incident.clocks[name]
    if clock.status == STOPPED:
        return []
    cal = _calendar(compiled, name, incident.priority)
    ck.stop(clock, cal, t)
    rule = compiled.target(name, incident.priority)
    if rule is None or BREACH in clock.fired:
        return []
    deadline = cal.add(t, rule.within - clock.elapsed) if rule.within > clock.elapsed else t
    return [met_notice(compiled, incident, name, clock, rule, t, deadline, stopped_by)]


def _acknowledged(compiled, incident, event, t) -> list:
    incident.acknowledged = True
    return [o for name, spec in compiled.agreement.clocks.items() if spec.stops == "acknowledged"
            for o in _stop(compiled, incident, name, t, "ticket.acknowledged")]


def _resolved(compiled, incident, event, t) -> list:
    # A resolution also answers the customer, so clocks that stop on acknowledge stop too.
    return [o for name, spec in compiled.agreement.clocks.items() if spec.stops in ("resolved", "acknowledged")
            for o in _stop(compiled, incident, name, t, "ticket.resolved")]


def _closed(compiled, incident, event, t) -> list:
    for name, clock in incident.clocks.items():
        if clock.status != STOPPED:
            ck.stop(clock, _calendar(compiled, name, incident.priority), t)
    return []


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
            ck.pause(clock, _calendar(compiled, name, incident.priority), t)
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
    note = f"{policy}: priority {old} -> {new} at {t.isoformat()}"
    for name, clock in incident.clocks.items():
        if clock.status == STOPPED:
            continue
        if policy == "restart":
            ck.new_cycle(clock, t, clock.status == PAUSED, note)
            continue
        ck.checkpoint(clock, _calendar(compiled, name, old), t)
        if policy == "recompute_from_start":
            ck.recompute(clock, _calendar(compiled, name, new), t)
        clock.note = note
    incident.priority = new
    return []


def _reopened(compiled, incident, event, t) -> list:
    policy = compiled.agreement.on_reopen
    for name, spec in compiled.agreement.clocks.items():
        clock = incident.clocks.get(name)
        if spec.stops != "resolved" or clock is None or clock.status != STOPPED:
            continue
        paused = _pauses(compiled, name, incident.status)
        if policy == "new_cycle":
            ck.new_cycle(clock, t, paused, f"new_cycle: reopened at {t.isoformat()}")
        else:
            ck.restart_stopped(clock, t, paused)
            clock.note = f"resume: reopened at {t.isoformat()}"
    return []


_HANDLERS = {
    "ticket.acknowledged": _acknowledged, "ticket.resolved": _resolved, "ticket.closed": _closed,
    "ticket.cancelled": _closed, "ticket.updated": _updated, "ticket.status_changed": _status_changed,
    "ticket.assigned": _assigned, "ticket.priority_changed": _priority_changed, "ticket.reopened": _reopened,
}


# --- time -------------------------------------------------------------------------------------

def _applies(incident: Incident, thr: Threshold) -> bool:
    return thr.services is None or incident.service in thr.services


def _next_item(compiled: CompiledAgreement, incident: Incident):
    """(due, order, clock name, rule, threshold, repeat n) of the earliest pending item, or None."""
    best = None
    best_at = None
    last_time = incident.last_time
    priority = incident.priority
    targets = compiled.targets
    # Candidates come in increasing (order, index) (clock order, then thresholds before repeats),
    # so "item[:3] < best[:3]" reduces to a strictly earlier instant.
    for order, (name, clock) in enumerate(incident.clocks.items()):
        status = clock.status
        if status == STOPPED:
            continue
        rule = targets.get((name, priority))
        if rule is None:
            continue
        fired = clock.fired
        if status == RUNNING:
            for index, thr in enumerate(rule.thresholds):
                if thr.key not in fired and _applies(incident, thr):
                    due = ck.due_of(clock, rule.calendar, thr.offset)
                    at = last_time if last_time > due else due  # max(due, last_time), same object
                    if best is None or at < best_at:
                        best, best_at = (at, order, index, name, rule, thr, 0, due), at
                    break
        if not fired:
            continue
        for index, thr in enumerate(rule.thresholds):
            if thr.repeat_every is None or thr.key not in fired or not _applies(incident, thr):
                continue
            done = clock.repeats.get(thr.key, 0)
            if done < thr.level.repeat.times:
                due = repeat_due(fired[thr.key], thr.repeat_every, done)
                at = last_time if last_time > due else due
                if best is None or at < best_at:
                    best, best_at = (at, order, 1000 + index, name, rule, thr, done + 1, due), at
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


def _fire(compiled, incident, name, rule: TargetRule, thr: Threshold, repeat: int, due: datetime, at: datetime) -> list:
    clock = incident.clocks[name]
    if repeat:
        clock.repeats[thr.key] = repeat
        return [level_notice(compiled, incident, name, clock, rule, thr, at, due, repeat)]
    clock.fired[thr.key] = at
    if thr.kind == LEVEL:
        return [level_notice(compiled, incident, name, clock, rule, thr, at, due)]
    if thr.kind != BREACH:
        deadline = ck.due_of(clock, rule.calendar, rule.within) or at
        return [threshold_notice(compiled, incident, name, clock, rule, thr, at, due, deadline)]
    clock.breached_at = at
    out = [threshold_notice(compiled, incident, name, clock, rule, thr, at, due, due)]
    for remedy in compiled.penalties.get((name, incident.priority), ()):
        out.append(PenaltyDue(compiled.source, compiled.id, compiled.revision, remedy.id, incident.ticket,
                              name, clock.cycle, incident.priority, at, remedy.amount))
    return out
