"""Maintenance windows: RFC 5545 recurrences whose time is removed from SLO good and total.

Pure module (python-dateutil ``rrulestr``; no I/O, no wall clock).

Rules:
- The rrule is read in local wall time of the window's ``timezone`` (default: the agreement's).
  Its ``dtstart`` is the window's ``dtstart`` or, by default, the agreement's validity start at
  local midnight (2000-01-01 when the agreement has no validity). A ``DTSTART`` inside the rule
  text wins; any ``TZID`` in the text is ignored (the window's zone applies).
- Each occurrence starts at its local wall time and lasts ``duration`` of real (elapsed) time.
  A local start that does not exist (inside a spring-forward gap, e.g. Sunday 02:00 on the last
  Sunday of March in Europe/Berlin) is shifted to the first instant after the gap (03:00 CEST =
  01:00Z); an ambiguous one (fall-back) takes its first occurrence. Same rule as calendars.
- Occurrences of all windows excluding one SLO are merged into sorted, disjoint intervals.

Occurrences are computed lazily per (set of windows, period) and cached on the compiled
agreement's ``Maintenance`` object; the cache keeps the most recent entries only (``_CACHE_PERIODS``).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from escalation.agreement.durations import BusinessDays, parse_duration
from escalation.agreement.models import Agreement
from escalation.core.time.calendar_days import wall_to_utc_us
from escalation.core.time.periods import Period, to_dt

_CACHE_PERIODS = 64
_DEFAULT_DTSTART = datetime(2000, 1, 1)
Intervals = tuple[int, ...]  # flat (a0, b0, a1, b1, ...) in UTC microseconds, sorted, disjoint


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    rule: object              # dateutil rrule or rruleset, naive local wall times
    duration_us: int
    tz: ZoneInfo
    excluded_from: frozenset[str]


def compile_windows(agreement: Agreement) -> tuple[Window, ...]:
    default_start = (datetime.combine(agreement.validity.start, time()) if agreement.validity
                     else _DEFAULT_DTSTART)
    out = []
    for w in agreement.maintenance_windows:
        start = w.dtstart if w.dtstart is not None else default_start
        if not isinstance(start, datetime):
            start = datetime.combine(start, time())
        tz = ZoneInfo(w.timezone or agreement.timezone)
        if start.tzinfo is not None:
            start = start.astimezone(tz).replace(tzinfo=None)
        duration = parse_duration(w.duration)
        if isinstance(duration, BusinessDays):
            duration = duration.resolve(timedelta(hours=24))
        rule = rrulestr(w.rrule, dtstart=start, ignoretz=True)
        out.append(Window(w.id, rule, duration // timedelta(microseconds=1), tz, frozenset(w.excluded_from)))
    return tuple(out)


def _local_naive(us: int, tz: ZoneInfo) -> datetime:
    return to_dt(us).astimezone(tz).replace(tzinfo=None)


def occurrences(window: Window, start_us: int, end_us: int) -> list[tuple[int, int]]:
    """Occurrences of ``window`` overlapping ``[start_us, end_us)``, clipped to it."""
    lo = _local_naive(start_us - window.duration_us, window.tz) - timedelta(days=1)
    hi = _local_naive(end_us, window.tz) + timedelta(days=1)
    out = []
    for local in window.rule.between(lo, hi, inc=True):
        offset = (local - datetime.combine(local.date(), time())) // timedelta(microseconds=1)
        a = wall_to_utc_us(local.date(), offset, window.tz)
        b = a + window.duration_us
        if b > start_us and a < end_us:
            out.append((max(a, start_us), min(b, end_us)))
    return out


def merge(pieces: list[tuple[int, int]]) -> Intervals:
    flat: list[int] = []
    for a, b in sorted(pieces):
        if flat and a <= flat[-1]:
            flat[-1] = max(flat[-1], b)
        else:
            flat += (a, b)
    return tuple(flat)


class Maintenance:
    """The windows of one agreement revision, with per-(SLO, period) exclusion caches."""

    def __init__(self, agreement: Agreement):
        self.windows = compile_windows(agreement)
        self._for: dict[str, tuple[int, ...]] = {}   # SLO id -> indexes of the windows excluding it
        for i, window in enumerate(self.windows):
            for slo_id in window.excluded_from:
                self._for[slo_id] = self._for.get(slo_id, ()) + (i,)
        self._cache: dict[tuple[tuple[int, ...], str], Intervals] = {}

    def excludes(self, slo_id: str) -> bool:
        return slo_id in self._for

    def excluded(self, slo_id: str, period: Period) -> Intervals:
        """Merged maintenance intervals excluding ``slo_id`` inside ``period``.

        Cached per (set of windows, period): SLOs excluded by the same windows share one entry.
        """
        key = (self._for.get(slo_id, ()), period.label)
        hit = self._cache.get(key)
        if hit is None:
            pieces = [p for i in key[0] for p in occurrences(self.windows[i], period.start_us, period.end_us)]
            if len(self._cache) >= _CACHE_PERIODS:
                self._cache.pop(next(iter(self._cache)))
            hit = self._cache[key] = merge(pieces)
        return hit


def subtract(a: int, b: int, excluded: Intervals) -> list[tuple[int, int]]:
    """``[a, b)`` minus the excluded intervals, as sorted pieces."""
    if not excluded:
        return [(a, b)]
    i = bisect_right(excluded, a)
    i -= i % 2  # start of the interval that may contain a
    out, cursor = [], a
    while i < len(excluded) and excluded[i] < b:
        x, y = excluded[i], excluded[i + 1]
        if x > cursor:
            out.append((cursor, x))
        cursor = max(cursor, y)
        i += 2
    if cursor < b:
        out.append((cursor, b))
    return out


def local_date(us: int, tz: ZoneInfo) -> date:
    return to_dt(us).astimezone(tz).date()
