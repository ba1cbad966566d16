"""Every record of an input partition reaches the engine, in offset order (issue #15).

Why this exists: Faust 0.15.3 can lose records between its fetcher and an agent around a restart,
a rebalance or a table recovery (measured on the embedded broker: after a kill -9 and a restart a
run of records produced while no worker ran was never applied, and the worker then committed past
it; elsewhere its ack bookkeeping stalled the committed offset of a partition for good). The
engine therefore does not trust the delivery path; it checks it against its own state:

- :class:`AppliedOffsets` keeps, per input topic partition, the next offset the engine expects
  (table ``offsets``, key ``<topic>#<partition>``, written with the state changes of the same batch).
- :class:`InputGuard` walks a batch in order. A record at the expected offset is the normal case;
  one below it was delivered again (a seek back, a restart from an older commit) and is applied
  again, absorbed by the input ids as before; one above it reveals a hole: the missing range is
  read straight from the broker (:class:`RangeReader`) and put before it, so nothing is skipped
  and nothing is applied out of order. Offsets the broker no longer holds (retention, compaction,
  transaction markers) are simply absent from the range.
- a live tick says which offsets of its partition's tickets and metrics the worker had applied
  when it made the tick (``after``, see :mod:`escalation.live.ticker`); the guard reads back
  whatever of that is not applied yet and puts it before the tick. In the merged stream Faust
  orders records per topic partition only: after a restart the consumer can deliver a tick made
  before the kill ahead of the ticket records the killed worker had applied before making it
  (their batch never committed), and those records would then be late against their own tick.
- :class:`OffsetCommitter` commits, after the batch's state is written, the offsets the engine has
  applied (flushing the changelogs first, as Faust does): a committed offset means "everything
  before it is in the state", and it advances with every batch whatever Faust's acks say.

A partition seen for the first time (no saved offset) starts from the group's committed offset
when Faust knows one, else from its first delivered record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from escalation.live import observability as obs
from escalation.live.store import pack, unpack

log = logging.getLogger(__name__)

#: How long one missing range may take to read before the batch fails (and is consumed again).
RANGE_READ_TIMEOUT = 30.0
#: The window (s) over which the InputGuard measures the rate its consumer delivers records at.
BACKLOG_WINDOW = 2.0


def saturated_within(saturated_at: float | None, now: float, within: float) -> bool:
    """Whether a consumer last saturated at ``saturated_at`` (None: never) was so less than
    ``within`` seconds before ``now`` (one clock for both): the rule the InputGuard's tail check and
    the ticker's ``CatchUp`` share."""
    return saturated_at is not None and now - saturated_at < within


