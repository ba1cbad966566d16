"""The value types of the agreement format (DESIGN.md §5, §10): durations, time zones, money,
percentages, plausible dates, and the frozen base model every clause builds on.

Invariant: whatever validates also runs: durations at most 10 years (positive ones longer than
zero), dates in [1970-01-01, 2200-01-01), money in (0, 10^12) with at most 6 decimal places,
percentages in [0, 100], fractions in (0, 1], no NaN or infinity anywhere.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from escalation.agreement.durations import (
    BusinessDays,
    parse_duration,
    parse_wall_clock,
)

# The plausible range of DESIGN.md §10 (event times obey the same bounds).
FIRST_DATE, END_DATE = date(1970, 1, 1), date(2200, 1, 1)
MAX_MONEY = Decimal(10) ** 12


class Frozen(BaseModel):
    """A clause: frozen, and unknown keys are errors (a typo never becomes a silently ignored clause)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def check_duration(text: str) -> str:
    parse_duration(text)
    return text


def check_positive(text: str) -> str:
    value = parse_duration(text)
    empty = value.days <= 0 if isinstance(value, BusinessDays) else value <= timedelta(0)
    if empty:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return text


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_timezone(name: str) -> str:
    # Membership, not ZoneInfo(name): "Europe" is a directory of the database and raises OSError.
    if name not in _zones():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


def check_date(value: date) -> date:
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DATE <= day < END_DATE:
        raise ValueError(f"date {value.isoformat()} is outside the plausible range [{FIRST_DATE}, {END_DATE})")
    return value


Duration = Annotated[
    str,
    AfterValidator(check_duration),
    Field(description="15m, 4h, 2d (48h counted), 5bd (business days) or ISO 8601 (PT4H)"),
]
PositiveDuration = Annotated[Duration, AfterValidator(check_positive)]
TimeZone = Annotated[str, AfterValidator(_check_timezone), Field(description="IANA time zone")]
Money = Annotated[Decimal, Field(gt=0, lt=MAX_MONEY, decimal_places=6, allow_inf_nan=False,
                                 description="decimal amount below 10^12, e.g. \"500.00\"")]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=6, allow_inf_nan=False)]
PlausibleDate = Annotated[date, AfterValidator(check_date)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Severity = Literal["critical", "error", "warning", "info"]


def _check_wall_clock(text: str | None) -> str | None:
    """Wall-clock durations (ack timeouts) are not counted in a calendar: no business days."""
    if text is not None:
        parse_wall_clock(text)
    return text


WallClockDuration = Annotated[PositiveDuration, AfterValidator(_check_wall_clock),
                              Field(description="wall-clock time: 10m, 1h, 1d or ISO 8601 (PT10M); no business days")]
