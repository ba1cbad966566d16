"""A batch's table writes in bulk: each value into its table's store, the changelog in record batches.

Why: ``table[key] = value`` makes Faust send one changelog record through its producer buffer
(a future, a buffer hop, a publish with sensors and callbacks, one delivery future per record,
sent one after another). Measured on the embedded broker with the batched profile: the writes of
one agent batch (~200 values) took ~200 ms to flush, at ~2.6 records per produce request, about
as long as the batch's processing itself.

:func:`write_all` does what ``__setitem__`` does for these plain (not windowed) tables, for all
the writes of a batch at once, then waits until the broker has every changelog record:

- the value goes into the table's store as if processing a record of partition ``p`` (Faust's
  current event; the RocksDB store keeps one database per partition);
- the changelog records, serialised as Faust serialises them (the changelog topic's
  ``prepare_key`` / ``prepare_value``), go to changelog partition ``p`` in record batches made by
  the producer's own batch builder, so its batch size limit holds; each changelog partition's
  batches are sent in order, all partitions at once;
- with ``tail_alone`` (the embedded broker's test profile, one record per producer batch: its
  ListOffsets reports a wrong log end after a multi-record batch, DESIGN.md §7) a partition's
  records but its last go in batches of up to ``TAIL_ALONE_BATCH`` bytes and the last one alone:
  the log then ends with a one-record batch, whose end the broker reports right (what the
  workaround needs), in two produce round trips instead of one per record. Should a worker die
  between the two, the batch's journal (written and flushed first) restores what a recovery that
  stopped short of the log end missed;
- once acknowledged, each partition's last offset becomes the store's persisted offset (what
  Faust's ``_on_changelog_sent`` does; the RocksDB store starts its recovery there).

It uses Faust's own producer, so Faust's flush before a commit covers these records too. Not
for ``exactly_once`` (the writes must be part of Faust's transactions): ``bulk_producer`` is None
then, and the callers write through ``write_as``.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder
from faust.streams import (
    _current_event,  # Faust's "current event" (table partition); pinned faust 0.15.3
)
from faust.types import TP

Write = tuple[Any, int, str, bytes]  # (table, partition, key, value)

#: bytes of a record batch of a partition's first writes with ``tail_alone`` (Kafka's default
#: message size limit is 1 MiB)
TAIL_ALONE_BATCH = 256 * 1024


def bulk_producer(app: Any) -> Any | None:
    """The aiokafka producer under Faust's, or None: then writes take Faust's own path."""
    if app.conf.producer_threaded:  # that producer runs on another event loop
        return None
    try:
        return app.producer._ensure_producer()  # faust 0.15.3 aiokafka driver
    except Exception:  # noqa: BLE001 - not started or another driver: Faust's own path
        return None


async def write_all(producer: Any, writes: list[Write], event_of: Callable[[int], Any], tail_alone: bool = False) -> None:
    """Make ``writes`` (see the module docstring); ``event_of(p)``: an event of partition ``p``."""
    chains: dict[tuple[Any, int], list[tuple[bytes | None, bytes | None]]] = {}
    for table, p, key, value in writes:
        token = _current_event.set(weakref.ref(event_of(p)))
        try:
            table.data[key] = value
        finally:
            _current_event.reset(token)
        topic = table.changelog_topic
        k, _ = topic.prepare_key(key, table.key_serializer)
        v, _ = topic.prepare_value(value, table.value_serializer)
        chains.setdefault((table, p), []).append((k, v))
    await asyncio.gather(*(_send_chain(producer, table, p, records, tail_alone)
                           for (table, p), records in chains.items()))


async def _send_chain(producer: Any, table: Any, p: int, records: list[tuple[bytes | None, bytes | None]],
                      tail_alone: bool) -> None:
    """One changelog partition's records, in order, in as few batches as the producer allows
    (``tail_alone``: the last one in a batch of its own, the others in large batches)."""
    topic = table.changelog_topic.get_topic_name()
    sent: list[tuple[Any, int]] = []
    if tail_alone and len(records) > 1:
        # a builder as the producer makes one (aiokafka 0.14), of another size
        new_batch = functools.partial(BatchBuilder, TAIL_ALONE_BATCH, producer._message_accumulator._compression_type)
        records, tail = records[:-1], records[-1:]
    else:
        new_batch, tail = producer.create_batch, []
    for chunk, make in ((records, new_batch), (tail, producer.create_batch)):
        if not chunk:
            continue
        batch = make()
        for key, value in chunk:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send, start another
                sent.append((await producer.send_batch(batch, topic, partition=p), batch.record_count()))
                batch = make()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any record
        sent.append((await producer.send_batch(batch, topic, partition=p), batch.record_count()))
    last = None
    for fut, count in sent:
        meta = await fut
        if meta is not None:
            last = meta.offset + count - 1
    if last is not None:
        table.data.set_persisted_offset(TP(topic, p), last)
