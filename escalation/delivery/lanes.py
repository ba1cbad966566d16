"""Order per (target, dedup_key): a job starts only after the previous job of its lane finished.

Invariants: jobs of one lane run one at a time in submission order (so a resolve never overtakes
its trigger, even while the trigger is being retried); jobs of different lanes run concurrently;
a failed or cancelled job does not block its successors. The per-target queue depth gauge counts
jobs submitted and not yet finished.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Hashable

from escalation.delivery import metrics


class Lanes:
    def __init__(self) -> None:
        self._tails: dict[Hashable, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()

    def submit(self, lane: Hashable, target: str, work: Callable[[], Awaitable[None]]) -> asyncio.Task:
        previous = self._tails.get(lane)
        metrics.queued(target, 1)
        task = asyncio.get_running_loop().create_task(self._run(previous, target, work))
        self._tails[lane] = task
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(lane, t))
        return task

    async def _run(self, previous: asyncio.Task | None, target: str, work) -> None:
        try:
            if previous is not None:
                # asyncio.wait: never raises the predecessor's error, and cancelling this job
                # does not cancel the predecessor
                await asyncio.wait([previous])
            await work()
        finally:
            metrics.queued(target, -1)

    def _finished(self, lane: Hashable, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._tails.get(lane) is task:
            del self._tails[lane]

    def pending(self) -> int:
        return len(self._tasks)

    async def cancel(self, tasks=None) -> None:
        """Cancel ``tasks`` (default: all) and wait until they have stopped."""
        chosen = [t for t in (self._tasks if tasks is None else tasks) if not t.done()]
        for task in chosen:
            task.cancel()
        if chosen:
            await asyncio.wait(chosen)
