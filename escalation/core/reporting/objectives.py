"""Ticket objectives (DESIGN.md §13): "95 % of P2 incidents resolved within target per month".

Counting (partition side, ``report.Reports.record``): a clock cycle counts in the period where it
is decided: met at the ``sla.met`` of its first stop (``tally``), missed at its ``sla.breached``.
A later stop of the same cycle (a reopen with ``resume``) is not counted again; a breach after
such a reopen counts as missed (that work missed its target). Figures are ``[met, missed]`` per
objective id, summed over every source by the desk (``report.merge_figures``).

Verdicts (desk side, at the reporting period close, agreement time zone, same grace as SLOs):
``objective.attainment`` (``met, missed, attainment = 100 * met / (met + missed)``, rounded to 6
places) or, with fewer than ``min_cycles`` decided cycles, ``objective.no_verdict``; then one
``credit.issued`` per ``tiered_credit`` naming the objective (tiers as for SLOs; caps apply).
Outputs carry the period's end as ``time`` and ids from (objective, period) / (remedy, period).
"""

from __future__ import annotations

from datetime import datetime

from escalation.core.contract.compiled import CompiledAgreement
from escalation.core.money.amounts import money, percent_number
from escalation.core.money.assessment import explain_money
from escalation.core.money.caps import CapBudget, cap_limit, charge
from escalation.core.outputs import (
    VERDICT_TYPES,
    Output,
    OutputType,
    output,
    output_id,
    utc,
)
from escalation.core.services.slo import tier_for
from escalation.core.time.periods import to_dt


def _matches(objective, d: dict) -> bool:
    return (d.get("clock") == objective.clock and d.get("priority") in objective.priority
            and (objective.service is None or d.get("service") == objective.service))


def _first_stop(out: Output) -> bool:
    """Whether an ``sla.met`` is its cycle's first stop (its id is that of stop number 1)."""
    d = out.data
    return out.id == output_id(out.source, OutputType.SLA_MET, out.subject, d["clock"], d["cycle"], "met", 1)


def tally(compiled: CompiledAgreement, fig: dict, out: Output) -> None:
    """Count one ``sla.met``/``sla.breached`` into the objectives it decides a cycle of."""
    if out.type not in VERDICT_TYPES or not compiled.agreement.objectives:
        return
    if out.type is OutputType.SLA_MET and not _first_stop(out):
        return
    for o in compiled.agreement.objectives:
        if _matches(o, out.data):
            counts = fig.setdefault("objectives", {}).setdefault(o.id, [0, 0])
            counts[0 if out.type is OutputType.SLA_MET else 1] += 1


def merge(parts: list[dict]) -> dict:
    """``[met, missed]`` per objective over every source's figures."""
    out: dict[str, list[int]] = {}
    for part in parts:
        for name, (met, missed) in part.get("objectives", {}).items():
            counts = out.setdefault(name, [0, 0])
            counts[0] += met
            counts[1] += missed
    return out


def attainment(met: int, missed: int) -> float | None:
    decided = met + missed
    return None if decided == 0 else round(100.0 * met / decided, 6)


def verdicts(compiled: CompiledAgreement, label: str, fig: dict) -> dict[str, float | None]:
    """Objective id -> attainment of the period, None for no verdict (fewer than min_cycles)."""
    counts = fig.get("objectives", {})
    out = {}
    for o in compiled.agreement.objectives:
        met, missed = counts.get(o.id, [0, 0])
        out[o.id] = attainment(met, missed) if met + missed >= o.min_cycles else None
    return out


def verdict_outputs(compiled: CompiledAgreement, label: str, fig: dict, at: datetime) -> list[Output]:
    """``objective.attainment`` / ``objective.no_verdict`` for every objective, in clause order."""
    counts, values, out = fig.get("objectives", {}), verdicts(compiled, label, fig), []
    for i, o in enumerate(compiled.agreement.objectives):
        met, missed = counts.get(o.id, [0, 0])
        data = {"agreement": compiled.id, "revision": compiled.revision, "objective": o.id, "clock": o.clock,
                "priority": list(o.priority), "service": o.service, "period": label,
                "period_start": utc(to_dt(fig["start_us"])), "period_end": utc(to_dt(fig["end_us"])),
                "met": met, "missed": missed, "decided": met + missed, "at_least": o.at_least}
        value = values[o.id]
        if value is None:
            kind = OutputType.OBJECTIVE_NO_VERDICT
            data.update(min_cycles=o.min_cycles,
                        summary=f"{o.id} {label}: no verdict ({met + missed} decided cycles, fewer than {o.min_cycles})")
            reason = f"fewer than min_cycles {o.min_cycles} decided cycles"
        else:
            kind, achieved = OutputType.OBJECTIVE_ATTAINMENT, value >= o.at_least
            data.update(attainment=value, achieved=achieved,
                        summary=f"{o.id} {label}: {value:g}% met ({met} of {met + missed}), "
                                f"{'achieved' if achieved else 'missed'} (at least {o.at_least:g}%)")
            reason = "period closed"
        data["explain"] = {"reason": reason, "clause": f"objectives[{i}]",
                           "formula": "100 * met / (met + missed) over the cycles decided in the period"}
        out.append(output(compiled.source, kind, compiled.id, at, (o.id, label), data))
    return out


def credit_outputs(compiled: CompiledAgreement, budget: CapBudget, label: str, values: dict, at: datetime) -> list[Output]:
    """``credit.issued`` for each tiered credit on an objective with a verdict below a tier."""
    out = []
    for index, remedy in enumerate(compiled.agreement.remedies):
        value = values.get(getattr(remedy, "objective", None))
        tier = None if value is None else tier_for(remedy, value)
        if tier is not None:
            out.append(_credit(compiled, budget, index, remedy, list(remedy.tiers).index(tier), label, value, at))
    return out


def _credit(compiled: CompiledAgreement, budget: CapBudget, index: int, remedy, tier_index: int, label: str, value: float,
            at: datetime) -> Output:
    tier, basis = remedy.tiers[tier_index], compiled.fee(remedy.basis)
    requested = money(basis * tier.credit_percent / 100)
    granted, capped, left, lines = charge(compiled, budget, label, requested, remedy.id)
    currency = compiled.agreement.currency
    objective = next(o for o in compiled.agreement.objectives if o.id == remedy.objective)
    data = {
        "agreement": compiled.id, "revision": compiled.revision, "remedy": remedy.id, "objective": remedy.objective,
        "period": label, "attainment": value, "credit_percent": percent_number(tier.credit_percent),
        "amount": str(granted), "currency": currency, "capped": capped,
        "summary": f"{remedy.objective} {label} at {value:g}%: credit {granted} {currency}"
                   + (f" (capped from {requested})" if capped else ""),
        "explain": {
            "reason": f"attainment {value:g}% is below {tier.below:g}%: {tier.credit_percent}% of {remedy.basis}",
            "clause": f"remedies[{index}].tiers[{tier_index}]", "at_least": objective.at_least,
            "basis": remedy.basis, "basis_amount": str(money(basis)), "requested": str(requested),
            "cap_left": None if left is None else str(left),
            "cap_limit": None if (limit := cap_limit(compiled)) is None else str(limit),
        },
    }
    explain_money(compiled, data["explain"], remedy, lines)
    return output(compiled.source, OutputType.CREDIT_ISSUED, compiled.id, at, (remedy.id, remedy.objective, label), data)
