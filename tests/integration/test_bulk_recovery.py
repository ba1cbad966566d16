"""A worker on an empty RocksDB directory rebuilds its tables from the changelogs in bulk
(escalation/live/bulk_recovery.py) and goes on exactly as replay: the real broker, real workers."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from escalation.live.readback import read_all
from tests.integration.test_live_engine import (
    PARTITIONS,
    Worker,
    assert_same_outputs,
    event_records,
    produce,
    replay_outputs,
    tick_and_collect,
    topics,
    wait_consumed,
)

pytestmark = pytest.mark.integration


async def _beyond_ends(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """(partition, offset) of the records at or past the log end the broker reports for ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        beyond = []
        for tp in tps:
            consumer.seek(tp, max(0, ends[tp] - 1))  # the last record the end admits: its whole batch comes
            got = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
            beyond += [(tp.partition, m.offset) for m in got if m.offset >= ends[tp]]
        return beyond
    finally:
        await consumer.stop()
_BULK = re.compile(rb"bulk recovery of (\S+)\[(\d+)\]: (\d+) records in")


def test_a_worker_on_an_empty_directory_recovers_its_tables_in_bulk_and_gives_replays_outputs(broker, namespace, tmp_path):
    from tests.helpers import generated_workload

    env = {"ESCALATION_STORE": "rocksdb://"}
    names = topics(namespace)
    events, agreements = generated_workload(tmp_path, tickets=200, seed=11)
    until = "2026-06-01T00:10:00+02:00"  # past the May close (live grace 5 min)
    lines = events.read_bytes().splitlines()
    expected = {o["id"]: o for o in replay_outputs(events, until, agreements)}
    half = len(lines) // 2
    first, second = tmp_path / "first", tmp_path / "second"  # each worker's own RocksDB directory
    first.mkdir()
    second.mkdir()
    w1 = Worker(broker, namespace, first, "--manual-ticks", name="w1", env=env, agreements=agreements)
    try:
        w1.wait_ready()
        produce(broker, names["tickets"], event_records(lines[:half]))
        wait_consumed(broker, namespace.app_id, names["tickets"])
    finally:
        w1.stop()
    changelog = f"{namespace.app_id}-incidents-changelog"
    written = asyncio.run(read_all(broker.bootstrap, changelog))
    assert written, "the first worker wrote no incident to its changelog"
    # its batches of writes ended with a one-record batch, so the broker tells the log end right
    # (escalation/live/tablewrites.py, tail_alone): nothing lies beyond the end it reports
    assert asyncio.run(_beyond_ends(broker.bootstrap, changelog)) == []

    w2 = Worker(broker, namespace, second, "--manual-ticks", "--loglevel", "INFO", name="w2", env=env,
                agreements=agreements)  # INFO: the bulk reads are logged
    try:
        w2.wait_ready(timeout=60)
        produce(broker, names["tickets"], event_records(lines[half:]))
        wait_consumed(broker, namespace.app_id, names["tickets"], timeout=60)
        outs = tick_and_collect(broker, names, until, expected, timeout=60)
    finally:
        w2.stop()
    assert_same_outputs(expected, outs, f"after a bulk recovery; see {w2.log_path}")
    bulk = {(topic.decode(), int(p)): int(n) for topic, p, n in _BULK.findall(w2.log_path.read_bytes())}
    # every record the first worker wrote to the incidents changelog was read by a bulk read
    assert sum(n for (topic, _), n in bulk.items() if topic == changelog) == len(written), bulk
