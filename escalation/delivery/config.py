"""The deliverer's configuration from live settings: shared by ``escalation deliver`` and
``escalation run --deliver`` (DESIGN.md §12).

The deliverers form the consumer group ``<app_id>-deliver``; vendor endpoints and the mail
server come from the environment names of DESIGN.md §12 (``ESCALATION_PAGERDUTY_URL``,
``ESCALATION_OPSGENIE_URL``, ``ESCALATION_SMTP_URL``, ``ESCALATION_SMTP_FROM``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from escalation.delivery.plan import Endpoints
from escalation.delivery.retry import RetryPolicy
from escalation.delivery.worker import DeliverConfig
from escalation.secrets import remember

__all__ = ["deliver_config"]


def deliver_config(settings, bootstrap: str, max_age: float = 3600.0,
                   limits: Mapping[str, tuple[int, float]] | None = None, env=None) -> DeliverConfig:
    """The deliverer's configuration: topics and group from ``settings``, Kafka client tuning of
    its profile, give up an output after ``max_age`` seconds, token buckets ``limits`` per target
    kind (:func:`escalation.delivery.ratelimit.parse_limit`), endpoints from ``env``
    (default: the process environment). The SMTP URL is remembered as a secret (redacted in logs)."""
    env = os.environ if env is None else env
    tuning = settings.client_tuning()
    remember(env.get("ESCALATION_SMTP_URL"))
    return DeliverConfig(
        bootstrap=bootstrap, notifications=f"{settings.topic_prefix}notifications",
        deliveries=f"{settings.topic_prefix}deliveries", group=f"{settings.app_id}-deliver",
        client_kwargs=settings.aiokafka_security(),
        session_timeout=tuning.get("broker_session_timeout", 10.0),
        heartbeat=tuning.get("broker_heartbeat_interval", 3.0),
        max_batch_size=tuning.get("producer_max_batch_size", 16384),
        policy=RetryPolicy(max_age=max_age), limits=dict(limits or {}), endpoints=Endpoints.from_env(env),
        smtp_url=env.get("ESCALATION_SMTP_URL") or None)
