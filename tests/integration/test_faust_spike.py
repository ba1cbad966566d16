"""The Faust stack on the real broker: an agent with a Table joins quickly with the §7 test
profile, processes records, and recovers its table after a restart (spike_app, subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


class SpikeWorker:
    def __init__(self, broker, ns, src: str, sink: str, datadir: Path) -> None:
        self.log = open(datadir / "worker.stderr", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "escalation.live.spike_app", "--broker", broker.url, "--app-id", ns.app_id,
             "--source", src, "--sink", sink, "--datadir", str(datadir), "--profile", "test"],
            stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            start_new_session=True, text=True,
        )
        self.events: dict[str, float] = {}

    def wait_for(self, event: str, timeout: float = 60) -> float:
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.time() + timeout
        while event not in self.events:
            assert self.proc.poll() is None, f"worker died, see {self.log.name}"
            assert time.time() < deadline, f"no {event!r} within {timeout}s, see {self.log.name}"
            line = self.proc.stdout.readline()
            if line:
                ev = json.loads(line)
                self.events.setdefault(ev["event"], ev["t"])
            else:
                time.sleep(0.05)
        return self.events[event]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


async def _setup(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 4, 1) for t in topics])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, ns: range, keys: int) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        for n in ns:
            await p.send(topic, key=f"k{n % keys}".encode(), value=json.dumps({"n": n}).encode())
        await p.flush()
    finally:
        await p.stop()


async def _read(bootstrap: str, topic: str, count: int, offsets=None) -> tuple[list[dict], dict]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, i) for i in range(4)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, offsets[tp]) if offsets else await c.seek_to_beginning(tp)
        out: list[dict] = []
        deadline = time.time() + 30
        while len(out) < count and time.time() < deadline:
            for msgs in (await c.getmany(timeout_ms=200)).values():
                out += [json.loads(m.value) for m in msgs]
        return out, await c.end_offsets(tps)
    finally:
        await c.stop()


def test_agent_with_table_joins_processes_and_recovers(broker, namespace, tmp_path):
    src, sink = f"{namespace.prefix}src", f"{namespace.prefix}sink"
    asyncio.run(_setup(broker.bootstrap, src, sink))

    w = SpikeWorker(broker, namespace, src, sink, tmp_path)
    try:
        init = w.wait_for("init")
        assert w.wait_for("ready") - init < 15  # Faust defaults need ~30 s on Tansu
        asyncio.run(_produce(broker.bootstrap, src, range(30), keys=3))
        out, offsets = asyncio.run(_read(broker.bootstrap, sink, 30))
    finally:
        w.stop()
    assert sorted(r["count"] for r in out if r["key"] == "k0") == list(range(1, 11))
    assert len(out) == 30

    w = SpikeWorker(broker, namespace, src, sink, tmp_path)  # same app id: table recovery
    try:
        w.wait_for("ready")
        asyncio.run(_produce(broker.bootstrap, src, range(30, 33), keys=3))
        after, _ = asyncio.run(_read(broker.bootstrap, sink, 3, offsets))
    finally:
        w.stop()
    assert sorted((r["key"], r["count"]) for r in after) == [("k0", 11), ("k1", 11), ("k2", 11)]
