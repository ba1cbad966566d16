"""The live engine: one Faust app wiring topics, tables, agents and the ticker (DESIGN.md §2, §6, §9).

``build_app(settings, registry)`` is the only place the shell is wired. What runs:

- **tickets agent** on ``<prefix>tickets`` + ``<app_id>-ticks`` as ONE stream, so a tick travels the
  same ordered, committed path as the events of its partition. Per partition it keeps a due index
  (heap of ``(due, ticket)``) rebuilt lazily from the ``incidents`` table after every rebalance, so
  a tick costs O(deadlines due), not O(open incidents).
- **remedies agent** on the internal ``<app_id>-penalties`` topic keyed by agreement id: it owns the
  ``ledgers`` table (one :class:`~escalation.core.ledger.Ledger` per agreement) and turns the core's
  ``PenaltyDue`` records into ``penalty.assessed`` with the period caps applied.
- **ticker** (:mod:`escalation.live.ticker`) unless ``manual_ticks``.

Time semantics (mirror of ``Processor`` / ``escalation replay``):

- an event at time t first fires the partition's deadlines due strictly before t, then is applied
  (an event at T comes before a deadline at exactly T);
- a tick at instant T fires every deadline due at or before T (``advance_to(T, inclusive=True)``);
  the ticker stamps ticks with wall clock − ``tick_grace``, so a deadline D fires once the wall
  clock passes D + grace (within one ``tick_interval``);
- tickets and ticks are two topics merged into one stream: Kafka orders records per topic
  partition only, so an event may be consumed after a tick with a later instant. It is then
  applied late (its own time counts for the clocks) and outputs already emitted stay (§6); the
  grace exists to make this rare. Output ids are deterministic, so redelivery never pages twice.

Batches (throughput): both agents consume with ``stream.take_events(BATCH_MAX, within=BATCH_WITHIN)``.
Records of a batch are processed one by one in arrival order (so per-partition order and the time
rules above hold exactly as for one record at a time), but each incident / ledger is read from its
table at most once (open incidents stay decoded in memory across batches) and written back at most
once per batch, and the outputs are queued without awaiting each one: contract outputs and dead
letters through :class:`OutputSender` (a batching aiokafka producer; Faust's own producer must
send one record per batch on the embedded broker), penalty records with Faust's ``send_soon``.
At the end of a batch the table values are written, then the outputs are sent, then every
delivery future of the batch is awaited; only then does Faust ack the batch's offsets (and Faust
flushes the changelog before it commits them). So a crash mid-batch loses nothing: the whole
batch is consumed again and the deterministic ids absorb the repeats.
Table writes made after the loop carry the partition they belong to by setting Faust's
``current_event`` to an event of that partition (Faust picks the changelog / store partition
from it).

Records: incident table value = ``{"p": partition, "incident": Incident.to_dict()}`` (the partition
lets the index rebuild skip standby copies and other partitions); ledger table value =
``{"ledger": Ledger.to_dict()}``; ``assessed`` table: output id -> ``penalty.assessed`` (makes a
redelivered ``PenaltyDue`` re-emit the same output instead of charging the budget twice; one
small record per penalty instead of a map rewritten whole on every penalty). A legacy ledger
value with a ``"done"`` map is still honoured and migrated on its next write.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import logging
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.streams import _current_event  # Faust's "current event" (table partition); pinned faust 0.15.3

from escalation.core.events import MetricObserved, Rejected, TicketOpened, decode_event
from escalation.core.incident import PenaltyDue, advance, apply_event, next_due, open_incident
from escalation.core.ledger import Ledger, assess_penalty
from escalation.core.outputs import REMEDIES, output_id, topic_for
from escalation.core.registry import Registry
from escalation.core.state import Incident
from escalation.live import observability as obs
from escalation.live.settings import LiveSettings

__all__ = ["TopicNames", "TicketEngine", "LedgerBook", "build_app", "deadletter_record", "BATCH_MAX", "BATCH_WITHIN"]

log = logging.getLogger(__name__)

#: Most records per agent batch, and how long (s) a partial batch waits for more records. A lone
#: tick waits at most BATCH_WITHIN before it is processed (part of the deadline latency).
BATCH_MAX = 1000
BATCH_WITHIN = 0.05

#: Longest (ms) a fetch of the worker's consumer waits at the broker for records. Faust hard-codes
#: 1500 ms; the embedded Tansu broker does not answer a waiting fetch when records arrive, only at
#: the end of the wait, so every tick waited 0-1.5 s before the worker saw it (measured with
#: aiokafka: 1500 ms -> 0.13-0.65 s per hop, 100 ms -> ~0.01 s). Apache Kafka answers at once;
#: there 100 ms only costs a few idle fetch requests per second.
FETCH_MAX_WAIT_MS = 100


def shorten_fetch_wait(app: faust.App, max_wait_ms: int = FETCH_MAX_WAIT_MS) -> bool:
    """Lower the fetch wait of ``app``'s aiokafka consumer (Faust gives no setting for it)."""
    try:
        fetcher = app.consumer._thread._ensure_consumer()._fetcher  # faust 0.15.3 / aiokafka 0.14 internals
        fetcher._fetch_max_wait_ms = min(fetcher._fetch_max_wait_ms, max_wait_ms)
        return True
    except Exception:  # noqa: BLE001 - latency tweak only; never stop the worker for it
        log.debug("could not shorten the consumer fetch wait", exc_info=True)
        return False


