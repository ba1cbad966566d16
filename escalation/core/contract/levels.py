"""Feasibility of targets that vary per ticket (DESIGN.md §13), on the compiled agreement.

- **Prime and non-prime levels**: the ``opened_in`` calendars of the targets of one clock and
  priority must cover time without overlap, so exactly one target applies at any opening
  instant. Checked over a representative span in the agreement's zone: from the validity start
  (2026-01-01 without one) for a year (the validity's length when shorter, at least a week), so
  weekly hours, DST changes and a year of holidays of those calendars are all seen.
- **Maintenance windows on clocks**: a clock paused by windows must still reach its last
  threshold (windows covering all the counted time would stop it for ever).

Each check returns ``(path, message)`` pairs like ``references.py``; the first problem of a
clock and priority is reported (one gap or overlap says what to fix).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from escalation.core.contract.compiled import CompiledAgreement

Problem = tuple[tuple, str]
_SPAN, _MIN_SPAN, _DEFAULT_START = timedelta(days=366), timedelta(days=7), date(2026, 1, 1)


def span(compiled: CompiledAgreement) -> tuple[datetime, datetime]:
    """The instants the coverage check walks (local midnights in the agreement's zone)."""
    v = compiled.agreement.validity
    first = v.start if v is not None else _DEFAULT_START
    start = datetime.combine(first, time(), compiled.tz)
    length = _SPAN
    if v is not None and v.end is not None:
        length = max(min(_SPAN, datetime.combine(v.end + timedelta(days=1), time(), compiled.tz) - start), _MIN_SPAN)
    return start, start + length


def check_levels(compiled: CompiledAgreement) -> list[Problem]:
    return [*_coverage(compiled), *_clock_windows(compiled)]


def _coverage(compiled: CompiledAgreement) -> Iterator[Problem]:
    start, end = span(compiled)
    for (clock, priority), options in compiled.choices.items():
        message = _first_fault(options, start, end)
        if message is not None:
            i = int(options[0][1].clause[len("targets["):-1])
            yield ("targets", i, "opened_in"), f"targets of clock {clock!r} priority {priority!r}: {message}"


def _first_fault(options, start: datetime, end: datetime) -> str | None:
    """A gap (no target applies) or an overlap (two apply) between ``start`` and ``end``, or None."""
    pieces = sorted(((a, b, rule) for cal, rule in options for a, b in cal.open_intervals(start, end)),
                    key=lambda piece: piece[:2])
    cursor, last = start, None
    for a, b, rule in pieces:
        if a > cursor:
            return f"no target applies to a ticket opened at {_local(cursor, start)} (opened_in calendars leave a gap)"
        if a < cursor:
            return (f"{last.clause} (opened_in {last.opened_in}) and {rule.clause} (opened_in {rule.opened_in}) "
                    f"both apply to a ticket opened at {_local(a, start)}")
        cursor, last = b, rule
    if cursor < end:
        return f"no target applies to a ticket opened at {_local(cursor, start)} (opened_in calendars leave a gap)"
    return None


def _local(t: datetime, like: datetime) -> str:
    return t.astimezone(like.tzinfo).isoformat()


def _clock_windows(compiled: CompiledAgreement) -> Iterator[Problem]:
    windows = compiled.clock_windows
    if windows is None:
        return
    start, _ = span(compiled)
    services = list(compiled.agreement.services) or [""]
    for rule in compiled.rules:
        for service in services:
            variant = windows.rule_for(rule, service)
            if variant is rule:
                continue
            try:
                variant.calendar.add(start, rule.thresholds[-1].offset)
            except ValueError:
                i = windows.applying(rule.clock, service)[0]
                yield ("maintenance_windows", i, "excluded_from"), (
                    f"clock {rule.clock!r} never reaches its {rule.clause} target: the windows pausing it "
                    f"cover all the counted time of calendar {rule.calendar_name!r}")
                return
