"""Cross-reference checks over a whole agreement.

Each check returns ``(path, message)`` pairs, where ``path`` is a tuple of keys and indexes into
the YAML document (``("targets", 2, "calendar")``) so the loader can name the line. All checks
run, so a broken file reports every problem at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from escalation.agreement.models import Agreement
from escalation.agreement.parties import check_parties
from escalation.agreement.remedies import PerBreachPenalty, TieredCredit
from escalation.agreement.weekly_hours import parse_weekly_hours

Problem = tuple[tuple, str]
RECIPIENT_ASSIGNEE = "assignee"


def check_references(agreement: Agreement) -> list[Problem]:
    checks = (_priorities, _calendars, _targets, _escalation, _slos, _windows, _objectives, _remedies, _caps,
              _reporting)
    return [problem for check in checks for problem in check(agreement)] + check_parties(agreement)


def _unknown(kind: str, name: str, known) -> str:
    options = ", ".join(sorted(known)) or "none defined"
    return f"unknown {kind} {name!r} (known: {options})"


def _duplicates(values, path: tuple, what: str) -> Iterator[Problem]:
    """One problem per repeated value, at the repetition, naming the first occurrence."""
    first: dict = {}
    for i, value in enumerate(values):
        if value in first:
            yield (*path, i), f"duplicate {what} {value!r} (first at {path[-1]}[{first[value]}])"
        first.setdefault(value, i)


def _priorities(a: Agreement) -> Iterator[Problem]:
    yield from _duplicates(a.priorities, ("priorities",), "priority")


def _complement_cycle(a: Agreement, name: str) -> list[str] | None:
    """The chain ``name -> ... -> name`` when following complement_of from ``name`` comes back."""
    chain, current = [name], a.calendars[name].complement_of
    while current in a.calendars and current not in chain:
        chain.append(current)
        current = a.calendars[current].complement_of
    return chain + [name] if current == name else None


def _calendars(a: Agreement) -> Iterator[Problem]:
    for name, spec in a.calendars.items():
        if spec.complement_of is not None and spec.complement_of not in a.calendars:
            yield ("calendars", name, "complement_of"), _unknown("calendar", spec.complement_of, a.calendars)
        if spec.complement_of == name:
            yield ("calendars", name, "complement_of"), "a calendar cannot be the complement of itself"
        elif spec.complement_of is not None and (cycle := _complement_cycle(a, name)):
            yield ("calendars", name, "complement_of"), f"cyclic complement_of: {' -> '.join(cycle)}"
        if spec.hours is not None:
            try:
                parse_weekly_hours(spec.hours)
            except ValueError as err:
                yield ("calendars", name, "hours"), str(err)


def _targets(a: Agreement) -> Iterator[Problem]:
    seen: dict[tuple[str, str, str | None], int] = {}
    by_level: dict[tuple[str, str], int] = {}  # (clock, priority) -> first target without opened_in
    for i, t in enumerate(a.targets):
        if t.clock not in a.clocks:
            yield ("targets", i, "clock"), _unknown("clock", t.clock, a.clocks)
        if t.priority not in a.priorities:
            yield ("targets", i, "priority"), _unknown("priority", t.priority, a.priorities)
        if t.calendar not in a.calendars:
            yield ("targets", i, "calendar"), _unknown("calendar", t.calendar, a.calendars)
        if t.opened_in is not None and t.opened_in not in a.calendars:
            yield ("targets", i, "opened_in"), _unknown("calendar", t.opened_in, a.calendars)
        key = (t.clock, t.priority, t.opened_in)
        if key in seen:
            yield ("targets", i), f"duplicate target for clock {t.clock!r} and priority {t.priority!r}" + (
                f" opened_in {t.opened_in!r}" if t.opened_in else "") + f" (first at targets[{seen[key]}])"
        seen.setdefault(key, i)
        if t.opened_in is None:
            by_level.setdefault((t.clock, t.priority), i)
    for i, t in enumerate(a.targets):
        plain = by_level.get((t.clock, t.priority))
        if t.opened_in is not None and plain is not None:
            yield ("targets", i, "opened_in"), (
                f"targets[{plain}] applies to every {t.priority} {t.clock} ticket: with opened_in levels, "
                "every target of that clock and priority needs opened_in")


def _escalation(a: Agreement) -> Iterator[Problem]:
    for p, policy in enumerate(a.escalation):
        for priority in policy.when.priority or []:
            if priority not in a.priorities:
                yield ("escalation", p, "when", "priority"), _unknown("priority", priority, a.priorities)
        for service in policy.when.service or []:
            if service not in a.services:
                yield ("escalation", p, "when", "service"), _unknown("service", service, a.services)
        for i, level in enumerate(policy.levels):
            if level.at.clock not in a.clocks:
                yield ("escalation", p, "levels", i, "at", "clock"), _unknown("clock", level.at.clock, a.clocks)
            for name in level.notify:
                if name != RECIPIENT_ASSIGNEE and name not in a.notification_targets:
                    yield ("escalation", p, "levels", i, "notify"), _unknown("notification target", name, a.notification_targets)


def _slos(a: Agreement) -> Iterator[Problem]:
    for i, slo in enumerate(a.slos):
        if a.services and slo.service not in a.services:
            yield ("slos", i, "service"), _unknown("service", slo.service, a.services)
        if slo.counted_time not in a.calendars:
            yield ("slos", i, "counted_time"), _unknown("calendar", slo.counted_time, a.calendars)
        for name in slo.notify:
            if name not in a.notification_targets:
                yield ("slos", i, "notify"), _unknown("notification target", name, a.notification_targets)


def _windows(a: Agreement) -> Iterator[Problem]:
    from dateutil.rrule import rrulestr

    names = {slo.id for slo in a.slos} | set(a.clocks)
    for i, window in enumerate(a.maintenance_windows):
        try:
            rrulestr(window.rrule, ignoretz=True)
        except Exception as err:  # noqa: BLE001 - dateutil raises several types for bad text
            yield ("maintenance_windows", i, "rrule"), f"invalid RFC 5545 rrule {window.rrule!r}: {err}"
        for name in window.excluded_from:
            if name not in names:
                yield ("maintenance_windows", i, "excluded_from"), _unknown("slo or clock", name, names)
        for service in window.services or []:
            if service not in a.services:
                yield ("maintenance_windows", i, "services"), _unknown("service", service, a.services)


def _objectives(a: Agreement) -> Iterator[Problem]:
    yield from _duplicates([o.id for o in a.objectives], ("objectives",), "objective id")
    for i, o in enumerate(a.objectives):
        if o.clock not in a.clocks:
            yield ("objectives", i, "clock"), _unknown("clock", o.clock, a.clocks)
        for priority in o.priority:
            if priority not in a.priorities:
                yield ("objectives", i, "priority"), _unknown("priority", priority, a.priorities)
        if o.service is not None and o.service not in a.services:
            yield ("objectives", i, "service"), _unknown("service", o.service, a.services)


def _basis(a: Agreement, basis: str) -> str | None:
    """A basis names a fee as ``fees.<name>``; returns an error message or None."""
    prefix, _, fee = basis.partition(".")
    if prefix != "fees" or fee not in a.fees:
        return _unknown("fee", basis, [f"fees.{k}" for k in a.fees])
    return None


def _remedies(a: Agreement) -> Iterator[Problem]:
    slo_ids, objective_ids = {slo.id for slo in a.slos}, {o.id for o in a.objectives}
    yield from _duplicates([r.id for r in a.remedies], ("remedies",), "remedy id")
    for i, remedy in enumerate(a.remedies):
        if isinstance(remedy, TieredCredit):
            yield from _duplicates([t.below for t in remedy.tiers], ("remedies", i, "tiers"), "tier below")
            if remedy.slo is not None and remedy.slo not in slo_ids:
                yield ("remedies", i, "slo"), _unknown("slo", remedy.slo, slo_ids)
            if remedy.objective is not None and remedy.objective not in objective_ids:
                yield ("remedies", i, "objective"), _unknown("objective", remedy.objective, objective_ids)
            if (message := _basis(a, remedy.basis)) is not None:
                yield ("remedies", i, "basis"), message
        elif isinstance(remedy, PerBreachPenalty):
            if remedy.clock not in a.clocks:
                yield ("remedies", i, "clock"), _unknown("clock", remedy.clock, a.clocks)
            for priority in remedy.priority or []:
                if priority not in a.priorities:
                    yield ("remedies", i, "priority"), _unknown("priority", priority, a.priorities)
            if remedy.percent_of is not None and (message := _basis(a, remedy.percent_of)) is not None:
                yield ("remedies", i, "percent_of"), message


def _caps(a: Agreement) -> Iterator[Problem]:
    for i, cap in enumerate(a.caps):
        if cap.max_percent_of is not None and (message := _basis(a, cap.max_percent_of)) is not None:
            yield ("caps", i, "max_percent_of"), message
        remedy_ids = [r.id for r in a.remedies]
        for name in cap.allocation or {}:
            if name not in remedy_ids:
                yield ("caps", i, "allocation", name), _unknown("remedy", name, remedy_ids)


def _reporting(a: Agreement) -> Iterator[Problem]:
    if a.reporting is None:
        return
    for name in a.reporting.deliver_to:
        if name not in a.notification_targets:
            yield ("reporting", "deliver_to"), _unknown("notification target", name, a.notification_targets)

