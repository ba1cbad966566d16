"""Which input offsets may be committed: only those below every unfinished record.

Invariants: for each partition the committable offset is the smallest offset still in flight, or
one past the highest offset seen when nothing is in flight; it never moves backwards, so a record
whose deliveries are not all written is never committed past (a crash re-reads it).
"""

from __future__ import annotations

from typing import Hashable


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[Hashable, dict[int, int]] = {}   # partition -> offset -> open jobs
        self._next: dict[Hashable, int] = {}                 # partition -> one past the highest seen
        self._committed: dict[Hashable, int] = {}

    def add(self, tp: Hashable, offset: int, jobs: int) -> None:
        """Record ``offset`` of ``tp`` with ``jobs`` deliveries still to finish (0: done already)."""
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        if jobs:
            self._pending.setdefault(tp, {})[offset] = jobs

    def done(self, tp: Hashable, offset: int) -> None:
        pending = self._pending.get(tp, {})
        if offset in pending:
            pending[offset] -= 1
            if pending[offset] <= 0:
                del pending[offset]

    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def forget(self, tps) -> None:
        """Partitions taken away by a rebalance: their records are the new owner's now."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)

    def committable(self) -> dict[Hashable, int]:
        """Offsets to commit now (only partitions whose committable offset moved forward)."""
        out = {}
        for tp, nxt in self._next.items():
            pending = self._pending.get(tp)
            offset = min(pending) if pending else nxt
            if offset > self._committed.get(tp, -1):
                out[tp] = offset
        return out

    def committed(self, offsets: dict[Hashable, int]) -> None:
        for tp, offset in offsets.items():
            self._committed[tp] = max(offset, self._committed.get(tp, -1))
