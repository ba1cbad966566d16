"""The desk side of the live engine: one core Desk per partition of the internal desk topic. No Kafka.

The desk topic is keyed by agreement id; its records are the input sources' settlements (desk
records) and marks (:mod:`escalation.live.records`). Each desk partition ``q`` has one
:class:`~escalation.core.money.desk.Desk` whose sources are the input engines (2 per input
partition), with its state in a :class:`~escalation.live.store.StateStore`: ``desks`` (agreement
-> desk state) and ``marks`` (``<q>`` -> every source's mark at desk partition q). Batches work
as on the input side: ``end`` puts what changed and returns the store's writes, ``discard``
forgets the in-memory desks so they reload from the store.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson

from escalation.core.contract.registry import Registry
from escalation.core.money.desk import DESK_ITEMS, Desk, item_from_dict
from escalation.live.store import DESKS, MARKS, StateStore


def key_partition(key: bytes, partitions: int) -> int:
    """The partition a record with ``key`` lands on (the producer's default partitioner: murmur2)."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def key_owner(q: int, partitions: int):
    """Whether an agreement id, as a record key, lands on partition ``q`` of a topic with
    ``partitions`` partitions. The desk of ``q`` keeps the terms (DESIGN.md §13 renewal) of
    exactly those agreements, where their ``agreement.terminated`` records arrive."""
    return lambda agreement: key_partition(agreement.encode(), partitions) == q


class DeskBook:
    """The desk side: one Desk per desk partition over the ``desks`` and ``marks`` tables of ``store``."""

    def __init__(self, registry: Registry, sources: int, store: StateStore, grace: timedelta = timedelta(0)) -> None:
        self.registry, self.sources, self.store, self.grace = registry, sources, store, grace
        self._desks: dict[int, Desk] = {}
        self._touched: set[int] = set()

    def desk(self, q: int) -> Desk:
        desk = self._desks.get(q)
        if desk is None:
            desk = self._desks[q] = Desk(self.registry, self.sources, self.grace, owns=key_owner(q, self.sources // 2))
            for agreement, value in self.store.items(DESKS, q):
                desk.load(agreement, value)
            saved = self.store.get(MARKS, str(q))
            if saved:
                desk.load_marks(saved)
            desk.changed.clear()
        return desk

    def take(self, q: int, value: bytes) -> None:
        """One desk-topic record (ValueError/KeyError/TypeError if it is not one)."""
        rec = orjson.loads(value)
        desk = self.desk(q)
        self._touched.add(q)
        src = int(rec["src"])
        if not 0 <= src < self.sources:
            raise ValueError(f"desk record from unknown source partition {src} (sources: {self.sources})")
        if rec.get("kind") == "mark":
            desk.mark(src, datetime.fromisoformat(rec["at"]), bool(rec["inclusive"]))
        else:
            item = item_from_dict(rec)
            if not isinstance(item, DESK_ITEMS):
                raise ValueError("not a desk item")
            desk.submit(item, src)

    def release(self) -> list:
        outputs: list = []
        for q in sorted(self._touched):
            outputs += self._desks[q].release()
        return outputs

    def end(self) -> list:
        """Put the changed agreements and the marks of every desk touched in this batch; the writes."""
        for q in sorted(self._touched):
            desk = self._desks[q]
            for agreement in sorted(desk.changed):
                self.store.put(DESKS, q, agreement, desk.state_of(agreement))
            desk.changed.clear()
            self.store.put(MARKS, q, str(q), desk.marks_dict())
        self._touched.clear()
        return self.store.changes()

    def discard(self) -> None:
        self._desks.clear()
        self._touched.clear()
        self.store.discard()

    def pending(self) -> int:
        """Money records waiting for the marks, over the loaded desk partitions."""
        return sum(len(st.pending) for desk in self._desks.values() for st in desk.states.values())
