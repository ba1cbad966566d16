"""An agreement revision compiled into lookup tables for the hot path.

Compiling resolves every name once: calendars become Calendar objects, durations become exact
``timedelta`` (``Nbd`` against the target's calendar), and each (clock, priority) pair gets its
ordered list of thresholds (warnings, the breach, escalation levels) as counted-time offsets. The
result is immutable and cached per (agreement id, revision); incidents only hold the key.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from escalation.agreement.durations import BusinessDays, iso_duration, parse_duration
from escalation.agreement.models import Agreement, CalendarSpec, Level
from escalation.agreement.remedies import PerBreachPenalty
from escalation.agreement.weekly_hours import parse_weekly_hours
from escalation.core.tickets.lifecycle import lifecycle_for
from escalation.core.time.calendar import (
    AlwaysCalendar,
    Calendar,
    ComplementCalendar,
    WeeklyCalendar,
)

WARNING, BREACH, LEVEL = "warning", "breach", "level"
_KIND_RANK = {WARNING: 0, BREACH: 1, LEVEL: 2}


@dataclass(frozen=True, slots=True)
class Threshold:
    """A point on a clock: fires once per cycle when counted elapsed time reaches ``offset``."""

    key: str                     # stable within a cycle: "warning:0.5", "breach", "level:p1-ladder:4"
    kind: str
    offset: timedelta
    clause: str                  # where it stands in the agreement: "targets[0].warn_at", "escalation[0].levels[3]"
    fraction: float | None = None
    policy: str | None = None
    level: Level | None = None
    after_breach: timedelta | None = None
    repeat_every: timedelta | None = None
    services: tuple[str, ...] | None = None  # a level's policy applies only to these services
    ack_timeout: timedelta | None = None     # wall-clock time to acknowledge before ``successor`` fires
    successor: tuple[str, str] | None = None  # (clock, key) of the policy's next level, with ack_timeout

    def applies_to(self, service: str) -> bool:
        """Whether the threshold counts for a ticket of ``service`` (a level's ``when.service``)."""
        return self.services is None or service in self.services


def level_number(key: str) -> int | None:
    """The level number in a level threshold key (``level:<policy>:<n>``), else None."""
    return int(key.rsplit(":", 1)[1]) if key.startswith(LEVEL + ":") else None


@dataclass(frozen=True, slots=True)
class TargetRule:
    clause: str                  # where it stands in the agreement, e.g. "targets[0]"
    clock: str
    priority: str
    within: timedelta
    within_text: str
    calendar_name: str
    calendar: Calendar
    thresholds: tuple[Threshold, ...]
    by_key: dict[str, Threshold] = field(default_factory=dict)  # the thresholds by key
    opened_in: str | None = None          # DESIGN.md §13: chosen for tickets opened in this calendar
    maintenance: tuple[str, ...] = ()     # maintenance windows that pause the clock (explain)


@dataclass(frozen=True)
class CompiledAgreement:
    agreement: Agreement
    tz: ZoneInfo
    calendars: dict[str, Calendar]
    targets: dict[tuple[str, str], TargetRule]          # (clock, priority) -> rule
    penalties: dict[tuple[str, str], tuple[PerBreachPenalty, ...]] = field(default_factory=dict)
    clock_order: tuple[str, ...] = ()
    rules: tuple[TargetRule, ...] = ()                  # every target, in agreement order
    # (clock, priority) -> ((opened_in calendar, rule), ...) for prime/non-prime levels
    choices: dict[tuple[str, str], tuple[tuple[Calendar, TargetRule], ...]] = field(default_factory=dict)
    clock_windows: object = None                        # clock_maintenance.ClockWindows, or None

    @property
    def id(self) -> str:
        return self.agreement.id

    @property
    def revision(self) -> int:
        return self.agreement.revision

    @functools.cached_property
    def source(self) -> str:  # asked for every output: built once (not a slotted class, so cacheable)
        return f"escalation/{self.agreement.id}@{self.agreement.revision}"

    def target(self, clock: str, priority: str) -> TargetRule | None:
        """The (first) target of ``clock`` at ``priority``; tickets use :meth:`rule_of`."""
        return self.targets.get((clock, priority))

    def rule_of(self, incident, clock: str, priority: str | None = None) -> TargetRule | None:
        """The target ``clock`` of ``incident`` runs against at ``priority`` (default: its own).

        Invariant: a pure function of (clock, priority, opening instant, service), so the choice
        made at opening is kept, and a priority change chooses again by the opening instant
        (``opened_in`` levels); maintenance windows on the clock give the service's variant."""
        key = (clock, priority or incident.priority)
        rule = self.targets.get(key)
        if rule is None or (not self.choices and self.clock_windows is None):
            return rule
        options = self.choices.get(key)
        if options:
            rule = next((r for cal, r in options if cal.is_open(incident.opened_at)), rule)
        if self.clock_windows is not None:
            rule = self.clock_windows.rule_for(rule, incident.service)
        return rule

    def penalty_amount(self, remedy: PerBreachPenalty) -> Decimal:
        """What one breach owes before caps: ``amount``, or ``percent`` of the ``percent_of`` fee."""
        if remedy.amount is not None:
            return remedy.amount
        return self.fee(remedy.percent_of) * remedy.percent / 100

    def period_of(self, instant: datetime) -> str:
        """The calendar-month period (agreement time zone) that contains ``instant``."""
        local = instant.astimezone(self.tz)
        return f"{local.year:04d}-{local.month:02d}"

    def valid_on(self, day: date, renews: bool = False) -> bool:
        """Whether ``day`` (agreement time zone) is inside the validity: ``start`` <= day <= ``end``
        (open ends allowed). ``renews`` (the registry says so for the highest loaded revision of an
        agreement with ``validity.renewal``): every day from ``start`` on, since the term renews by
        whole terms past ``end`` unless terminated, which only the desk knows (``core/term.py``)."""
        validity = self.agreement.validity
        if validity is None:
            return True
        return validity.start <= day and (validity.end is None or day <= validity.end
                                          or (renews and validity.renewal is not None))

    def fee(self, basis: str) -> Decimal:
        return self.agreement.fees[basis.partition(".")[2]]


def build_calendars(agreement: Agreement) -> dict[str, Calendar]:
    """Every calendar by name; ValueError on a ``complement_of`` cycle (the loader reports those
    with their line first, so this is a guard, not the message users see)."""
    built: dict[str, Calendar] = {}
    building: list[str] = []

    def build(name: str, spec: CalendarSpec) -> Calendar:
        if name in built:
            return built[name]
        if name in building:
            raise ValueError(f"cyclic complement_of: {' -> '.join(building[building.index(name):] + [name])}")
        building.append(name)
        if spec.kind == "24x7":
            cal: Calendar = AlwaysCalendar(name)
        elif spec.complement_of is not None:
            cal = ComplementCalendar(name, build(spec.complement_of, agreement.calendars[spec.complement_of]))
        else:
            holidays = spec.holidays
            cal = WeeklyCalendar(
                name, ZoneInfo(spec.timezone or agreement.timezone), parse_weekly_hours(spec.hours or {}),
                holiday_dates=frozenset(holidays.dates) if holidays else frozenset(),
                holiday_country=holidays.country if holidays else None,
                holiday_subdivision=holidays.subdivision if holidays else None,
            )
        built[name] = cal
        building.remove(name)
        return cal

    for name, spec in agreement.calendars.items():
        build(name, spec)
    return built


def _counted(text: str, calendar: Calendar) -> timedelta:
    value = parse_duration(text)
    return value.resolve(calendar.business_day) if isinstance(value, BusinessDays) else value


def _thresholds(agreement: Agreement, clause: str, clock: str, priority: str, within: timedelta, calendar: Calendar, warn_at) -> tuple[Threshold, ...]:
    points = [Threshold(f"{WARNING}:{f:g}", WARNING, within * f, f"{clause}.warn_at", fraction=f) for f in sorted(set(warn_at))]
    points.append(Threshold(BREACH, BREACH, within, clause, fraction=1.0))
    for p, policy in enumerate(agreement.escalation):
        if policy.when.priority is not None and priority not in policy.when.priority:
            continue
        for i, level in enumerate(policy.levels):
            if level.at.clock != clock:
                continue
            after = _counted(level.at.after_breach, calendar) if level.at.after_breach else None
            offset = within + after if after is not None else within * level.at.fraction
            every = parse_duration(level.repeat.every) if level.repeat else None
            points.append(Threshold(
                _level_key(policy.id, level), LEVEL, offset, f"escalation[{p}].levels[{i}]", fraction=level.at.fraction,
                policy=policy.id, level=level, after_breach=after, repeat_every=every,
                services=None if policy.when.service is None else tuple(policy.when.service),
                **_ack_timeout(policy, i),
            ))
    points.sort(key=lambda t: (t.offset, _KIND_RANK[t.kind], t.key))
    return tuple(points)


def _level_key(policy: str, level: Level) -> str:
    return f"{LEVEL}:{policy}:{level.level}"


def _ack_timeout(policy, i: int) -> dict:
    """The ack timeout of ``policy.levels[i]`` and its successor, the next level in list order
    (the model refuses an ack timeout on the last level)."""
    level = policy.levels[i]
    if level.ack_timeout is None:
        return {}
    after = policy.levels[i + 1]
    return {"ack_timeout": parse_duration(level.ack_timeout), "successor": (after.at.clock, _level_key(policy.id, after))}


def compile_agreement(agreement: Agreement) -> CompiledAgreement:
    from escalation.core.tickets.clock_maintenance import compile_clock_windows

    calendars = build_calendars(agreement)
    targets, rules, choices = {}, [], {}
    for i, t in enumerate(agreement.targets):
        calendar = calendars[t.calendar]
        within = _counted(t.within, calendar)
        thresholds = _thresholds(agreement, f"targets[{i}]", t.clock, t.priority, within, calendar, t.warn_at)
        rule = TargetRule(
            f"targets[{i}]", t.clock, t.priority, within, t.within, t.calendar, calendar, thresholds,
            {thr.key: thr for thr in thresholds}, t.opened_in,
        )
        rules.append(rule)
        targets.setdefault((t.clock, t.priority), rule)  # opened_in levels: the first stands for all
        if t.opened_in is not None:
            choices.setdefault((t.clock, t.priority), []).append((calendars[t.opened_in], rule))
    penalties: dict[tuple[str, str], list[PerBreachPenalty]] = {}
    for remedy in agreement.remedies:
        if isinstance(remedy, PerBreachPenalty):
            for priority in remedy.priority or agreement.priorities:
                penalties.setdefault((remedy.clock, priority), []).append(remedy)
    return CompiledAgreement(
        agreement, ZoneInfo(agreement.timezone), calendars, targets,
        {k: tuple(v) for k, v in penalties.items()}, tuple(agreement.clocks), tuple(rules),
        {k: tuple(v) for k, v in choices.items()}, compile_clock_windows(agreement),
    )


ALWAYS = AlwaysCalendar("24x7")


def _describe_threshold(t: Threshold) -> dict:
    out = {"at": iso_duration(t.offset), "kind": t.kind, "key": t.key, "clause": t.clause}
    if t.successor is not None:  # only then, so agreements without ack timeouts describe as before
        out["ack_timeout"] = {"after": iso_duration(t.ack_timeout), "then": "/".join(t.successor)}
    return out


def describe(compiled: CompiledAgreement) -> dict:
    """The compiled definition as plain data: the lifecycle machine and, per priority and clock,
    the thresholds in firing order. Diffing two revisions' descriptions shows what a change does."""
    thresholds: dict[str, dict[str, list]] = {}
    for rule in sorted(compiled.rules, key=lambda r: (r.priority, r.clock)):
        # prime/non-prime levels show as "clock@calendar" (DESIGN.md §13)
        name = rule.clock if rule.opened_in is None else f"{rule.clock}@{rule.opened_in}"
        thresholds.setdefault(rule.priority, {})[name] = [_describe_threshold(t) for t in rule.thresholds]
    a = compiled.agreement
    return {
        "agreement": a.id, "revision": a.revision,
        "lifecycle": lifecycle_for(compiled.source).describe(),
        "clocks": {name: spec.model_dump() for name, spec in a.clocks.items()},
        "policies": {"on_priority_change": a.on_priority_change, "on_reopen": a.on_reopen},
        "thresholds": thresholds,
    }
