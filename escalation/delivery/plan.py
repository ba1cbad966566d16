"""For one output and one notification target: the request(s) to make (DESIGN.md §12).

Invariants: pure (environment and endpoints are arguments, nothing is read or sent here); a
secret named by the target but missing from ``env`` raises :class:`MissingSecret` (the delivery
fails at once, naming the variable, never a value); a kind that cannot be delivered
(``oncall_schedule``: a reference, no credentials) raises :class:`NotDeliverable`; an output
type a tool has no action for gives an empty plan (nothing to send, nothing to record).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import orjson

from escalation.delivery import alertmanager, opsgenie, pagerduty
from escalation.delivery.mail import mail_requests
from escalation.delivery.requests import MissingSecret, ProduceRequest, Request
from escalation.delivery.slack import slack_requests
from escalation.delivery.webhook import webhook_requests


class NotDeliverable(ValueError):
    """The target kind has no delivery (e.g. ``oncall_schedule``); skipped, not failed."""


@dataclass(frozen=True)
class Endpoints:
    """Vendor endpoints and the mail sender (DESIGN.md §12 environment names)."""

    pagerduty_url: str = pagerduty.DEFAULT_URL
    opsgenie_url: str = opsgenie.DEFAULT_URL
    smtp_from: str = "escalation@localhost"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Endpoints":
        return cls(pagerduty_url=env.get("ESCALATION_PAGERDUTY_URL") or pagerduty.DEFAULT_URL,
                   opsgenie_url=env.get("ESCALATION_OPSGENIE_URL") or opsgenie.DEFAULT_URL,
                   smtp_from=env.get("ESCALATION_SMTP_FROM") or "escalation@localhost")


@dataclass(frozen=True)
class Plan:
    requests: tuple[Request, ...]
    alerts: tuple[dict, ...] | None = None   # Alertmanager: the open alerts of the key afterwards


def secret(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise MissingSecret(f"environment variable {name} is not set")
    return value


def plan(output: dict, key: bytes | None, name: str, target, env: Mapping[str, str], endpoints: Endpoints,
         open_alerts: tuple[dict, ...] = ()) -> Plan:
    """``target`` is an agreement notification target model (``target.kind`` selects the mapper)."""
    kind = target.kind
    if kind == "pagerduty":
        return Plan(tuple(pagerduty.pagerduty_requests(output, secret(env, target.routing_key_env),
                                                       endpoints.pagerduty_url)))
    if kind == "opsgenie":
        responders = [r.model_dump(exclude_none=True) for r in target.responders]
        return Plan(tuple(opsgenie.opsgenie_requests(output, secret(env, target.api_key_env), responders,
                                                     endpoints.opsgenie_url)))
    if kind == "slack":
        return Plan(tuple(slack_requests(output, secret(env, target.webhook_url_env))))
    if kind == "webhook":
        key_ = secret(env, target.secret_env) if target.secret_env else None
        return Plan(tuple(webhook_requests(output, target.url, key_)))
    if kind == "email":
        return Plan(tuple(mail_requests(output, name, target.address, endpoints.smtp_from)))
    if kind == "kafka":
        return Plan((ProduceRequest(target.topic, key, orjson.dumps(output)),))
    if kind == "alertmanager":
        url = target.url or secret(env, target.url_env)
        requests, alerts = alertmanager.alertmanager_plan(output, url, open_alerts)
        return Plan(tuple(requests), alerts)
    raise NotDeliverable(f"target kind {kind!r} has no delivery")