@dataclass(frozen=True)
class TopicNames:
    """Full topic names: ``<prefix><name>`` for the contract topics, ``<app_id>-<name>`` internal."""

    tickets: str
    metrics: str
    notifications: str
    remedies: str
    timeline: str
    deadletter: str
    ticks: str
    penalties: str

    @classmethod
    def of(cls, settings: LiveSettings) -> "TopicNames":
        p, a = settings.topic_prefix, settings.app_id
        return cls(f"{p}tickets", f"{p}metrics", f"{p}notifications", f"{p}remedies", f"{p}timeline",
                   f"{p}deadletter", f"{a}-ticks", f"{a}-penalties")

    def outputs(self) -> list[str]:
        return [self.notifications, self.remedies, self.timeline]


def deadletter_record(reason: str, value: bytes | None, key: bytes | None, topic: str, partition: int,
                      offset: int) -> dict:
    """The dead-letter value: reason, where the record was, and its bytes (utf-8 text or base64)."""
    rec: dict[str, Any] = {"reason": reason, "topic": topic, "partition": partition, "offset": offset}
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


def _penalty_to_dict(due: PenaltyDue) -> dict:
    return {"source": due.source, "agreement": due.agreement, "revision": due.revision, "remedy": due.remedy,
            "ticket": due.ticket, "clock": due.clock, "cycle": due.cycle, "priority": due.priority,
            "at": due.at.isoformat(), "amount": str(due.amount)}


def _penalty_from_dict(d: dict) -> PenaltyDue:
    return PenaltyDue(d["source"], d["agreement"], d["revision"], d["remedy"], d["ticket"], d["clock"], d["cycle"],
                      d["priority"], datetime.fromisoformat(d["at"]), Decimal(d["amount"]))


