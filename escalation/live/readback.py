"""Read a live worker's state back from its changelogs, for checks and soaks (no worker needed).

``state_input_ids`` answers "which input events reached the state": every input (its id's digest) held by the
``incidents`` table (open incidents and the tombstones of closed ones), from the latest value per
key of ``<app_id>-incidents-changelog``. The changelog is read from its first offset with explicit
seeks (``seek_to_beginning`` can land on the log end on the embedded broker).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from escalation.core.tickets.state import upgrade
from escalation.live.store import unpack


async def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every ``(key, value)`` of ``topic``, partition by partition, from its first offset to its
    current end (every partition the broker reports for it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata partitions_for_topic reads
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp, first in (await consumer.beginning_offsets(tps)).items():
            consumer.seek(tp, first)
        records: list[tuple[bytes | None, bytes | None]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                records += [(m.key, m.value) for m in msgs]
        return records
    finally:
        await consumer.stop()


async def latest_values(bootstrap: str, topic: str) -> dict[bytes | None, bytes | None]:
    """The latest value per key of ``topic`` (a compacted changelog), read to its current end."""
    return dict(await read_all(bootstrap, topic))


async def state_input_ids(bootstrap: str, app_id: str) -> set[int]:
    """Every input the worker's incidents table holds, as the digest of its id
    (:func:`~escalation.core.events.id_hash`; the state keeps no more of an id, see the module docstring)."""
    ids: set[int] = set()
    for value in (await latest_values(bootstrap, f"{app_id}-incidents-changelog")).values():
        if value:
            state = unpack(value)[1]
            saved = upgrade(state["incident"] if "incident" in state else state["closed"])
            ids.update(saved.get("inputs", [])[::2])
    return ids
