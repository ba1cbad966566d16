"""Weekly opening hours of the agreement format: ``{"mon-fri": "08:00-18:00", "sat": [...]}``.

The format's parser lives with the format (the agreement layer imports nothing from the core);
the core's calendars (:mod:`escalation.core.time.calendar`) build on what it returns.

Invariant: :func:`parse_weekly_hours` returns, per weekday that has hours, sorted and
non-overlapping ``(start, end)`` times of day, ``None`` as an end meaning 24:00; anything else
raises ``ValueError`` naming the offending key or value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time

__all__ = ["DAY_US", "WEEKDAYS", "parse_weekly_hours"]

DAY_US = 86_400_000_000   # 24:00 as microseconds since local midnight

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_NAMES = {v: k for k, v in WEEKDAYS.items()}
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


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
            if name not in WEEKDAYS:
                raise ValueError(f"unknown weekday {name!r} in {key!r} (use mon, tue, wed, thu, fri, sat, sun)")
        first, last = WEEKDAYS[names[0]], WEEKDAYS[names[-1]]
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
