"""Reading the ``deliveries`` topic into a :class:`~escalation.delivery.log.DeliveryLog`.

Invariants: :meth:`LogReader.catch_up` returns only after every record that was in the topic when
it was called has been applied (it reads up to the end offsets taken at the call), so a worker
that catches up after getting partitions knows every delivery recorded by their previous owner,
which wrote its records before giving them up. Unreadable records are skipped (they were not
written by a deliverer) and counted.
"""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from escalation.delivery.log import DeliveryLog


class LogReader:
    def __init__(self, bootstrap: str, topic: str, log: DeliveryLog, client_kwargs: dict | None = None) -> None:
        self.topic, self.log = topic, log
        self.bootstrap, self.client_kwargs = bootstrap, client_kwargs or {}
        self.consumer: AIOKafkaConsumer | None = None     # made in start(): aiokafka wants a running loop
        self.tps: list[TopicPartition] = []
        self.applied = self.skipped = 0

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         auto_offset_reset="earliest", **self.client_kwargs)
        await self.consumer.start()
        parts: set[int] | None = None
        for _ in range(50):   # metadata of a just-created topic may take a moment to appear
            await self.consumer.topics()
            parts = self.consumer.partitions_for_topic(self.topic)
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"topic {self.topic} not found (run `escalation topics` first)")
        self.tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self.consumer.assign(self.tps)
        # Explicit seeks, not seek_to_beginning(): on the embedded broker that reset sometimes lands
        # on the log end (measured: 9 of 15 reads saw nothing), which would forget every delivery.
        for tp, first in (await self.consumer.beginning_offsets(self.tps)).items():
            self.consumer.seek(tp, first)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def catch_up(self) -> None:
        ends = await self.consumer.end_offsets(self.tps)
        while True:
            behind = [tp for tp in self.tps if await self.consumer.position(tp) < ends[tp]]
            if not behind:
                return
            batches = await self.consumer.getmany(*behind, timeout_ms=200)
            for msgs in batches.values():
                for msg in msgs:
                    self._apply(msg.value)

    def _apply(self, value: bytes | None) -> None:
        try:
            record = orjson.loads(value) if value else None
            self.log.apply(record)
            self.applied += 1
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.skipped += 1
