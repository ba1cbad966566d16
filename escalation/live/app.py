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
  clock passes D + grace (within one ``ticker.BEAT``: a partition with something due is ticked
  early, ``ticker.TickSchedule``; otherwise every ``tick_interval``);
- tickets and ticks are two topics merged into one stream: Kafka orders records per topic
  partition only, so an event may be consumed after a tick with a later instant. It is then
  applied late (its own time counts for the clocks) and outputs already emitted stay (§6); the
  grace exists to make this rare. Output ids are deterministic, so redelivery never pages twice.

Batches (throughput): both agents consume with ``stream.take_events(BATCH_MAX, within=BATCH_WITHIN)``.
Records of a batch are processed one by one in arrival order (so per-partition order and the time
rules above hold exactly as for one record at a time), state stays in memory across batches
(open incidents as their stored bytes, decoded when a step touches them: ``live/frozen.py``) and
every changed key is written back once per batch, and the outputs are queued without
awaiting each one, through :class:`~escalation.live.outlets.OutputSender` (a batching aiokafka producer; Faust's own
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
partitions): see :mod:`escalation.live.partitions`, :mod:`escalation.live.desk_book` and
:mod:`escalation.live.store`. Closed incidents shrink to tombstones (their input id digests), so state
grows with open incidents, not with history.

Where the pieces are: the batch handling of both agents in :mod:`escalation.live.agents`, what a
batch sends in :mod:`escalation.live.outlets`; this module declares the topics and tables, makes
the clients, and wires the agents, the rebalance hooks and the ticker (``build_app``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust

from escalation.core.contract.registry import Registry
from escalation.live.agents import DeskAgent, InputsAgent
from escalation.live.catch_up import CatchUp
from escalation.live.desk_book import DeskBook
from escalation.live.handoff import install as install_handoff
from escalation.live.journal import Journal
from escalation.live.offsets import (
    AppliedOffsets,
    InputGuard,
    OffsetCommitter,
    RangeReader,
)
from escalation.live.outlets import Outlets, OutputSender
from escalation.live.partitions import Partitions
from escalation.live.records import tick_after
from escalation.live.settings import LiveSettings
from escalation.live.store import DESK_TABLES, INPUT_TABLES, TableStore

__all__ = ["BATCH_MAX", "BATCH_WITHIN", "TopicNames", "build_app"]

log = logging.getLogger(__name__)

#: Most records per agent batch, and how long (s) a partial batch waits for more records. A lone
#: tick waits at most BATCH_WITHIN before it is processed (part of the deadline latency).
BATCH_MAX = 1000
BATCH_WITHIN = 0.05
#: Input records per second at which the inputs agent's consumer counts as working off a backlog
#: (``InputGuard``, ``CatchUp``): a partition whose records then wait is queued, not stalled. A
#: worker applies ~2,000/s here (bench/live_bench.py); live traffic far below this rate keeps the
#: 2 s stall detection of a tail Faust stopped delivering.
BACKLOG_RATE = 500.0

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
    def of(cls, settings: LiveSettings) -> TopicNames:
        p, a = settings.topic_prefix, settings.app_id
        return cls(f"{p}tickets", f"{p}metrics", f"{p}notifications", f"{p}remedies", f"{p}timeline",
                   f"{p}deadletter", f"{a}-ticks", f"{a}-desk")

    def outputs(self) -> list[str]:
        return [self.notifications, self.remedies, self.timeline]


@dataclass(frozen=True)
class _Topics:
    """The app's Faust topics (raw bytes keys and values, ``partitions`` each)."""

    inputs: Any     # tickets + metrics + ticks as ONE stream
    outputs: dict   # notifications, remedies, timeline
    deadletter: Any
    desk: Any
    raw: dict       # the topic options, for the ticker's own handle on the ticks topic

    @classmethod
    def declare(cls, app: faust.App, names: TopicNames, partitions: int) -> _Topics:
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",  # noqa: C408
                   partitions=partitions)
        return cls(inputs=app.topic(names.tickets, names.metrics, names.ticks, **raw),
                   outputs={n: app.topic(getattr(names, n), **raw) for n in ("notifications", "remedies", "timeline")},
                   deadletter=app.topic(names.deadletter, **raw), desk=app.topic(names.desk, internal=True, **raw),
                   raw=raw)


