"""Live engine throughput and deadline latency on the embedded broker (same broker, same run).

    python bench/live_bench.py [--events 68763] [--configs test,batched] [--deadlines 50] [--py-spy DIR]

1. raw aiokafka consume -> produce loop (one consumer, one producer, JSON passthrough): msgs/s;
2. one `escalation run` worker (manual ticks, subprocess) on the generated ticket file
   (bench/out/tickets-10000-s42.jsonl with bench/out/agreements), per worker configuration
   (``CONFIGS``): the events are produced first (one-record batches, so the log end offsets stay
   right on Tansu), then the worker starts; events/s from "escalation: ready" to every record
   committed by the worker's group (includes Faust's commit interval, so it slightly understates);
3. deadline latency with the real ticker (interval 0.5 s, grace 1 s): K P1 tickets with a 10 s
   response target; latency = arrival of `sla.warning` on the topic - its `time` (the instant it
   became true). Includes the grace by design (p50 ~ grace + interval/2).

Starts an EmbeddedBroker on 127.0.0.1 (or uses $ESCALATION_TEST_BROKER) and stops every process it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from escalation.live.broker import BrokerAddress, EmbeddedBroker  # noqa: E402
from escalation.live.desk_book import key_partition  # noqa: E402
from escalation.live.topics import ensure_topics, load_topics  # noqa: E402

_spec = importlib.util.spec_from_file_location("_live_tests", ROOT / "tests/integration/test_live_engine.py")
lt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lt)  # Worker, produce, wait_consumed, collect helpers


@dataclass(frozen=True)
class NS:
    prefix: str
    app_id: str


def ns() -> NS:
    tag = uuid.uuid4().hex[:8]
    return NS(f"b-{tag}.", f"escalation-bench-{tag}")


async def raw_loop(bootstrap: str, n: int) -> float:
    src, dst = f"raw-{uuid.uuid4().hex[:8]}", f"raw-out-{uuid.uuid4().hex[:8]}"
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    for i in range(n):
        await p.send(src, json.dumps({"n": i}).encode(), key=f"k{i % 100}".encode(), partition=i % lt.PARTITIONS)
    await p.flush()
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=f"raw-{uuid.uuid4().hex[:8]}",
                         auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
    await c.start()
    c.assign([TopicPartition(src, i) for i in range(lt.PARTITIONS)])
    t0, done = time.perf_counter(), 0
    while done < n:
        for msgs in (await c.getmany(timeout_ms=500)).values():
            for m in msgs:
                await p.send(dst, json.dumps(json.loads(m.value)).encode(), key=m.key)
                done += 1
        await c.commit()
    await p.flush()
    elapsed = time.perf_counter() - t0
    await c.stop()
    await p.stop()
    return n / elapsed


class BenchWorker(lt.Worker):
    """lt.Worker with extra environment and an optional command prefix (py-spy)."""

    def __init__(self, broker, ns, tmp: Path, *extra: str, agreements: Path, name: str, env: dict | None = None,
                 prefix: list[str] | None = None):
        self.log_path = tmp / f"{name}.stderr"
        self.log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "escalation.cli", "run", "--broker", broker.url, "--app-id", ns.app_id,
               "--topic-prefix", ns.prefix, "--agreements", str(agreements), "--partitions", str(lt.PARTITIONS),
               "--profile", "test", *extra]
        self.proc = subprocess.Popen(
            [*(prefix or []), *cmd], stdout=subprocess.DEVNULL, stderr=self.log, cwd=tmp, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "ESCALATION_METRICS_PORT": "0", **(env or {})})


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all threads), from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


async def preproduce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Produce fast: in large record batches, each partition's last record in a batch of its own.
    Tansu's ListOffsets reports a wrong log end after a multi-record batch (DESIGN.md §7); a
    one-record batch at the end keeps it right (the worker's changelog writes do the same,
    ``escalation/live/tablewrites.py``). Each partition keeps the records' order."""
    by_p: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for i, (key, value) in enumerate(records):
        p = key_partition(key, lt.PARTITIONS) if key is not None else i % lt.PARTITIONS  # as the default partitioner
        by_p.setdefault(p, []).append((key, value))
    bulk = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    alone = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1)
    await bulk.start()
    await alone.start()
    try:
        await asyncio.gather(*[await bulk.send(topic, value, key=key, partition=p)
                               for p, recs in by_p.items() for key, value in recs[:-1]])
        await asyncio.gather(*[await alone.send(topic, recs[-1][1], key=recs[-1][0], partition=p)
                               for p, recs in by_p.items()])
    finally:
        await bulk.stop()
        await alone.stop()


