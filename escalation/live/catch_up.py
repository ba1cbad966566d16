"""When the ticker may tick a partition, and with which ``after`` offsets (DESIGN.md §6).

:class:`CatchUp` is the ticker's decision for one partition ``p``, given what the inputs agent
has applied of ``p``'s tickets and metrics (``applied``: the next offset to apply per topic) and
the broker's log ends (``ends``), both as :meth:`~escalation.live.offsets.InputGuard.position`
reads them. The I/O stays in the caller (``escalation.live.app._ticker``); this module reads only
the injected ``clock`` (``time.monotonic`` by default), so the rules below are unit-tested with a
fake one (tests/unit/test_catch_up.py).

The answer is the tick's ``after`` (the inputs agent applies every record below it before the
tick), or None to hold the tick back. Why each branch:

- **Caught up** (every end <= applied; a topic missing from ``applied`` counts as 0): the
  offsets applied. Nothing waits on the broker, so no record can be overtaken by the tick.
- **Behind, the consumer applying**: None. The input moves the partition's clock first, so none
  of its records is made late by a tick that overtook it in the merged stream (a deadline its
  acknowledgement would have stopped must not fire first).
- **Behind, nothing applied for ``stall_limit`` s while the consumer is not saturated**: the log
  ends. Faust stopped delivering a partition's tail (seen after restarts); holding the ticks would
  stop time for that partition for good. With the ends as ``after`` the tick brings every record
  up to them first (the InputGuard reads back what was not delivered), so none of them is late
  either. While the consumer works off a backlog (``saturated_at``: it delivered at least
  ``app.BACKLOG_RATE`` records/s; and for ``stall_limit`` s after), a partition that does not move
  is queued behind the others, not stalled: it is held as in a backlog below (reading its whole
  tail back would apply it twice and hold it in memory at once).
- **Behind for ``catch_up_limit`` s although input is being applied** (a backlog): the offsets
  applied, so time does not stop for good; the backlog's events may then be late (§6).

State per partition: (applied when last seen, since when it is unchanged, since when the partition
is behind). Any progress of ``applied`` resets the stall timer but not the catch-up timer. The
state is forgotten whenever a tick is released (caught up, stalled, or catch-up limit), so the
next call after a release starts fresh. Partitions are independent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from escalation.live.offsets import saturated_within

__all__ = ["CATCH_UP_LIMIT", "STALL_LIMIT", "CatchUp"]

#: Longest (s) the ticker holds a partition's ticks back while its input has records not applied yet.
CATCH_UP_LIMIT = 30.0
#: Longest (s) it holds them back while nothing of that input is applied (the consumer is not delivering it).
STALL_LIMIT = 2.0


class CatchUp:
    """The per-partition waiting state of the ticker and its decision (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 catch_up_limit: float = CATCH_UP_LIMIT, stall_limit: float = STALL_LIMIT) -> None:
        self.clock = clock
        self.catch_up_limit = catch_up_limit
        self.stall_limit = stall_limit
        # p -> (applied, unchanged since, behind since)
        self.waiting: dict[int, tuple[dict[str, int], float, float]] = {}

    def decide(self, p: int, applied: dict[str, int], ends: dict[str, int],
               saturated_at: float | None = None) -> dict[str, int] | None:
        """The tick's ``after`` for partition ``p``, or None to hold its tick back.
        ``saturated_at``: when the consumer was last saturated (``InputGuard.saturated_at``, on
        this ``clock``), None if never."""
        if all(end <= applied.get(topic, 0) for topic, end in ends.items()):
            self.waiting.pop(p, None)
            return applied
        now = self.clock()
        seen = self.waiting.get(p)
        if seen is None or seen[0] != applied:  # first sight, or the consumer moved on since
            seen = self.waiting[p] = (applied, now, now if seen is None else seen[2])
        if now - seen[1] >= self.stall_limit and not saturated_within(saturated_at, now, self.stall_limit):
            del self.waiting[p]
            return ends
        if now - seen[2] >= self.catch_up_limit:
            del self.waiting[p]
            return applied
        return None