class TicketEngine:
    """Per-partition ticket processing over a mapping-like table (a Faust Table, or a dict in tests).

    Pure apart from the table: returns outputs (dicts and ``PenaltyDue``); the agent publishes them.
    Outside a batch every change is written to the table at once. Between :meth:`begin` and
    :meth:`end` changes stay in memory and :meth:`end` returns the changed incidents
    ``(partition, key, value)`` for the caller to write (once each per batch). Open incidents stay
    decoded across batches (no re-decoding of the table value); closed ones are dropped at the end
    of their batch. :meth:`reset_index` (rebalance) and :meth:`discard` (failed batch) forget the
    decoded copies and the due index.
    """

    def __init__(self, registry: Registry, table: Any) -> None:
        self.registry = registry
        self.table = table
        self._heaps: dict[int, list] = {}
        self._scheduled: dict[int, dict[str, datetime]] = {}
        self._open: dict[int, set[str]] = {}
        # decoded open incidents of the indexed partitions, kept across batches (the table is only
        # written by this engine; rebalances reset it): key -> [partition, Incident, dirty]
        self._cache: dict[str, list] = {}
        self._dirty: dict[str, None] = {}  # keys changed in this batch, in first-change order
        self._batching = False
        self.fired: list[datetime] = []  # due instants fired since the caller last cleared it

    # -- batches
    def begin(self) -> None:
        self._batching = True

    def end(self) -> list[tuple[int, str, dict]]:
        """Close the batch: ``(partition, key, table value)`` of every incident it changed."""
        self._batching = False
        writes = []
        for key in self._dirty:
            entry = self._cache[key]
            entry[2] = False
            p, incident = entry[0], entry[1]
            writes.append((p, key, {"p": p, "incident": incident.to_dict()}))
            if incident.lifecycle == "closed":
                del self._cache[key]  # ended: rarely touched again, read from the table if it is
        self._dirty.clear()
        return writes

    def discard(self) -> None:
        """Drop a failed batch: its unwritten changes, the decoded incidents and the due index."""
        self._batching = False
        self.reset_index()

    def _load(self, key: str) -> Incident | None:
        hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        stored = self.table.get(key)
        if not stored:
            return None
        incident = Incident.from_dict(stored["incident"])
        if self._batching:
            self._cache[key] = [stored["p"], incident, False]
        return incident

    def _store(self, p: int, key: str, incident: Incident) -> None:
        if not self._batching:
            self.table[key] = {"p": p, "incident": incident.to_dict()}
            self._cache.pop(key, None)
        else:
            self._cache[key] = [p, incident, True]
            self._dirty[key] = None

    def _forget(self, key: str) -> None:
        """An incident whose decoded copy may be wrong: re-read it from the table (only if unchanged)."""
        entry = self._cache.get(key)
        if entry is not None and not entry[2]:
            del self._cache[key]

    # -- due index
    def reset_index(self) -> None:
        """Forget every partition's index (after a rebalance); each is rebuilt on its next record."""
        self._heaps.clear()
        self._scheduled.clear()
        self._open.clear()
        self._cache.clear()
        self._dirty.clear()

    def _index(self, p: int) -> tuple[list, dict]:
        if p not in self._heaps:
            self._heaps[p], self._scheduled[p], self._open[p] = [], {}, set()
            cache = self._cache
            for key, value in list(self.table.items()):
                if value and value.get("p") == p and key not in cache:
                    incident = Incident.from_dict(value["incident"])
                    self._schedule(p, self.registry.get(incident.agreement, incident.revision), incident)
            for key, (q, incident, _dirty) in list(cache.items()):  # this batch's unwritten state wins
                if q == p:
                    self._schedule(p, self.registry.get(incident.agreement, incident.revision), incident)
            heapq.heapify(self._heaps[p])
        return self._heaps[p], self._scheduled[p]

    def _schedule(self, p: int, compiled, incident: Incident) -> None:
        heap, scheduled = self._heaps[p], self._scheduled[p]
        if incident.lifecycle == "closed":
            self._open[p].discard(incident.ticket)
        else:
            self._open[p].add(incident.ticket)
        due = next_due(compiled, incident)
        if due is None:
            scheduled.pop(incident.ticket, None)
        elif scheduled.get(incident.ticket) != due:
            scheduled[incident.ticket] = due
            heapq.heappush(heap, (due, incident.ticket))

    def pending(self, p: int) -> int:
        return len(self._index(p)[1])

    def sizes(self) -> tuple[int, int]:
        """(open incidents, entries in the due indexes) over the indexed partitions."""
        return sum(map(len, self._open.values())), sum(map(len, self._heaps.values()))

    # -- time
    def advance(self, p: int, until: datetime, inclusive: bool) -> list:
        """Fire partition ``p``'s deadlines before ``until`` (or at it when inclusive), in (due, key) order."""
        heap, scheduled = self._index(p)
        outputs: list = []
        while heap and (heap[0][0] < until or (inclusive and heap[0][0] == until)):
            due, key = heapq.heappop(heap)
            if scheduled.get(key) != due:
                continue  # stale entry: rescheduled since
            del scheduled[key]
            incident = self._load(key)
            compiled = self.registry.get(incident.agreement, incident.revision)
            outputs += advance(compiled, incident, due, inclusive=True)
            self._store(p, key, incident)
            self._schedule(p, compiled, incident)
            self.fired.append(due)
        return outputs

    # -- events
    def apply(self, p: int, event) -> list:
        """Apply one decoded ticket event (Rejected, with the incident unchanged, if it does not fit)."""
        if isinstance(event, MetricObserved):
            raise Rejected("metric events belong on the metrics topic, not on tickets")
        self._index(p)
        incident = self._load(event.ticket)
        if incident is not None and event.id in incident.seen:
            return []  # idempotent input
        if isinstance(event, TicketOpened):
            if incident is not None:
                raise Rejected(f"ticket {event.ticket!r} is already open (opened at {incident.opened_at.isoformat()})")
            compiled = self.registry.for_opening(event)
            incident, outputs = open_incident(compiled, event)
        else:
            if incident is None:
                raise Rejected(f"unknown ticket {event.ticket!r}: no ticket.opened seen for it")
            compiled = self.registry.get(incident.agreement, incident.revision)
            last_time, n_seen = incident.last_time, len(incident.seen)
            try:
                outputs = apply_event(compiled, incident, event)
            except Rejected:
                # the core may have stamped last_time/seen before refusing: undo (the decoded
                # incident outlives this call, unlike a fresh table read); an unchanged one is
                # simply read again from the table
                incident.last_time = last_time
                del incident.seen[n_seen:]
                self._forget(event.ticket)
                raise
        self._store(p, event.ticket, incident)
        self._schedule(p, compiled, incident)
        return outputs


