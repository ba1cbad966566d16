"""Maintenance windows on clocks (DESIGN.md §13): a listed clock pauses during the window.

A window whose ``excluded_from`` names a clock pauses that clock, for tickets of the window's
``services`` (default: every service), during each occurrence. The pause is folded into the
clock's calendar: :class:`MaintainedCalendar` is the target's calendar minus the windows'
occurrences, so counted time, deadlines (``add``) and recomputes all see it, and deadlines move
by exactly the counted time the window removed.

Invariants:
- ``counted(a, b) == base.counted(a, b) - base.counted(window time inside [a, b))``;
  ``counted(s, add(s, d)) == d`` and ``add`` is the earliest such instant (as for calendars).
- Occurrences are those of ``maintenance.occurrences`` (same rrule reading and DST rules as the
  SLO exclusions), merged when they overlap.
- Pure and deterministic; rule variants are memoised per (target clause, windows applying).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta

from escalation.agreement.models import Agreement
from escalation.core.time.calendar import Calendar
from escalation.core.time.maintenance import (
    Window,
    compile_windows,
    merge,
    occurrences,
    subtract,
)
from escalation.core.time.periods import to_dt, to_us

_CHUNK_US = 32 * 24 * 3600 * 10**6       # look ahead for occurrences a month at a time
_MAX_CHUNKS = 12 * 12                     # ~12 years: beyond any feasible target (10 years)


class MaintainedCalendar(Calendar):
    """``base`` with the occurrences of ``windows`` closed."""

    def __init__(self, base: Calendar, windows: tuple[Window, ...]) -> None:
        self.base, self.windows = base, windows
        self.name, self.business_day = base.name, base.business_day

    @property
    def weekly_open(self) -> timedelta:
        return self.base.weekly_open

    def gaps(self, s: int, e: int) -> tuple[int, ...]:
        """Merged window time inside ``[s, e)`` (UTC microseconds, flat pairs)."""
        return merge([p for w in self.windows for p in occurrences(w, s, e)])

    def counted(self, start: datetime, end: datetime) -> timedelta:
        total = self.base.counted(start, end)
        if total <= timedelta(0):
            return total
        flat = self.gaps(to_us(start), to_us(end))
        for i in range(0, len(flat), 2):
            total -= self.base.counted(to_dt(flat[i]), to_dt(flat[i + 1]))
        return total

    def add(self, start: datetime, amount: timedelta) -> datetime:
        cursor, left = to_us(start), amount
        for _ in range(_MAX_CHUNKS):
            end = cursor + _CHUNK_US
            flat = self.gaps(cursor, end) + (end, end)
            for i in range(0, len(flat), 2):
                here = self.base.counted(to_dt(cursor), to_dt(flat[i]))
                if here >= left:
                    return self.base.add(to_dt(cursor), left)
                left, cursor = left - here, flat[i + 1]
        raise ValueError(f"calendar {self.name!r} with maintenance windows leaves no counted time for {amount}")

    def is_open(self, t: datetime) -> bool:
        u = to_us(t)
        return self.base.is_open(t) and not self.gaps(u, u + 1)

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        flat = self.gaps(to_us(start), to_us(end))
        for a, b in self.base.open_intervals(start, end):
            for x, y in subtract(to_us(a), to_us(b), flat):
                yield to_dt(x), to_dt(y)


class ClockWindows:
    """The windows that pause clocks, and the per-service rule variants they give."""

    def __init__(self, windows: tuple[Window, ...], services: tuple[frozenset[str] | None, ...]) -> None:
        self.windows, self.services = windows, services
        self._memo: dict = {}

    def applying(self, clock: str, service: str) -> tuple[int, ...]:
        """Indexes of the windows pausing ``clock`` for tickets of ``service``."""
        return tuple(i for i, w in enumerate(self.windows)
                     if clock in w.excluded_from and (self.services[i] is None or service in self.services[i]))

    def rule_for(self, rule, service: str):
        """``rule`` with its calendar minus the windows that apply (``rule`` itself when none)."""
        indexes = self.applying(rule.clock, service)
        if not indexes:
            return rule
        key = (rule.clause, indexes)
        variant = self._memo.get(key)
        if variant is None:
            chosen = tuple(self.windows[i] for i in indexes)
            variant = self._memo[key] = dataclasses.replace(
                rule, calendar=MaintainedCalendar(rule.calendar, chosen), maintenance=tuple(w.id for w in chosen))
        return variant


def compile_clock_windows(agreement: Agreement) -> ClockWindows | None:
    """None unless some window names a clock (the common case stays on the plain path)."""
    if not any(name in agreement.clocks for w in agreement.maintenance_windows for name in w.excluded_from):
        return None
    services = tuple(None if w.services is None else frozenset(w.services) for w in agreement.maintenance_windows)
    return ClockWindows(compile_windows(agreement), services)
