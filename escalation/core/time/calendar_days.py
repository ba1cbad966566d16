"""Building blocks of counted time: weekly-hours parsing, day patterns, holidays, wall-to-UTC.

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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays as _holidays

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
DAY_US = 86_400_000_000

Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, non-touching (start_us, end_us) of one day

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_NAMES = {v: k for k, v in _WEEKDAYS.items()}
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


# ---------------------------------------------------------------- parsing "mon-fri: 08:00-18:00"


def parse_weekly_hours(spec: Mapping[str, str | list[str]]) -> dict[int, list[tuple[time, time | None]]]:
    """Parse ``{"mon-fri": "08:00-18:00", "sat": ["09:00-12:00", "13:00-15:00"]}``.

    Returns weekday (0 = Monday) -> sorted ranges; ``None`` as an end means 24:00. Only days
    that have hours appear. Raises ValueError naming the offending key or value.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"weekly hours must be a mapping like {{'mon-fri': '08:00-18:00'}}, got {spec!r}")
    per_day: dict[int, list[tuple[int, int, str]]] = {}
    for key, value in spec.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"hours for {key!r} must be 'HH:MM-HH:MM' or a list of such, got {value!r}")
        ranges = [_parse_range(v) for v in values]
        for day in _parse_days(key):
            per_day.setdefault(day, []).extend(ranges)
    result: dict[int, list[tuple[time, time | None]]] = {}
    for day in sorted(per_day):
        ranges = sorted(per_day[day])
        for (_, e1, t1), (s2, _, t2) in zip(ranges, ranges[1:]):
            if s2 < e1:
                raise ValueError(f"overlapping ranges on {_NAMES[day]}: {t1!r} and {t2!r}")
        if ranges:
            result[day] = [(_us_to_time(s), None if e == DAY_US else _us_to_time(e)) for s, e, _ in ranges]
    return result


def _parse_days(key: str) -> list[int]:
    if not isinstance(key, str):
        raise ValueError(f"weekday key must be a string like 'mon-fri', got {key!r}")
    if key.strip().lower() == "daily":
        return list(range(7))
    days: list[int] = []
    for part in key.split(","):
        names = [n.strip().lower() for n in part.split("-")]
        if len(names) > 2 or not all(names):
            raise ValueError(f"bad weekday spec {part.strip()!r} in {key!r} (expected e.g. 'mon-fri', 'sat', 'daily')")
        for name in names:
            if name not in _WEEKDAYS:
                raise ValueError(f"unknown weekday {name!r} in {key!r} (use mon, tue, wed, thu, fri, sat, sun)")
        first, last = _WEEKDAYS[names[0]], _WEEKDAYS[names[-1]]
        if last < first:
            raise ValueError(f"weekday range {part.strip()!r} in {key!r} wraps past Sunday; list both parts, e.g. 'fri-sun,mon'")
        days.extend(range(first, last + 1))
    return days


def _parse_range(text: str) -> tuple[int, int, str]:
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"bad time range {text!r} (expected 'HH:MM-HH:MM', e.g. '08:00-18:00')")
    start, end = (_parse_time(p.strip(), text) for p in parts)
    if start == DAY_US:
        raise ValueError(f"range {text!r} starts at 24:00; use 00:00")
    if end < start:
        raise ValueError(
            f"range {text!r} ends before it starts; overnight ranges are not supported, "
            "split it at midnight (e.g. '22:00-24:00' and '00:00-06:00' on the next day)")
    if end == start:
        raise ValueError(f"range {text!r} is empty")
    return start, end, text


def _parse_time(text: str, whole: str) -> int:
    m = _TIME_RE.match(text)
    h, mi, s = (int(g or 0) for g in m.groups()) if m else (99, 0, 0)
    if h > 24 or mi > 59 or s > 59 or (h == 24 and (mi or s)):
        raise ValueError(f"bad time {text!r} in {whole!r} (expected HH:MM between 00:00 and 24:00)")
    return ((h * 60 + mi) * 60 + s) * 1_000_000


def _us_to_time(us: int) -> time:
    s, micro = divmod(us, 1_000_000)
    return time(s // 3600, s // 60 % 60, s % 60, micro)


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
