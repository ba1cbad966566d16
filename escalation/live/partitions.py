"""The input side of the live engine: core Engines per input partition over a state store. No Kafka.

:class:`Partitions` runs two core :class:`~escalation.core.engine.Engine` per input partition
(tickets, metrics and ticks of partition p form one stream; tickets and metrics keep separate
clocks, see the class), with ``desk=None``: penalties, credits, report figures and terminations
come out as the steps' settlements, for the desk side (:mod:`escalation.live.desk_book`). Every
record enters an engine through ``Engine.step`` exactly as in replay; a tick is a
:class:`~escalation.core.events.Tick`.

State lives in a :class:`~escalation.live.store.StateStore`, each entry owned by its partition
``p`` (a rebuild after a rebalance reads only its own): ``incidents`` (ticket -> incident, or a
tombstone once closed), ``services`` (service -> SLO streams and states), ``figures``
(``<agreement>#<source>`` -> that engine's report figures) and ``clocks`` (``<source>`` -> its
clock and mark).

Batches: between batches state stays in memory, decoded, except open incidents: each is kept as
its stored value, shared with the table, and decoded again when a step asks for it
(:mod:`escalation.live.frozen`); an open incident is saved with its next due instant, so a load
schedules it without decoding it (:mod:`escalation.live.saved_due`). Every step's ``changed`` entries are collected and
:meth:`Partitions.end` puts each once (its value at the end of the batch) and returns the store's
writes. ``discard`` forgets the in-memory state so the next record reloads it
from the store (a failed batch, a rebalance).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from escalation.core.changes import FIGURES, INCIDENTS, SERVICES
from escalation.core.contract.registry import Registry
from escalation.core.engine import Engine
from escalation.core.events import MetricObserved, Rejected, Tick
from escalation.core.marks import Marks
from escalation.core.outputs import OutputType
from escalation.live.frozen import FrozenIncidents
from escalation.live.saved_due import UNKNOWN, SavedDues
from escalation.live.store import CLOCKS, StateStore, note_of

log = logging.getLogger(__name__)

#: outputs a tick fires at their deadline (their ``time`` is the due instant: deadline latency)
DEADLINE_TYPES = frozenset({OutputType.SLA_WARNING, OutputType.SLA_BREACHED, OutputType.ESCALATION_TRIGGERED,
                            OutputType.ESCALATION_REPEATED})


@dataclass(slots=True)
class Stepped:
    """What one input record did on its partition."""

    outputs: list                                          # contract outputs, in order
    settlements: list[tuple[int, Any]] = field(default_factory=list)  # (source, desk record)
    rejected: str | None = None   # dead-letter reason: rejected, or a repeated id with other content
    conflict: bool = False        # ``rejected`` is a repeated id's conflict (marked ``duplicate``)


class Partitions:
    """The input side: two core Engines per input partition over a :class:`StateStore`.

    Partition p has a ticket engine (source ``p``: incidents; its clock moves with ticket events
    and ticks) and a metric engine (source ``P + p``: SLO states; its clock moves with metric
    events and ticks). Tickets and metrics are separate topics, and Kafka orders records per
    topic partition only: with one clock per partition a metric slice consumed before an older
    ticket event would push the ticket's deadlines ahead of its events. Each engine's clock
    follows one ordered topic partition plus the ticks; both report figures and marks to the
    desk as separate sources (the desk has ``2 P`` sources). Replay has one clock for all, and for
    time-ordered input the outputs are the same.
    """

    def __init__(self, registry: Registry, store: StateStore, partitions: int, grace: timedelta = timedelta(0)) -> None:
        self.registry, self.store, self.partitions, self.grace = registry, store, partitions, grace
        self._engines: dict[int, Engine] = {}     # source -> engine
        self._changed: dict[int, set] = {}        # source -> (table, key) changed in this batch
        self._marks, self._sent = Marks(), Marks()  # every source's mark; as last written / sent
        self.fired: list[datetime] = []  # due instants of deadline outputs fired by ticks
        self._dues = SavedDues(registry)

    @property
    def sources(self) -> int:
        return 2 * self.partitions

    def source(self, p: int, metric: bool) -> int:
        return self.partitions + p if metric else p

    # -- state
    def engine(self, src: int) -> Engine:
        engine = self._engines.get(src)
        if engine is None:
            engine = self._engines[src] = self._load(src)
        return engine

    def _load(self, src: int) -> Engine:
        """Source ``src``'s engine as saved: its clock and mark, its incidents (ticket source) or
        services (metric source), and its report figures."""
        started = time.perf_counter()
        engine = Engine(self.registry, metric_grace=self.grace, desk=None, forget_closed=True,
                        incidents=FrozenIncidents(self.store.load))
        p, metric = src % self.partitions, src >= self.partitions
        clock = self.store.get(CLOCKS, str(src))
        if clock:
            engine.now = datetime.fromisoformat(clock["now"]) if clock["now"] else None
            if clock.get("mark"):
                at, inclusive = datetime.fromisoformat(clock["mark"][0]), clock["mark"][1]
                self._marks.advance(src, at, inclusive)
                self._sent.advance(src, at, inclusive)
        table, entries = SERVICES if metric else INCIDENTS, 0
        for key, stored in self.store.entries(table, p):
            entries += 1
            if table == INCIDENTS:
                due = self._dues.due(note_of(stored))
                if due is not UNKNOWN:  # an open incident whose due instant was saved with it
                    engine.incidents.freeze(key, stored)
                    engine.schedule_saved(key, due)
                    continue
            value = self.store.load(stored)
            engine.load_entry(table, key, value)
            if table == INCIDENTS and "incident" in value:
                engine.incidents.freeze(key, stored)  # scheduled from the decoded one; kept as stored
        suffix = f"#{src}"
        for key, value in self.store.items(FIGURES, p):
            if key.endswith(suffix):
                engine.load_entry(FIGURES, key[: -len(suffix)], value)
        engine.loaded()
        log.info("loaded source %d (partition %d): %d %s in %.2f s", src, p, entries, table,
                 time.perf_counter() - started)  # restart cost (bench/live_recovery.py)
        return engine

    def next_due(self, p: int) -> datetime | None:
        """The earliest instant partition ``p``'s engines have something due at, None when nothing
        is or they are not loaded yet (the ticker asks; loading is the agent's job, at a batch)."""
        dues = [engine.next_due() for src in (self.source(p, False), self.source(p, True))
                if (engine := self._engines.get(src)) is not None]
        return min((d for d in dues if d is not None), default=None)

    def discard(self) -> None:
        """Forget every partition's in-memory state (failed batch, rebalance): reload on next use."""
        self._engines.clear()
        self._changed.clear()
        self._marks.clear()
        self._sent.clear()
        self.store.discard()

    def _step(self, src: int, item) -> Any:
        result = self.engine(src).step(item)
        if result.changed:
            self._changed.setdefault(src, set()).update(result.changed)
        return result

    # -- input
    def step(self, p: int, item) -> Stepped:
        """One decoded input event or :class:`Tick` of partition ``p``, as replay steps it.

        A tick steps both of the partition's engines (ticket source first). A rejected event
        changes nothing: no deadline fires, the clock and the mark stay. A repeated id is
        ignored; with other content, its reason comes back as ``rejected`` with ``conflict``."""
        if isinstance(item, Tick):
            return self._tick(p, item)
        src = self.source(p, isinstance(item, MetricObserved))
        try:
            result = self._step(src, item)
        except Rejected as err:
            return Stepped([], rejected=err.reason)
        if result.duplicate:
            return Stepped([], rejected=result.conflict, conflict=result.conflict is not None)
        self._marks.advance(src, item.time, False)  # item.time >= start: the clock passed both
        return Stepped(result.outputs, [(src, s) for s in result.settlements])

    def _tick(self, p: int, tick: Tick) -> Stepped:
        stepped = Stepped([])
        for src in (self.source(p, False), self.source(p, True)):
            result = self._step(src, tick)
            stepped.outputs += result.outputs
            stepped.settlements += [(src, s) for s in result.settlements]
            self._marks.advance(src, tick.at, tick.inclusive)
        self.fired += [out.time for out in stepped.outputs if out.type in DEADLINE_TYPES]
        return stepped

    # -- batches
    def end(self) -> tuple[list[tuple[Any, int, str, Any]], dict[int, tuple[datetime, bool]]]:
        """(the store's writes ``(table, p, key, value)``, marks that moved ``{source: (instant, inclusive)}``)."""
        for src, changed in self._changed.items():
            engine, p = self._engines[src], src % self.partitions
            for table, key in sorted(changed):
                value = engine.entry(table, key)
                if value is None:
                    continue
                if table == INCIDENTS and "incident" in value:  # open: saved with its due instant
                    engine.incidents.freeze(key, self.store.put(table, p, key, value, self._dues.note(engine, key)))
                else:
                    self.store.put(table, p, f"{key}#{src}" if table == FIGURES else key, value)
        self._changed.clear()
        for engine in self._engines.values():  # the incidents a batch only read: frozen again
            engine.incidents.refreeze()
        moved = {src: m for src, m in self._marks.items() if self._sent.of(src) != m}
        for src, (at, inclusive) in moved.items():
            engine = self._engines.get(src)
            now = engine.now.isoformat() if engine is not None and engine.now is not None else None
            self.store.put(CLOCKS, src % self.partitions, str(src), {"now": now, "mark": [at.isoformat(), inclusive]})
            self._sent.advance(src, at, inclusive)
        return self.store.changes(), moved

    def frozen(self) -> int:
        """Open incidents kept as their stored value (all of them between batches; O(open), for tests and benchmarks)."""
        return sum(e.incidents.frozen() for e in self._engines.values())

    def sizes(self) -> tuple[int, int]:
        """(open incidents, due-index entries) over the loaded partitions."""
        return (sum(len(e.incidents) for e in self._engines.values()),
                sum(e.due_count() for e in self._engines.values()))
