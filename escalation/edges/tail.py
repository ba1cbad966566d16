"""``escalation tail [notifications|remedies|timeline|deadletter|all]``: print outputs as they
arrive (DESIGN.md §14).

Invariants:
- reads every partition of the chosen topics without a consumer group (nothing is committed,
  any number of tails can watch), from the log end, or from the beginning with
  ``--from-beginning``; positions are set by explicit seeks to the offsets the broker reports,
  and the positions are fixed before the "tailing" line is written to stderr, so anything
  produced after that line is printed;
- JSONL mode writes each record value unchanged, one per line; terminal mode writes one short
  line per record (time, type, subject, summary); a value that is not JSON is still shown;
- stdout is flushed after every record (a pipe reader sees records as they arrive).
"""

from __future__ import annotations

import asyncio
from typing import Callable

import orjson

TOPICS = ("notifications", "remedies", "timeline", "deadletter")


def short_line(topic: str, value: bytes) -> str:
    """``time  type  subject  summary`` for an output; ``deadletter`` records show their reason."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"{topic}: (not JSON) {value[:200]!r}"
    if not isinstance(doc, dict):
        return f"{topic}: {value[:200].decode(errors='replace')}"
    if "specversion" not in doc:   # a dead letter: reason + where the input was
        where = f"{doc.get('topic')}[{doc.get('partition')}]@{doc.get('offset')}"
        return f"{'-':<20} {'deadletter':<22} {str(doc.get('key') or '-'):<12} {doc.get('reason')} ({where})"
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    summary = data.get("summary") or data.get("headline") or ""
    time = str(doc.get("time", ""))[:19].replace("T", " ")
    return f"{time:<20} {str(doc.get('type')):<22} {str(doc.get('subject')):<12} {summary}"


async def position(consumer, topics: list[str], from_beginning: bool) -> int:
    """Assign every partition of ``topics`` and seek to its start or end; the partition count."""
    from aiokafka import TopicPartition

    tps = []
    for _ in range(50):   # metadata of a topic may take a moment to appear
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if len({tp.topic for tp in tps}) == len(topics):
            break
        await consumer.topics()   # refreshes the metadata of every topic (names none: creates none)
        await asyncio.sleep(0.1)
    missing = sorted(set(topics) - {tp.topic for tp in tps})
    if missing:
        raise RuntimeError(f"topic {', '.join(missing)} not found (is `escalation run` using this prefix?)")
    consumer.assign(tps)
    offsets = await (consumer.beginning_offsets(tps) if from_beginning else consumer.end_offsets(tps))
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)   # explicit: seek_to_* resets lazily, and we promise a fixed start
    return len(tps)


async def tail(consumer, topics: dict[str, str], from_beginning: bool, write: Callable[[str, bytes], None],
               ready: Callable[[int], None], stop: asyncio.Event, limit: int | None = None) -> int:
    """Print records of ``topics`` (full name -> short name) until ``stop`` or ``limit`` records."""
    n = await position(consumer, list(topics), from_beginning)
    ready(n)
    seen = 0
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=200)
        for tp, records in sorted(batches.items()):
            for record in records:
                write(topics[tp.topic], record.value or b"")
                seen += 1
                if limit is not None and seen >= limit:
                    return seen
    return seen
