"""Building blocks of counted time: day patterns, holidays, wall-to-UTC (the agreement format's
weekly hours are parsed by :mod:`escalation.agreement.weekly_hours`).

Helper module of :mod:`escalation.core.time.calendar` (pure: no I/O, never reads the wall clock).

Times of day are kept as integer microseconds since local midnight (``0`` .. ``DAY_US``, where
``DAY_US`` stands for 24:00) so that everything downstream is exact integer arithmetic.

Local wall time to UTC (:func:`wall_to_utc_us`): a wall time that exists once maps to its instant;
an ambiguous one (inside a fall-back repeat) maps to its FIRST occurrence; one that does not exist
(inside a spring-forward gap) maps to the FIRST INSTANT AFTER THE GAP. This mapping is monotone
non-decreasing in wall time, so the images of consecutive local days tile the UTC time line with
neither gaps nor overlaps, which is what makes a calendar and its complement partition time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays as _holidays

from escalation.agreement.weekly_hours import DAY_US, WEEKDAYS

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)

Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, non-touching (start_us, end_us) of one day

_NAMES = {v: k for k, v in WEEKDAYS.items()}


def time_to_us(t: time | None, *, end: bool) -> int:
    """Microseconds since midnight; ``None`` (only allowed as an end) means 24:00."""
    if t is None and end:
        return DAY_US
    if not isinstance(t, time) or t.tzinfo is not None:
        raise ValueError(f"opening hours must be naive datetime.time values (or None for 24:00), got {t!r}")
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


# ---------------------------------------------------------------- day patterns


def normalize_ranges(day: int, ranges: list[tuple[time, time | None]]) -> Ranges:
    """Validate one weekday's ranges and merge touching ones (08-12 + 12-17 -> 08-17)."""
    spans = sorted((time_to_us(s, end=False), time_to_us(e, end=True)) for s, e in ranges)
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if e <= s:
            raise ValueError(f"range on {_NAMES.get(day, day)} ends before it starts (overnight ranges are not supported)")
        if merged and s < merged[-1][1]:
            raise ValueError(f"overlapping ranges on {_NAMES.get(day, day)}")
        if merged and s == merged[-1][1]:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return tuple(merged)


def invert_ranges(ranges: Ranges) -> Ranges:
    """The closed parts of a day, as ranges."""
    out, cursor = [], 0
    for s, e in ranges:
        if s > cursor:
            out.append((cursor, s))
        cursor = e
    if cursor < DAY_US:
        out.append((cursor, DAY_US))
    return tuple(out)


FULL_DAY: Ranges = ((0, DAY_US),)


@dataclass(frozen=True)
class DayPattern:
    """What a calendar opens on each local date: weekly ranges, or ``on_holiday`` on holidays."""

    tz: ZoneInfo | timezone
    weekly: tuple[Ranges, ...]  # index = weekday, 0 = Monday
    on_holiday: Ranges
    holidays: HolidaySet

    def ranges_for(self, d: date) -> Ranges:
        return self.on_holiday if self.holidays.contains(d) else self.weekly[d.weekday()]

    def inverted(self) -> DayPattern:
        return DayPattern(self.tz, tuple(invert_ranges(r) for r in self.weekly),
                          invert_ranges(self.on_holiday), self.holidays)

    @property
    def longest_day(self) -> timedelta:
        return timedelta(microseconds=max(sum(e - s for s, e in r) for r in self.weekly))

    @property
    def week_total(self) -> timedelta:
        """Open wall time of one week without holidays (DST ignored: nominal hours)."""
        return timedelta(microseconds=sum(e - s for r in self.weekly for s, e in r))

    @property
    def never_open(self) -> bool:
        return not any(self.weekly) and not (self.on_holiday and self.holidays)


# ---------------------------------------------------------------- holidays


class HolidaySet:
    """Explicit dates plus, optionally, a country's public holidays (loaded lazily per year)."""

    def __init__(self, dates: frozenset[date] = frozenset(), country: str | None = None,
                 subdivision: str | None = None) -> None:
        if subdivision is not None and country is None:
            raise ValueError(f"holiday subdivision {subdivision!r} given without a country")
        if country is not None:
            try:
                _holidays.country_holidays(country, subdiv=subdivision)
            except (NotImplementedError, KeyError, ValueError) as exc:
                where = f"{country!r}" + (f" / subdivision {subdivision!r}" if subdivision else "")
                raise ValueError(f"unknown holiday country/subdivision {where}: {exc}") from None
        self.dates = frozenset(dates)
        self.country, self.subdivision = country, subdivision

    def __bool__(self) -> bool:
        return bool(self.dates) or self.country is not None

    def contains(self, d: date) -> bool:
        if d in self.dates:
            return True
        return self.country is not None and d in _country_year(self.country, self.subdivision, d.year)


@functools.lru_cache(maxsize=256)
def _country_year(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # Shared by every calendar: agreements reuse the same few countries and years.
    return frozenset(_holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


# ---------------------------------------------------------------- wall time -> UTC


def wall_to_utc_us(d: date, offset_us: int, tz: ZoneInfo | timezone) -> int:
    """UTC microseconds since the epoch of local wall time ``d + offset_us`` (see module doc)."""
    naive = datetime.combine(d, time()) + timedelta(microseconds=offset_us)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return (first - EPOCH) // ONE_US  # exists (fold=0 is the first occurrence if ambiguous)
    # Inside a gap: the transition instant T is the smallest u whose wall time is >= naive;
    # both fold interpretations bracket it.
    other = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = sorted(((first - EPOCH) // ONE_US, (other - EPOCH) // ONE_US))
    while lo < hi:
        mid = (lo + hi) // 2
        if (EPOCH + timedelta(microseconds=mid)).astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid + 1
    return lo
