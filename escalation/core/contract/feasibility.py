"""Checks that need the compiled agreement: what validates must also run (DESIGN.md §10).

Runs after the field and reference checks found nothing, so every name resolves. Each check
returns ``(path, message)`` pairs like ``references.py``. Invariant: when :func:`check_feasible`
returns no problem, compiling the agreement and its SLOs succeeded, no calendar is closed all week,
every target's last threshold is reached within 10 years of wall time, and every maintenance
window recurs at most daily, at least once in 10 years, and at most ``MAX_OCCURRENCES`` times a
year -- so replay can neither crash on the agreement nor spend unbounded time in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import islice, takewhile

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rruleset

from escalation.agreement.durations import MAX_DURATION, iso_duration
from escalation.agreement.fields import END_DATE, FIRST_DATE
from escalation.agreement.models import Agreement
from escalation.core.contract.compiled import CompiledAgreement, compile_agreement
from escalation.core.contract.levels import check_levels
from escalation.core.time.calendar import Calendar
from escalation.core.time.maintenance import compile_windows

Problem = tuple[tuple, str]

MAX_OCCURRENCES = 10_000  # per year and window: hourly all year round is 8,784
_FREQ_NAMES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
# Largest INTERVAL per frequency that still recurs within 10 years.
_MAX_INTERVAL = {YEARLY: 10, MONTHLY: 120, WEEKLY: 521, DAILY: 3652}
# The probe for "occurs at all" starts here and iterates up to datetime.MAXYEAR: 40 years, a leap
# year (a DTSTART of Feb 29 keeps its day), more than a full leap/weekday cycle. dateutil iterates
# an impossible rule (BYMONTH=2;BYMONTHDAY=30) until year 9999, which costs seconds from 2026 on.
_PROBE_YEAR = 9960


def check_feasible(agreement: Agreement) -> list[Problem]:
    try:
        compiled = compile_agreement(agreement)
    except Exception as err:  # noqa: BLE001 - reported, never raised: see the module invariant
        return [((), f"cannot compile: {type(err).__name__}: {err}")]
    problems = [*_calendars(compiled), *_targets(compiled), *_windows(agreement)]
    return problems or check_levels(compiled) or _compile_slos(compiled)


def _compile_slos(compiled: CompiledAgreement) -> list[Problem]:
    from escalation.core.services.slo_compiled import compile_slos

    try:
        compile_slos(compiled)
    except Exception as err:  # noqa: BLE001 - as above
        return [((), f"cannot compile: {type(err).__name__}: {err}")]
    return []


def _calendars(compiled: CompiledAgreement) -> Iterator[Problem]:
    for name, calendar in compiled.calendars.items():
        if calendar.weekly_open <= timedelta(0):
            yield ("calendars", name), "no open hours in any week (empty hours, or the complement of an always-open calendar)"


def _wall_time(calendar: Calendar, counted: timedelta) -> timedelta | None:
    """Roughly how much wall time ``counted`` open time takes on ``calendar`` (None: never)."""
    weekly = calendar.weekly_open
    return None if weekly <= timedelta(0) else timedelta(weeks=1) * (counted / weekly)


def _targets(compiled: CompiledAgreement) -> Iterator[Problem]:
    for i, rule in enumerate(compiled.agreement.targets):
        target = compiled.rules[i]
        last = target.thresholds[-1].offset  # thresholds are sorted by counted offset
        wall = _wall_time(target.calendar, last)
        if wall is not None and wall > MAX_DURATION:
            yield ("targets", i, "within"), (
                f"the last threshold ({iso_duration(last)} of counted time) needs more than 10 years on calendar "
                f"{rule.calendar!r}, which is open {iso_duration(target.calendar.weekly_open)} a week")


def _windows(agreement: Agreement) -> Iterator[Problem]:
    try:
        windows = compile_windows(agreement)
    except Exception as err:  # noqa: BLE001 - the rrule text was checked already; this is a guard
        yield ("maintenance_windows",), f"cannot compile: {type(err).__name__}: {err}"
        return
    for i, window in enumerate(windows):
        message = _rule_problem(window.rule)
        if message is not None:
            yield ("maintenance_windows", i, "rrule"), message


def _rule_problem(rule) -> str | None:
    """Why a parsed rule (rrule or rruleset) cannot run, or None."""
    is_set = isinstance(rule, rruleset)
    rules = rule._rrule if is_set else [rule]  # dateutil keeps them private
    excluded = rule._exrule if is_set else []  # EXRULEs run too (to subtract): same shape rules
    dates = [*rule._rdate, *rule._exdate] if is_set else []
    for r in [*rules, *excluded]:
        message = _shape_problem(r) or (_density_problem(r) if r in rules else None)
        if message is not None:
            return message
        dates += [r._dtstart] + ([r._until] if r._until is not None else [])
    for moment in dates:
        if not FIRST_DATE <= moment.date() < END_DATE:
            return f"date {moment.isoformat()} is outside the plausible range [{FIRST_DATE}, {END_DATE})"
    return None


def _shape_problem(r) -> str | None:
    freq, interval = r._freq, r._interval
    if freq not in _MAX_INTERVAL:
        return f"FREQ={_FREQ_NAMES[freq]}: maintenance windows recur at most daily"
    if interval < 1:
        return f"INTERVAL={interval}: must be 1 or more"
    if interval > _MAX_INTERVAL[freq]:
        return f"INTERVAL={interval} with FREQ={_FREQ_NAMES[freq]}: a window must recur within 10 years"
    return None


def _density_problem(r) -> str | None:
    """Never-occurring and too-frequent rules; iteration is bounded (see ``_PROBE_YEAR``)."""
    start = r._dtstart
    probe = r.replace(dtstart=start.replace(year=_PROBE_YEAR), count=None, until=None)
    if next(iter(probe), None) is None:
        return "the rule never occurs"
    year_end = start + timedelta(days=366)
    first_year = takewhile(lambda t: t < year_end, r)
    if sum(1 for _ in islice(first_year, MAX_OCCURRENCES + 1)) > MAX_OCCURRENCES:
        return f"more than {MAX_OCCURRENCES} occurrences a year"
    return None

