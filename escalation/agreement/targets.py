"""Notification targets of the agreement format (DESIGN.md §12): where an escalation level's
notifications go. Secrets never sit in the agreement: a target names the environment variable
that holds one, and the deliverer reads it at send time."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from escalation.agreement.durations import BusinessDays, parse_duration
from escalation.agreement.fields import Frozen, PositiveDuration


class OncallTarget(Frozen):
    kind: Literal["oncall_schedule"]
    ref: str


class EmailTarget(Frozen):
    kind: Literal["email"]
    address: str


class KafkaTarget(Frozen):
    kind: Literal["kafka"]
    topic: str


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
