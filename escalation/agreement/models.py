"""Pydantic models of the agreement file format (DESIGN.md §5).

Invariants: every model is frozen and forbids unknown keys, so a typo is an error rather than a
silently ignored clause. Values are bounded to what a contract can mean (DESIGN.md §10), so that
whatever validates also runs: durations at most 10 years (targets, repeats and windows longer than
zero), fractions in (0, 1], dates in [1970-01-01, 2200-01-01), money in (0, 10^12) with at most 6
decimal places, percentages in [0, 100], no NaN or infinity anywhere. Field-level checks live here; checks that need the whole agreement
(cross-references such as "this target names an unknown calendar") live in ``references.py`` so
that all of them can be reported at once.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal, Union
from zoneinfo import available_timezones

import holidays
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from escalation.agreement.durations import BusinessDays, parse_duration
from escalation.agreement.parties import Obligation, Renewal, Scope

# The plausible range of DESIGN.md §10 (event times obey the same bounds).
FIRST_DATE, END_DATE = date(1970, 1, 1), date(2200, 1, 1)
MAX_MONEY = Decimal(10) ** 12


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def _check_positive(text: str) -> str:
    value = parse_duration(text)
    empty = value.days <= 0 if isinstance(value, BusinessDays) else value <= timedelta(0)
    if empty:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return text


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_timezone(name: str) -> str:
    # Membership, not ZoneInfo(name): "Europe" is a directory of the database and raises OSError.
    if name not in _zones():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


def _check_date(value: date) -> date:
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DATE <= day < END_DATE:
        raise ValueError(f"date {value.isoformat()} is outside the plausible range [{FIRST_DATE}, {END_DATE})")
    return value


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(description="15m, 4h, 2d (48h counted), 5bd (business days) or ISO 8601 (PT4H)"),
]
PositiveDuration = Annotated[Duration, AfterValidator(_check_positive)]
TimeZone = Annotated[str, AfterValidator(_check_timezone), Field(description="IANA time zone")]
Money = Annotated[Decimal, Field(gt=0, lt=MAX_MONEY, decimal_places=6, allow_inf_nan=False,
                                 description="decimal amount below 10^12, e.g. \"500.00\"")]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=6, allow_inf_nan=False)]
PlausibleDate = Annotated[date, AfterValidator(_check_date)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Severity = Literal["critical", "error", "warning", "info"]


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


def _check_wall_clock(text: str | None) -> str | None:
    """Wall-clock durations (ack timeouts) are not counted in a calendar: no business days."""
    if text is not None and isinstance(parse_duration(text), BusinessDays):
        raise ValueError(f"{text!r} is wall-clock time: use s, m, h or d, not business days")
    return text


WallClockDuration = Annotated[PositiveDuration, AfterValidator(_check_wall_clock),
                              Field(description="wall-clock time: 10m, 1h, 1d or ISO 8601 (PT10M); no business days")]


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


class OncallTarget(Frozen):
    kind: Literal["oncall_schedule"]
    ref: str


class EmailTarget(Frozen):
    kind: Literal["email"]
    address: str


class KafkaTarget(Frozen):
    kind: Literal["kafka"]
    topic: str


# Delivery targets (DESIGN.md §12). Secrets never sit in the agreement: a target names the
# environment variable that holds one, and the deliverer reads it at send time.
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
                               description="name of an environment variable holding a secret")]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]


class WebhookTarget(Frozen):
    """CloudEvents structured mode; signed with HMAC-SHA256 when ``secret_env`` is given."""

    kind: Literal["webhook"]
    url: str
    secret_env: EnvName | None = None


class PagerDutyTarget(Frozen):
    kind: Literal["pagerduty"]
    routing_key_env: EnvName


class OpsgenieResponder(Frozen):
    """One Opsgenie responder as its Alert API names it: ``type`` plus one of name, id, username."""

    type: Literal["team", "user", "escalation", "schedule"]
    name: str | None = None
    id: str | None = None
    username: str | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> "OpsgenieResponder":
        if sum(v is not None for v in (self.name, self.id, self.username)) != 1:
            raise ValueError("a responder needs exactly one of: name, id, username")
        return self


class OpsgenieTarget(Frozen):
    kind: Literal["opsgenie"]
    api_key_env: EnvName
    responders: list[OpsgenieResponder] = []


class SlackTarget(Frozen):
    kind: Literal["slack"]
    webhook_url_env: EnvName


class AlertmanagerTarget(Frozen):
    """Alertmanager API v2; open alerts are re-posted every ``resend`` (below its resolve_timeout)."""

    kind: Literal["alertmanager"]
    url: HttpUrl | None = None
    url_env: EnvName | None = None
    resend: PositiveDuration = "1m"

    @model_validator(mode="after")
    def _one_url(self) -> "AlertmanagerTarget":
        if (self.url is None) == (self.url_env is None):
            raise ValueError("an alertmanager target needs exactly one of: url, url_env")
        if isinstance(parse_duration(self.resend), BusinessDays):
            raise ValueError("resend is wall-clock time: use s, m or h, not business days")
        return self


NotificationTarget = Annotated[
    Union[OncallTarget, EmailTarget, KafkaTarget, WebhookTarget, PagerDutyTarget, OpsgenieTarget, SlackTarget,
          AlertmanagerTarget],
    Field(discriminator="kind"),
]


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
            _check_positive(self.window)
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
    dtstart: Annotated[datetime | date, AfterValidator(_check_date)] | None = None


class CreditTier(Frozen):
    below: Annotated[float, Field(gt=0, le=100)]
    credit_percent: Percent


class EarnBack(Frozen):
    """A credit for period P is returned when each of the next ``periods`` periods attains at
    least ``at_least`` on the same SLO or objective (DESIGN.md §13)."""

    periods: Annotated[int, Field(ge=1, le=120)]
    at_least: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]


class TieredCredit(Frozen):
    """Tiers over the attainment of exactly one of: an SLO, a ticket objective."""

    id: str
    kind: Literal["tiered_credit"]
    slo: str | None = None
    objective: str | None = None
    basis: str
    tiers: list[CreditTier]
    earn_back: EarnBack | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> "TieredCredit":
        if (self.slo is None) == (self.objective is None):
            raise ValueError("a tiered_credit names exactly one of: slo, objective")
        return self


class PerBreachPenalty(Frozen):
    """A fixed ``amount``, or ``percent`` of a fee (``percent_of: fees.monthly``), per breach."""

    id: str
    kind: Literal["per_breach"]
    clock: str
    priority: list[str] | None = None
    amount: Money | None = None
    percent_of: str | None = None
    percent: Annotated[Percent, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> "PerBreachPenalty":
        relative = self.percent_of is not None or self.percent is not None
        if relative and (self.percent_of is None or self.percent is None):
            raise ValueError("a percentage penalty needs both percent_of and percent")
        if relative == (self.amount is not None):
            raise ValueError("a per_breach remedy needs either amount, or percent_of + percent")
        return self


Remedy = Annotated[Union[TieredCredit, PerBreachPenalty], Field(discriminator="kind")]


class Cap(Frozen):
    """A period budget shared by penalties and credits: a percent of a fee or a fixed amount.

    ``rolling_12_months`` sums the 12 calendar months ending with the current one; ``allocation``
    gives each named remedy at most that percent of the cap (the shares sum to at most 100)."""

    period: Literal["calendar_month", "rolling_12_months"] = "calendar_month"
    max_percent_of: str | None = None
    percent: Annotated[Percent, Field(gt=0)] | None = None
    max_amount: Money | None = None
    allocation: dict[str, Annotated[Percent, Field(gt=0)]] | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> "Cap":
        relative = self.max_percent_of is not None and self.percent is not None
        if relative == (self.max_amount is not None):
            raise ValueError("a cap needs either max_percent_of + percent, or max_amount")
        if self.allocation is not None and sum(self.allocation.values()) > 100:
            raise ValueError(f"allocation shares sum to {sum(self.allocation.values())}%, more than 100%")
        return self


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