@dataclass(frozen=True)
class _Tables:
    """The app's tables: both agents' stores, the applied offsets and the journals."""

    inputs: TableStore
    desk: TableStore
    offsets: Any
    journal: Any

    @classmethod
    def declare(cls, app: faust.App, partitions: int) -> _Tables:
        def table(name: str) -> Any:  # values are partition-prefixed JSON bytes (store.pack)
            return app.Table(name, partitions=partitions, key_type=str, value_type=bytes)

        return cls(TableStore({name: table(name) for name in INPUT_TABLES}),
                   TableStore({name: table(name) for name in DESK_TABLES}), table("offsets"), table("journal"))


def _bulk_recovering(settings: LiveSettings) -> bool:
    """Whether the tables are on RocksDB, whose changelogs are recovered in bulk (``live/bulk_recovery.py``)."""
    return settings.store.startswith("rocksdb://")


def _faust_app(settings: LiveSettings, broker_url: str | None, datadir: str | Path | None) -> faust.App:
    kw = settings.faust_app_kwargs(broker_url)
    if datadir is not None:
        kw["datadir"] = str(datadir)
    if _bulk_recovering(settings):  # Faust's RocksDB store, its changelogs recovered in bulk
        from escalation.live.bulk_recovery import SCHEME

        kw["store"] = SCHEME + kw["store"][len("rocksdb"):]
    # table keys: JSON strings; values: raw bytes everywhere (tables hold store.pack bytes; the
    # changelog recovery decodes with these app-level defaults, not with a table's schema)
    return faust.App(settings.app_id, key_serializer="json", value_serializer="raw", **kw)


def _clients(app: faust.App, settings: LiveSettings) -> tuple[RangeReader, OutputSender | None]:
    """The broker reader of the input guards and the output sender (none with exactly_once);
    both stop before the app shuts down."""
    bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in app.conf.broker)
    reader = RangeReader(bootstrap, settings.aiokafka_security())
    if _bulk_recovering(settings):
        from escalation.live.bulk_recovery import use_reader

        use_reader(app, reader)
    sender = None
    if settings.processing_guarantee != "exactly_once":
        sender = OutputSender(bootstrap, settings.aiokafka_security())

    @app.on_before_shutdown.connect
    async def _stop_clients(*args: Any, **kwargs: Any) -> None:
        await reader.stop()
        if sender is not None:
            await sender.stop()

    return reader, sender


def _agents(app: faust.App, settings: LiveSettings, registry: Registry, names: TopicNames, topics: _Topics,
            tables: _Tables, reader: RangeReader, outlets: Outlets, manual_ticks: bool) -> tuple[InputsAgent, DeskAgent]:
    """Both agents over their state, guards, journals and applied offsets, registered with the app."""
    def committed_offset(topic: str, partition: int) -> int | None:
        return app.consumer._committed_offset.get(faust.types.TP(topic, partition))  # faust 0.15.3

    grace = timedelta(seconds=settings.period_grace)
    parts = Partitions(registry, tables.inputs, settings.partitions, grace)
    committer = OffsetCommitter(app)
    # next offset to apply per input partition, one instance per agent (see escalation.live.offsets);
    # each batch's writes journalled per partition first, so they land whole (escalation.live.journal)
    in_offsets, desk_offsets = AppliedOffsets(tables.offsets), AppliedOffsets(tables.offsets)
    shared = {"app": app, "settings": settings, "outlets": outlets, "committer": committer}
    inputs = InputsAgent(
        parts, names, **shared, offsets=in_offsets, topics=(names.tickets, names.metrics, names.ticks),
        journal=Journal("inputs", tables.journal, [*tables.inputs.tables.values(), tables.offsets]),
        # the inputs guard checks the tails of tickets/metrics partitions on each tick (live ticks only)
        guard=InputGuard(in_offsets, reader, {names.tickets, names.metrics}, committed_offset,
                         tails=() if manual_ticks else (names.tickets, names.metrics),
                         after=lambda rec: tick_after(rec.value) if rec.topic == names.ticks else {},
                         backlog_rate=BACKLOG_RATE))
    desk = DeskAgent(
        DeskBook(registry, parts.sources, tables.desk, grace), **shared, offsets=desk_offsets, topics=(names.desk,),
        journal=Journal("desk", tables.journal, [*tables.desk.tables.values(), tables.offsets]),
        guard=InputGuard(desk_offsets, reader, {names.desk}, committed_offset))

    @app.agent(topics.inputs, name="inputs")
    async def inputs_agent(stream: Any) -> None:
        await inputs.run(stream, BATCH_MAX, BATCH_WITHIN)

    @app.agent(topics.desk, name="desk")
    async def desk_agent(stream: Any) -> None:
        await desk.run(stream, BATCH_MAX, BATCH_WITHIN)

    return inputs, desk


