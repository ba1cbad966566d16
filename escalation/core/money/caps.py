"""Caps: the period budget that limits penalties and credits (DESIGN.md §5 "Caps", §13).

A cap is a percent of a fee or a fixed amount per period. ``period: calendar_month`` counts what
was assessed in the month of the money; ``rolling_12_months`` what was assessed in the 12
calendar months ending with it. ``allocation: {REMEDY: PERCENT}`` gives a listed remedy at most
that share of the cap, counted over the same months; a remedy the allocation does not list is
limited by the cap alone.

Invariants:
- Granted = min(requested, what every cap has left, what every allocation has left for the
  remedy); never below zero; booked into the agreement's :class:`CapBudget` per period and
  per remedy.
- One budget per agreement: every cap of the agreement limits the sum of penalties and credits
  assessed in a period; what was already assessed reduces what is left. The live engine keeps
  it in the desk state keyed by agreement (the remedies topic key); replay holds it in memory.
- For caps without ``allocation`` or ``rolling_12_months`` the result (and the explain block)
  is exactly that of one budget per calendar month and the tightest cap.
- Period labels are ``YYYY-MM`` (agreement time zone), so month windows are label arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from escalation.core.codec import record
from escalation.core.money.amounts import ZERO, money


@record
@dataclass(slots=True)
class CapBudget:
    """What one agreement has assessed against its caps per period (period -> amount), and per
    remedy (period -> remedy -> amount: what cap allocations count; empty when none is used)."""

    assessed: dict[str, Decimal] = field(default_factory=dict)
    by_remedy: dict[str, dict[str, Decimal]] = field(default_factory=dict)



def months_back(label: str, count: int) -> list[str]:
    """The ``count`` month labels ending with ``label`` (oldest first)."""
    year, month = int(label[:4]), int(label[5:])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def window_of(cap, label: str) -> list[str]:
    return months_back(label, 12 if cap.period == "rolling_12_months" else 1)


def extended(compiled) -> bool:
    """Whether any cap uses allocation or a rolling period (then money explains every cap)."""
    return any(cap.allocation or cap.period != "calendar_month" for cap in compiled.agreement.caps)


def allocated(compiled) -> bool:
    """Whether any cap has an allocation (only then is money booked per remedy)."""
    return any(cap.allocation for cap in compiled.agreement.caps)


def used(budget: CapBudget, labels: list[str], remedy: str | None = None) -> Decimal:
    """What was assessed in ``labels`` (by ``remedy`` only, when given)."""
    if remedy is None:
        return sum((budget.assessed.get(p, ZERO) for p in labels), ZERO)
    return sum((budget.by_remedy.get(p, {}).get(remedy, ZERO) for p in labels), ZERO)


def cap_room(compiled, budget: CapBudget, label: str, remedy: str | None) -> tuple[Decimal | None, list[dict]]:
    """(what the caps leave for ``remedy`` in period ``label``, or None without caps; one
    explain entry per cap: clause, period, limit, months, used, allocation, left)."""
    room, lines = None, []
    for i, cap in enumerate(compiled.agreement.caps):
        limit, labels = limit_of(compiled, cap), window_of(cap, label)
        spent = used(budget, labels)
        left = max(limit - spent, ZERO)
        line = {"clause": f"caps[{i}]", "period": cap.period, "limit": str(limit),
                "months": [labels[0], labels[-1]], "used": str(spent)}
        share_pct = (cap.allocation or {}).get(remedy) if remedy is not None else None
        if share_pct is not None:
            share = money(limit * share_pct / 100)
            spent_r = used(budget, labels, remedy)
            left = min(left, max(share - spent_r, ZERO))
            line["allocation"] = {"remedy": remedy, "percent": str(share_pct), "share": str(share), "used": str(spent_r)}
        line["left"] = str(left)
        lines.append(line)
        room = left if room is None else min(room, left)
    return room, lines


def book(budget: CapBudget, label: str, remedy: str | None, amount: Decimal) -> None:
    budget.assessed[label] = budget.assessed.get(label, ZERO) + amount
    if remedy is not None and amount:
        per = budget.by_remedy.setdefault(label, {})
        per[remedy] = per.get(remedy, ZERO) + amount


def limit_of(compiled, cap) -> Decimal:
    """One cap's amount per period: ``max_amount``, or ``percent`` of the ``max_percent_of`` fee."""
    return money(compiled.fee(cap.max_percent_of) * cap.percent / 100) if cap.max_amount is None else money(cap.max_amount)


def cap_limit(compiled) -> Decimal | None:
    """The tightest cap per period, or None when the agreement has no caps."""
    limits = [limit_of(compiled, cap) for cap in compiled.agreement.caps]
    return min(limits) if limits else None


def cap_left(compiled, budget: CapBudget, period: str) -> Decimal | None:
    """What the caps leave in ``period`` for any remedy (None without caps)."""
    return cap_room(compiled, budget, period, None)[0]


def charge(compiled, budget: CapBudget, period: str, requested: Decimal,
           remedy: str | None = None) -> tuple[Decimal, bool, Decimal | None, list[dict] | None]:
    """Book ``requested`` against the caps: (amount granted, capped?, room left after, per-cap
    explain lines or None when no cap uses allocation or a rolling period)."""
    requested = money(requested)
    room, lines = cap_room(compiled, budget, period, remedy)
    granted = requested if room is None else min(requested, room)
    book(budget, period, remedy if allocated(compiled) else None, granted)
    left = None if room is None else room - granted
    return granted, granted < requested, left, lines if extended(compiled) else None
