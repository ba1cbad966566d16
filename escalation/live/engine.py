"""The live engine's state machinery apart from the Faust wiring (see ``app.py``). No Kafka here.

- :class:`Partitions`: two core :class:`~escalation.core.engine.Processor` per input partition
  (tickets, metrics and ticks of partition p form one stream; tickets and metrics keep separate
  clocks, see the class), with ``desk=None``: penalties, credits and report figures come out as
  records for the desk. Their state lives in four tables, each value tagged with its partition
  ``p`` (a rebuild after a rebalance reads only its own): ``incidents`` (ticket -> incident, or a
  tombstone once closed), ``services`` (service -> SLO streams and states), ``figures``
  (``<agreement>#<source>`` -> that processor's report figures) and ``clocks`` (``<source>`` ->
  its clock and mark).
- :class:`DeskBook`: one :class:`~escalation.core.money.desk.Desk` per partition of the internal desk
  topic (keyed by agreement), whose sources are the input processors (2 per partition); tables ``desks``
  (agreement -> desk state) and ``marks`` (``<q>`` -> every source's mark at desk partition q).
- helpers: dead-letter records and ticks.

Table values are bytes: ``b"<p>\n"`` + the JSON of the value (orjson). The partition prefix lets a
rebuild skip other partitions without decoding them, and a bytes value is one object for the
garbage collector instead of a tree of dicts (the tables hold every open incident).

Batches: between :meth:`Partitions.begin` and :meth:`Partitions.end` state changes stay in memory;
``end`` returns the table writes (one per changed key per batch). ``discard`` forgets the
in-memory state so the next record reloads it from the tables (a failed batch, a rebalance).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from escalation.core.contract.registry import Registry
from escalation.core.engine import Processor
from escalation.core.events import MetricObserved, Rejected
from escalation.core.money.desk import DESK_ITEMS, Desk, item_from_dict, item_to_dict
from escalation.core.tickets.state import Incident

#: outputs a tick fires at their deadline (their ``time`` is the due instant: deadline latency)
DEADLINE_TYPES = frozenset({"sla.warning", "sla.breached", "escalation.triggered", "escalation.repeated"})


def deadletter_record(reason: str, value: bytes | None, key: bytes | None, topic: str, partition: int,
                      offset: int, duplicate: bool = False) -> dict:
    """The dead-letter value: reason, where the record was, and its bytes (utf-8 text or base64);
    ``duplicate: true`` marks a repeated id with other content (ignored, shown, DESIGN.md §10)."""
    rec: dict[str, Any] = {"reason": reason, "topic": topic, "partition": partition, "offset": offset}
    if duplicate:
        rec["duplicate"] = True
    for name, raw in (("key", key), ("value", value)):
        if raw is None:
            rec[name] = None
            continue
        try:
            rec[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            rec[name] = base64.b64encode(raw).decode()
            rec[f"{name}_encoding"] = "base64"
    return rec


def parse_tick(value: bytes) -> datetime:
    data = orjson.loads(value)
    instant = datetime.fromisoformat(str(data["tick"]).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError("naive tick instant")
    return instant


def pack(p: int, data: Any) -> bytes:
    """A table value: partition prefix, then JSON."""
    return b"%d\n%b" % (p, orjson.dumps(data))


def unpack(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\n")
    return int(head), orjson.loads(body)


def _of(table: Any, p: int):
    """(key, value) of ``table``'s entries that belong to partition ``p`` (others are not decoded)."""
    prefix = b"%d\n" % p
    for key, raw in list(table.items()):
        if raw and raw.startswith(prefix):
            yield key, orjson.loads(raw[len(prefix):])


def desk_record(item, src: int) -> bytes:
    """An internal desk-topic record: a penalty, credit or report partial from input partition ``src``."""
    return orjson.dumps({**item_to_dict(item), "src": src})


def mark_record(src: int, at: datetime, inclusive: bool) -> bytes:
    """An internal desk-topic record: input partition ``src`` has fired everything up to ``at``."""
    return orjson.dumps({"kind": "mark", "src": src, "at": at.isoformat(), "inclusive": inclusive})


@dataclass(frozen=True)
class StateTables:
    incidents: Any
    services: Any
    figures: Any
    clocks: Any


