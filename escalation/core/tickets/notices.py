"""Builders for the ticket-side outputs: what each says and how it explains itself.

Each builder is a pure function of the compiled agreement, the incident, the clock and the
instant; it decides nothing (incident.py decides *whether* and *when*), it only words the output:
data fields of DESIGN.md §4, a one-line ``summary``, a ``dedup_key`` shared by every output of
one incident clock, ``severity`` for notifications, and the ``explain`` block.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from escalation.agreement.durations import iso_duration
from escalation.core.contract.compiled import CompiledAgreement, TargetRule, Threshold
from escalation.core.outputs import Output, OutputType, ResolveReason, output, utc
from escalation.core.tickets.clocks import elapsed_at, paused_total
from escalation.core.tickets.state import Alert, ClockState, Incident

SEVERITY = {OutputType.SLA_WARNING: "warning", OutputType.SLA_BREACHED: "error", OutputType.SLA_MET: "info"}

# Targets, warning fractions, PT0S pauses: the same few durations are formatted over and over.
_iso = lru_cache(maxsize=4096)(iso_duration)


def dedup_key(incident: Incident, clock: str) -> str:
    return f"{incident.agreement}/{incident.ticket}/{clock}"


def explain(compiled: CompiledAgreement, incident: Incident, name: str, clock: ClockState, rule: TargetRule,
            at: datetime, clause: str, reason: str, due: datetime | None = None, *, elapsed: str | None = None) -> dict:
    """``elapsed``: the clock's elapsed time at ``at`` already formatted, when the caller has it."""
    out = {
        "reason": reason,
        "clause": clause,
        "target": _iso(rule.within),
        "within": rule.within_text,
        "calendar": rule.calendar_name,
        "priority": incident.priority,
        "elapsed": _iso(elapsed_at(clock, rule.calendar, at)) if elapsed is None else elapsed,
        "paused": _iso(paused_total(clock, at)),
        "cycle": clock.cycle,
        "cycle_start": utc(clock.cycle_start),
        "policy": clock.note,
    }
    if rule.opened_in is not None:  # DESIGN.md §13: the level chosen by the opening instant
        out["opened_in"] = rule.opened_in
    if rule.maintenance:  # windows pausing this clock: their time is not counted, deadlines move
        removed = rule.calendar.base.counted(clock.cycle_start, at) - rule.calendar.counted(clock.cycle_start, at)
        out["maintenance"] = {"windows": list(rule.maintenance), "not_counted": _iso(removed)}
    if due is not None and at > due:
        out["late_by"] = iso_duration(at - due)
    return out


def _base(incident: Incident, name: str, clock: ClockState, rule: TargetRule, at: datetime) -> dict:
    return {
        "ticket": incident.ticket, "agreement": incident.agreement, "revision": incident.revision,
        "service": incident.service, "priority": incident.priority, "clock": name, "cycle": clock.cycle,
        "target": _iso(rule.within), "elapsed": _iso(elapsed_at(clock, rule.calendar, at)),
        "dedup_key": dedup_key(incident, name),
    }


def threshold_notice(compiled: CompiledAgreement, incident: Incident, name: str, clock: ClockState,
                     rule: TargetRule, thr: Threshold, at: datetime, due: datetime, deadline: datetime) -> Output:
    """``sla.warning`` or ``sla.breached`` for a clock threshold reached at ``at``."""
    type_ = OutputType.SLA_BREACHED if thr.kind == "breach" else OutputType.SLA_WARNING
    data = _base(incident, name, clock, rule, at)
    pct = f"{thr.fraction * 100:g}%"
    if type_ == OutputType.SLA_WARNING:
        data["fraction"] = thr.fraction
        summary = f"{incident.ticket} {incident.priority} {name}: {pct} of {rule.within_text} used, due {utc(deadline)}"
        reason = f"{name} reached {pct} of {rule.within_text}"
    else:
        summary = f"{incident.ticket} {incident.priority} {name} breached: target {rule.within_text} passed at {utc(deadline)}"
        reason = f"{name} passed its target {rule.within_text}"
    # Warnings and breaches go to whoever holds the ticket; escalation levels name their own recipients.
    data["recipients"] = recipients(compiled, incident, ["assignee"]) if incident.assignee or incident.group else []
    data.update(due=utc(deadline), severity=SEVERITY[type_], summary=summary,
                explain=explain(compiled, incident, name, clock, rule, at, thr.clause, reason, due, elapsed=data["elapsed"]))
    return output(compiled.source, type_, incident.ticket, at, (name, clock.cycle, thr.key), data)


def met_notice(compiled: CompiledAgreement, incident: Incident, name: str, clock: ClockState,
               rule: TargetRule, at: datetime, deadline: datetime, stopped_by: str) -> Output:
    data = _base(incident, name, clock, rule, at)
    data.update(
        due=utc(deadline), severity="info",
        summary=f"{incident.ticket} {incident.priority} {name} met: {data['elapsed']} of {rule.within_text}",
        explain=explain(compiled, incident, name, clock, rule, at, rule.clause, f"{name} stopped by {stopped_by} before its target",
                        elapsed=data["elapsed"]),
    )
    return output(compiled.source, OutputType.SLA_MET, incident.ticket, at, (name, clock.cycle, "met", clock.stops), data)


