"""The two agents' batch handling: the inputs agent (tickets, metrics, ticks) and the desk agent.

One batch, either agent (DESIGN.md §7, at least once):
1. ``received``: the batch as contiguous records (holes read back from the broker by the
   :class:`~escalation.live.offsets.InputGuard`); a partition seen for the first time since a
   (re)load first gets its tables completed from its journal, so the state read is whole;
2. the records are processed one by one in arrival order (per-partition order and the time
   rules hold exactly as for one record at a time); outputs are queued on a
   :class:`~escalation.live.outlets.Batch`, the state's writes collected;
3. ``Batch.done``: every output, settlement, mark and dead letter is on the broker;
4. ``settle``: the writes are journalled per partition and flushed, then written, then the
   applied offsets are committed. A crash anywhere consumes the batch again against a whole
   state, and the deterministic ids (and the desk's booked-id guard) absorb the repeats.

A failed batch, a rebalance or an agreement reload makes the agent ``forget`` its in-memory
state, applied offsets and journal (``stale``: at the start of the next batch, never between a
batch's sends and its writes); they are reloaded from the tables on next use.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

import faust

from escalation.core.events import MetricObserved, Rejected, StepFailed, decode_event, from_the_future
from escalation.live import observability as obs
from escalation.live.desk_book import DeskBook
from escalation.live.journal import Journal
from escalation.live.offsets import AppliedOffsets, InputGuard, OffsetCommitter, Record
from escalation.live.outlets import Batch, Outlets, write_as
from escalation.live.partitions import Partitions, Stepped
from escalation.live.records import parse_tick
from escalation.live.settings import LiveSettings
from escalation.live.tablewrites import bulk_producer, write_all
from escalation.live.ticker import wall_instant

log = logging.getLogger("escalation.live.app")


class Agent:
    """The batch plumbing one agent shares with the other (see the module docstring)."""

    def __init__(self, app: faust.App, settings: LiveSettings, outlets: Outlets, guard: InputGuard,
                 journal: Journal, offsets: AppliedOffsets, committer: OffsetCommitter,
                 topics: tuple[str, ...]) -> None:
        self.app, self.settings, self.outlets = app, settings, outlets
        self.guard, self.journal, self.offsets, self.committer = guard, journal, offsets, committer
        self.topics = topics   # whose applied offsets this agent commits
        self.stale = False     # reload from the tables at the next batch (rebalance, reload)
        # one record per producer batch (the embedded broker's workaround): each changelog
        # partition's writes in two batches, the last alone (escalation.live.tablewrites)
        self.tail_alone = settings.client_tuning().get("producer_max_batch_size") == 1

    def discard_state(self) -> None:
        raise NotImplementedError

    def forget(self) -> None:
        """Reload the agent's state, applied offsets and journal at next use."""
        self.discard_state()
        self.offsets.discard()
        self.journal.discard()

    def begin(self) -> None:
        if self.stale:
            self.forget()
            self.stale = False

    async def received(self, events: list) -> tuple[list[Record], dict]:
        """The batch as contiguous records, and the last Faust event per partition (table writes
        of that partition are made as if processing it)."""
        last = {event.message.partition: event for event in events}
        self.journal.restore(set(last), lambda table, p, key, value: write_as(last[p], table, key, value))
        return await self.guard.records([Record.of_event(e) for e in events]), last

    async def settle(self, writes: list, last: dict) -> None:
        """Journal the batch's writes per partition and flush, write the state and the applied
        offsets (and flush), then commit those offsets."""
        writes = writes + self.offsets.writes()
        bulk = None if self.settings.processing_guarantee == "exactly_once" else bulk_producer(self.app)
        if bulk is not None:  # in bulk (escalation.live.tablewrites); each step waits for the broker
            await self.app.producer.flush()  # anything Faust queued (a journal restore) lands first
            await write_all(bulk, self.journal.records(writes), last.__getitem__, self.tail_alone)
            await write_all(bulk, writes, last.__getitem__, self.tail_alone)
        else:
            for table, p, key, value in self.journal.records(writes):
                write_as(last[p], table, key, value)
            await self.app.producer.flush()
            for table, p, key, value in writes:
                write_as(last[p], table, key, value)
        if self.settings.processing_guarantee != "exactly_once":  # else Faust's transactions commit
            await self.committer.commit(self.offsets.committable(self.topics))