@dataclass(frozen=True, slots=True)
class Record:
    """One input record, as delivered by Faust or read back by :class:`RangeReader`."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @classmethod
    def of_event(cls, event: Any) -> "Record":
        m = event.message
        return cls(m.topic, m.partition, m.offset, event.key, event.value)


class AppliedOffsets:
    """Next offset to apply per topic partition, over one table (values partition-prefixed).

    ``expected`` loads lazily; ``applied`` moves it forward (never back); ``writes`` returns the
    changed entries once and forgets them; ``discard`` drops the cache (failed batch, rebalance)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._next: dict[tuple[str, int], int | None] = {}
        self._changed: set[tuple[str, int]] = set()

    def expected(self, topic: str, partition: int) -> int | None:
        key = (topic, partition)
        if key not in self._next:
            raw = self.table.get(f"{topic}#{partition}")
            self._next[key] = unpack(raw)[1] if raw else None
        return self._next[key]

    def applied(self, topic: str, partition: int, offset: int) -> None:
        current = self.expected(topic, partition)
        if current is None or offset + 1 > current:
            self._next[(topic, partition)] = offset + 1
            self._changed.add((topic, partition))

    def writes(self) -> list[tuple[Any, int, str, bytes]]:
        out = [(self.table, p, f"{topic}#{p}", pack(p, self._next[(topic, p)])) for topic, p in sorted(self._changed)]
        self._changed.clear()
        return out

    def committable(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """``{(topic, partition): next offset}`` of the loaded partitions of ``topics``."""
        wanted = set(topics)
        return {k: v for k, v in self._next.items() if v is not None and k[0] in wanted}

    def discard(self) -> None:
        self._next.clear()
        self._changed.clear()


class RangeReader:
    """Reads ``[start, end)`` of one topic partition with a plain aiokafka consumer (no group)."""

    def __init__(self, bootstrap: str, client_kwargs: dict) -> None:
        self.bootstrap, self.client_kwargs = bootstrap, client_kwargs
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def _start(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        if self._consumer is None:
            # a start the log no longer holds (retention, compaction) reads from its first record
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                        fetch_max_wait_ms=100, auto_offset_reset="earliest", **self.client_kwargs)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """The records with ``start <= offset < end`` the broker holds, in order (fewer when the
        log ends before ``end``: three empty fetches in a row end the read)."""
        out: list[Record] = []
        async for records in self.chunks(topic, partition, start, end, RANGE_READ_TIMEOUT):
            out += records
        return out

    async def chunks(self, topic: str, partition: int, start: int, end: int,
                     timeout: float) -> AsyncIterator[list[Record]]:
        """``read``, a fetch at a time (for ranges too large to hold at once: a changelog);
        TimeoutError when the range is not read within ``timeout`` seconds."""
        from aiokafka import TopicPartition

        async with self._lock:
            consumer = await self._start()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            deadline, empty = time.monotonic() + timeout, 0
            while empty < 3 and await consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read {topic}[{partition}] offsets {start}..{end - 1}")
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=max(1, end - start))
                records = batch.get(tp, ())
                empty = 0 if records else empty + 1
                got = [Record(r.topic, r.partition, r.offset, r.key, r.value) for r in records if start <= r.offset < end]
                if got:
                    yield got

    async def ends(self, topic_partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The log end of each topic partition, asked of the broker (not the consumer's last
        fetch, which is stale for a partition the consumer has stopped fetching)."""
        from aiokafka import TopicPartition

        async with self._lock:
            consumer = await self._start()
            ends = await consumer.end_offsets([TopicPartition(t, p) for t, p in topic_partitions])
            return {(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()


class InputGuard:
    """Makes each batch contiguous per guarded topic partition (see the module docstring).

    ``committed(topic, p)`` is the group's committed offset (the start of a partition with no saved
    offset); the log ends of the ``tails`` come from the broker (``reader.ends``).
    ``tails`` (topic suffix check) names the topics whose *tail* is checked when a record of
    another topic of the same partition arrives (the inputs agent: a tick checks its tickets and
    metrics partitions): a record lost at the end of a partition has no later record to reveal it,
    so once the log end has stayed above the expected offset for ``tail_wait`` seconds the rest is
    read back. Records merely in flight are not mistaken for lost ones by that wait; if they were,
    their second delivery would be absorbed by the input ids.

    ``backlog_rate``: the consumer counts as saturated (a backlog) while it delivers at least this
    many records per second (over the last ``BACKLOG_WINDOW`` s); ``saturated_at`` is when it last
    did. While it is, or was less than ``tail_wait`` ago, a partition whose records do not arrive
    is queued behind the others, not stalled: Faust delivers a backlog partition by partition, and
    one may wait longer than ``tail_wait`` while the agent is busy with the rest. Reading its whole
    tail back then applied it twice (once read back, once delivered again) and held it in memory at
    once (60,000 openings produced at once: 40 % of them read back, ``bench/live_memory.py``). A
    tail lost for good is read back once the backlog is over (the ticker's ``CatchUp`` waits the
    same way).
    """

    def __init__(self, offsets: AppliedOffsets, reader: RangeReader, guarded: set[str],
                 committed: Callable[[str, int], int | None],
                 tails: tuple[str, ...] = (), tail_wait: float = 2.0,
                 after: Callable[[Record], dict[str, int]] | None = None,
                 backlog_rate: float | None = None) -> None:
        self.offsets, self.reader, self.guarded = offsets, reader, guarded
        self.committed, self.tails, self.tail_wait = committed, tails, tail_wait
        self.after = after  # a record's ``{topic: offset}`` that must be applied before it (a tick's)
        self.backlog_rate = backlog_rate
        self.saturated_at: float | None = None  # monotonic time the consumer was last saturated
        self._delivered: deque[tuple[float, int]] = deque()  # (when, records) of the last BACKLOG_WINDOW s
        self._in_window = 0
        self._lagging: dict[tuple[str, int], tuple[int, float]] = {}  # (topic, p) -> (expected, since)
        self._asked: dict[int, float] = {}  # partition -> when its tails' log ends were last asked

    def saturated(self, now: float, within: float) -> bool:
        """Whether the consumer was saturated less than ``within`` seconds before ``now``."""
        return saturated_within(self.saturated_at, now, within)

    def _count_delivered(self, n: int) -> None:
        """Note a delivered batch of ``n`` records; saturated when the window's rate reaches ``backlog_rate``."""
        now, window = time.monotonic(), self._delivered
        window.append((now, n))
        self._in_window += n
        while window[0][0] < now - BACKLOG_WINDOW:
            self._in_window -= window.popleft()[1]
        if self._in_window >= self.backlog_rate * BACKLOG_WINDOW:
            self.saturated_at = now

    def _expected(self, topic: str, partition: int) -> int | None:
        expected = self.offsets.expected(topic, partition)
        return self.committed(topic, partition) if expected is None else expected

    async def records(self, records: list[Record]) -> list[Record]:
        """``records`` with every hole filled from the broker, in order; moves ``offsets`` to the
        end of what is returned for every topic, for the caller to commit after the batch."""
        out: list[Record] = []
        if self.backlog_rate is not None:
            self._count_delivered(len(records))
        for rec in records:
            if rec.topic in self.guarded:
                expected = self._expected(rec.topic, rec.partition)
                if expected is not None and rec.offset > expected:
                    out += await self._read_back(rec.topic, rec.partition, expected, rec.offset)
            else:
                if self.after is not None:
                    out += await self._before(rec)
                if self.tails:
                    out += await self._tails(rec.partition)
            out.append(rec)
            self.offsets.applied(rec.topic, rec.partition, rec.offset)
        return out

    async def position(self, partition: int) -> tuple[dict[str, int], dict[str, int]]:
        """(the next offset to apply of each ``tails`` topic of ``partition`` known so far, the
        broker's log end of each). The ticker holds a partition's ticks back while input waits
        on the broker (so no tick overtakes it) and writes one of the two into the tick it makes
        (its ``after``)."""
        ends = await self.reader.ends([(topic, partition) for topic in self.tails])
        applied = {topic: self._expected(topic, partition) for topic in self.tails}
        return ({t: o for t, o in applied.items() if o is not None},
                {t: end for (t, _), end in ends.items() if end is not None})

    async def _before(self, rec: Record) -> list[Record]:
        """The records of ``rec``'s partition below its ``after`` offsets not applied yet, read
        back in order (a tick made after them must not overtake them)."""
        out: list[Record] = []
        for topic, end in sorted(self.after(rec).items()):
            expected = self._expected(topic, rec.partition)
            if topic in self.guarded and expected is not None and end > expected:
                out += await self._read_back(topic, rec.partition, expected, end)
        return out

    async def _tails(self, partition: int) -> list[Record]:
        out: list[Record] = []
        now = time.monotonic()
        # A broker round trip per tick is not needed to see a lag that must last tail_wait: ask
        # at most twice per tail_wait (ticks come up to every 50 ms beat, ticker.BEAT).
        if now - self._asked.get(partition, -1e9) < self.tail_wait / 2:
            return out
        self._asked[partition] = now
        ends = await self.reader.ends([(topic, partition) for topic in self.tails])
        for topic in self.tails:
            end, expected = ends.get((topic, partition)), self._expected(topic, partition)
            key = (topic, partition)
            if end is None or expected is None or end <= expected:
                self._lagging.pop(key, None)
                continue
            seen = self._lagging.get(key)
            if seen is None or seen[0] != expected:  # first sighting of this lag: wait for a later tick
                self._lagging[key] = (expected, now)
            elif now - seen[1] >= self.tail_wait and not self.saturated(now, self.tail_wait):
                del self._lagging[key]
                out += await self._read_back(topic, partition, expected, end)
        return out

    async def _read_back(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """``[start, end)`` of a topic partition from the broker, recorded as applied."""
        missing = await self.reader.read(topic, partition, start, end)
        for rec in missing:
            self.offsets.applied(rec.topic, rec.partition, rec.offset)
        log.warning("escalation: %s[%d] offsets %d..%d were not delivered; read %d of them back from the broker "
                    "and applied them in order", topic, partition, start, end - 1, len(missing),
                    extra={"topic": topic, "partition": partition, "missing_from": start, "missing_to": end - 1,
                           "refetched": len(missing)})
        obs.refetched(topic, len(missing))
        return missing


class OffsetCommitter:
    """Commits the offsets the engine has applied, for the group (Faust's own commit step, called
    with the engine's offsets instead of its ack list): the producer is flushed first (changelogs
    on the broker), partitions no longer assigned are left out, and a commit Faust has in progress
    is waited for, so the two never interleave.

    What was committed is tracked here, from the commit's result: Faust records an offset as
    committed even when the commit failed (a rebalance under way), which would otherwise leave the
    last offsets of an idle partition uncommitted for good. A failed commit is retried a few times,
    then left to the next batch."""

    RETRIES, RETRY_WAIT = 5, 0.2

    def __init__(self, app: Any) -> None:
        self.app = app
        self.done: dict[Any, int] = {}

    async def commit(self, offsets: dict[tuple[str, int], int]) -> bool:
        from faust.types import TP

        consumer = self.app.consumer
        for attempt in range(self.RETRIES):
            assigned = consumer.assignment()
            wanted = {tp: o for tp, o in ((TP(t, p), o) for (t, p), o in offsets.items())
                      if tp in assigned and self.done.get(tp, -1) < o}
            if not wanted:
                return True
            await consumer.maybe_wait_for_commit_to_finish()
            if await consumer._commit_offsets(wanted):  # faust 0.15.3: flush producer, commit, tables.on_commit
                self.done.update(wanted)
                return True
            await asyncio.sleep(self.RETRY_WAIT)
        log.info("escalation: offsets not committed (rebalancing?); the next batch commits them")
        return False

    def forget(self) -> None:
        """After a rebalance: commit again whatever is applied (another worker may have moved on)."""
        self.done.clear()
