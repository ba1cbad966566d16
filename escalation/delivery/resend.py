"""Re-posting open Alertmanager alerts every ``resend`` (DESIGN.md §12).

Alertmanager ends an alert that is not re-posted within its ``resolve_timeout`` (default 5 m), so
while a dedup_key's alert is open (triggered, not resolved) the deliverer posts it again every
``resend`` of its target (default 1 m). Best effort by design: a failed re-post is counted and
tried again at the next interval, never logged in ``deliveries`` (it is not a delivery of an
output, and the next one carries the same alert).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from escalation.agreement.durations import parse_duration
from escalation.delivery import metrics
from escalation.delivery.alertmanager import resend_request
from escalation.delivery.plan import secret
from escalation.delivery.requests import MissingSecret
from escalation.delivery.targets import target_of


class Resender:
    def __init__(self, deliverer, tick: float = 1.0) -> None:
        self.deliverer, self.tick = deliverer, tick
        self._last: dict[tuple[str, str], float] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            await self.once(time.monotonic())

    async def once(self, now: float) -> int:
        """Re-post the alerts of every target whose ``resend`` has passed; returns how many posts."""
        d, posts = self.deliverer, 0
        for (agreement, name), alerts in d.log.firing().items():
            target = target_of(d.registry, agreement, None, name)
            if target is None or target.kind != "alertmanager":
                continue
            every = parse_duration(target.resend)
            seconds = every.total_seconds() if isinstance(every, timedelta) else 60.0
            if now - self._last.setdefault((agreement, name), now) < seconds:
                continue
            self._last[(agreement, name)] = now
            try:
                url = target.url or secret(d.env, target.url_env)
            except MissingSecret:
                continue
            outcome = await d.transport.send(resend_request(url, alerts))
            metrics.attempt("alertmanager", outcome.status)
            posts += 1
        return posts