class Partitions:
    """The input side: two core Processors per input partition over :class:`StateTables`.

    Partition p has a ticket processor (source ``p``: incidents; its clock moves with ticket
    events and ticks) and a metric processor (source ``P + p``: SLO states; its clock moves with
    metric events and ticks). Tickets and metrics are separate topics, and Kafka orders records
    per topic partition only: with one clock per partition a metric slice consumed before an
    older ticket event would push the ticket's deadlines ahead of its events. Each processor's
    clock follows one ordered topic partition plus the ticks; both report figures and marks to
    the desk as separate sources (the desk has ``2 P`` sources). Replay has one clock for all,
    and for time-ordered input the outputs are the same.
    """

    def __init__(self, registry: Registry, tables: StateTables, partitions: int, grace: timedelta = timedelta(0)) -> None:
        self.registry, self.tables, self.partitions, self.grace = registry, tables, partitions, grace
        self._procs: dict[int, Processor] = {}   # source -> processor
        self._marks: dict[int, tuple[datetime, bool]] = {}
        self._sent: dict[int, tuple[datetime, bool]] = {}   # marks as last written / sent
        self.fired: list[datetime] = []  # due instants of deadline outputs fired by ticks
        # desk records (penalties, credits, report figures) with their source, for the caller to
        # send and clear; tick/event return only the contract outputs
        self.outbox: list[tuple[int, Any]] = []

    def _split(self, src: int, outputs: list) -> list:
        kept = []
        for out in outputs:
            if isinstance(out, DESK_ITEMS):
                self.outbox.append((src, out))
            else:
                kept.append(out)
        return kept

    @property
    def sources(self) -> int:
        return 2 * self.partitions

    def source(self, p: int, metric: bool) -> int:
        return self.partitions + p if metric else p

    # -- state
    def processor(self, src: int) -> Processor:
        proc = self._procs.get(src)
        if proc is None:
            proc = self._procs[src] = self._load(src)
        return proc

    def _load(self, src: int) -> Processor:
        proc = Processor(self.registry, metric_grace=self.grace, desk=None, forget_closed=True, track_touched=True)
        t, p, metric = self.tables, src % self.partitions, src >= self.partitions
        raw = t.clocks.get(str(src))
        if raw:
            clock = unpack(raw)[1]
            proc.now = datetime.fromisoformat(clock["now"]) if clock["now"] else None
            if clock.get("mark"):
                self._marks[src] = self._sent[src] = (datetime.fromisoformat(clock["mark"][0]), clock["mark"][1])
        if not metric:
            for key, value in _of(t.incidents, p):
                if "incident" in value:
                    proc.adopt(Incident.from_dict(value["incident"]))
                else:
                    proc.closed[key] = value["closed"]
        else:
            for service, value in _of(t.services, p):
                proc.metrics.load_service(service, value)
        suffix = f"#{src}"
        for key, value in _of(t.figures, p):
            if key.endswith(suffix):
                proc.metrics.load_report(key[: -len(suffix)], value)
        proc.metrics.reschedule()
        proc.touched.clear()
        proc.metrics.dirty.clear()
        proc.metrics.dirty_reports.clear()
        return proc

    def discard(self) -> None:
        """Forget every partition's in-memory state (failed batch, rebalance): reload on next use."""
        self._procs.clear()
        self._marks.clear()
        self._sent.clear()
        self.outbox.clear()

    def _mark(self, src: int, at: datetime, inclusive: bool) -> None:
        old = self._marks.get(src)
        if old is None or (at, inclusive) > old:
            self._marks[src] = (at, inclusive)

    # -- input
    def tick(self, p: int, instant: datetime) -> list:
        """Fire partition ``p``'s deadlines and period closes due at or before ``instant``."""
        outputs: list = []
        for src in (self.source(p, False), self.source(p, True)):
            outputs += self._split(src, self.processor(src).advance_to(instant, inclusive=True))
            self._mark(src, instant, True)
        for out in outputs:
            if isinstance(out, dict) and out["type"] in DEADLINE_TYPES:
                self.fired.append(datetime.fromisoformat(out["time"]))
        return outputs

    def event(self, p: int, event) -> tuple[list, str | None, bool]:
        """Apply one decoded input event as replay does (``Processor.step``): (outputs, rejection
        reason or None, whether it is a repeated id with other content); desk records go to
        :attr:`outbox`.

        A rejected event changes nothing: no deadline fires, the clock and the mark stay. A
        repeated id with other content is ignored too; its reason is returned (for the dead
        letters) with no outputs."""
        src = self.source(p, isinstance(event, MetricObserved))
        try:
            applied = self.processor(src).step(event)
        except Rejected as err:
            return [], err.reason, False
        if applied.duplicate:
            return [], applied.conflict, applied.conflict is not None
        self._mark(src, event.time, False)  # event.time >= start: the clock passed both
        return self._split(src, applied.outputs), None, False

    # -- batches
    def end(self) -> tuple[list[tuple[Any, int, str, Any]], dict[int, tuple[datetime, bool]]]:
        """(table writes ``(table, p, key, value)``, marks that moved ``{source: (instant, inclusive)}``)."""
        writes: list = []
        t = self.tables
        for src, proc in self._procs.items():
            p = src % self.partitions
            for key in sorted(proc.touched):
                if key in proc.incidents:
                    writes.append((t.incidents, p, key, pack(p, {"incident": proc.incidents[key].to_dict()})))
                elif key in proc.closed:
                    writes.append((t.incidents, p, key, pack(p, {"closed": proc.closed[key]})))
            for service in sorted(proc.metrics.dirty):
                writes.append((t.services, p, service, pack(p, proc.metrics.service_state(service))))
            for agreement in sorted(proc.metrics.dirty_reports):
                state = proc.metrics.report_state(agreement)
                if state is not None:
                    writes.append((t.figures, p, f"{agreement}#{src}", pack(p, state)))
            proc.touched.clear()
            proc.metrics.dirty.clear()
            proc.metrics.dirty_reports.clear()
        moved = {src: m for src, m in self._marks.items() if self._sent.get(src) != m}
        for src, (at, inclusive) in moved.items():
            proc = self._procs.get(src)
            now = proc.now.isoformat() if proc is not None and proc.now is not None else None
            p = src % self.partitions
            writes.append((t.clocks, p, str(src), pack(p, {"now": now, "mark": [at.isoformat(), inclusive]})))
            self._sent[src] = (at, inclusive)
        return writes, moved

    def sizes(self) -> tuple[int, int]:
        """(open incidents, due-index entries) over the loaded partitions."""
        return (sum(len(p.incidents) for p in self._procs.values()),
                sum(p.due_count() for p in self._procs.values()))