def penalty_output_id(due: PenaltyDue) -> str:
    """The id :func:`assess_penalty` gives the ``penalty.assessed`` of ``due`` (checked on use)."""
    return output_id(due.source, "penalty.assessed", due.ticket, due.ticket, due.clock, due.cycle, due.remedy)


class LedgerBook:
    """The remedies agent's state: ``ledgers`` (agreement -> ledger) and ``assessed`` (output id -> output).

    Same batch protocol as :class:`TicketEngine`: :meth:`begin`, :meth:`assess` per record,
    :meth:`end` returns the table writes ``(table, partition, key, value)``.
    """

    def __init__(self, registry: Registry, ledgers: Any, assessed: Any) -> None:
        self.registry, self.ledgers, self.assessed = registry, ledgers, assessed
        self._ledgers: dict[str, list] = {}  # agreement -> [partition, Ledger, dirty]
        self._new: dict[str, tuple[int, dict]] = {}  # output id -> (partition, output) to write

    def begin(self) -> None:
        self._ledgers, self._new = {}, {}

    def discard(self) -> None:
        self.begin()

    def _ledger(self, agreement: str, p: int) -> list:
        entry = self._ledgers.get(agreement)
        if entry is None:
            state = self.ledgers.get(agreement)
            ledger = Ledger.from_dict(state["ledger"]) if state else Ledger()
            entry = self._ledgers[agreement] = [p, ledger, False]
            if state and state.get("done"):  # legacy value: move its outputs to ``assessed``
                for out_id, out in state["done"].items():
                    self._new.setdefault(out_id, (p, out))
                entry[2] = True
        return entry

    def assess(self, due: PenaltyDue, p: int) -> dict:
        """Book one PenaltyDue against its agreement's ledger (idempotent per output id)."""
        compiled = self.registry.get(due.agreement, due.revision)
        entry = self._ledger(due.agreement, p)
        out_id = penalty_output_id(due)
        done = self._new.get(out_id)
        if done is not None:
            return done[1]
        old = self.assessed.get(out_id)
        if old is not None:
            return old  # redelivered: same output, budget not charged twice
        out = assess_penalty(compiled, entry[1], due)
        if out["id"] != out_id:
            raise RuntimeError(f"penalty output id mismatch: {out['id']} != {out_id}")
        entry[2] = True
        self._new[out_id] = (p, out)
        return out

    def end(self) -> list[tuple[Any, int, Any, Any]]:
        writes = [(self.ledgers, p, agreement, {"ledger": ledger.to_dict()})
                  for agreement, (p, ledger, dirty) in self._ledgers.items() if dirty]
        writes += [(self.assessed, p, out_id, out) for out_id, (p, out) in self._new.items()]
        self.begin()
        return writes


def assess(registry: Registry, ledgers: Any, due: PenaltyDue, assessed: Any | None = None) -> dict:
    """Book one PenaltyDue outside a batch (writes the tables at once); see :class:`LedgerBook`."""
    book = LedgerBook(registry, ledgers, {} if assessed is None else assessed)
    book.begin()
    out = book.assess(due, 0)
    for table, _p, key, value in book.end():
        table[key] = value
    return out


