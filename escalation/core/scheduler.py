"""One scheduler for everything that falls due: incident deadlines, SLO and report period closes,
the desk's money and report closes.

A :class:`Scheduler` maps a key to the one instant it is due at and hands keys back in
``(instant, key)`` order. It is a heap with lazy deletion: rescheduling or unscheduling a key
leaves its old heap entry behind, and that entry is skipped ("stale") when it reaches the top,
so every operation is O(log n) and the heap never has to be searched.

Invariants:
- A key is due at most once: ``schedule(key, due)`` replaces its previous instant, and
  ``schedule(key, None)`` unschedules it. ``len`` counts scheduled keys, not heap entries.
- ``pop_due(until, inclusive)`` yields every scheduled ``(due, key)`` with ``due < until`` (or
  ``<=`` when inclusive) in ``(due, key)`` order, removing each before it is yielded; what the
  caller schedules while iterating is seen by the same iteration if it is due in range, so one
  call fires everything due, including what firing something else made due.
- ``may_be_due(until, inclusive)`` is False only when ``pop_due(until, inclusive)`` would yield
  nothing (it reads the heap's first entry, live or stale, so True may still yield nothing).
- ``is_live(key, due)``, when given, is asked about an entry before it counts: an entry the owner's
  state no longer backs (a period closed or replaced elsewhere) is dropped as stale. Owners whose
  schedule always follows their state pass nothing.
- Pure: no I/O, no clock; instants are anything totally ordered (datetimes, microseconds).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterator
from typing import Any


class Scheduler:
    """A keyed due-instant heap (see the module docstring)."""

    __slots__ = ("_due", "_heap", "_is_live")

    def __init__(self, is_live: Callable[[Any, Any], bool] | None = None) -> None:
        self._heap: list[tuple[Any, Hashable]] = []
        self._due: dict[Hashable, Any] = {}
        self._is_live = is_live

    def __len__(self) -> int:
        return len(self._due)

    def due_of(self, key: Hashable) -> Any:
        """The instant ``key`` is due at, or None when it is not scheduled."""
        return self._due.get(key)

    def schedule(self, key: Hashable, due: Any) -> None:
        """Make ``key`` due at ``due`` (replacing what it was due at); ``None`` unschedules it."""
        if due is None:
            self._due.pop(key, None)
        elif self._due.get(key) != due:
            self._due[key] = due
            heapq.heappush(self._heap, (due, key))

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    # The two loops below run once per input in replay (every advance asks for what is due), so
    # the stale test is written out in each of them instead of being a method of its own.

    def next_due(self) -> Any:
        """The earliest instant anything is due at, or None (stale entries on top are dropped)."""
        heap, dues, is_live = self._heap, self._due, self._is_live
        while heap:
            due, key = heap[0]
            if dues.get(key) == due:
                if is_live is None or is_live(key, due):
                    return due
                del dues[key]
            heapq.heappop(heap)
        return None

    def may_be_due(self, until: Any, inclusive: bool = False) -> bool:
        """False when nothing is due before ``until`` (at it, when ``inclusive``): what ``pop_due``
        would then yield nothing for, told in O(1) without a generator. True when the earliest heap
        entry is, even a stale one (``pop_due`` then tells)."""
        heap = self._heap
        if not heap:
            return False
        due = heap[0][0]
        return due < until or (inclusive and due == until)

    def peek(self) -> tuple[Any, Hashable] | None:
        """The earliest ``(due, key)`` without removing it, or None."""
        return self._heap[0] if self.next_due() is not None else None

    def pop_due(self, until: Any, inclusive: bool = False) -> Iterator[tuple[Any, Hashable]]:
        """Remove and yield every ``(due, key)`` due before ``until`` (at it too when ``inclusive``)."""
        heap, dues, is_live = self._heap, self._due, self._is_live
        while heap:
            due, key = heap[0]
            if dues.get(key) == due:
                if is_live is None or is_live(key, due):
                    if not (due < until or (inclusive and due == until)):
                        return
                    heapq.heappop(heap)
                    del dues[key]
                    yield due, key
                    continue
                del dues[key]
            heapq.heappop(heap)
