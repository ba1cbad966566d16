"""Assessing money: ``penalty.assessed`` and ``credit.issued`` against the caps (DESIGN.md §5
"Per-breach penalties", "Credits").

Invariants:
- A penalty or credit is booked against its agreement's :class:`~escalation.core.money.caps.CapBudget`
  (``caps.charge``): the amount granted is what the caps leave, never below zero; a reduced
  amount is still emitted, with ``capped: true``.
- Amounts are ``Decimal`` rounded half-up to cents (``amounts.money``).
- Output ids depend only on what the money is for (``penalty_output_id``, ``credit_output_id``),
  so the desk can recognise a redelivered record before it is booked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from escalation.core.codec import record
from escalation.core.contract.compiled import CompiledAgreement
from escalation.core.money.amounts import money, percent_number
from escalation.core.money.caps import CapBudget, cap_limit, charge
from escalation.core.outputs import Direction, Output, OutputType, output, output_id


def assess_penalty(compiled: CompiledAgreement, budget: CapBudget, due) -> Output:
    """Turn a PenaltyDue into ``penalty.assessed``, reduced by the period's caps."""
    period = compiled.period_of(due.at)
    granted, capped, left, lines = charge(compiled, budget, period, due.amount, due.remedy)
    limit = cap_limit(compiled)
    data = {
        "agreement": due.agreement, "revision": due.revision, "remedy": due.remedy, "ticket": due.ticket,
        "clock": due.clock, "cycle": due.cycle, "priority": due.priority, "period": period,
        "amount": str(granted), "currency": compiled.agreement.currency, "capped": capped,
        "summary": f"{due.ticket} {due.clock} breach: penalty {granted} {compiled.agreement.currency}"
                   + (f" (capped from {money(due.amount)})" if capped else ""),
        "explain": {
            "reason": f"per-breach remedy {due.remedy} for a {due.priority} {due.clock} breach",
            "clause": f"remedies[{_remedy_index(compiled, due.remedy)}]",
            "requested": str(money(due.amount)), "cap_left": None if left is None else str(left),
            "cap_limit": None if limit is None else str(limit),
        },
    }
    explain_money(compiled, data["explain"], compiled.agreement.remedies[_remedy_index(compiled, due.remedy)], lines)
    data.update(direction_of(compiled))
    return output(due.source, OutputType.PENALTY_ASSESSED, due.ticket, due.at,
                      (due.ticket, due.clock, due.cycle, due.remedy), data)


def direction_of(compiled: CompiledAgreement) -> dict:
    """Who owes a supporting agreement's penalty (DESIGN.md §13): a vendor's (UnderpinningContract)
    is ``receivable`` (owed to the provider), an internal team's (OperationalLevelAgreement)
    ``payable`` and ``internal``. Customer agreements' penalties carry neither key (payable, as always)."""
    kind = compiled.agreement.kind
    if kind == "Agreement":
        return {}
    return {"direction": Direction.RECEIVABLE if kind == "UnderpinningContract" else Direction.PAYABLE, "internal": True}


def _remedy_index(compiled: CompiledAgreement, remedy_id: str) -> int:
    return next(i for i, r in enumerate(compiled.agreement.remedies) if r.id == remedy_id)


def explain_money(compiled: CompiledAgreement, explain: dict, remedy, lines: list[dict] | None) -> None:
    """Add a percentage penalty's basis and the per-cap arithmetic (only when used, so money of
    agreements without these keys explains itself as before)."""
    if getattr(remedy, "percent_of", None) is not None:
        explain.update(basis=remedy.percent_of, basis_amount=str(money(compiled.fee(remedy.percent_of))),
                       percent=str(remedy.percent))
    if lines is not None:
        explain["caps"] = lines


# --- credits (tiered_credit remedies, assessed at SLO period close) ------------------------------

@record
@dataclass(frozen=True, slots=True)
class CreditDue:
    """A tiered credit owed for a closed SLO period, before the period caps (the desk assesses it).

    ``remedy`` indexes the agreement's ``remedies``, ``tier`` that remedy's ``tiers``. Carried
    between the SLO side (keyed by service) and the money side (keyed by agreement) in live mode.
    """

    agreement: str
    revision: int
    slo: str
    remedy: int
    tier: int
    period: str
    attainment: float
    at: datetime



def credit_output_id(cslo, due: CreditDue) -> str:
    """The id :func:`assess_credit` gives the ``credit.issued`` of ``due``."""
    compiled = cslo.compiled
    remedy = compiled.agreement.remedies[due.remedy]
    return output_id(compiled.source, OutputType.CREDIT_ISSUED, compiled.id, remedy.id, cslo.id, due.period)


def assess_credit(cslo, budget: CapBudget, due: CreditDue) -> Output:
    """``credit.issued`` for one tiered-credit remedy of a closed period, reduced by the period's caps.

    Shares the per-agreement, per-period budget of ``charge`` with per-breach penalties: penalties
    are booked at their breach instants during the period, the credit at its close, so the credit
    gets what the penalties left.
    """
    compiled = cslo.compiled
    index, remedy = due.remedy, compiled.agreement.remedies[due.remedy]
    tier_index, tier = due.tier, remedy.tiers[due.tier]
    attainment, label = due.attainment, due.period
    basis = compiled.fee(remedy.basis)
    requested = money(basis * tier.credit_percent / 100)
    granted, capped, left, lines = charge(compiled, budget, label, requested, remedy.id)
    currency, limit = compiled.agreement.currency, cap_limit(compiled)
    data = {
        "agreement": compiled.id, "revision": compiled.revision, "remedy": remedy.id, "slo": cslo.id,
        "service": cslo.slo.service, "period": label, "attainment": attainment,
        "credit_percent": percent_number(tier.credit_percent), "amount": str(granted), "currency": currency,
        "capped": capped,
        "summary": f"{cslo.id} {label} at {attainment:g}%: credit {granted} {currency}"
                   + (f" (capped from {requested})" if capped else ""),
        "explain": {
            "reason": f"attainment {attainment:g}% is below {tier.below:g}%: {tier.credit_percent}% of {remedy.basis}",
            "clause": f"remedies[{index}].tiers[{tier_index}]", "objective": cslo.slo.objective,
            "basis": remedy.basis, "basis_amount": str(money(basis)), "requested": str(requested),
            "cap_left": None if left is None else str(left), "cap_limit": None if limit is None else str(limit),
        },
    }
    explain_money(compiled, data["explain"], remedy, lines)
    return output(compiled.source, OutputType.CREDIT_ISSUED, compiled.id, due.at, (remedy.id, cslo.id, label), data)


def penalty_output_id(due) -> str:
    """The id :func:`assess_penalty` gives the ``penalty.assessed`` of a ``PenaltyDue``."""
    return output_id(due.source, OutputType.PENALTY_ASSESSED, due.ticket, due.ticket, due.clock, due.cycle, due.remedy)
