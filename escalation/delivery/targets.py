"""From an output's recipient name to a delivery job: the target model of the output's agreement.

Invariants: a name resolves through the agreement revision the output names (``data.agreement``
and ``data.revision``; the latest loaded revision when that one is not loaded), exactly as the
engine resolved it; names that are no notification target (``assignee``) and kinds without a
delivery (``oncall_schedule``) give None (skipped). Secret values a target names are handed to
:func:`escalation.secrets.remember` as soon as they are read, so no log line can show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from escalation.delivery.actions import agreement_of, dedup_key_of
from escalation.secrets import remember

DELIVERABLE = {"pagerduty", "opsgenie", "slack", "webhook", "email", "kafka", "alertmanager"}
_SECRET_FIELDS = ("routing_key_env", "api_key_env", "webhook_url_env", "secret_env", "url_env")


@dataclass(frozen=True)
class Job:
    output: dict
    key: bytes | None
    agreement: str
    name: str
    target: Any                  # the agreement's notification target model
    limit_identity: str          # whose rate limit applies (routing key, webhook, or the target)

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def dedup_key(self) -> str:
        return dedup_key_of(self.output)

    @property
    def lane(self) -> tuple[str, str, str]:
        return (self.agreement, self.name, self.dedup_key)


def target_of(registry, agreement: str, revision: Any, name: str):
    """The named notification target, or None when the agreement or the name is unknown."""
    from escalation.core.events import Rejected

    try:
        compiled = registry.get(agreement, revision) if isinstance(revision, int) else registry.latest(agreement)
    except Rejected:
        try:
            compiled = registry.latest(agreement)
        except Rejected:
            return None
    return compiled.agreement.notification_targets.get(name)


def limit_identity(agreement: str, name: str, target, env: Mapping[str, str]) -> str:
    """PagerDuty limits apply per routing key, Slack's per webhook, the others per target."""
    secret_name = {"pagerduty": "routing_key_env", "slack": "webhook_url_env"}.get(target.kind)
    value = env.get(getattr(target, secret_name)) if secret_name else None
    return value or f"{agreement}/{name}"


def resolve(registry, output: dict, key: bytes | None, name: Any, env: Mapping[str, str]) -> Job | None:
    if not isinstance(name, str):
        return None
    agreement = agreement_of(output)
    target = target_of(registry, agreement, output["data"].get("revision"), name)
    if target is None or target.kind not in DELIVERABLE:
        return None
    remember(*(env.get(getattr(target, f, None) or "") for f in _SECRET_FIELDS))
    return Job(output, key, agreement, name, target, limit_identity(agreement, name, target, env))
