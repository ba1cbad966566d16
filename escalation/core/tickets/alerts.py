"""The alert lifecycle for on-call systems (DESIGN.md §11): open, acknowledge, resolve.

On-call tools pair a trigger with an acknowledge and a resolve through one ``dedup_key`` per
incident clock. This module keeps, per clock, the alert those tools hold open (``ClockState.alert``)
and decides when ``escalation.acknowledged`` and ``escalation.resolved`` are due; ``notices.py``
words them and ``incident.py`` calls in at the instants where a cycle is notified, acknowledged
or ends.

Invariants:
- An alert exists only after an output of its clock went to the ``notifications`` topic
  (``outputs.topic_for``) in the current cycle, so a cycle nobody was paged for stays silent.
- At most one ``escalation.acknowledged`` and exactly one ``escalation.resolved`` per alert; the
  resolve closes it (``alert`` back to None), so nothing is acknowledged or resolved twice.
- Whoever ends a cycle (a stop, a restart, a close, a new cycle) closes its alert first, at the
  same instant and after any acknowledgement: acknowledged comes before resolved.
- An open alert's clock has a target under the incident's current priority (notifications only
  fire against a target, and a priority change closes the alerts it leaves uncovered), so the
  overrun of ``escalation.resolved`` is always measured against a target.
- Both carry every recipient of the alert's earlier outputs (deduplicated, first seen first), so
  delivery reaches every target that got the trigger.
- Pure: state in, outputs out; ids come from (clock, cycle, alert number) through ``notices``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from escalation.agreement.durations import iso_duration
from escalation.core.contract.compiled import CompiledAgreement, level_number
from escalation.core.events import Rejected
from escalation.core.outputs import NOTIFICATIONS, Output, ResolveReason
from escalation.core.tickets.clocks import elapsed_at
from escalation.core.tickets.notices import (
    acknowledged_notice,
    dedup_key,
    resolved_notice,
)
from escalation.core.tickets.state import STOPPED, Alert, ClockState, Incident

#: the alert resolve reason of the ticket events that end an incident
CLOSE_REASONS = {"ticket.closed": ResolveReason.TICKET_CLOSED, "ticket.cancelled": ResolveReason.TICKET_CANCELLED}


def track(clock: ClockState, output, level_key: str | None = None) -> None:
    """Note an output of ``clock``: one for ``notifications`` opens the alert (or extends it) with
    its recipients; ``level_key`` marks a level that fired in it (its ack timeout starts)."""
    if not isinstance(output, Output) or output.topic != NOTIFICATIONS:
        return
    alert = clock.alert
    if alert is None:
        clock.alerts += 1
        alert = clock.alert = Alert(clock.alerts)
    for recipient in output.data.get("recipients", ()):
        if recipient not in alert.recipients:
            alert.recipients.append(recipient)
    if level_key is not None and level_key not in alert.levels:
        alert.levels.append(level_key)


def clock_of(incident: Incident, key: str) -> str:
    """The clock whose ``dedup_key`` is ``key``; Rejected naming the known keys otherwise."""
    for name in incident.clocks:
        if dedup_key(incident, name) == key:
            return name
    known = ", ".join(dedup_key(incident, name) for name in incident.clocks)
    raise Rejected(f"unknown dedup_key {key!r} for ticket {incident.ticket!r} (known: {known})")


def acknowledge(compiled: CompiledAgreement, incident: Incident, name: str, at: datetime, by: str,
                by_input: str, source: str | None = None) -> list:
    """``escalation.acknowledged`` for the first acknowledgement of ``name``'s open alert; nothing
    when no alert is open (nobody was paged) or it is already acknowledged. Changes no clock."""
    clock = incident.clocks[name]
    alert = clock.alert
    if alert is None or alert.acked_at is not None:
        return []
    alert.acked_at, alert.acked_by = at, by
    levels = [n for n in map(level_number, clock.fired or ()) if n is not None]
    rule = compiled.rule_of(incident, name)
    return [acknowledged_notice(compiled, incident, name, clock, rule, at, alert, max(levels, default=None),
                                by_input, source)]


def close(compiled: CompiledAgreement, incident: Incident, name: str, at: datetime, reason: ResolveReason, why: str) -> list:
    """``escalation.resolved`` for ``name``'s open alert (then closed), measured against the
    target of the incident's current priority; nothing when no alert is open."""
    clock = incident.clocks[name]
    alert = clock.alert
    if alert is None:
        return []
    clock.alert = None
    rule = compiled.rule_of(incident, name)
    overrun = max(elapsed_at(clock, rule.calendar, at) - rule.within, timedelta(0))
    return [resolved_notice(compiled, incident, name, clock, rule, at, alert, reason, iso_duration(overrun), why)]


def covered(compiled: CompiledAgreement, incident: Incident, name: str, priority: str) -> bool:
    """Whether ``name``'s open alert still means something under ``priority``: its clock has a
    target then, and when levels fired in it, at least one of their policies still applies."""
    alert = incident.clocks[name].alert
    if alert is None:
        return True
    rule = compiled.rule_of(incident, name, priority)
    if rule is None:
        return False
    return not alert.levels or any(key in rule.by_key for key in alert.levels)


def timeouts(compiled: CompiledAgreement, incident: Incident, clock: ClockState, rule):
    """The ack timeouts running on ``clock``'s unacknowledged alert: (due, successor clock name,
    successor rule, successor threshold, cause) for each level fired in it whose successor can
    still fire (its clock not stopped, not fired yet in that clock's cycle, its policy applying)."""
    for key in clock.alert.levels:
        cause = rule.by_key.get(key)
        if cause is None or cause.successor is None:
            continue
        name, next_key = cause.successor
        target = incident.clocks.get(name)
        next_rule = compiled.rule_of(incident, name)
        if target is None or target.status == STOPPED or next_rule is None or next_key in (target.fired or ()):
            continue
        nxt = next_rule.by_key.get(next_key)
        if nxt is not None and nxt.applies_to(incident.service):
            yield clock.fired[key] + cause.ack_timeout, name, next_rule, nxt, cause
