"""The embedded broker, topic creation/checking and a produce/consume round trip, for real."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from escalation.live.broker import BrokerStartError, EmbeddedBroker, probe_broker
from escalation.live.topics import TopicMismatchError, ensure_topics, load_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


async def _create(bootstrap: str, name: str, partitions: int, **configs: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()


def test_broker_answers_and_advertises_its_bootstrap(broker):
    host, port = broker.bootstrap.split(",")[0].rsplit(":", 1)
    assert (host, int(port)) in probe_broker(host, int(port))
    assert broker.url.startswith("kafka://")


def test_ensure_topics_creates_then_accepts_all_catalogue_topics(broker, namespace):
    spec = load_topics()
    report = asyncio.run(ensure_topics(broker.bootstrap, namespace.prefix, spec, app_id=namespace.app_id))
    names = {t.name: t for t in report.topics}
    assert set(names) == {f"{namespace.prefix}{n}" for n in
                          ("tickets", "metrics", "notifications", "remedies", "timeline", "deadletter", "deliveries")} | {
        f"{namespace.app_id}-ticks", f"{namespace.app_id}-desk"}
    assert {t.action for t in report.topics} == {"created"}
    assert {t.partitions for t in report.topics} == {4}

    again = asyncio.run(ensure_topics(broker.bootstrap, namespace.prefix, spec, app_id=namespace.app_id))
    assert {t.action for t in again.topics} == {"exists"}
    assert again.configs_checked and again.warnings == []


def test_ensure_topics_refuses_a_wrong_partition_count(broker, namespace):
    asyncio.run(_create(broker.bootstrap, f"{namespace.prefix}tickets", 2))
    with pytest.raises(TopicMismatchError) as err:
        asyncio.run(ensure_topics(broker.bootstrap, namespace.prefix, load_topics(), app_id=namespace.app_id))
    assert err.value.problems == [
        f"{namespace.prefix}tickets: has 2 partitions, catalogue wants 4 "
        "(recreate the topic or set `partitions` to match; partitions cannot be changed in place)"
    ]


def test_ensure_topics_refuses_a_wrong_cleanup_policy(broker, namespace):
    asyncio.run(_create(broker.bootstrap, f"{namespace.prefix}timeline", 4, **{"cleanup.policy": "compact"}))
    with pytest.raises(TopicMismatchError, match=r"timeline: cleanup.policy=compact, catalogue wants delete"):
        asyncio.run(ensure_topics(broker.bootstrap, namespace.prefix, load_topics(), app_id=namespace.app_id))


def test_ensure_topics_without_create_reports_missing_and_creates_nothing(broker, namespace):
    with pytest.raises(TopicMismatchError, match="tickets: missing"):
        asyncio.run(ensure_topics(broker.bootstrap, namespace.prefix, load_topics(), app_id=namespace.app_id,
                                  create=False))

    async def listed() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            return [t for t in await admin.list_topics() if namespace.tag in t]
        finally:
            await admin.close()

    assert asyncio.run(listed()) == []


def test_a_produced_record_is_consumed_back(broker, namespace):
    async def roundtrip() -> list[tuple[bytes, bytes, list]]:
        await ensure_topics(broker.bootstrap, namespace.prefix, load_topics(), app_id=namespace.app_id)
        topic = f"{namespace.prefix}tickets"
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            md = await producer.send_and_wait(topic, key=b"INC-1", value=b'{"id": "e-1"}', headers=[("h", b"1")])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=broker.bootstrap, group_id=namespace.app_id, auto_offset_reset="earliest",
            session_timeout_ms=2000, heartbeat_interval_ms=500,
        )
        await consumer.start()
        try:
            got = await asyncio.wait_for(consumer.getone(), 30)
            await consumer.commit()
            committed = await consumer.committed(TopicPartition(topic, md.partition))
        finally:
            await consumer.stop()
        assert committed == md.offset + 1
        return [(got.key, got.value, list(got.headers))]

    assert asyncio.run(roundtrip()) == [(b"INC-1", b'{"id": "e-1"}', [("h", b"1")])]


def test_broker_process_is_gone_after_stop():
    broker = EmbeddedBroker()
    with broker:
        pid, log = broker.pid, broker.log_path
        assert pid and _alive(pid) and broker.running
        assert probe_broker("127.0.0.1", broker.port)
    assert not _alive(pid)
    assert not broker.running
    assert not log.exists()
    broker.stop()  # idempotent


def test_start_on_a_busy_port_fails_and_leaves_nothing_running():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        broker = EmbeddedBroker(port=s.getsockname()[1], startup_timeout=5)
        with pytest.raises(BrokerStartError, match="already in use"):
            broker.start()
    assert not broker.running


def test_cli_starts_a_detached_broker_and_stops_it(tmp_path):
    pidfile, portfile = tmp_path / "tansu.pid", tmp_path / "tansu.port"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "escalation.live.broker"]
    started = subprocess.run([*cli, "start", "--pidfile", pidfile, "--portfile", portfile],
                             capture_output=True, text=True, env=env, timeout=60)
    assert started.returncode == 0, started.stderr
    pid, port = int(pidfile.read_text()), int(portfile.read_text())
    try:
        assert started.stdout.strip() == f"127.0.0.1:{port}"
        assert _alive(pid)  # outlived the CLI process
        assert ("127.0.0.1", port) in probe_broker("127.0.0.1", port)
    finally:
        stopped = subprocess.run([*cli, "stop", "--pidfile", pidfile], capture_output=True, text=True,
                                 env=env, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert not _alive(pid)
    assert not pidfile.exists()
    again = subprocess.run([*cli, "stop", "--pidfile", pidfile], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0
