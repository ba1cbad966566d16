"""Money amounts: the one rounding rule and the one text form (DESIGN.md §4).

Every amount the engine, its reports and its backtests show is a ``Decimal`` rounded half-up to
cents (``money``) and written as a two-place string (``money_text``): "12.50", never "12.5".
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal) -> Decimal:
    """``value`` rounded half-up to cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_text(value: Decimal) -> str:
    """``value`` as a two-place string, rounded half-up: ``money_text(Decimal("0.125")) == "0.13"``."""
    return str(money(value))


def percent_number(value: Decimal) -> int | float:
    """A percent as a JSON number: 10, 12.5."""
    return int(value) if value == value.to_integral_value() else float(value)
