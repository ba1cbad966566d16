"""Where a batch's records go: outputs, settlements, marks and dead letters, sent together.

- :class:`OutputSender`: one plain aiokafka producer with normal batching for everything but the
  changelogs (see the class for why Faust's own producer is not used for them);
- :class:`Outlets`: the topics a batch sends to, the sender (None with ``exactly_once``: then
  Faust's ``send_soon``, inside its transactions) and the internal-error count per agent;
- :class:`Batch`: what one agent batch sends, in order; :meth:`Batch.done` awaits every delivery
  before the caller writes the batch's state (state never runs ahead of the outputs it caused);
- :func:`write_as`: a table write made as if processing a given record (its partition gets it).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.streams import (
    _current_event,  # Faust's "current event" (table partition); pinned faust 0.15.3
)

from escalation.core.events import internal_error_reason
from escalation.core.outputs import Output
from escalation.live import observability as obs
from escalation.live.offsets import Record
from escalation.live.records import deadletter_record, desk_record, mark_record

log = logging.getLogger("escalation.live.app")

#: bytes of an output record batch (aiokafka's default is 16 KiB). A batch that fires many
#: deadlines sends hundreds of ~1 KB outputs, and aiokafka sends a partition's batches one request
#: after another: with 16 KiB batches the sends took as long as the processing (100k latency run,
#: ~0.12 ms per output). Kafka's default message size limit is 1 MiB.
OUTPUT_BATCH = 256 * 1024


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
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", max_batch_size=OUTPUT_BATCH,
                                            **self.client_kwargs)
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


@dataclass
class Outlets:
    """The topics a batch sends to (Faust topics), the sender, and internal errors per agent."""

    outputs: dict[str, Any]   # output topic kind (notifications, remedies, timeline) -> topic
    desk: Any
    deadletter: Any
    partitions: int           # desk partitions: a mark goes to each
    sender: OutputSender | None
    errors: Counter = field(default_factory=Counter)  # the first one per agent is logged in full


class Batch:
    """What one batch sends, in order, through the sender (else Faust's ``send_soon``); all
    awaited together by :meth:`done`."""

    def __init__(self, outlets: Outlets) -> None:
        self.outlets = outlets
        self.futures: list = []
        self.records: list[tuple[str, bytes | None, bytes, int | None]] = []
        self.types: Counter = Counter()
        self.dead = 0

    def _send(self, topic: Any, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        if self.outlets.sender is None:
            self.futures.append(topic.send_soon(key=key, value=value, partition=partition))
        else:
            self.records.append((topic.get_topic_name(), key, value, partition))

    def publish(self, stepped: Any) -> None:
        """A step's contract outputs (keyed by subject), then its settlements for the desk."""
        for out in stepped.outputs:
            self.output(out.subject, out)
        for src, item in stepped.settlements:
            self._send(self.outlets.desk, item.agreement.encode(), desk_record(item, src))

    def output(self, key: str, out: Output) -> None:
        self._send(self.outlets.outputs[out.topic], key.encode(), orjson.dumps(out.cloudevent()))
        self.types[out.type.value] += 1

    def marks(self, moved: dict) -> None:
        """Marks that moved, to every desk partition (after this batch's settlements)."""
        for src, (at, inclusive) in sorted(moved.items()):
            value = mark_record(src, at, inclusive)
            for q in range(self.outlets.partitions):
                self._send(self.outlets.desk, None, value, q)

    def reject(self, reason: str, rec: Record, duplicate: bool = False) -> None:
        value = deadletter_record(reason, rec.value, rec.key, rec.topic, rec.partition, rec.offset, duplicate)
        self._send(self.outlets.deadletter, rec.key, orjson.dumps(value))
        self.dead += 1

    def internal_error(self, agent: str, err: Exception, rec: Record) -> None:
        """The safety net (DESIGN.md §10): the record is dead-lettered, the batch goes on. The
        first one's traceback is logged; an exception inside the core may have left that one
        incident half-changed (no rollback), which is still better than a stopped partition."""
        errors = self.outlets.errors
        if not errors[agent]:
            log.error("escalation: internal error in the %s agent at %s[%d]@%d (later ones are dead-lettered "
                      "without a traceback)", agent, rec.topic, rec.partition, rec.offset, exc_info=err)
        errors[agent] += 1
        obs.internal_error(agent)
        self.reject(internal_error_reason(err), rec)

    async def done(self) -> None:
        if self.records:
            self.futures += await self.outlets.sender.send_all(self.records)
        if self.futures:
            await asyncio.gather(*self.futures)
        for type_, n in self.types.items():
            obs.outputs_out(type_, n)
        if self.dead:
            obs.dead_letter(self.dead)