class InputsAgent(Agent):
    """Tickets, metrics and ticks of a partition, through :class:`Partitions` (core ``Engine.step``)."""

    def __init__(self, parts: Partitions, names: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.parts, self.names = parts, names

    def discard_state(self) -> None:
        self.parts.discard()

    async def run(self, stream: Any, batch_max: int, within: float) -> None:
        # Faust pauses delivery (and logs "producer buffer full") while more than max_messages
        # records wait in its producer buffer; one batch legitimately queues up to batch_max
        # changelog writes at once
        self.app.producer.buffer.max_messages = max(self.app.producer.buffer.max_messages, 4 * batch_max)
        async for events in stream.take_events(batch_max, within=within):
            self.begin()
            self.parts.fired.clear()
            log.debug("inputs batch: %d records", len(events))
            records, last = await self.received(events)
            batch, writes = self.process(records)
            fired = list(self.parts.fired)
            await batch.done()  # outputs and desk records on the broker before the state moves on
            log.debug("inputs batch: sent; %d table writes", len(writes))
            await self.settle(writes, last)
            self.observe(events, fired)

    def process(self, records: list[Record]) -> tuple[Batch, list]:
        """Process one batch in order: (what to send, table writes)."""
        batch = Batch(self.outlets)
        latest = wall_instant(0) + timedelta(seconds=self.settings.max_future_skew)  # one wall-clock read per batch
        try:
            for rec in records:
                try:
                    self.record(batch, rec, latest)
                except Exception as err:  # noqa: BLE001 - the safety net: one record never stops a partition
                    batch.internal_error("inputs", err, rec)
            writes, moved = self.parts.end()
        except BaseException:
            self.forget()
            raise
        batch.marks(moved)  # after this batch's desk records: the desk sees them first
        return batch, writes

    def record(self, batch: Batch, rec: Record, latest: datetime) -> None:
        """One tickets/metrics/ticks record: stepped (outputs queued on ``batch``) or dead-lettered."""
        if rec.topic == self.names.ticks:
            try:
                tick = parse_tick(rec.value)
            except Exception as err:  # noqa: BLE001 - any bad tick is dead-lettered
                batch.reject(f"bad tick: {err}", rec)
                return
            batch.publish(self.parts.step(rec.partition, tick))
            return
        decoded = self._decoded(batch, rec, latest)
        if decoded is None:
            return
        try:
            stepped = self.parts.step(rec.partition, decoded)
        except StepFailed as failed:  # the clock had moved: what fired then is published first
            batch.publish(Stepped(failed.outputs))
            if not isinstance(failed.cause, Rejected):
                raise failed.cause from failed  # dead-lettered as an internal error by ``process``
            batch.reject(failed.cause.reason, rec)
            return
        batch.publish(stepped)
        if stepped.rejected is not None:
            batch.reject(stepped.rejected, rec, stepped.conflict)
            if stepped.conflict:
                obs.duplicate_conflict()

    def _decoded(self, batch: Batch, rec: Record, latest: datetime) -> Any:
        """The record's event, or None when it is dead-lettered (bad, on the wrong topic, or
        from the future: one broken producer must not fire every deadline of a partition)."""
        try:
            decoded = decode_event(rec.value if rec.value is not None else b"")
        except Rejected as err:
            batch.reject(err.reason, rec)
            return None
        is_metric = isinstance(decoded, MetricObserved)
        if is_metric != (rec.topic == self.names.metrics):
            batch.reject(f"{decoded.type} events belong on the {'metrics' if is_metric else 'tickets'} "
                         f"topic, not on {rec.topic}", rec)
            return None
        future = from_the_future(decoded, latest, self.settings.max_future_skew, "worker's")
        if future is not None:
            batch.reject(future, rec)
            return None
        return decoded

    def observe(self, events: list, fired: list[datetime]) -> None:
        """Metrics of a settled batch: deadline latency, events in, state sizes, consumer lag."""
        now = time.time()
        for due in fired:
            obs.deadline_latency(now - due.timestamp())
        obs.events_in(sum(1 for e in events if e.message.topic != self.names.ticks))
        open_, due_index = self.parts.sizes()
        obs.set_open_incidents(open_)
        obs.set_due_index(due_index)
        self.report_lag(events)

    def report_lag(self, events: list) -> None:
        """``escalation_consumer_lag`` of the tickets partitions this batch read from."""
        tail: dict[int, int] = {}
        for event in events:
            if event.message.topic == self.names.tickets:
                tail[event.message.partition] = event.message.offset
        for p, offset in tail.items():
            try:
                hw = self.app.consumer.highwater(faust.types.TP(self.names.tickets, p))
            except Exception:  # noqa: BLE001, S112 - metrics only
                continue
            if hw is not None:
                obs.lag(p, max(0, hw - offset - 1))


class DeskAgent(Agent):
    """Settlements and marks on the internal desk topic, through :class:`DeskBook`."""

    def __init__(self, book: DeskBook, **kw: Any) -> None:
        super().__init__(**kw)
        self.book = book

    def discard_state(self) -> None:
        self.book.discard()

    async def run(self, stream: Any, batch_max: int, within: float) -> None:
        async for events in stream.take_events(batch_max, within=within):
            self.begin()
            records, last = await self.received(events)
            batch, writes = self.process(records)
            log.debug("desk batch: %d records, sending %d", len(events), len(batch.records))
            await batch.done()
            log.debug("desk batch: sent; %d table writes", len(writes))
            await self.settle(writes, last)
            obs.set_desk_pending(self.book.pending())

    def process(self, records: list[Record]) -> tuple[Batch, list]:
        """Take one batch of desk records in order, then release what the marks allow."""
        batch = Batch(self.outlets)
        try:
            for rec in records:
                try:
                    self.book.take(rec.partition, rec.value)
                except (Rejected, ValueError, KeyError, TypeError) as err:
                    batch.reject(getattr(err, "reason", None) or f"bad desk record: {err!r}", rec)
                except Exception as err:  # noqa: BLE001 - the safety net, as in the inputs agent
                    batch.internal_error("desk", err, rec)
            for out in self.book.release():
                batch.output(out.data["agreement"], out)
            writes = self.book.end()
        except BaseException:
            self.forget()
            raise
        return batch, writes
