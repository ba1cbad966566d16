"""Duration strings of the agreement format.

Accepted forms (DESIGN.md §5):
- ``<n><unit>`` with unit ``s``, ``m``, ``h`` or ``d`` (``d`` = 24 hours of counted time);
- ``<n>bd``: n business days, resolved later against a calendar (one business day is the
  calendar's longest daily opening), so it is kept symbolic here;
- ISO 8601 durations (``PT4H``, ``P1DT2H``; a day is 24 hours), parsed by pydantic.

This module is the one parser of durations: the agreement format, the topic catalogue's
retentions (:func:`escalation.live.topics.parse_retention`) and command-line options all use it.

Invariant: every parsed duration is a non-negative, exact ``timedelta`` (or business days) of at
most ``MAX_DURATION`` (10 years; ``Nbd`` at most that many days), so deadline arithmetic on
plausible instants (before 2200) can never overflow ``datetime``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from pydantic import TypeAdapter

_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bd|s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ISO = TypeAdapter(timedelta)
MAX_DURATION = timedelta(days=3653)  # 10 years
_MAX_SECONDS = Decimal(MAX_DURATION.days * 86400)


@dataclass(frozen=True, slots=True)
class BusinessDays:
    """``Nbd``: a count of business days, converted to counted time per calendar."""

    days: Decimal

    def resolve(self, business_day: timedelta) -> timedelta:
        return business_day * int(self.days) if self.days == int(self.days) else _scale(business_day, self.days)


def _scale(base: timedelta, factor: Decimal) -> timedelta:
    micros = Decimal(base // timedelta(microseconds=1)) * factor
    return timedelta(microseconds=int(micros.to_integral_value()))


def parse_duration(text: str | int | float | timedelta) -> timedelta | BusinessDays:
    """Parse one duration; raise ValueError naming the text on anything else."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ValueError(f"duration {text!r} needs a unit (s, m, h, d, bd) or ISO 8601 form like PT4H")
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string, not {type(text).__name__}")
    match = _SHORT.match(text)
    if match:
        amount, unit = Decimal(match.group(1)), match.group(2)
        # Checked before building a timedelta: a huge amount would overflow it.
        if amount * (86400 if unit == "bd" else _UNIT_SECONDS[unit]) > _MAX_SECONDS:
            raise _too_long(text)
        if unit == "bd":
            return BusinessDays(amount)
        return _scale(timedelta(seconds=_UNIT_SECONDS[unit]), amount)
    if text.strip().upper().startswith("P"):
        try:
            value = _ISO.validate_python(text.strip())
        except Exception:  # pydantic's message is long; ours names the text
            raise ValueError(f"invalid ISO 8601 duration {text!r}") from None
        if value < timedelta(0):
            raise ValueError(f"duration {text!r} is negative")
        if value > MAX_DURATION:
            raise _too_long(text)
        return value
    raise ValueError(f"invalid duration {text!r}: use 15m, 4h, 2d, 5bd or ISO 8601 like PT4H")


def parse_wall_clock(text: str | timedelta) -> timedelta:
    """Parse a duration of wall-clock time (ack timeouts, retention, retry limits): any form of
    :func:`parse_duration` except business days, which only a calendar can turn into time."""
    value = parse_duration(text)
    if isinstance(value, BusinessDays):
        raise ValueError(f"{text!r} is wall-clock time: use s, m, h or d, not business days")
    return value


def _too_long(text: str) -> ValueError:
    return ValueError(f"duration {text!r} is longer than 10 years ({MAX_DURATION.days} days)")


def iso_duration(value: timedelta) -> str:
    """Format as ISO 8601 with hours as the largest unit (``PT26H``, ``PT7M30S``, ``PT0S``).

    Days are avoided on purpose: an ISO day is nominal, counted time is exact hours.
    """
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, frac = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or frac:
        out += f"{secs}.{frac:06d}".rstrip("0") + "S" if frac else f"{secs}S"
    return f"{sign}PT{out or '0S'}"
