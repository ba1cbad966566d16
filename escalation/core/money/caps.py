"""Caps: the period budgets that limit penalties and credits (DESIGN.md §5 "Caps", §13).

A cap is a percent of a fee or a fixed amount per period. ``period: calendar_month`` counts what
was assessed in the month of the money; ``rolling_12_months`` what was assessed in the 12
calendar months ending with it. ``allocation: {REMEDY: PERCENT}`` gives a listed remedy at most
that share of the cap, counted over the same months; a remedy the allocation does not list is
limited by the cap alone.

Invariants:
- Granted = min(requested, what every cap has left, what every allocation has left for the
  remedy); never below zero; booked into the ledger per period and per remedy.
- For caps without ``allocation`` or ``rolling_12_months`` the result (and the explain block)
  is exactly that of one budget per calendar month and the tightest cap.
- Period labels are ``YYYY-MM`` (agreement time zone), so month windows are label arithmetic.
"""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal("0.00")


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


def used(ledger, labels: list[str], remedy: str | None = None) -> Decimal:
    """What was assessed in ``labels`` (by ``remedy`` only, when given)."""
    if remedy is None:
        return sum((ledger.assessed.get(p, ZERO) for p in labels), ZERO)
    return sum((ledger.by_remedy.get(p, {}).get(remedy, ZERO) for p in labels), ZERO)


def cap_room(compiled, ledger, label: str, remedy: str | None, limit_of) -> tuple[Decimal | None, list[dict]]:
    """(what the caps leave for ``remedy`` in period ``label``, or None without caps; one
    explain entry per cap: clause, period, limit, months, used, allocation, left)."""
    room, lines = None, []
    for i, cap in enumerate(compiled.agreement.caps):
        limit, labels = limit_of(compiled, cap), window_of(cap, label)
        spent = used(ledger, labels)
        left = max(limit - spent, ZERO)
        line = {"clause": f"caps[{i}]", "period": cap.period, "limit": str(limit),
                "months": [labels[0], labels[-1]], "used": str(spent)}
        share_pct = (cap.allocation or {}).get(remedy) if remedy is not None else None
        if share_pct is not None:
            share = (limit * share_pct / 100).quantize(Decimal("0.01"))
            spent_r = used(ledger, labels, remedy)
            left = min(left, max(share - spent_r, ZERO))
            line["allocation"] = {"remedy": remedy, "percent": str(share_pct), "share": str(share), "used": str(spent_r)}
        line["left"] = str(left)
        lines.append(line)
        room = left if room is None else min(room, left)
    return room, lines


def book(ledger, label: str, remedy: str | None, amount: Decimal) -> None:
    ledger.assessed[label] = ledger.assessed.get(label, ZERO) + amount
    if remedy is not None and amount:
        per = ledger.by_remedy.setdefault(label, {})
        per[remedy] = per.get(remedy, ZERO) + amount
