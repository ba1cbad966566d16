"""Money: per-breach penalties and period caps (DESIGN.md §5 "Per-breach penalties", "Credits").

Invariants:
- One budget per agreement and period: every cap of the agreement limits the sum of penalties and
  credits assessed in that period; what was already assessed reduces what is left.
- Amounts are ``Decimal`` rounded half-up to cents; an amount is never reduced below zero, and a
  reduced amount is still emitted, with ``capped: true``.
- The ledger is keyed by agreement id, so in the live engine it lives in its own table keyed by
  agreement (the remedies topic key); replay holds the same records in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from escalation.core.contract.compiled import CompiledAgreement
from escalation.core.money import caps
from escalation.core.outputs import cloudevent, output_id

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class Ledger:
    """What one agreement has assessed per period (period -> amount), and per remedy
    (period -> remedy -> amount: what cap allocations count; empty when none is used)."""

    assessed: dict[str, Decimal] = field(default_factory=dict)
    by_remedy: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict = {"assessed": {k: str(v) for k, v in self.assessed.items()}}
        if self.by_remedy:
            out["by_remedy"] = {p: {r: str(v) for r, v in per.items()} for p, per in self.by_remedy.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Ledger":
        by_remedy = {p: {r: Decimal(v) for r, v in per.items()} for p, per in d.get("by_remedy", {}).items()}
        return cls({k: Decimal(v) for k, v in d["assessed"].items()}, by_remedy)


def limit_of(compiled: CompiledAgreement, cap) -> Decimal:
    """One cap's amount per period: ``max_amount``, or ``percent`` of the ``max_percent_of`` fee."""
    return money(compiled.fee(cap.max_percent_of) * cap.percent / 100) if cap.max_amount is None else money(cap.max_amount)


def cap_limit(compiled: CompiledAgreement) -> Decimal | None:
    """The tightest cap per period, or None when the agreement has no caps."""
    limits = [limit_of(compiled, cap) for cap in compiled.agreement.caps]
    return min(limits) if limits else None


def cap_left(compiled: CompiledAgreement, ledger: Ledger, period: str) -> Decimal | None:
    """What the caps leave in ``period`` for any remedy (None without caps)."""
    return caps.cap_room(compiled, ledger, period, None, limit_of)[0]


def charge(compiled: CompiledAgreement, ledger: Ledger, period: str, requested: Decimal,
           remedy: str | None = None) -> tuple[Decimal, bool, Decimal | None, list[dict] | None]:
    """Book ``requested`` against the caps (``caps.py``): (amount granted, capped?, room left
    after, per-cap explain lines or None when no cap uses allocation or a rolling period)."""
    requested = money(requested)
    room, lines = caps.cap_room(compiled, ledger, period, remedy, limit_of)
    granted = requested if room is None else min(requested, room)
    caps.book(ledger, period, remedy if caps.allocated(compiled) else None, granted)
    left = None if room is None else room - granted
    return granted, granted < requested, left, lines if caps.extended(compiled) else None


def assess_penalty(compiled: CompiledAgreement, ledger: Ledger, due) -> dict:
    """Turn a PenaltyDue into ``penalty.assessed``, reduced by the period's caps."""
    period = compiled.period_of(due.at)
    granted, capped, left, lines = charge(compiled, ledger, period, due.amount, due.remedy)
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
    return cloudevent(due.source, "penalty.assessed", due.ticket, due.at,
                      (due.ticket, due.clock, due.cycle, due.remedy), data)


def direction_of(compiled: CompiledAgreement) -> dict:
    """Who owes a supporting agreement's penalty (DESIGN.md §13): a vendor's (UnderpinningContract)
    is ``receivable`` (owed to the provider), an internal team's (OperationalLevelAgreement)
    ``payable`` and ``internal``. Customer agreements' penalties carry neither key (payable, as always)."""
    kind = compiled.agreement.kind
    if kind == "Agreement":
        return {}
    return {"direction": "receivable" if kind == "UnderpinningContract" else "payable", "internal": True}


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

def percent_number(value: Decimal) -> int | float:
    """A percent as a JSON number: 10, 12.5."""
    return int(value) if value == value.to_integral_value() else float(value)


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

    def to_dict(self) -> dict:
        return {"agreement": self.agreement, "revision": self.revision, "slo": self.slo, "remedy": self.remedy,
                "tier": self.tier, "period": self.period, "attainment": self.attainment, "at": self.at.isoformat()}

    @classmethod
    def from_dict(cls, d: dict) -> "CreditDue":
        return cls(d["agreement"], d["revision"], d["slo"], d["remedy"], d["tier"], d["period"], d["attainment"],
                   datetime.fromisoformat(d["at"]))


def credit_output_id(cslo, due: CreditDue) -> str:
    """The id :func:`assess_credit` gives the ``credit.issued`` of ``due``."""
    compiled = cslo.compiled
    remedy = compiled.agreement.remedies[due.remedy]
    return output_id(compiled.source, "credit.issued", compiled.id, remedy.id, cslo.id, due.period)


def assess_credit(cslo, ledger: Ledger, due: CreditDue) -> dict:
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
    granted, capped, left, lines = charge(compiled, ledger, label, requested, remedy.id)
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
    return cloudevent(compiled.source, "credit.issued", compiled.id, due.at, (remedy.id, cslo.id, label), data)


def penalty_output_id(due) -> str:
    """The id :func:`assess_penalty` gives the ``penalty.assessed`` of a ``PenaltyDue``."""
    return output_id(due.source, "penalty.assessed", due.ticket, due.ticket, due.clock, due.cycle, due.remedy)
