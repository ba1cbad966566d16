"""The live engine: one Faust app wiring topics, tables, agents and the ticker (DESIGN.md §2, §6, §9).

``build_app(settings, registry)`` is the only place the shell is wired. What runs:

- **inputs agent** on ``<prefix>tickets`` + ``<prefix>metrics`` + ``<app_id>-ticks`` as ONE stream
  (co-partitioned), so a tick travels the same ordered, committed path as the events of its
  partition. Per partition it runs core ``Engine``s (``partitions.Partitions``): incidents keyed
  by ticket, SLO states keyed by service, this partition's report figures, and a due index (heap)
  rebuilt from the tables after every rebalance, so a tick costs O(deadlines due), not O(open
  incidents). Period closes of SLOs and reports are driven by the same ticks.
- **desk agent** on the internal ``<app_id>-desk`` topic keyed by agreement id: per agreement the
  cap budget and the reports (``core.desk``). The inputs agent sends it penalties, credits and
  report figures, and after every batch its partition clock (a *mark*) to every desk partition;
  the desk books money in time order once every input partition's mark has passed it (so caps cut
  as in replay) and publishes ``report.published`` once every input partition is past the close.
- **ticker** (:mod:`escalation.live.ticker`) unless ``manual_ticks``.

Time semantics (mirror of ``Engine.step`` / ``escalation replay``):

- an event at time t first fires the partition's deadlines and closes due strictly before t, then
  is applied (an event at T comes before a deadline at exactly T); a metric slice does so at its
  start and then counts up to its end, as replay does;
- a tick at instant T fires every deadline due at or before T (``step(Tick(T))``);
  the ticker stamps ticks with wall clock − ``tick_grace``, so a deadline D fires once the wall
  clock passes D + grace (within one ``tick_interval``);
- tickets and ticks are two topics merged into one stream: Kafka orders records per topic
  partition only, so an event may be consumed after a tick with a later instant. It is then
  applied late (its own time counts for the clocks) and outputs already emitted stay (§6); the
  grace exists to make this rare. Output ids are deterministic, so redelivery never pages twice.

Batches (throughput): both agents consume with ``stream.take_events(BATCH_MAX, within=BATCH_WITHIN)``.
Records of a batch are processed one by one in arrival order (so per-partition order and the time
rules above hold exactly as for one record at a time), state stays decoded in memory across
batches and every changed key is written back once per batch, and the outputs are queued without
awaiting each one, through :class:`OutputSender` (a batching aiokafka producer; Faust's own
producer must send one record per batch on the embedded broker). At the end of a batch the
outputs and internal records are sent and every delivery future is awaited, THEN the table values
are written; Faust acks the batch's offsets after that and flushes the changelog before it commits
them. So a crash anywhere loses nothing: state never runs ahead of the outputs it caused, the
batch is consumed again, and the deterministic ids (and the desk's booked-id guard) absorb the
repeats. Rebalances and agreement reloads only flag the in-memory state stale; it is reloaded
from the tables at the start of the next batch, never between a batch's sends and its writes.
Table writes made after the loop carry the partition they belong to by setting Faust's
``current_event`` to an event of that partition (Faust picks the changelog / store partition
from it).

Tables (values tagged with their partition ``p``, so a rebuild skips standby copies and other
partitions): see :mod:`escalation.live.partitions`, :mod:`escalation.live.desk_book`, :mod:`escalation.live.store`. Closed incidents shrink to tombstones (their input
ids), so state grows with open incidents, not with history.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.streams import (
    _current_event,  # Faust's "current event" (table partition); pinned faust 0.15.3
)

from escalation.core.contract.registry import Registry
from escalation.core.events import (
    MetricObserved,
    Rejected,
    decode_event,
    internal_error_reason,
)
from escalation.core.outputs import Output
from escalation.live import observability as obs
from escalation.live.desk_book import DeskBook
from escalation.live.journal import Journal
from escalation.live.offsets import (
    AppliedOffsets,
    InputGuard,
    OffsetCommitter,
    RangeReader,
    Record,
)
from escalation.live.partitions import Partitions, Stepped
from escalation.live.records import (
    deadletter_record,
    desk_record,
    mark_record,
    parse_tick,
)
from escalation.live.settings import LiveSettings
from escalation.live.store import DESK_TABLES, INPUT_TABLES, TableStore
from escalation.live.ticker import wall_instant

__all__ = ["TopicNames", "build_app", "BATCH_MAX", "BATCH_WITHIN"]

log = logging.getLogger(__name__)

#: Most records per agent batch, and how long (s) a partial batch waits for more records. A lone
#: tick waits at most BATCH_WITHIN before it is processed (part of the deadline latency).
BATCH_MAX = 1000
BATCH_WITHIN = 0.05

#: Longest (s) the ticker holds a partition's ticks back while its input has records not applied yet.
CATCH_UP_LIMIT = 30.0

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
    desk: str

    @classmethod
    def of(cls, settings: LiveSettings) -> "TopicNames":
        p, a = settings.topic_prefix, settings.app_id
        return cls(f"{p}tickets", f"{p}metrics", f"{p}notifications", f"{p}remedies", f"{p}timeline",
                   f"{p}deadletter", f"{a}-ticks", f"{a}-desk")

    def outputs(self) -> list[str]:
        return [self.notifications, self.remedies, self.timeline]


class OutputSender:
    """Outputs, dead letters and desk records through one plain aiokafka producer with normal batching.

    Faust's producer carries the changelogs; with the embedded broker it must send one record per
    batch (DESIGN.md §7, ``producer_max_batch_size=1``), which would cap every partition at one
    record per round trip. Only table recovery depends on ListOffsets of a changelog, so every
    other topic can be batched. Records keep their order
    per partition (one producer, sent in order; key -> partition by aiokafka's default
    partitioner, as Faust's producer does). Callers await the returned delivery futures before
    their batch's state is written and acked (at least once). Not used with ``exactly_once`` (outputs must then be
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

    async def send_all(self, records: list[tuple[str, bytes | None, bytes, int | None]]) -> list:
        """Queue ``(topic, key, value, partition or None)`` records in order; the delivery futures."""
        producer = self._producer or await self._start()
        send = producer.send
        return [await send(topic, value, key=key, partition=partition) for topic, key, value, partition in records]

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
    The app carries ``app.escalation`` (names, state, topics) for the runner and the tests.
    """
    kw = settings.faust_app_kwargs(broker_url)
    if datadir is not None:
        kw["datadir"] = str(datadir)
    # table keys: JSON strings; values: raw bytes everywhere (tables hold engine.pack bytes; the
    # changelog recovery decodes with these app-level defaults, not with a table's schema)
    app = faust.App(settings.app_id, key_serializer="json", value_serializer="raw", **kw)
    names = TopicNames.of(settings)
    P = settings.partitions
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=P)

    inputs = app.topic(names.tickets, names.metrics, names.ticks, **raw)
    out_topics = {n: app.topic(getattr(names, n), **raw) for n in ("notifications", "remedies", "timeline")}
    deadletter = app.topic(names.deadletter, **raw)
    desk_topic = app.topic(names.desk, internal=True, **raw)

    def table(name: str) -> Any:  # values are partition-prefixed JSON bytes (store.pack)
        return app.Table(name, partitions=P, key_type=str, value_type=bytes)

    in_store = TableStore({name: table(name) for name in INPUT_TABLES})
    desk_store = TableStore({name: table(name) for name in DESK_TABLES})
    offsets_table = table("offsets")
    # next offset to apply per input partition, one instance per agent (see escalation.live.offsets)
    in_offsets, desk_offsets = AppliedOffsets(offsets_table), AppliedOffsets(offsets_table)
    # each batch's writes journalled per partition first, so they land whole (escalation.live.journal)
    journal_table = table("journal")
    in_journal = Journal("inputs", journal_table, [*in_store.tables.values(), offsets_table])
    desk_journal = Journal("desk", journal_table, [*desk_store.tables.values(), offsets_table])
    grace = timedelta(seconds=settings.period_grace)
    parts = Partitions(registry, in_store, P, grace)
    book = DeskBook(registry, parts.sources, desk_store, grace)
    stale = {"inputs": False, "desk": False}  # reload from the tables at the next batch (rebalance, reload)
    errors_seen = Counter()  # internal errors per agent (the first one is logged with its traceback)
    sender = None
    bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in app.conf.broker)
    reader = RangeReader(bootstrap, settings.aiokafka_security())
    if settings.processing_guarantee != "exactly_once":
        sender = OutputSender(bootstrap, settings.aiokafka_security())

    @app.on_before_shutdown.connect
    async def _stop_clients(*args: Any, **kwargs: Any) -> None:
        await reader.stop()
        if sender is not None:
            await sender.stop()

    def committed_offset(topic: str, partition: int) -> int | None:
        return app.consumer._committed_offset.get(faust.types.TP(topic, partition))  # faust 0.15.3

    # the inputs guard checks the tails of tickets/metrics partitions on each tick (live ticks only)
    committer = OffsetCommitter(app)

    def forget_inputs() -> None:
        """Reload the inputs agent's state, applied offsets and journals at next use."""
        parts.discard()
        in_offsets.discard()
        in_journal.discard()

    def forget_desk() -> None:
        book.discard()
        desk_offsets.discard()
        desk_journal.discard()
    in_guard = InputGuard(in_offsets, reader, {names.tickets, names.metrics}, committed_offset,
                          tails=() if manual_ticks else (names.tickets, names.metrics))
    desk_guard = InputGuard(desk_offsets, reader, {names.desk}, committed_offset)

    async def received(events: list, guard: InputGuard, journal: Journal) -> tuple[list[Record], dict]:
        """The batch as contiguous records (holes read back from the broker), and the last Faust
        event per partition (table writes of that partition are made as if processing it). The
        tables of a partition seen for the first time since a (re)load are completed from its
        journal first, so the state read below is whole."""
        last = {event.message.partition: event for event in events}
        journal.restore(set(last), lambda table_, p, key, value: write_as(last[p], table_, key, value))
        return await guard.records([Record.of_event(e) for e in events]), last

    async def settle(writes: list, last: dict, offsets: AppliedOffsets, journal: Journal,
                     topics: tuple[str, ...]) -> None:
        """Journal the batch's writes per partition and flush, write the state and the applied
        offsets, then commit those offsets (at least once: a crash before the commit consumes the
        batch again, and the ids absorb the repeats against a state that is whole)."""
        writes = writes + offsets.writes()
        for table_, p, key, value in journal.records(writes):
            write_as(last[p], table_, key, value)
        await app.producer.flush()
        for table_, p, key, value in writes:
            write_as(last[p], table_, key, value)
        if settings.processing_guarantee != "exactly_once":  # else Faust's transactions commit
            await committer.commit(offsets.committable(topics))

    class Batch:
        """What one batch sends, in order, through ``sender`` (else Faust's ``send_soon``); all
        awaited together by :meth:`done`."""

        def __init__(self) -> None:
            self.futures: list = []
            self.records: list[tuple[str, bytes | None, bytes, int | None]] = []
            self.types: Counter = Counter()
            self.dead = 0

        def _send(self, topic: Any, key: bytes | None, value: bytes, partition: int | None = None) -> None:
            if sender is None:
                self.futures.append(topic.send_soon(key=key, value=value, partition=partition))
            else:
                self.records.append((topic.get_topic_name(), key, value, partition))

        def publish(self, stepped: Stepped) -> None:
            """Contract outputs, then the step's settlements (desk records) for the desk."""
            for out in stepped.outputs:
                self.output(out.subject, out)
            for src, item in stepped.settlements:
                self._send(desk_topic, item.agreement.encode(), desk_record(item, src))

        def output(self, key: str, out: Output) -> None:
            self._send(out_topics[out.topic], key.encode(), orjson.dumps(out.cloudevent()))
            self.types[out.type.value] += 1

        def marks(self, moved: dict) -> None:
            for src, (at, inclusive) in sorted(moved.items()):
                value = mark_record(src, at, inclusive)
                for q in range(P):
                    self._send(desk_topic, None, value, q)

        def reject(self, reason: str, rec: Record, duplicate: bool = False) -> None:
            value = deadletter_record(reason, rec.value, rec.key, rec.topic, rec.partition, rec.offset, duplicate)
            self._send(deadletter, rec.key, orjson.dumps(value))
            self.dead += 1

        def internal_error(self, agent: str, err: Exception, rec: Record) -> None:
            """The safety net (DESIGN.md §10): the record is dead-lettered, the batch goes on. The
            first one's traceback is logged; an exception inside the core may have left that one
            incident half-changed (no rollback), which is still better than a stopped partition."""
            if not errors_seen[agent]:
                log.error("escalation: internal error in the %s agent at %s[%d]@%d (later ones are dead-lettered "
                          "without a traceback)", agent, rec.topic, rec.partition, rec.offset, exc_info=err)
            errors_seen[agent] += 1
            obs.internal_error(agent)
            self.reject(internal_error_reason(err), rec)

        async def done(self) -> None:
            if self.records:
                self.futures += await sender.send_all(self.records)
            if self.futures:
                await asyncio.gather(*self.futures)
            for type_, n in self.types.items():
                obs.outputs_out(type_, n)
            if self.dead:
                obs.dead_letter(self.dead)

    def input_record(batch: Batch, rec: Record, latest: datetime) -> None:
        """One tickets/metrics/ticks record: applied (outputs queued on ``batch``) or dead-lettered."""
        if rec.topic == names.ticks:
            try:
                tick = parse_tick(rec.value)
            except Exception as err:  # noqa: BLE001 - any bad tick is dead-lettered
                batch.reject(f"bad tick: {err}", rec)
                return
            batch.publish(parts.step(rec.partition, tick))
            return
        try:
            decoded = decode_event(rec.value if rec.value is not None else b"")
        except Rejected as err:
            batch.reject(err.reason, rec)
            return
        is_metric = isinstance(decoded, MetricObserved)
        if is_metric != (rec.topic == names.metrics):
            batch.reject(f"{decoded.type} events belong on the {'metrics' if is_metric else 'tickets'} "
                         f"topic, not on {rec.topic}", rec)
            return
        if decoded.time > latest:  # one broken producer must not fire every deadline of a partition
            batch.reject(f"from the future: time {decoded.time.isoformat()} is more than {settings.max_future_skew:g} s "
                         f"ahead of the worker's clock ({latest.isoformat()} + skew)", rec)
            return
        stepped = parts.step(rec.partition, decoded)
        batch.publish(stepped)
        if stepped.rejected is not None:
            batch.reject(stepped.rejected, rec, stepped.conflict)
            if stepped.conflict:
                obs.duplicate_conflict()

    def inputs_batch(records: list[Record]) -> tuple[Batch, list]:
        """Process one batch in order: (what to send, table writes)."""
        batch = Batch()
        latest = wall_instant(0) + timedelta(seconds=settings.max_future_skew)  # one wall-clock read per batch
        try:
            for rec in records:
                try:
                    input_record(batch, rec, latest)
                except Exception as err:  # noqa: BLE001 - the safety net: one record never stops a partition
                    batch.internal_error("inputs", err, rec)
            writes, moved = parts.end()
        except BaseException:
            forget_inputs()
            raise
        batch.marks(moved)  # after this batch's desk records: the desk sees them first
        return batch, writes

    def report_lag(events: list) -> None:
        """``escalation_consumer_lag`` of the tickets partitions this batch read from."""
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

    @app.agent(inputs, name="inputs")
    async def inputs_agent(stream: Any) -> None:
        # Faust pauses delivery (and logs "producer buffer full") while more than max_messages
        # records wait in its producer buffer; one batch legitimately queues up to BATCH_MAX
        # changelog writes at once
        app.producer.buffer.max_messages = max(app.producer.buffer.max_messages, 4 * BATCH_MAX)
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            if stale["inputs"]:
                forget_inputs()
                stale["inputs"] = False
            parts.fired.clear()
            log.debug("inputs batch: %d records", len(events))
            records, last = await received(events, in_guard, in_journal)
            batch, writes = inputs_batch(records)
            fired = list(parts.fired)
            log.debug("inputs batch: sending %d records, %d futures", len(batch.records), len(batch.futures))
            await batch.done()  # outputs and desk records on the broker before the state moves on
            log.debug("inputs batch: sent; %d table writes", len(writes))
            await settle(writes, last, in_offsets, in_journal, (names.tickets, names.metrics, names.ticks))
            now = time.time()
            for due in fired:
                obs.deadline_latency(now - due.timestamp())
            obs.events_in(sum(1 for e in events if e.message.topic != names.ticks))
            open_, due_index = parts.sizes()
            obs.set_open_incidents(open_)
            obs.set_due_index(due_index)
            report_lag(events)

    @app.agent(desk_topic, name="desk")
    async def desk_agent(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            if stale["desk"]:
                forget_desk()
                stale["desk"] = False
            batch = Batch()
            records, last = await received(events, desk_guard, desk_journal)
            try:
                for rec in records:
                    try:
                        book.take(rec.partition, rec.value)
                    except (Rejected, ValueError, KeyError, TypeError) as err:
                        batch.reject(getattr(err, "reason", None) or f"bad desk record: {err!r}", rec)
                    except Exception as err:  # noqa: BLE001 - the safety net, as in the inputs agent
                        batch.internal_error("desk", err, rec)
                for out in book.release():
                    batch.output(out.data["agreement"], out)
                writes = book.end()
            except BaseException:
                forget_desk()
                raise
            log.debug("desk batch: %d records, sending %d", len(events), len(batch.records))
            await batch.done()
            log.debug("desk batch: sent; %d table writes", len(writes))
            await settle(writes, last, desk_offsets, desk_journal, (names.desk,))
            obs.set_desk_pending(book.pending())

    def invalidate(*args: Any, **kwargs: Any) -> None:
        """Reload the in-memory state from the tables at the next batch (rebalance, agreement reload)."""
        stale["inputs"] = stale["desk"] = True
        committer.forget()

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        invalidate()

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        invalidate()
        shorten_fetch_wait(app)

    from escalation.live.gcpolicy import install as install_gc_policy

    install_gc_policy(app, settings.gc_interval)

    if not manual_ticks:
        from escalation.live.ticker import install_ticker

        behind_since: dict[int, float] = {}

        async def caught_up(p: int) -> bool:
            """No record of partition ``p``'s tickets or metrics waits unapplied on the broker (after
            CATCH_UP_LIMIT seconds behind, it is ticked regardless: time must not stop for good)."""
            try:
                behind = await in_guard.behind(p)
            except Exception:  # noqa: BLE001 - broker unreachable for a moment: tick as before
                return True
            if not behind:
                behind_since.pop(p, None)
                return True
            return time.monotonic() - behind_since.setdefault(p, time.monotonic()) > CATCH_UP_LIMIT

        install_ticker(app, app.topic(names.ticks, **raw), settings, caught_up)

    app.escalation = _Wiring(names, parts, book, inputs, out_topics, deadletter, desk_topic,  # type: ignore[attr-defined]
                             invalidate)
    return app


@dataclass
class _Wiring:
    names: TopicNames
    partitions: Partitions
    desk: DeskBook
    inputs: Any
    outputs: dict
    deadletter: Any
    desk_topic: Any
    invalidate: Any
