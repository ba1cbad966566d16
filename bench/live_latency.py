"""Deadline latency at scale on the embedded broker, and the per-tick cost of the due index.

    python bench/live_latency.py [--incidents 100000] [--spread 120] [--tick-interval S] [--tick-grace S]
                                 [--config test|batched] [--index-sizes 10000,50000,100000] [--skip-live] [--skip-index]

1. **Per-tick cost** (in process, no broker): a :class:`~escalation.live.partitions.Partitions` over a
   plain dict holds N open P1 incidents of 4 partitions; ticks one second apart are applied to
   every partition while the deadlines come due. Prints, per N, the cost of a tick that fires
   nothing and the cost per fired deadline, next to what one full scan of the N incidents (what
   a tick would cost without the index) takes. Flat in N = O(deadlines due), not O(open incidents).
2. **Live latency**: one ``escalation run`` worker (subprocess, real ticker) on the embedded broker;
   N ``ticket.opened`` events whose response deadlines (P1 ``within: 10m``, no warnings) fall
   uniformly over ``--spread`` seconds starting once ingestion is surely over (the events carry
   past opening times, so nothing is in the future). For every ``sla.breached`` (response) we
   take ``arrival - due``, where ``due`` is the output's ``time`` (the instant it became true) and
   ``arrival`` is (a) when this process read it from the topic, (b) the record's timestamp (set
   by the worker's producer). Both INCLUDE the tick grace by design (a deadline D fires once the
   wall clock passes D + grace); "beyond grace" figures subtract it. Expect about
   grace + tick_interval/2 (p50) and grace + tick_interval + processing (p99).
   Tick interval and grace default to the shipped ones (``LiveSettings`` defaults), so a run
   without those options measures the engine as shipped.

Starts an EmbeddedBroker on 127.0.0.1 (or uses $ESCALATION_TEST_BROKER) and stops every process it starts.
``LIVE_LATENCY_LOGS=DIR`` keeps a copy of each worker's log there.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402

from escalation.live.settings import LiveSettings  # noqa: E402
from escalation.live.topics import ensure_topics, load_topics  # noqa: E402

_spec = importlib.util.spec_from_file_location("_live_bench", ROOT / "bench/live_bench.py")
lb = importlib.util.module_from_spec(_spec)
sys.modules["_live_bench"] = lb  # its dataclasses need their module registered
_spec.loader.exec_module(lb)  # BenchWorker, preproduce, watch_commits, ns; lb.lt: the live test helpers
lt = lb.lt

WITHIN = 1800  # s: P1 response target of the bench agreement (lead + spread must fit in it)


def bench_agreement() -> str:
    text = lt.AGREEMENT.read_text()
    old = "{clock: response,   priority: P1, within: 15m, calendar: always,   warn_at: [0.5, 0.8]}"
    assert old in text
    return text.replace(old, f"{{clock: response,   priority: P1, within: {WITHIN // 60}m, calendar: always}}")


def opened(ticket: str, at: datetime) -> tuple[bytes, bytes]:
    ev = {"id": f"open-{ticket}", "type": "ticket.opened", "time": at.isoformat(), "ticket": ticket,
          "agreement": "acme-erp", "service": "erp-prod", "priority": "P1", "summary": "latency bench"}
    return ticket.encode(), json.dumps(ev).encode()


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


# -- 1. per-tick cost of the due index (in process)
def tick_cost(n: int, agreement: Path, spread: float = 120.0, partitions: int = 4) -> dict:
    from escalation.cli.common import load_registry
    from escalation.core.events import Tick, decode_event
    from escalation.core.tickets.incident import next_due
    from escalation.live.partitions import Partitions
    from escalation.live.store import MemoryStore

    registry = load_registry([str(agreement)])
    parts = Partitions(registry, MemoryStore(), partitions)
    base = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    t0 = time.perf_counter()
    for i in range(n):
        _key, value = opened(f"T-{i}", base + timedelta(seconds=spread * i / n))
        parts.step(i % partitions, decode_event(value))
    load_s = time.perf_counter() - t0
    gc.collect()
    first_due = base + timedelta(seconds=WITHIN)
    idle, busy, fired_total, busy_s = [], [], 0, 0.0
    t = first_due - timedelta(seconds=5)
    while t <= first_due + timedelta(seconds=spread + 2):
        for p in range(partitions):
            s = time.perf_counter()
            fired = len(parts.step(p, Tick(t)).outputs)
            d = time.perf_counter() - s
            if fired:
                busy.append(d)
                busy_s += d
                fired_total += len(parts.fired)
            else:
                idle.append(d)
            parts.fired.clear()
        t += timedelta(seconds=1)
    compiled = registry.get("acme-erp", 3)
    incidents = [i for p in range(partitions) for i in parts.engine(p).incidents.values()][: min(n, 20000)]
    s = time.perf_counter()
    for incident in incidents:
        next_due(compiled, incident)
    scan_s = (time.perf_counter() - s) * n / max(1, len(incidents))
    return {"n": n, "load_s": load_s, "idle_tick_us": statistics.median(idle) * 1e6 if idle else float("nan"),
            "per_deadline_us": busy_s / fired_total * 1e6 if fired_total else float("nan"),
            "deadlines": fired_total, "scan_ms": scan_s * 1e3}


# -- 2. live latency
async def observe(bootstrap: str, topic: str, n: int, until: float) -> tuple[list[tuple[float, float]], list[float]]:
    """[(due, arrival - due)], [record timestamp - due] of every response sla.breached (n, or until time ``until``)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await c.start()
    seen: set[str] = set()
    arrival, stamped = [], []
    try:
        tps = [TopicPartition(topic, p) for p in range(lt.PARTITIONS)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        while len(seen) < n and time.time() < until:
            for msgs in (await c.getmany(timeout_ms=100, max_records=5000)).values():
                now = time.time()
                for m in msgs:
                    if b'"sla.breached"' not in m.value:
                        continue
                    o = json.loads(m.value)
                    if o["data"].get("clock") != "response" or o["subject"] in seen:
                        continue
                    seen.add(o["subject"])
                    due = datetime.fromisoformat(o["time"]).timestamp()
                    arrival.append((due, now - due))
                    stamped.append(m.timestamp / 1000 - due)
        return arrival, sorted(stamped)
    finally:
        await c.stop()


def live(broker, tmp: Path, n: int, spread: float, interval: float, grace: float, lead: float | None,
         config: str = "test") -> dict:
    space = lb.ns()
    asyncio.run(ensure_topics(broker.bootstrap, space.prefix, load_topics(), app_id=space.app_id, partitions=lt.PARTITIONS))
    agreement = tmp / "acme-erp.yaml"
    agreement.write_text(bench_agreement())
    lead = lead if lead is not None else max(60.0, n / 1000 + 40)
    assert lead + spread < WITHIN, "lead + spread must stay below the response target (openings must be past)"
    w = lb.BenchWorker(broker, space, tmp, "--tick-interval", str(interval), "--tick-grace", str(grace),
                       agreements=agreement, name=f"latency-{n}-{config}", env=lb.CONFIGS[config])
    try:
        w.wait_ready(60)
        g = datetime.now(timezone.utc)
        first_due = g + timedelta(seconds=lead)
        records = [opened(f"LAT-{i:06d}", first_due - timedelta(seconds=WITHIN) + timedelta(seconds=spread * i / n))
                   for i in range(n)]
        t0 = time.perf_counter()
        asyncio.run(lb.preproduce(broker.bootstrap, f"{space.prefix}tickets", records))
        produced_s = time.perf_counter() - t0
        samples = asyncio.run(lb.watch_commits(broker.bootstrap, space.app_id, f"{space.prefix}tickets", n,
                                               timeout=lead + spread))
        ingest_s = samples[-1][0] - t0
        assert samples[-1][1] >= n, f"worker did not ingest {n} openings in time; see {w.log_path}"
        slack = (first_due - datetime.now(timezone.utc)).total_seconds()
        until = first_due.timestamp() + spread + 30
        arrival, stamped = asyncio.run(observe(broker.bootstrap, f"{space.prefix}notifications", n, until))
        peak_rss = lb.peak_rss_mib(w.proc.pid)
    finally:
        w.stop()
        if os.environ.get("LIVE_LATENCY_LOGS"):   # keep the worker's log (the temporary directory goes)
            import shutil
            shutil.copy(w.log_path, os.environ["LIVE_LATENCY_LOGS"])
    arrival.sort()
    thirds = [sorted(x for _, x in arrival[i * len(arrival) // 3:(i + 1) * len(arrival) // 3]) for i in range(3)]
    return {"n": n, "produced_s": produced_s, "ingest_s": ingest_s, "slack_s": slack,
            "arrival": sorted(x for _, x in arrival), "thirds": thirds, "stamped": stamped, "log": str(w.log_path),
            "peak_rss_mib": peak_rss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", default="100000", help="comma list: one live run per count")
    ap.add_argument("--spread", type=float, default=120.0, help="deadlines fall uniformly over this many seconds")
    ap.add_argument("--lead", type=float, help="seconds from producing to the first deadline (default: N/1000 + 40, >= 60)")
    shipped = LiveSettings.model_fields
    ap.add_argument("--tick-interval", type=float, default=shipped["tick_interval"].default,
                    help="default: the shipped setting (%(default)s)")
    ap.add_argument("--tick-grace", type=float, default=shipped["tick_grace"].default,
                    help="default: the shipped setting (%(default)s)")
    ap.add_argument("--index-sizes", default="10000,50000,100000")
    ap.add_argument("--config", default="test", choices=sorted(lb.CONFIGS),
                    help="worker producer configuration (see bench/live_bench.py CONFIGS)")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-index", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if not a.skip_index:
            agreement = tmp_path / "acme-erp.yaml"
            agreement.write_text(bench_agreement())
            print("per-tick cost of the due index (in process, 4 partitions, 1 tick/s/partition):", flush=True)
            for n in (int(x) for x in a.index_sizes.split(",")):
                r = tick_cost(n, agreement)
                print(f"  {n:>7} open incidents: tick firing nothing {r['idle_tick_us']:.1f} us; "
                      f"{r['per_deadline_us']:.0f} us per fired deadline ({r['deadlines']} fired); "
                      f"a full scan instead would take {r['scan_ms']:.0f} ms per tick", flush=True)
        if a.skip_live:
            return
        with lb.bench_broker() as broker:
            for n in (int(x) for x in a.incidents.split(",")):
                r = live(broker, tmp_path, n, a.spread, a.tick_interval, a.tick_grace, a.lead, a.config)
                print(f"live [{a.config}], {n} incidents, deadlines over {a.spread:g}s ({n / a.spread:,.0f}/s) "
                      f"(tick interval {a.tick_interval:g}s, grace {a.tick_grace:g}s): "
                      f"produced in {r['produced_s']:.1f}s, ingested in {r['ingest_s']:.1f}s "
                      f"({n / r['ingest_s']:,.0f} openings/s), first deadline {r['slack_s']:.0f}s after ingestion; "
                      f"worker peak RSS {r['peak_rss_mib']:,.0f} MiB",
                      flush=True)
                for name, lat in (("arrival at the reader", r["arrival"]), ("record timestamp", r["stamped"])):
                    if not lat:
                        print(f"  {name}: no sla.breached arrived; see {r['log']}")
                        continue
                    print(f"  due -> {name}: p50 {pct(lat, .5):.2f}s p99 {pct(lat, .99):.2f}s max {lat[-1]:.2f}s "
                          f"(grace included; beyond grace: p50 {pct(lat, .5) - a.tick_grace:.2f}s "
                          f"p99 {pct(lat, .99) - a.tick_grace:.2f}s) [{len(lat)}/{n} breaches]", flush=True)
                if all(r["thirds"]):
                    print("  arrival p50/p99 by thirds of the due window: "
                          + ", ".join(f"{pct(t, .5):.2f}/{pct(t, .99):.2f}s" for t in r["thirds"]), flush=True)


if __name__ == "__main__":
    main()
