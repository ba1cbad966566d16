"""Pydantic models of the agreement file format (DESIGN.md §5).

Invariants: every model is frozen and forbids unknown keys, so a typo is an error rather than a
silently ignored clause. Values are bounded to what a contract can mean (DESIGN.md §10), so that
whatever validates also runs: durations at most 10 years (targets, repeats and windows longer than
zero), fractions in (0, 1], dates in [1970-01-01, 2200-01-01), money in (0, 10^12) with at most 6
decimal places, percentages in [0, 100], no NaN or infinity anywhere. Field-level checks live here
and in the modules of the parts: value types in ``fields.py``, notification targets in
``targets.py``, remedies and caps in ``remedies.py``, parties and obligations in ``parties.py``;
checks that need the whole agreement (cross-references such as "this target names an unknown
calendar") live in ``references.py`` so that all of them can be reported at once.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Annotated, Literal

import holidays
from pydantic import AfterValidator, Field, model_validator

from escalation.agreement.fields import (
    Duration,
    Fraction,
    Frozen,
    Money,
    PlausibleDate,
    PositiveDuration,
    Severity,
    TimeZone,
    WallClockDuration,
    check_date,
    check_positive,
)
from escalation.agreement.parties import Obligation, Renewal, Scope
from escalation.agreement.remedies import Cap, Remedy
from escalation.agreement.targets import NotificationTarget


class Party(Frozen):
    id: str
    name: str | None = None


class Parties(Frozen):
    provider: Party
    customer: Party
    supporting: list[Party] = []   # vendors, internal teams (DESIGN.md §13)


class Validity(Frozen):
    start: PlausibleDate
    end: PlausibleDate | None = None
    renewal: Renewal | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Validity":
        if self.renewal is not None and self.end is None:
            raise ValueError("renewal needs an end: the term renews at validity.end")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"validity ends ({self.end}) before it starts ({self.start})")
        return self


@functools.cache
def _holiday_countries() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


class HolidaySpec(Frozen):
    """Public holidays of a country the ``holidays`` library supports, plus explicit dates."""

    country: str | None = None
    subdivision: str | None = None
    dates: list[PlausibleDate] = []

    @model_validator(mode="after")
    def _known_country(self) -> "HolidaySpec":
        # Membership first: country_holidays() looks the name up as a module attribute, so
        # "utils" or "__name__" would reach objects that are not countries at all.
        if self.country is None:
            if self.subdivision is not None:
                raise ValueError(f"holiday subdivision {self.subdivision!r} given without a country")
            return self
        subdivisions = _holiday_countries().get(self.country)
        if subdivisions is None:
            raise ValueError(f"unknown holiday country {self.country!r} (use an ISO 3166 code the holidays library supports, e.g. DE)")
        if self.subdivision is not None and self.subdivision not in subdivisions:
            known = ", ".join(subdivisions) or "none"
            raise ValueError(f"unknown subdivision {self.subdivision!r} of {self.country} (known: {known})")
        return self


class CalendarSpec(Frozen):
    """Exactly one of ``kind: 24x7``, ``hours`` or ``complement_of``."""

    kind: Literal["24x7"] | None = None
    hours: dict[str, str | list[str]] | None = None
    holidays: HolidaySpec | None = None
    complement_of: str | None = None
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "CalendarSpec":
        forms = [self.kind is not None, self.hours is not None, self.complement_of is not None]
        if sum(forms) != 1:
            raise ValueError("a calendar needs exactly one of: kind: 24x7, hours, complement_of")
        if self.holidays is not None and self.hours is None:
            raise ValueError("holidays apply to a calendar with hours")
        return self


class Service(Frozen):
    name: str | None = None


class ClockSpec(Frozen):
    starts: Literal["opened"] = "opened"
    stops: Literal["acknowledged", "resolved", "closed"]
    restarts: Literal["updated"] | None = None
    pause_when: list[str] = []


class Target(Frozen):
    clock: str
    priority: str
    within: PositiveDuration
    calendar: str
    warn_at: list[Annotated[float, Field(gt=0, lt=1)]] = []
    # DESIGN.md §13: applies to tickets opened while this calendar is open (prime/non-prime levels)
    opened_in: str | None = None


class PriorityCondition(Frozen):
    priority: list[str] | None = None
    service: list[str] | None = None


class LevelTrigger(Frozen):
    """``fraction`` of the clock's current target, or ``after_breach`` counted time past it."""

    clock: str
    fraction: Fraction | None = None
    after_breach: Duration | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> "LevelTrigger":
        if (self.fraction is None) == (self.after_breach is None):
            raise ValueError("a level fires at exactly one of: fraction, after_breach")
        return self


class Repeat(Frozen):
    every: PositiveDuration
    times: Annotated[int, Field(ge=1, le=1000)]