def _rebalance_hooks(app: faust.App, agents: tuple[InputsAgent, DeskAgent]) -> Callable[..., None]:
    """``invalidate``: reload every agent's state from the tables at its next batch; called on
    every rebalance (and by the runner on an agreement reload)."""
    def invalidate(*args: Any, **kwargs: Any) -> None:
        for agent in agents:
            agent.stale = True
        agents[0].committer.forget()

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        invalidate()

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        invalidate()
        shorten_fetch_wait(app)
        install_handoff(app.consumer)  # escalation.live.handoff: Faust's per-record hand-off, cheaper

    return invalidate


def _ticker(app: faust.App, names: TopicNames, topics: _Topics, settings: LiveSettings, guard: InputGuard,
            parts: Partitions) -> None:
    """The ticker; a partition is ticked once its input is caught up (see ``caught_up``), every
    ``tick_interval`` and as soon as its engines have something due (``Partitions.next_due``)."""
    from escalation.live.ticker import install_ticker

    decider = CatchUp()

    async def caught_up(p: int) -> dict[str, int] | None:
        """The tick's ``after`` for partition ``p``, or None to hold its tick back. This wrapper
        only reads the position; the rules (caught up, backlog, stalled tail) and their timers
        are :class:`~escalation.live.catch_up.CatchUp`. Broker unreachable: ``{}``."""
        try:
            applied, ends = await guard.position(p)
        except Exception:  # noqa: BLE001 - broker unreachable for a moment: tick as before
            return {}
        return decider.decide(p, applied, ends, guard.saturated_at)

    install_ticker(app, app.topic(names.ticks, **topics.raw), settings, caught_up, parts.next_due)


def build_app(settings: LiveSettings, registry: Registry, *, broker_url: str | None = None,
              datadir: str | Path | None = None, manual_ticks: bool = False) -> faust.App:
    """The whole live engine as one Faust app (see the module docstring).

    ``broker_url``: the embedded broker's url (required when ``settings.broker`` is None).
    ``manual_ticks``: no ticker; time moves only by ticks produced with :func:`ticker.send_tick`.
    The app carries ``app.escalation`` (names, state, topics) for the runner and the tests.
    """
    app = _faust_app(settings, broker_url, datadir)
    names, P = TopicNames.of(settings), settings.partitions
    topics, tables = _Topics.declare(app, names, P), _Tables.declare(app, P)
    reader, sender = _clients(app, settings)
    outlets = Outlets(topics.outputs, topics.desk, topics.deadletter, P, sender)
    inputs, desk = _agents(app, settings, registry, names, topics, tables, reader, outlets, manual_ticks)
    invalidate = _rebalance_hooks(app, (inputs, desk))

    from escalation.live.gcpolicy import install as install_gc_policy

    install_gc_policy(app, settings.gc_interval)
    if not manual_ticks:
        _ticker(app, names, topics, settings, inputs.guard, inputs.parts)
    app.escalation = _Wiring(names, inputs.parts, desk.book, topics.inputs, topics.outputs,  # type: ignore[attr-defined]
                             topics.deadletter, topics.desk, invalidate)
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
