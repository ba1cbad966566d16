"""Pydantic models of the agreement file format (DESIGN.md §5).

Invariants: every model is frozen and forbids unknown keys, so a typo is an error rather than a
silently ignored clause. Field-level checks live here; checks that need the whole agreement
(cross-references such as "this target names an unknown calendar") live in ``references.py`` so
that all of them can be reported at once.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .durations import parse_duration


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(description="15m, 4h, 2d (48h counted), 5bd (business days) or ISO 8601 (PT4H)"),
]
TimeZone = Annotated[str, AfterValidator(_check_timezone), Field(description="IANA time zone")]
Money = Annotated[Decimal, Field(description="decimal amount, e.g. \"500.00\"")]
Severity = Literal["critical", "error", "warning", "info"]


class Party(Frozen):
    id: str
    name: str | None = None


class Parties(Frozen):
    provider: Party
    customer: Party


class Validity(Frozen):
    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Validity":
        if self.end is not None and self.end < self.start:
            raise ValueError(f"validity ends ({self.end}) before it starts ({self.start})")
        return self


class HolidaySpec(Frozen):
    country: str | None = None
    subdivision: str | None = None
    dates: list[date] = []


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
    within: Duration
    calendar: str
    warn_at: list[Annotated[float, Field(gt=0, lt=1)]] = []


class PriorityCondition(Frozen):
    priority: list[str] | None = None
    service: list[str] | None = None


class LevelTrigger(Frozen):
    """``fraction`` of the clock's current target, or ``after_breach`` counted time past it."""

    clock: str
    fraction: Annotated[float, Field(gt=0)] | None = None
    after_breach: Duration | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> "LevelTrigger":
        if (self.fraction is None) == (self.after_breach is None):
            raise ValueError("a level fires at exactly one of: fraction, after_breach")
        return self


class Repeat(Frozen):
    every: Duration
    times: Annotated[int, Field(ge=1)]


class Level(Frozen):
    level: int
    at: LevelTrigger
    notify: list[str]
    severity: Severity = "error"
    repeat: Repeat | None = None


class EscalationPolicy(Frozen):
    id: str
    when: PriorityCondition = PriorityCondition()
    levels: list[Level]


class OncallTarget(Frozen):
    kind: Literal["oncall_schedule"]
    ref: str


class EmailTarget(Frozen):
    kind: Literal["email"]
    address: str


class KafkaTarget(Frozen):
    kind: Literal["kafka"]
    topic: str


class WebhookTarget(Frozen):
    kind: Literal["webhook"]
    url: str


NotificationTarget = Annotated[
    Union[OncallTarget, EmailTarget, KafkaTarget, WebhookTarget], Field(discriminator="kind")
]


class BurnRateRule(Frozen):
    long_window: Duration
    short_window: Duration
    factor: Annotated[float, Field(gt=0)]
    severity: Literal["page", "ticket"]


class Slo(Frozen):
    id: str
    service: str
    sli: str
    objective: Annotated[float, Field(gt=0, le=100)]
    window: str = "calendar_month"
    counted_time: str = "always"
    burn_rate_alerts: Literal["google-default"] | list[BurnRateRule] | None = None

    @model_validator(mode="after")
    def _window(self) -> "Slo":
        if self.window not in ("calendar_month", "rolling_28d", "rolling_30d"):
            parse_duration(self.window)
        return self


class MaintenanceWindow(Frozen):
    """Recurring windows (RFC 5545 rrule, local wall times) removed from the listed SLOs.

    ``dtstart`` is the rule's local start (default: the agreement's validity start at local
    midnight); ``timezone`` defaults to the agreement's.
    """

    id: str
    rrule: str
    duration: Duration
    excluded_from: list[str]
    timezone: TimeZone | None = None
    dtstart: datetime | date | None = None


class CreditTier(Frozen):
    below: Annotated[float, Field(gt=0, le=100)]
    credit_percent: Annotated[Decimal, Field(ge=0, le=100)]


class TieredCredit(Frozen):
    id: str
    kind: Literal["tiered_credit"]
    slo: str
    basis: str
    tiers: list[CreditTier]


class PerBreachPenalty(Frozen):
    id: str
    kind: Literal["per_breach"]
    clock: str
    priority: list[str] | None = None
    amount: Money


Remedy = Annotated[Union[TieredCredit, PerBreachPenalty], Field(discriminator="kind")]


class Cap(Frozen):
    """A period budget shared by penalties and credits: a percent of a fee or a fixed amount."""

    period: Literal["calendar_month"] = "calendar_month"
    max_percent_of: str | None = None
    percent: Annotated[Decimal, Field(ge=0)] | None = None
    max_amount: Money | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> "Cap":
        relative = self.max_percent_of is not None and self.percent is not None
        if relative == (self.max_amount is not None):
            raise ValueError("a cap needs either max_percent_of + percent, or max_amount")
        return self


class Reporting(Frozen):
    period: Literal["calendar_month"] = "calendar_month"
    deliver_to: list[str] = []


class Agreement(Frozen):
    """One revision of one customer agreement."""

    apiVersion: Literal["escalation/v1"]
    kind: Literal["Agreement"]
    id: Annotated[str, Field(min_length=1)]
    revision: Annotated[int, Field(ge=1)]
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
    remedies: list[Remedy] = []
    caps: list[Cap] = []
    reporting: Reporting | None = None