def recipients(compiled: CompiledAgreement, incident: Incident, names: list[str]) -> list[dict]:
    targets = compiled.agreement.notification_targets
    out = []
    for name in names:
        if name == "assignee":
            if incident.assignee:
                out.append({"name": name, "kind": "assignee", "ref": incident.assignee})
            elif incident.group:
                out.append({"name": name, "kind": "group", "ref": incident.group, "note": "no assignee; assignment group notified"})
            else:
                out.append({"name": name, "kind": "assignee", "ref": None, "note": "ticket has no assignee"})
        else:
            out.append({"name": name, **targets[name].model_dump()})
    return out


def level_notice(compiled: CompiledAgreement, incident: Incident, name: str, clock: ClockState, rule: TargetRule,
                 thr: Threshold, at: datetime, due: datetime, repeat: int = 0, cause: Threshold | None = None) -> Output:
    """``escalation.triggered`` (repeat 0) or ``escalation.repeated`` (repeat n) for one level;
    ``cause``: the previous level, when this one fires because that one's ack timeout ran out."""
    level = thr.level
    type_ = OutputType.ESCALATION_REPEATED if repeat else OutputType.ESCALATION_TRIGGERED
    data = _base(incident, name, clock, rule, at)
    trigger = {"fraction": thr.fraction} if thr.after_breach is None else {"after_breach": iso_duration(thr.after_breach)}
    data.update(policy=thr.policy, level=level.level, at=trigger,
                recipients=recipients(compiled, incident, level.notify), severity=level.severity)
    reason = f"level {level.level} of {thr.policy}: {name} " + (
        f"reached {thr.fraction * 100:g}% of {rule.within_text}" if thr.after_breach is None
        else f"{level.at.after_breach} past its breach")
    if repeat:
        data.update(repeat=repeat, times=level.repeat.times)
        reason = f"repeat {repeat} of {level.repeat.times} every {level.repeat.every}: {reason}; still not " + (
            "acknowledged" if name == "response" else "resolved")
    clause = thr.clause
    if cause is not None:  # DESIGN.md §11: the reason names the unacknowledged level and its timeout
        reason = f"level {cause.level.level} not acknowledged within {cause.level.ack_timeout}"
        clause = f"{cause.clause}.ack_timeout"
    names = ", ".join(level.notify)
    data["summary"] = f"{incident.ticket} {incident.priority} escalated to level {level.level} ({names})" + (
        f", repeat {repeat}/{level.repeat.times}" if repeat else "")
    data["explain"] = explain(compiled, incident, name, clock, rule, at, clause, reason, due, elapsed=data["elapsed"])
    return output(compiled.source, type_, incident.ticket, at, (name, clock.cycle, thr.key, repeat), data)


def acknowledged_notice(compiled: CompiledAgreement, incident: Incident, name: str, clock: ClockState, rule: TargetRule,
                        at: datetime, alert: Alert, level: int | None, by_input: str, source: str | None) -> Output:
    """``escalation.acknowledged`` (DESIGN.md §11): the first acknowledgement of an open alert.
    Severity ``info``: it reports that someone took the alert, it pages nobody."""
    data = _base(incident, name, clock, rule, at)
    via = f" via {source}" if source else ""
    data.update(by=alert.acked_by, level=level, recipients=[dict(r) for r in alert.recipients], severity="info",
                summary=f"{incident.ticket} {incident.priority} {name} acknowledged by {alert.acked_by}")
    data["explain"] = explain(compiled, incident, name, clock, rule, at, rule.clause,
                              f"{name} alert acknowledged by {alert.acked_by} ({by_input}{via})", elapsed=data["elapsed"])
    return output(compiled.source, OutputType.ESCALATION_ACKNOWLEDGED, incident.ticket, at,
                      (name, clock.cycle, "acknowledged", alert.number), data)


def resolved_notice(compiled: CompiledAgreement, incident: Incident, name: str, clock: ClockState, rule: TargetRule,
                    at: datetime, alert: Alert, reason: ResolveReason, overrun: str, why: str) -> Output:
    """``escalation.resolved`` (DESIGN.md §11): the alert's cycle ended (``reason``), with the
    counted time past the target (``PT0S`` when met). Severity ``info``: it closes, never pages."""
    data = _base(incident, name, clock, rule, at)
    data.update(reason=reason, overrun=overrun, recipients=[dict(r) for r in alert.recipients], severity="info")
    verdict = "target met" if overrun == "PT0S" else f"{overrun} past its {rule.within_text} target"
    data["summary"] = f"{incident.ticket} {incident.priority} {name} alert resolved ({reason}): {verdict}"
    data["explain"] = explain(compiled, incident, name, clock, rule, at, rule.clause,
                              f"{name} cycle {clock.cycle} alert closed: {why}", elapsed=data["elapsed"])
    return output(compiled.source, OutputType.ESCALATION_RESOLVED, incident.ticket, at,
                      (name, clock.cycle, "resolved", alert.number), data)


def repeat_due(fired_at: datetime, every: timedelta, done: int) -> datetime:
    return fired_at + every * (done + 1)
