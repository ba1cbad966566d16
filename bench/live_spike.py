"""Spike measurements of faust-streaming + aiokafka on the embedded Tansu broker.

    python bench/live_spike.py [--messages 3000] [--keys 50] [--skip-default-join]

Uses ``$ESCALATION_TEST_BROKER`` (host:port) if set, else starts an EmbeddedBroker. Prints:

1. group join time of a Faust worker (``escalation.live.spike_app``) with Faust's default client
   settings and with the §7 test profile (worker init -> partitions assigned -> ready);
2. Faust agent throughput (consume -> Table update -> produce), with producer_max_batch_size=1
   and with Faust's default batch size;
3. table recovery after a graceful restart (SIGTERM, same app id) for both batch sizes: the
   counts must continue, i.e. no table update lost;
4. a raw aiokafka consume -> produce loop: join time (aiokafka defaults vs 2 s session) and msgs/s.

Every worker process started here is stopped by PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from escalation.live.broker import EmbeddedBroker  # noqa: E402

PARTITIONS = 4


class Worker:
    """A spike_app worker subprocess whose JSON lifecycle lines are collected with timestamps."""

    def __init__(self, bootstrap: str, app_id: str, src: str, sink: str, datadir: str, profile: str, sets=()):
        cmd = [sys.executable, "-m", "escalation.live.spike_app", "--broker", f"kafka://{bootstrap}",
               "--app-id", app_id, "--source", src, "--sink", sink, "--datadir", datadir, "--profile", profile]
        for s in sets:
            cmd += ["--set", s]
        self.spawned = time.time()
        self.log = open(Path(datadir) / f"{app_id}.{int(self.spawned * 1000)}.stderr", "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
        self.events: dict[str, float] = {}
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            self.events.setdefault(ev["event"], ev["t"])
            self._q.put(ev["event"])

    def wait_for(self, event: str, timeout: float) -> float:
        deadline = time.time() + timeout
        while event not in self.events:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}) before {event}; see {self.log.name}")
            try:
                self._q.get(timeout=min(0.2, max(0.0, deadline - time.time())))
            except queue.Empty:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"no {event} after {timeout}s; see {self.log.name}")
        return self.events[event]

    def stop(self, timeout: float = 30.0) -> float:
        t = time.time()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return time.time() - t


async def create_topics(bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, n: int, keys: int, start: int = 0) -> float:
    """Produce n JSON records round-robin over `keys` keys; return the wall time of the first send."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await p.start()
    t0 = time.time()
    try:
        for i in range(start, start + n):
            await p.send(topic, key=f"k{i % keys}".encode(), value=json.dumps({"n": i}).encode())
        await p.flush()
    finally:
        await p.stop()
    return t0


