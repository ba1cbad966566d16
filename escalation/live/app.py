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
import logging
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.streams import _current_event  # Faust's "current event" (table partition); pinned faust 0.15.3

from escalation.core.events import Rejected, decode_event
from escalation.core.incident import PenaltyDue
from escalation.core.outputs import REMEDIES, topic_for
from escalation.core.registry import Registry
from escalation.live import observability as obs
from escalation.live.settings import LiveSettings

__all__ = ["TopicNames", "TicketEngine", "LedgerBook", "build_app", "deadletter_record", "BATCH_MAX", "BATCH_WITHIN"]

from escalation.live.engine import (  # noqa: F401 - re-exported for the runner, tests and benches
    LedgerBook, TicketEngine, _penalty_from_dict, _penalty_to_dict, assess, deadletter_record, parse_tick,
    penalty_output_id,
)

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
