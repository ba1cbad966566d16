"""Counted time: SLA clocks accrue only inside a calendar's open hours.

Pure module: no I/O, never reads the wall clock. All instants are timezone-aware datetimes
(naive ones raise ValueError); results are UTC-aware. Internally instants are integer
microseconds since the Unix epoch in UTC, so all arithmetic is exact (no floats).

Calendars:

- :class:`AlwaysCalendar` (``kind: 24x7``): always open; a trivial fast path.
- :class:`WeeklyCalendar`: weekly local opening hours in an IANA zone, minus holidays
  (explicit dates and/or a country's public holidays from the ``holidays`` library, loaded
  lazily per year). A holiday closes the whole local day.
- :class:`ComplementCalendar`: open exactly when its base is closed, in the base's zone; a
  holiday of the base is a fully open day of the complement.

Daylight saving: each local date's open intervals are computed from local wall times in the
calendar's zone (``calendar_days.wall_to_utc_us``). A wall time that does not exist (inside a
spring-forward gap) maps to the first instant after the gap; an ambiguous one (fall-back) maps to
its first occurrence. So 08:00-18:00 is 10 real hours on any day, and 00:00-24:00 is 23 real hours
on the spring-forward day and 25 on the fall-back day.

Invariants (tested with hypothesis):

- ``counted(a, b) == counted(a, m) + counted(m, b)`` for ``a <= m <= b``; ``counted(a, b) <= b - a``.
- ``counted(s, add(s, d)) == d`` for every ``d >= 0``, and ``add(s, d)`` is the earliest such
  instant: it lies inside an open interval or at its end, never in closed time after it.
- ``counted`` of a calendar plus ``counted`` of its complement equals ``b - a``.
- ``add`` on a calendar with no open hours raises ValueError instead of looping. A calendar whose
  week has open hours never raises: holidays close at most the explicit dates plus the country's
  few public holidays, so the give-up bound grows with the number of explicit dates.

Each local date's intervals ("day") are cached per calendar, as are Monday-aligned week totals
used to jump over long amounts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from escalation.core.time.calendar_days import (
    DAY_US,
    EPOCH,
    FULL_DAY,
    ONE_US,
    UTC,
    DayPattern,
    HolidaySet,
    normalize_ranges,
    wall_to_utc_us,
)

__all__ = [
    "AlwaysCalendar", "Calendar", "ComplementCalendar", "WeeklyCalendar",
]

_ZERO = timedelta(0)
_ORD_1970 = date(1970, 1, 1).toordinal()
_GIVE_UP_DAYS = 3 * 366  # a calendar closed this long in a row is treated as never open

# One cached local date: (tile_start, tile_end, bounds, total). The tile is the UTC image of the
# whole local day [00:00, 24:00); bounds = (s0, e0, s1, e1, ...) are its open intervals.
_Day = tuple[int, int, tuple[int, ...], int]


def _us(t: datetime) -> int:
    """Aware datetime -> UTC microseconds since the epoch; naive -> ValueError."""
    tz = t.tzinfo
    if tz is not UTC and (tz is None or t.utcoffset() is None):  # the core's instants are UTC: skip the call
        raise ValueError(f"naive datetime {t.isoformat()} given; counted time needs timezone-aware instants")
    return (t - EPOCH) // ONE_US


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(0, 0, us)  # positional: keyword arguments cost twice the call


class Calendar(ABC):
    """When SLA time counts. See the module docstring for the contract."""

    name: str
    business_day: timedelta

    @property
    def weekly_open(self) -> timedelta:
        """Nominal open time of a week without holidays (zero: the calendar is never open)."""
        return self._pattern().week_total

    @abstractmethod
    def counted(self, start: datetime, end: datetime) -> timedelta:
        """Open time inside ``[start, end)``; zero if ``end <= start``."""

    @abstractmethod
    def add(self, start: datetime, amount: timedelta) -> datetime:
        """Earliest instant ``t >= start`` with ``counted(start, t) == amount`` (UTC-aware)."""

    @abstractmethod
    def is_open(self, t: datetime) -> bool:
        """Whether instant ``t`` lies inside open hours."""

    @abstractmethod
    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """UTC-aware, sorted, disjoint open intervals clipped to ``[start, end)``."""

    def _pattern(self) -> DayPattern:
        """Day pattern this calendar stands for (used to build complements)."""
        raise TypeError(f"calendar {self.name!r} ({type(self).__name__}) cannot be complemented")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class AlwaysCalendar(Calendar):
    """``kind: 24x7``: every instant counts. Kept trivial because it is the hot path."""

    def __init__(self, name: str = "always") -> None:
        self.name = name
        self.business_day = timedelta(hours=24)
        self.tz = UTC

    def counted(self, start: datetime, end: datetime) -> timedelta:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("naive datetime given; counted time needs timezone-aware instants")
        # Subtract via EPOCH: two datetimes sharing a tzinfo would otherwise subtract wall times.
        span = (end - EPOCH) - (start - EPOCH)
        return span if span > _ZERO else _ZERO

    def add(self, start: datetime, amount: timedelta) -> datetime:
        if start.tzinfo is None:
            raise ValueError("naive datetime given; counted time needs timezone-aware instants")
        # Convert first: aware + timedelta is wall-clock arithmetic in the operand's zone.
        base = start.astimezone(UTC)
        return base + amount if amount > _ZERO else base

    def is_open(self, t: datetime) -> bool:
        _us(t)
        return True

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        s, e = _us(start), _us(end)
        if e > s:
            yield _dt(s), _dt(e)

    def _pattern(self) -> DayPattern:
        return DayPattern(UTC, (FULL_DAY,) * 7, FULL_DAY, HolidaySet())


class _PatternCalendar(Calendar):
    """Shared engine of weekly calendars and complements: cached local days, exact integer walks."""

    def _setup(self, name: str, pattern: DayPattern) -> None:
        self.name = name
        self.tz = pattern.tz
        self._pat = pattern
        self.business_day = pattern.longest_day
        self._never_open = pattern.never_open
        # Each explicit holiday can close at most one week's open days of an otherwise open week.
        self._give_up_days = _GIVE_UP_DAYS + 7 * len(pattern.holidays.dates)
        self._days: dict[int, _Day] = {}
        self._weeks: dict[int, tuple[int, int]] = {}
        # Guess of the UTC offset, only to start the search for an instant's local date.
        self._guess_us = (datetime(2026, 1, 1, tzinfo=pattern.tz).utcoffset() or _ZERO) // ONE_US

    def _pattern(self) -> DayPattern:
        return self._pat

    # -- caches ---------------------------------------------------------------------------

    def _day(self, o: int) -> _Day:
        day = self._days.get(o)
        if day is None:
            day = self._days[o] = self._build_day(o)
        return day

    def _build_day(self, o: int) -> _Day:
        d, tz = date.fromordinal(o), self.tz
        start, end = wall_to_utc_us(d, 0, tz), wall_to_utc_us(d, DAY_US, tz)
        bounds: list[int] = []
        for s, e in self._pat.ranges_for(d):
            us_s = start if s == 0 else wall_to_utc_us(d, s, tz)
            us_e = end if e == DAY_US else wall_to_utc_us(d, e, tz)
            if us_e <= us_s:
                continue  # range swallowed by a DST gap
            if bounds and bounds[-1] == us_s:
                bounds[-1] = us_e  # ranges that touch once mapped to UTC: keep one interval
            else:
                bounds += (us_s, us_e)
        total = sum(bounds[i + 1] - bounds[i] for i in range(0, len(bounds), 2))
        return start, end, tuple(bounds), total

    def _week(self, monday: int) -> tuple[int, int]:
        """(tile end, open total) of the Monday-aligned week starting at ordinal ``monday``."""
        week = self._weeks.get(monday)
        if week is None:
            days = [self._day(o) for o in range(monday, monday + 7)]
            week = self._weeks[monday] = (days[-1][1], sum(d[3] for d in days))
        return week

    def _tile(self, u: int) -> tuple[int, _Day]:
        """(ordinal, day) of the local date whose tile contains ``u``."""
        o = (u + self._guess_us) // DAY_US + _ORD_1970
        day = self._day(o)
        while u < day[0]:
            o -= 1
            day = self._day(o)
        while u >= day[1]:
            o += 1
            day = self._day(o)
        return o, day

    # -- public API -----------------------------------------------------------------------

    def counted(self, start: datetime, end: datetime) -> timedelta:
        s, e = _us(start), _us(end)
        if e <= s:
            return _ZERO
        o, day = self._tile(s)
        acc = _clipped(day[2], s, e)
        o += 1
        days = self._days  # a cached day is read without a call to _day: this loop runs per day
        while True:
            if o % 7 == 1:  # Monday: whole weeks inside the span count in one step
                week_end, week_total = self._week(o)
                if week_end <= e:
                    acc += week_total
                    o += 7
                    continue
            tile_start, tile_end, bounds, total = days.get(o) or self._day(o)
            if tile_start >= e:
                break
            if tile_end > e:
                acc += _clipped(bounds, s, e)
                break
            acc += total
            o += 1
        return timedelta(0, 0, acc)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        s = _us(start)
        if amount <= _ZERO:
            return _dt(s)
        if self._never_open:
            raise ValueError(f"calendar {self.name!r} has no open hours")
        n = amount // ONE_US
        o, day = self._tile(s)
        hit, n = _consume(day[2], s, n)
        if hit is not None:
            return _dt(hit)
        o, idle = o + 1, 0
        days = self._days  # as in counted: one dict read per day, not a call
        while True:
            if o % 7 == 1:
                week_total = self._week(o)[1]
                if n > week_total:  # strictly: an exact hit must end inside the week
                    n -= week_total
                    idle, o = (idle + 7 if week_total == 0 else 0), o + 7
                    if idle > self._give_up_days:
                        raise ValueError(f"calendar {self.name!r} has no open hours (none for {idle} days)")
                    continue
            day = days.get(o) or self._day(o)
            total = day[3]
            if n <= total:
                return _dt(_consume(day[2], s, n)[0])
            n -= total
            idle, o = (idle + 1 if total == 0 else 0), o + 1

    def is_open(self, t: datetime) -> bool:
        u = _us(t)
        bounds = self._tile(u)[1][2]
        return any(bounds[i] <= u < bounds[i + 1] for i in range(0, len(bounds), 2))

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        s, e = _us(start), _us(end)
        if e <= s:
            return
        o, pending = self._tile(s)[0], None
        while (day := self._day(o))[0] < e:
            bounds = day[2]
            for i in range(0, len(bounds), 2):
                a, b = max(bounds[i], s), min(bounds[i + 1], e)
                if a >= b:
                    continue
                if pending and pending[1] == a:
                    pending = (pending[0], b)  # touching across midnight: one interval
                else:
                    if pending:
                        yield _dt(pending[0]), _dt(pending[1])
                    pending = (a, b)
            o += 1
        if pending:
            yield _dt(pending[0]), _dt(pending[1])


def _clipped(bounds: tuple[int, ...], s: int, e: int) -> int:
    """Open microseconds of ``bounds`` inside ``[s, e)``."""
    acc = 0
    for i in range(0, len(bounds), 2):
        a, b = bounds[i], bounds[i + 1]
        a, b = (a if a > s else s), (b if b < e else e)
        if b > a:
            acc += b - a
    return acc


def _consume(bounds: tuple[int, ...], s: int, n: int) -> tuple[int | None, int]:
    """Spend ``n > 0`` open microseconds of ``bounds`` from ``s`` on.

    Returns ``(t, 0)`` with ``t`` the earliest instant where ``n`` is reached, else ``(None, rest)``.
    """
    for i in range(0, len(bounds), 2):
        a, b = bounds[i], bounds[i + 1]
        if b <= s:
            continue
        if a < s:
            a = s
        if n <= b - a:
            return a + n, 0
        n -= b - a
    return None, n


class WeeklyCalendar(_PatternCalendar):
    """Weekly local opening hours in ``tz`` (weekday 0 = Monday; ``None`` end = 24:00) minus holidays."""

    def __init__(self, name: str, tz: ZoneInfo | str, hours: Mapping[int, list[tuple[time, time | None]]],
                 holiday_dates: frozenset[date] = frozenset(), holiday_country: str | None = None,
                 holiday_subdivision: str | None = None) -> None:
        if isinstance(tz, str):
            try:
                tz = ZoneInfo(tz)
            except (ValueError, ZoneInfoNotFoundError):
                raise ValueError(f"calendar {name!r}: unknown time zone {tz!r}") from None
        bad = [k for k in hours if k not in range(7)]
        if bad:
            raise ValueError(f"calendar {name!r}: weekday keys must be 0 (Monday) .. 6 (Sunday), got {bad}")
        weekly = tuple(normalize_ranges(wd, list(hours.get(wd, ()))) for wd in range(7))
        holidays = HolidaySet(frozenset(holiday_dates), holiday_country, holiday_subdivision)
        self._setup(name, DayPattern(tz, weekly, (), holidays))
        self.hours = {wd: list(r) for wd, r in hours.items()}
        self.holiday_dates, self.holiday_country = holidays.dates, holiday_country
        self.holiday_subdivision = holiday_subdivision


class ComplementCalendar(_PatternCalendar):
    """Open exactly when ``base`` is closed, in the base's time zone (base holidays: fully open)."""

    def __init__(self, name: str, base: Calendar) -> None:
        if not isinstance(base, Calendar):
            raise TypeError(f"calendar {name!r}: complement base must be a Calendar, got {base!r}")
        self.base = base
        self._setup(name, base._pattern().inverted())
