"""When to try a delivery again (DESIGN.md §12).

Invariants: a 2xx is accepted; network errors (no status), 5xx and 429 are retried; every other
status fails at once. Waits grow from 0.5 s, doubling to at most 60 s, with "equal jitter" (a
wait is uniform in [half, full] of the step, so workers that failed together spread out but each
still backs off); a ``Retry-After`` (seconds or an HTTP date) replaces the computed wait. No wait
ever runs past the give-up instant: an attempt that cannot happen before ``max_age`` has passed
since the first attempt is not made, and the delivery fails with the last outcome.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Outcome:
    """What one attempt got. ``status``: HTTP status, SMTP reply code, or None (network/Kafka)."""

    ok: bool
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    error: str | None = None


def http_outcome(status: int, retry_after: str | None = None, error: str | None = None,
                 now: datetime | None = None) -> Outcome:
    if 200 <= status < 300:
        return Outcome(True, False, status)
    retryable = status == 429 or status >= 500
    return Outcome(False, retryable, status, parse_retry_after(retry_after, now) if retryable else None,
                   error or f"HTTP {status}")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After``: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 0.5
    cap: float = 60.0
    max_age: float = 3600.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Wait after the ``attempt``-th failure (1-based): the step 0.5 s · 2^(n-1), at most 60 s,
        plus up to a quarter of it as jitter (never above 60 s). The jitter is added, not taken
        off, so no wait is shorter than the documented step (DESIGN.md §12: 0.5 s doubling)."""
        step = min(self.cap, self.base * 2 ** min(attempt - 1, 30))
        return min(self.cap, rng.uniform(step, step * 1.25))

    def next_wait(self, outcome: Outcome, attempt: int, age: float, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None: give up (failed for good or too old).

        ``age``: seconds since the first attempt."""
        if outcome.ok or not outcome.retryable:
            return None
        wait = outcome.retry_after if outcome.retry_after is not None else self.backoff(attempt, rng)
        if age + wait >= self.max_age:
            return None
        return wait