class Level(Frozen):
    """One escalation level. ``ack_timeout`` (wall-clock time, DESIGN.md §11): if the level's
    dedup_key is not acknowledged that long after it fired, the policy's next level fires."""

    level: int
    at: LevelTrigger
    notify: list[str]
    severity: Severity = "error"
    repeat: Repeat | None = None
    ack_timeout: WallClockDuration | None = None


class EscalationPolicy(Frozen):
    id: str
    when: PriorityCondition = PriorityCondition()
    levels: list[Level]

    @model_validator(mode="after")
    def _timeout_has_a_next_level(self) -> "EscalationPolicy":
        # An ack timeout escalates to the next level in list order; on the last level it could
        # never do anything, which is a mistake worth reporting rather than ignoring.
        if self.levels and self.levels[-1].ack_timeout is not None:
            raise ValueError(f"level {self.levels[-1].level} is the last level of {self.id!r}: "
                             "its ack_timeout has no next level to escalate to")
        return self


class BurnRateRule(Frozen):
    long_window: PositiveDuration
    short_window: PositiveDuration
    factor: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]
    severity: Literal["page", "ticket"]


class Slo(Frozen):
    id: str
    service: str
    sli: str
    objective: Annotated[float, Field(gt=0, le=100)]
    window: str = "calendar_month"
    counted_time: str = "always"
    burn_rate_alerts: Literal["google-default"] | list[BurnRateRule] | None = None
    # DESIGN.md §12 "SLO alerts": notification targets of the SLO's slo.burn_rate outputs
    notify: list[str] = []

    @model_validator(mode="after")
    def _window(self) -> "Slo":
        if self.window not in ("calendar_month", "rolling_28d", "rolling_30d"):
            check_positive(self.window)
        return self


class MaintenanceWindow(Frozen):
    """Recurring windows (RFC 5545 rrule, local wall times) removed from the listed SLOs.

    ``dtstart`` is the rule's local start (default: the agreement's validity start at local
    midnight); ``timezone`` defaults to the agreement's.
    """

    id: str
    rrule: str
    duration: PositiveDuration
    excluded_from: list[str]                 # SLO ids and/or clock names (DESIGN.md §13)
    services: list[str] | None = None        # the tickets whose listed clocks pause (default: all)
    timezone: TimeZone | None = None
    dtstart: Annotated[datetime | date, AfterValidator(check_date)] | None = None


class Objective(Frozen):
    """A ticket objective (DESIGN.md §13): at least ``at_least`` % of the decided cycles of
    ``clock`` for these priorities (and service) met per period; fewer than ``min_cycles``
    decided cycles give no verdict."""

    id: str
    clock: str
    priority: Annotated[list[str], Field(min_length=1)]
    service: str | None = None
    at_least: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
    period: Literal["calendar_month"] = "calendar_month"
    min_cycles: Annotated[int, Field(ge=1, le=1_000_000)] = 1


class Reporting(Frozen):
    period: Literal["calendar_month"] = "calendar_month"
    deliver_to: list[str] = []


class Agreement(Frozen):
    """One revision of one customer agreement."""

    apiVersion: Literal["escalation/v1"]
    kind: Literal["Agreement", "OperationalLevelAgreement", "UnderpinningContract"]
    id: Annotated[str, Field(min_length=1)]
    revision: Annotated[int, Field(ge=1, lt=2**31)]
    title: str | None = None
    parties: Parties | None = None
    validity: Validity | None = None
    timezone: TimeZone = "UTC"
    currency: str = "EUR"
    fees: dict[str, Money] = {}
    calendars: dict[str, CalendarSpec] = {"always": CalendarSpec(kind="24x7")}
    services: dict[str, Service] = {}
    priorities: Annotated[list[str], Field(min_length=1)]
    clocks: dict[str, ClockSpec]
    on_priority_change: Literal["keep_elapsed", "restart", "recompute_from_start"] = "keep_elapsed"
    on_reopen: Literal["resume", "new_cycle"] = "resume"
    targets: list[Target] = []
    escalation: list[EscalationPolicy] = []
    notification_targets: dict[str, NotificationTarget] = {}
    slos: list[Slo] = []
    maintenance_windows: list[MaintenanceWindow] = []
    objectives: list[Objective] = []
    remedies: list[Remedy] = []
    caps: list[Cap] = []
    reporting: Reporting | None = None
    # DESIGN.md §13 parties: a supporting agreement (OLA, UC) runs beside the customer's while
    # its scope holds; ``supports`` names the customer agreements it backs (empty: any)
    scope: Scope | None = None
    supports: list[str] = []
    obligations: list[Obligation] = []

    @model_validator(mode="after")
    def _scoped(self) -> "Agreement":
        if (self.kind == "Agreement") != (self.scope is None):
            raise ValueError(f"kind {self.kind} " + ("has no scope" if self.scope is None else "takes no scope")
                             + ": OperationalLevelAgreement and UnderpinningContract need one, Agreement none")
        return self
