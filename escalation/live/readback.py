"""Read a live worker's state back from its changelogs, for checks and soaks (no worker needed).

``state_input_ids`` answers "which input events reached the state": every input id held by the
``incidents`` table (open incidents and the tombstones of closed ones), from the latest value per
key of ``<app_id>-incidents-changelog``. The changelog is read from its first offset with explicit
seeks (``seek_to_beginning`` can land on the log end on the embedded broker).
"""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, TopicPartition


async def latest_values(bootstrap: str, topic: str, partitions: int) -> dict[bytes, bytes]:
    """The latest value per key of ``topic`` (a compacted changelog), read to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        for tp, first in (await consumer.beginning_offsets(tps)).items():
            consumer.seek(tp, first)
        ends, latest = await consumer.end_offsets(tps), {}
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                latest.update((m.key, m.value) for m in msgs)
        return latest
    finally:
        await consumer.stop()


async def state_input_ids(bootstrap: str, app_id: str, partitions: int) -> set[str]:
    """Every input id the worker's incidents table holds (see the module docstring)."""
    ids: set[str] = set()
    for value in (await latest_values(bootstrap, f"{app_id}-incidents-changelog", partitions)).values():
        if value:
            state = json.loads(value.split(b"\n", 1)[1])
            ids.update(state["incident"]["seen"] if "incident" in state else state["closed"]["seen"])
    return ids