def key_owner(q: int, partitions: int):
    """Whether an agreement id, as a record key, lands on partition ``q`` of a topic with
    ``partitions`` partitions (the producer's default partitioner: murmur2). The desk of ``q``
    keeps the terms (DESIGN.md §13 renewal) of exactly those agreements, where their
    ``agreement.terminated`` records arrive."""
    from aiokafka.partitioner import murmur2

    return lambda agreement: (murmur2(agreement.encode()) & 0x7FFFFFFF) % partitions == q


class DeskBook:
    """The desk side: one Desk per desk partition over the ``desks`` and ``marks`` tables."""

    def __init__(self, registry: Registry, sources: int, desks: Any, marks: Any,
                 grace: timedelta = timedelta(0)) -> None:
        self.registry, self.sources, self.desks, self.marks, self.grace = registry, sources, desks, marks, grace
        self._desks: dict[int, Desk] = {}
        self._touched: set[int] = set()

    def desk(self, q: int) -> Desk:
        desk = self._desks.get(q)
        if desk is None:
            desk = self._desks[q] = Desk(self.registry, self.sources, self.grace, owns=key_owner(q, self.sources // 2))
            for agreement, value in _of(self.desks, q):
                desk.load(agreement, value)
            saved = self.marks.get(str(q))
            if saved:
                desk.load_marks(unpack(saved)[1])
            desk.dirty.clear()
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

    def release(self) -> list[dict]:
        outputs: list[dict] = []
        for q in sorted(self._touched):
            outputs += self._desks[q].release()
        return outputs

    def end(self) -> list[tuple[Any, int, str, Any]]:
        writes: list = []
        for q in sorted(self._touched):
            desk = self._desks[q]
            for agreement in sorted(desk.dirty):
                writes.append((self.desks, q, agreement, pack(q, desk.state_of(agreement))))
            desk.dirty.clear()
            writes.append((self.marks, q, str(q), pack(q, desk.marks_dict())))
        self._touched.clear()
        return writes

    def discard(self) -> None:
        self._desks.clear()
        self._touched.clear()

    def pending(self) -> int:
        """Money records waiting for the marks, over the loaded desk partitions."""
        return sum(len(st.pending) for desk in self._desks.values() for st in desk.states.values())