async def watch_commits(bootstrap: str, group: str, topic: str, total: int, timeout: float) -> list[tuple[float, int]]:
    """(time, records committed by ``group`` on ``topic``) every 0.1 s until all ``total`` are committed."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    samples: list[tuple[float, int]] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(lt.PARTITIONS)]
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            done = 0
            for tp in tps:
                done += (await c.committed(tp)) or 0
            samples.append((time.perf_counter(), done))
            if done >= total:
                break
            await asyncio.sleep(0.1)
        return samples
    finally:
        await c.stop()


def engine_throughput(broker, tmp: Path, n: int, *, label: str, env: dict | None = None,
                      spy: str | None = None) -> dict:
    """Pre-produce ``n`` ticket events, start one worker, time ready -> every record committed."""
    space = ns()
    asyncio.run(ensure_topics(broker.bootstrap, space.prefix, load_topics(), app_id=space.app_id, partitions=lt.PARTITIONS))
    lines = (ROOT / "bench/out/tickets-10000-s42.jsonl").read_bytes().splitlines()[:n]
    topic = f"{space.prefix}tickets"
    records = lt.event_records(lines)
    asyncio.run(preproduce(broker.bootstrap, topic, records))
    committed, ends = asyncio.run(lt._committed(broker.bootstrap, space.app_id, topic))
    assert sum(ends.values()) == len(records), f"log end {sum(ends.values())} != {len(records)} produced"
    w = BenchWorker(broker, space, tmp, "--manual-ticks", agreements=ROOT / "bench/out/agreements", name=label, env=env)
    spy_proc = None
    try:
        w.wait_ready(60)
        t_ready = time.perf_counter()
        cpu0 = cpu_seconds(w.proc.pid)
        if spy:  # attach for the first 15 s of processing (collapsed stacks, one line per stack)
            spy_proc = subprocess.Popen(["py-spy", "record", "--pid", str(w.proc.pid), "--duration", "15", "--rate", "250",
                                         "--format", "raw", "--output", spy], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        samples = asyncio.run(watch_commits(broker.bootstrap, space.app_id, topic, len(records), timeout=900))
        cpu = cpu_seconds(w.proc.pid) - cpu0
        if spy_proc is not None:
            spy_proc.wait(60)
    finally:
        if spy_proc is not None and spy_proc.poll() is None:
            spy_proc.kill()
        w.stop()
    t_end, done = samples[-1]
    assert done >= len(records), f"{label}: only {done}/{len(records)} committed; see {w.log_path}"
    moving = [s for s in samples if 0 < s[1] < len(records)]
    first = moving[0] if moving else samples[0]
    warnings = sum(1 for line in w.log_path.read_text(errors="replace").splitlines() if "buffer full" in line)
    return {"label": label, "events": len(records), "rate": len(records) / (t_end - t_ready),
            "commit_slope": (done - first[1]) / (t_end - first[0]) if t_end > first[0] else float("nan"),
            "seconds": t_end - t_ready, "log": str(w.log_path), "buffer_full_warnings": warnings,
            "cpu_us_per_event": cpu / len(records) * 1e6}


def deadline_latency(broker, tmp: Path, k: int) -> list[float]:
    space = ns()
    asyncio.run(ensure_topics(broker.bootstrap, space.prefix, load_topics(), app_id=space.app_id, partitions=lt.PARTITIONS))
    agreement = tmp / "acme-erp.yaml"
    agreement.write_text(lt.SHORT_AGREEMENT)
    w = lt.Worker(broker, space, tmp, "--tick-interval", "0.5", "--tick-grace", "1", agreements=agreement, name="latency")
    arrivals: dict[str, float] = {}
    try:
        w.wait_ready()
        now = datetime.now(timezone.utc)
        lt.produce(broker, f"{space.prefix}tickets", [lt._opened(f"LAT-{i}", now + timedelta(milliseconds=100 * i)) for i in range(k)])

        async def watch() -> None:
            c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
            await c.start()
            tps = [TopicPartition(f"{space.prefix}notifications", p) for p in range(lt.PARTITIONS)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            deadline = time.time() + 40
            try:
                while len(arrivals) < k and time.time() < deadline:
                    for msgs in (await c.getmany(timeout_ms=100)).values():
                        for m in msgs:
                            o = json.loads(m.value)
                            if o["type"] == "sla.warning" and o["data"].get("fraction") == 0.5:
                                arrivals[o["subject"]] = time.time() - datetime.fromisoformat(o["time"]).timestamp()
            finally:
                await c.stop()

        asyncio.run(watch())
    finally:
        w.stop()
    return sorted(arrivals.values())


#: Worker configurations compared by --configs. "test" is what CI runs on the embedded broker
#: (producer_max_batch_size=1: one record per produce batch, the Tansu workaround of DESIGN.md §7);
#: "batched" is Faust's default producer batching (what a real Kafka cluster gets; on Tansu it is
#: only safe without restarts, which this benchmark does not do).
CONFIGS = {"test": {}, "batched": {"ESCALATION_PRODUCER_MAX_BATCH_SIZE": "16384"}}


def memory_mib(pid: int) -> dict[str, float]:
    """A process's resident memory now and at its peak (``VmRSS``, ``VmHWM``; Linux), MiB; nan when unreadable."""
    out = {"VmRSS": float("nan"), "VmHWM": float("nan")}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident memory (VmHWM, Linux), MiB; nan when unreadable."""
    return memory_mib(pid)["VmHWM"]


@contextlib.contextmanager
def bench_broker() -> Iterator[BrokerAddress]:
    """The broker of ``$ESCALATION_TEST_BROKER``, else an EmbeddedBroker on 127.0.0.1 started here
    and stopped on the way out."""
    env = os.environ.get("ESCALATION_TEST_BROKER", "").strip()
    embedded = None if env else EmbeddedBroker().start()
    try:
        yield BrokerAddress(env) if env else embedded
    finally:
        if embedded is not None:
            embedded.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=68763, help="ticket events (max 68763: the 10k-ticket file)")
    ap.add_argument("--raw", type=int, default=20000)
    ap.add_argument("--configs", default="test,batched", help=f"worker configurations, from {','.join(CONFIGS)}")
    ap.add_argument("--deadlines", type=int, default=50, help="0: skip the deadline latency part")
    ap.add_argument("--py-spy", metavar="DIR", help="py-spy each worker for 15 s (collapsed stacks in DIR; py-spy must be installed)")
    a = ap.parse_args()
    with bench_broker() as broker, contextlib.nullcontext("/tmp/p/lbtmp") as tmp:
        raw = asyncio.run(raw_loop(broker.bootstrap, a.raw))
        print(f"raw aiokafka consume->produce: {raw:,.0f} msgs/s ({a.raw} records)", flush=True)
        for label in a.configs.split(","):
            spy = str(Path(a.py_spy).resolve() / f"worker-{label}.folded.txt") if a.py_spy else None
            r = engine_throughput(broker, Path(tmp), a.events, label=label, env=CONFIGS[label], spy=spy)
            print(f"escalation worker [{label}] (tickets agent + tables + outputs): {r['rate']:,.0f} events/s "
                  f"({r['events']} events in {r['seconds']:.1f}s from ready to all committed; "
                  f"commit slope {r['commit_slope']:,.0f}/s; worker CPU {r['cpu_us_per_event']:.0f} us/event); "
                  f"raw/worker = {raw / r['rate']:.1f}x"
                  + (f"; {r['buffer_full_warnings']} 'producer buffer full' warnings" if r['buffer_full_warnings'] else "")
                  + (f"; profile {spy}" if spy else ""), flush=True)
        if a.deadlines:
            lat = deadline_latency(broker, Path(tmp), a.deadlines)
            if lat:
                p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
                print(f"deadline latency (tick interval 0.5 s, grace 1 s, grace included): p50 {p(0.5):.2f}s "
                      f"p99 {p(0.99):.2f}s max {lat[-1]:.2f}s ({len(lat)}/{a.deadlines} warnings)", flush=True)
            else:
                print("deadline latency: no warnings arrived", flush=True)


if __name__ == "__main__":
    main()
