"""Live engine throughput and deadline latency on the embedded broker (same broker, same run).

    python bench/live_bench.py [--events 20000] [--deadlines 50]

1. raw aiokafka consume -> produce loop (one consumer, one producer, JSON passthrough): msgs/s;
2. one `escalation run` worker (manual ticks, subprocess) on the generated ticket file
   (bench/out/tickets-10000-s42.jsonl with bench/out/agreements): events/s from first record
   produced to every record committed by the worker's group;
3. deadline latency with the real ticker (interval 0.5 s, grace 1 s): K P1 tickets with a 10 s
   response target; latency = arrival of `sla.warning` on the topic - its `time` (the instant it
   became true). Includes the grace by design (p50 ~ grace + interval/2).

Starts an EmbeddedBroker on 127.0.0.1 (or uses $ESCALATION_TEST_BROKER) and stops every process it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from escalation.live.broker import BrokerAddress, EmbeddedBroker  # noqa: E402
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


def engine_throughput(broker, tmp: Path, n: int) -> tuple[float, int]:
    space = ns()
    asyncio.run(ensure_topics(broker.bootstrap, space.prefix, load_topics(), app_id=space.app_id, partitions=lt.PARTITIONS))
    lines = (ROOT / "bench/out/tickets-10000-s42.jsonl").read_bytes().splitlines()[:n]
    w = lt.Worker(broker, space, tmp, "--manual-ticks", agreements=ROOT / "bench/out/agreements", name="bench")
    try:
        w.wait_ready()
        t0 = time.perf_counter()
        lt.produce(broker, f"{space.prefix}tickets", lt.event_records(lines))
        lt.wait_consumed(broker, space.app_id, f"{space.prefix}tickets", timeout=600)
        elapsed = time.perf_counter() - t0
    finally:
        w.stop()
    return len(lines) / elapsed, len(lines)


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--raw", type=int, default=20000)
    ap.add_argument("--deadlines", type=int, default=50)
    a = ap.parse_args()
    env = os.environ.get("ESCALATION_TEST_BROKER", "").strip()
    embedded = None if env else EmbeddedBroker().start()
    broker = BrokerAddress(env) if env else embedded
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw = asyncio.run(raw_loop(broker.bootstrap, a.raw))
            print(f"raw aiokafka consume->produce: {raw:,.0f} msgs/s ({a.raw} records)", flush=True)
            rate, n = engine_throughput(broker, Path(tmp), a.events)
            print(f"escalation worker (tickets agent + tables + outputs): {rate:,.0f} events/s ({n} events)", flush=True)
            lat = deadline_latency(broker, Path(tmp), a.deadlines)
            if lat:
                p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
                print(f"deadline latency (tick interval 0.5 s, grace 1 s): p50 {p(0.5):.2f}s p99 {p(0.99):.2f}s "
                      f"max {lat[-1]:.2f}s ({len(lat)}/{a.deadlines} warnings)", flush=True)
            else:
                print("deadline latency: no warnings arrived", flush=True)
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