def parse_tick(value: bytes) -> datetime:
    data = orjson.loads(value)
    instant = datetime.fromisoformat(str(data["tick"]).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError("naive tick instant")
    return instant


class OutputSender:
    """Contract outputs and dead letters through one plain aiokafka producer with normal batching.

    Faust's producer carries the changelogs and the internal penalties topic; with the embedded
    broker it must send one record per batch (DESIGN.md §7, ``producer_max_batch_size=1``), which
    would cap every output partition at one record per round trip. The contract topics are never
    read back through ListOffsets by the engine, so they can be batched. Records keep their order
    per partition (one producer, sent in order; key -> partition by aiokafka's default
    partitioner, as Faust's producer does). Callers await the returned delivery futures before
    their batch is acked (at least once). Not used with ``exactly_once`` (outputs must then be
    part of Faust's transactions).
    """

    def __init__(self, bootstrap: str, client_kwargs: dict) -> None:
        self.bootstrap, self.client_kwargs = bootstrap, client_kwargs
        self._producer: Any = None
        self._starting: asyncio.Lock | None = None

    async def _start(self) -> Any:
        from aiokafka import AIOKafkaProducer

        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", **self.client_kwargs)
                await producer.start()
                self._producer = producer
        return self._producer

    async def send_all(self, records: list[tuple[str, bytes | None, bytes]]) -> list:
        """Queue ``(topic, key, value)`` records in order; the delivery futures."""
        producer = self._producer or await self._start()
        send = producer.send
        return [await send(topic, value, key=key) for topic, key, value in records]

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


def write_as(event: Any, table: Any, key: Any, value: Any) -> None:
    """``table[key] = value`` as if done while processing ``event`` (its partition gets the write)."""
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)


