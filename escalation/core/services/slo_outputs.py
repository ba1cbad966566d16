"""Builders for the metric-side outputs: ``slo.attainment``, ``slo.no_data``, ``slo.burn_rate``.

Pure wording, no decisions (``slo.py`` decides whether and when). Each output says why: the
clause, the figures it was computed from, and what was removed (maintenance, closed hours).
Subjects: the service (the metric topic key). Deterministic ids:
- ``slo.attainment`` / ``slo.no_data``: (agreement, SLO, period);
- ``slo.burn_rate``: (service, SLO, rule, transition count): a rule's n-th firing or clearing.

``slo.burn_rate`` keeps ``severity`` as the rule's ``page``/``ticket`` (DESIGN.md §4 key field) and
adds ``notification_severity`` (page -> critical, ticket -> warning) for on-call consumers that
expect critical/error/warning/info; ``dedup_key`` is shared by a rule's firing and resolved events,
and both carry as ``recipients`` the SLO's ``notify`` targets (empty without ``notify``).
"""

from __future__ import annotations

import math
from datetime import datetime

from escalation.core.outputs import OutputType, output, utc
from escalation.core.services import burn_rate as br
from escalation.core.services.slo_compiled import CompiledSlo
from escalation.core.services.slo_state import PeriodAcc, SloState
from escalation.core.time.periods import to_dt

NOTIFY_SEVERITY = {"page": "critical", "ticket": "warning"}


def num(value: float, places: int = 6) -> float | None:
    """A JSON-safe rounded figure (None for an infinite rate)."""
    return None if math.isinf(value) else round(value, places)


def _period(acc: PeriodAcc) -> dict:
    return {"period": acc.label, "period_start": utc(to_dt(acc.start_us)), "period_end": utc(to_dt(acc.end_us))}


def _base(cslo: CompiledSlo) -> dict:
    s = cslo.slo
    return {"agreement": cslo.compiled.id, "revision": cslo.compiled.revision, "slo": s.id,
            "service": s.service, "sli": s.sli}


def _removed(acc: PeriodAcc) -> dict:
    return {"excluded": num(acc.excluded), "uncounted": num(acc.uncounted), "slices": acc.slices}


def budget(cslo: CompiledSlo, st: SloState) -> dict | None:
    """Attainment and error budget left over the rolling SLO window (rolling SLOs only).

    ``budget_remaining`` = 1 - (bad / total) / (1 - objective/100): 1 untouched, 0 spent, < 0 overspent.
    """
    spec = cslo.burn
    if spec is None or spec.slo_window is None or st.burn is None:
        return None
    r = spec.windows[spec.slo_window][1]
    head, bucket = st.burn.heads[r], spec.rings[r][0]
    if head is None:
        return {"window": cslo.slo.window, "attainment": None, "budget_remaining": None}
    # the rolling window ending with the latest bucket that has data
    good, total = br.window_sum(spec, st.burn, spec.slo_window, (head + 1) * bucket)
    if total <= 0:
        return {"window": cslo.slo.window, "attainment": None, "budget_remaining": None}
    bad = max(total - good, 0.0) / total
    left = 1.0 - bad / spec.budget if spec.budget > 0 else (1.0 if bad == 0 else -math.inf)
    return {"window": cslo.slo.window, "attainment": num(100.0 * (1 - bad)), "budget_remaining": num(left)}


def attainment_notice(cslo: CompiledSlo, st: SloState, acc: PeriodAcc, value: float, at: datetime) -> Output:
    objective = cslo.slo.objective
    met = value >= objective
    data = {**_base(cslo), **_period(acc), "attainment": value, "objective": objective, "met": met,
            "good": num(acc.good), "total": num(acc.total), **_removed(acc), "window": cslo.slo.window,
            "counted_time": cslo.slo.counted_time}
    rolling = budget(cslo, st)
    if rolling is not None:
        data["rolling"] = rolling
    data["summary"] = (f"{cslo.slo.id} {acc.label}: {value:g}% {'met' if met else 'missed'} "
                       f"(objective {objective:g}%)")
    data["explain"] = {"reason": "period closed", "clause": cslo.clause,
                       "formula": "100 * good / total over counted time minus maintenance"}
    return output(cslo.compiled.source, OutputType.SLO_ATTAINMENT, cslo.slo.service, at, (cslo.slo.id, acc.label), data)


def no_data_notice(cslo: CompiledSlo, acc: PeriodAcc, at: datetime) -> Output:
    data = {**_base(cslo), **_period(acc), **_removed(acc), "objective": cslo.slo.objective,
            "summary": f"{cslo.slo.id} {acc.label}: no data (no credit assessed)",
            "explain": {"reason": "no counted data in the period after exclusions", "clause": cslo.clause}}
    return output(cslo.compiled.source, OutputType.SLO_NO_DATA, cslo.slo.service, at, (cslo.slo.id, acc.label), data)


def burn_notice(cslo: CompiledSlo, st: SloState, t: br.Transition, at: datetime) -> Output:
    spec, rule = cslo.burn, t.rule
    long_rate, short_rate = br.rate(spec, *t.long), br.rate(spec, *t.short)
    state = "firing" if t.firing else "resolved"
    window, short_window = spec.window_text(rule.long_w), spec.window_text(rule.short_w)
    data = {
        **_base(cslo), "severity": rule.severity, "notification_severity": NOTIFY_SEVERITY[rule.severity],
        "state": state, "rule": rule.key, "factor": rule.factor, "rate": num(long_rate, 4), "window": window,
        "short_rate": num(short_rate, 4), "short_window": short_window,
        "dedup_key": f"{cslo.compiled.id}/{cslo.slo.id}/burn-rate/{rule.key}",
        # the SLO's `notify` targets, on the firing and the clearing output alike, so delivery
        # resolves (same dedup_key) wherever it triggered (DESIGN.md §12 "SLO alerts")
        "recipients": recipients(cslo),
        "summary": (f"{cslo.slo.service} {cslo.slo.id} burn rate {state}: {_fmt(long_rate)}x over {window}, "
                    f"{_fmt(short_rate)}x over {short_window} (threshold {rule.factor:g}x, {rule.severity})"),
        "explain": {
            "reason": ("both windows above" if t.firing else "a window at or below") + f" {rule.factor:g}x",
            "clause": rule.clause, "objective": cslo.slo.objective, "error_budget": num(spec.budget, 9),
            "long": {"good": num(t.long[0]), "total": num(t.long[1])},
            "short": {"good": num(t.short[0]), "total": num(t.short[1])}, "transition": t.count,
        },
    }
    rolling = budget(cslo, st)
    if rolling is not None:
        data["explain"]["rolling"] = rolling
    return output(cslo.compiled.source, OutputType.SLO_BURN_RATE, cslo.slo.service, at,
                      (cslo.slo.service, cslo.slo.id, rule.key, t.count), data)


def recipients(cslo: CompiledSlo) -> list[dict]:
    """The SLO's ``notify`` targets as notification recipients (name + the target's fields)."""
    targets = cslo.compiled.agreement.notification_targets
    return [{"name": name, **targets[name].model_dump(mode="json")} for name in cslo.slo.notify]


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"
