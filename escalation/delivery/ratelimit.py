"""Token buckets per target (DESIGN.md §12): over the limit a delivery waits, never dropped.

Invariants: a bucket holds at most ``capacity`` tokens and refills at ``rate`` tokens per second;
:meth:`TokenBucket.acquire` returns only after taking one token, and waiters are served in
arrival order (one lock per bucket), so a burst drains at exactly the configured rate. Defaults:
PagerDuty 120 per 60 s per routing key, Slack 1 per second per webhook; other kinds unlimited
unless configured (``kind=COUNT/SECONDS``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

DEFAULT_LIMITS: dict[str, tuple[int, float]] = {"pagerduty": (120, 60.0), "slack": (1, 1.0)}


def parse_limit(text: str) -> tuple[str, tuple[int, float]]:
    """``pagerduty=120/60`` -> ``("pagerduty", (120, 60.0))``; ValueError when malformed."""
    kind, sep, spec = text.partition("=")
    count, slash, seconds = spec.partition("/")
    try:
        limit = (int(count), float(seconds) if slash else 1.0)
    except ValueError:
        raise ValueError(f"bad rate limit {text!r} (want KIND=COUNT/SECONDS, e.g. pagerduty=120/60)") from None
    if not sep or not kind or limit[0] < 1 or not limit[1] > 0:
        raise ValueError(f"bad rate limit {text!r} (want KIND=COUNT/SECONDS with COUNT ≥ 1, SECONDS > 0)")
    return kind, limit


@dataclass
class TokenBucket:
    capacity: int
    rate: float                                   # tokens per second
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._tokens = float(self.capacity)
        self._at = self.clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    async def acquire(self) -> None:
        async with self._lock:          # FIFO: the first waiter gets the next token
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class Limits:
    """The buckets of one deliverer, created on first use per (kind, identity)."""

    def __init__(self, limits: dict[str, tuple[int, float]] | None = None) -> None:
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def bucket(self, kind: str, identity: str) -> TokenBucket | None:
        if kind not in self.limits:
            return None
        key = (kind, identity)
        if key not in self._buckets:
            count, seconds = self.limits[kind]
            self._buckets[key] = TokenBucket(count, count / seconds)
        return self._buckets[key]