def build_app(settings: LiveSettings, registry: Registry, *, broker_url: str | None = None,
              datadir: str | Path | None = None, manual_ticks: bool = False) -> faust.App:
    """The whole live engine as one Faust app (see the module docstring).

    ``broker_url``: the embedded broker's url (required when ``settings.broker`` is None).
    ``manual_ticks``: no ticker; time moves only by ticks produced with :func:`ticker.send_tick`.
    The app carries ``app.escalation`` (names, engine, topics) for the runner and the tests.
    """
    kw = settings.faust_app_kwargs(broker_url)
    if datadir is not None:
        kw["datadir"] = str(datadir)
    app = faust.App(settings.app_id, key_serializer="json", value_serializer="json", **kw)  # tables: JSON; topics: raw
    names = TopicNames.of(settings)
    P = settings.partitions
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=P)

    inputs = app.topic(names.tickets, names.ticks, **raw)
    out_topics = {n: app.topic(getattr(names, n), **raw) for n in ("notifications", "remedies", "timeline")}
    deadletter = app.topic(names.deadletter, **raw)
    penalties = app.topic(names.penalties, internal=True, **raw)
    incidents = app.Table("incidents", partitions=P)
    ledgers = app.Table("ledgers", partitions=P)
    assessed = app.Table("assessed", partitions=P)
    engine = TicketEngine(registry, incidents)
    book = LedgerBook(registry, ledgers, assessed)
    sender = None
    if settings.processing_guarantee != "exactly_once":
        bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in app.conf.broker)
        sender = OutputSender(bootstrap, settings.aiokafka_security())

        @app.on_before_shutdown.connect
        async def _stop_sender(*args: Any, **kwargs: Any) -> None:
            await sender.stop()

    class Batch:
        """What one batch sends, in order: outputs and dead letters through ``sender`` (else
        Faust's ``send_soon``), penalty records with ``send_soon``; all awaited together."""

        def __init__(self) -> None:
            self.futures: list = []
            self.records: list[tuple[str, bytes | None, bytes]] = []
            self.types: Counter = Counter()
            self.dead = 0

        def _send(self, topic: Any, key: bytes | None, value: bytes) -> None:
            if sender is None:
                self.futures.append(topic.send_soon(key=key, value=value))
            else:
                self.records.append((topic.get_topic_name(), key, value))

        def publish(self, outputs: list) -> None:
            for out in outputs:
                if isinstance(out, PenaltyDue):
                    self.futures.append(penalties.send_soon(key=out.agreement.encode(),
                                                            value=orjson.dumps(_penalty_to_dict(out))))
                else:
                    self.output(out_topics[topic_for(out["type"])], out["subject"], out)

        def output(self, topic: Any, key: str, out: dict) -> None:
            self._send(topic, key.encode(), orjson.dumps(out))
            self.types[out["type"]] += 1

        def reject(self, reason: str, event: Any) -> None:
            m = event.message
            rec = deadletter_record(reason, event.value, event.key, m.topic, m.partition, m.offset)
            self._send(deadletter, event.key, orjson.dumps(rec))
            self.dead += 1

        async def done(self) -> None:
            if self.records:
                self.futures += await sender.send_all(self.records)
            if self.futures:
                await asyncio.gather(*self.futures)
            for type_, n in self.types.items():
                obs.outputs_out(type_, n)
            if self.dead:
                obs.dead_letter(self.dead)

    def tickets_batch(events: list) -> Batch:
        """Process one batch in order; returns what to send (table writes are done here)."""
        batch = Batch()
        last: dict[int, Any] = {}
        engine.begin()
        try:
            for event in events:
                m = event.message
                p = m.partition
                last[p] = event
                if m.topic == names.ticks:
                    try:
                        instant = parse_tick(event.value)
                    except Exception as err:  # noqa: BLE001 - any bad tick is dead-lettered
                        batch.reject(f"bad tick: {err}", event)
                        continue
                    batch.publish(engine.advance(p, instant, inclusive=True))
                    continue
                try:
                    decoded = decode_event(event.value if event.value is not None else b"")
                except Rejected as err:
                    batch.reject(err.reason, event)
                    continue
                batch.publish(engine.advance(p, decoded.time, inclusive=False))
                try:
                    outputs = engine.apply(p, decoded)
                except Rejected as err:
                    batch.reject(err.reason, event)
                    continue
                batch.publish(outputs)
            writes = engine.end()
        except BaseException:
            engine.discard()
            raise
        for p, key, value in writes:  # queued in Faust's buffer before this batch's penalty records
            write_as(last[p], incidents, key, value)
        return batch

    def report_lag(events: list) -> None:
        tail: dict[int, int] = {}
        for event in events:
            if event.message.topic == names.tickets:
                tail[event.message.partition] = event.message.offset
        for p, offset in tail.items():
            try:
                hw = app.consumer.highwater(faust.types.TP(names.tickets, p))
            except Exception:  # noqa: BLE001 - metrics only
                continue
            if hw is not None:
                obs.lag(p, max(0, hw - offset - 1))

    @app.agent(inputs, name="tickets")
    async def tickets_agent(stream: Any) -> None:
        # Faust pauses delivery (and logs "producer buffer full") while more than max_messages
        # records wait in its producer buffer; one batch legitimately queues up to BATCH_MAX
        # changelog writes at once
        app.producer.buffer.max_messages = max(app.producer.buffer.max_messages, 2 * BATCH_MAX)
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            engine.fired.clear()
            batch = tickets_batch(events)
            fired = list(engine.fired)
            await batch.done()  # outputs on the broker before the batch is acked
            now = time.time()
            for due in fired:
                obs.deadline_latency(now - due.timestamp())
            obs.events_in(sum(1 for e in events if e.message.topic == names.tickets))
            open_, due_index = engine.sizes()
            obs.set_open_incidents(open_)
            obs.set_due_index(due_index)
            report_lag(events)

    @app.agent(penalties, name="remedies")
    async def remedies_agent(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            batch = Batch()
            last: dict[int, Any] = {}
            book.begin()
            try:
                for event in events:
                    p = event.message.partition
                    last[p] = event
                    try:
                        due = _penalty_from_dict(orjson.loads(event.value))
                        out = book.assess(due, p)
                    except (Rejected, ValueError, KeyError) as err:
                        batch.reject(getattr(err, "reason", None) or f"bad penalty record: {err!r}", event)
                        continue
                    batch.output(out_topics[REMEDIES], due.agreement, out)
                writes = book.end()
            except BaseException:
                book.discard()
                raise
            for table, p, key, value in writes:
                write_as(last[p], table, key, value)
            await batch.done()

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        engine.reset_index()

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        engine.reset_index()
        shorten_fetch_wait(app)

    if not manual_ticks:
        from escalation.live.ticker import install_ticker

        install_ticker(app, app.topic(names.ticks, **raw), settings)

    app.escalation = _Wiring(names, engine, inputs, out_topics, deadletter, penalties, incidents, ledgers, assessed)  # type: ignore[attr-defined]
    return app


@dataclass
class _Wiring:
    names: TopicNames
    engine: TicketEngine
    inputs: Any
    outputs: dict
    deadletter: Any
    penalties: Any
    incidents: Any
    ledgers: Any
    assessed: Any