async def collect(
    bootstrap: str, topic: str, n: int, timeout: float, from_offsets=None, settle: float = 0.0
) -> tuple[list[dict], float]:
    """Read >= n records from all partitions of topic (from the start or from_offsets), then keep
    reading until nothing arrived for `settle` seconds; return (values, time of the n-th record)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    try:
        tps = [TopicPartition(topic, i) for i in range(PARTITIONS)]
        c.assign(tps)
        for tp in tps:
            if from_offsets:
                c.seek(tp, from_offsets[tp])
            else:
                await c.seek_to_beginning(tp)
        out: list[dict] = []
        t_last, deadline = 0.0, time.time() + timeout
        while len(out) < n and time.time() < deadline:
            batch = await c.getmany(timeout_ms=200)
            for msgs in batch.values():
                out += [json.loads(m.value) for m in msgs]
                t_last = time.time()
        quiet_until = time.time() + settle
        while time.time() < quiet_until:
            batch = await c.getmany(timeout_ms=100)
            for msgs in batch.values():
                out += [json.loads(m.value) for m in msgs]
                quiet_until = time.time() + settle
        return out, t_last
    finally:
        await c.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        return await c.end_offsets([TopicPartition(topic, i) for i in range(PARTITIONS)])
    finally:
        await c.stop()


def faust_join(bootstrap: str, tmp: str, profile: str, timeout: float) -> dict:
    app = f"spike-join-{profile}-{uuid.uuid4().hex[:6]}"
    src, sink = f"{app}.src", f"{app}.sink"
    asyncio.run(create_topics(bootstrap, src, sink))
    w = Worker(bootstrap, app, src, sink, tmp, profile)
    try:
        init = w.wait_for("init", 60)
        assigned = w.wait_for("assigned", timeout)
        ready = w.wait_for("ready", timeout)
        t0 = time.time()
        asyncio.run(produce(bootstrap, src, 1, 1))
        _, t_out = asyncio.run(collect(bootstrap, sink, 1, 30))
    finally:
        stop = w.stop()
    return {"profile": profile, "spawn_to_init": init - w.spawned, "init_to_assigned": assigned - init,
            "init_to_ready": ready - init, "first_record_latency": t_out - t0, "graceful_stop": stop}


def faust_throughput_and_recovery(bootstrap: str, tmp: str, n: int, keys: int, batch: int | None) -> dict:
    app = f"spike-tp-{batch or 'default'}-{uuid.uuid4().hex[:6]}"
    src, sink = f"{app}.src", f"{app}.sink"
    asyncio.run(create_topics(bootstrap, src, sink))
    sets = [f"producer_max_batch_size={batch}"] if batch else ["producer_max_batch_size=16384"]
    w = Worker(bootstrap, app, src, sink, tmp, "test", sets)
    try:
        w.wait_for("ready", 60)
        t0 = asyncio.run(produce(bootstrap, src, n, keys))
        out, t_last = asyncio.run(collect(bootstrap, sink, n, 120))
    finally:
        w.stop()
    res = {"batch": batch or "faust default (16384)", "messages": len(out), "faust_msgs_per_s": len(out) / (t_last - t0)}
    last = {}
    for rec in out:
        last[rec["key"]] = max(last.get(rec["key"], 0), rec["count"])
    # restart with the same app id: the table must recover and counts continue
    offsets = asyncio.run(end_offsets(bootstrap, sink))
    w = Worker(bootstrap, app, src, sink, tmp, "test", sets)
    try:
        init = w.wait_for("init", 60)
        ready = w.wait_for("ready", 120)
        asyncio.run(produce(bootstrap, src, keys, keys, start=n))
        after, _ = asyncio.run(collect(bootstrap, sink, keys, 60, from_offsets=offsets, settle=2.0))
    finally:
        w.stop()
    got: dict[str, list[int]] = {}
    for r in after:
        got.setdefault(r["key"], []).append(r["count"])
    want = {k: last.get(k, 0) + 1 for k in got}
    lost = {k: (max(c), want[k]) for k, c in got.items() if max(c) < want[k]}
    res |= {"restart_init_to_ready": ready - init, "records_after_restart": len(after),
            "keys_ok": sum(1 for k, c in got.items() if c == [want[k]]), "keys_lost_updates": len(lost),
            "keys_reprocessed": sum(1 for c in got.values() if len(c) > 1),
            "example_lost(got,want)": dict(list(lost.items())[:3]),
            "example_reprocessed(n,count)": {k: [(r["n"], r["count"]) for r in after if r["key"] == k]
                                             for k in list(k for k, c in got.items() if len(c) > 1)[:2]}}
    return res


async def raw_loop(bootstrap: str, n: int, keys: int, tuned: bool) -> dict:
    src, sink, group = [f"spike-raw-{uuid.uuid4().hex[:6]}{s}" for s in (".src", ".sink", ".group")]
    await create_topics(bootstrap, src, sink)
    group_kw = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500} if tuned else {}
    c = AIOKafkaConsumer(src, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, **group_kw)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await p.start()
    t_start = time.time()
    await c.start()
    while not c.assignment():
        await asyncio.sleep(0.01)
    t_joined = time.time()
    # first poll after assignment also fetches committed offsets; do it before timing
    await c.getmany(timeout_ms=100)
    t0 = await produce(bootstrap, src, n, keys)
    done, t_last = 0, time.time()
    deadline = time.time() + 120
    try:
        while done < n and time.time() < deadline:
            batch = await c.getmany(timeout_ms=200, max_records=500)
            for msgs in batch.values():
                for m in msgs:
                    await p.send(sink, key=m.key, value=m.value)
                done += len(msgs)
            if batch:
                await c.commit()
        await p.flush()
        t_last = time.time()
    finally:
        await c.stop()
        await p.stop()
    out, t_seen = await collect(bootstrap, sink, n, 30)
    return {"tuned_group_settings": tuned, "join": t_joined - t_start, "messages": len(out),
            "raw_msgs_per_s": len(out) / (max(t_last, t_seen) - t0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--keys", type=int, default=50)
    ap.add_argument("--skip-default-join", action="store_true", help="skip the slow Faust-defaults join")
    a = ap.parse_args()
    with ExitStack() as stack:
        bootstrap = os.environ.get("ESCALATION_TEST_BROKER")
        if not bootstrap:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="live-spike-"))
        print(f"broker {bootstrap}; {a.messages} messages over {a.keys} keys, {PARTITIONS} partitions", flush=True)
        results = []
        profiles = ["test"] if a.skip_default_join else ["test", "production"]
        for profile in profiles:
            results.append(("faust join", faust_join(bootstrap, tmp, profile, timeout=120)))
            print(*results[-1], flush=True)
        for batch in (1, None):
            results.append(("faust agent", faust_throughput_and_recovery(bootstrap, tmp, a.messages, a.keys, batch)))
            print(*results[-1], flush=True)
        for tuned in (False, True):
            results.append(("raw aiokafka", asyncio.run(raw_loop(bootstrap, a.messages, a.keys, tuned))))
            print(*results[-1], flush=True)
        print("\nsummary")
        for name, r in results:
            print(f"  {name:13s} " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
