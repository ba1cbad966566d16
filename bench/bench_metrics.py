"""Benchmark: 1-minute metric slices for many services through the Engine.

Builds ``--services`` SLOs (10 per agreement, each agreement a copy of the reference one with
google-default burn-rate rules, the Sunday maintenance window, tiered credits and the cap), then
replays ``--days`` of 1-minute slices (default: a whole 31-day month) in time order the way the
replay runner does (``Engine.step`` per slice, a final ``Tick``), with a 30-minute outage per
service so that alerts fire and clear, and ``--until`` the month end so that every period closes.

Prints throughput (slices/s), outputs by type, and memory: the peak of the traced run
(``tracemalloc``, on a ``--memory-days`` run since tracing slows Python down), the state retained
per SLO, and the serialised state (``snapshot``) size per SLO.

Usage: python bench/bench_metrics.py [--services 200] [--days 31] [--memory-days 2] [--decode]
``--decode`` goes through JSON decoding (``decode_event``) as replay does; without it the events
are pre-built, so the figure is the engine alone.
"""

from __future__ import annotations

import argparse
import copy
import gc
import time
import tracemalloc
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
from ruamel.yaml import YAML

from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry
from escalation.core.engine import Engine
from escalation.core.events import MetricObserved, Tick, decode_event
from escalation.paths import EXAMPLE_AGREEMENT

START = datetime(2026, 2, 28, 23, 0, tzinfo=timezone.utc)   # 2026-03-01 00:00 Europe/Berlin
MONTH_END = datetime(2026, 3, 31, 22, 0, tzinfo=timezone.utc)
PER_AGREEMENT = 10


def registry(services: int) -> Registry:
    base = YAML(typ="safe").load(EXAMPLE_AGREEMENT.read_text())
    agreements = []
    for a in range(-(-services // PER_AGREEMENT)):
        names = [f"svc-{n:04d}" for n in range(a * PER_AGREEMENT, min(services, (a + 1) * PER_AGREEMENT))]
        d = copy.deepcopy(base)
        d["id"] = f"customer-{a:03d}"
        d["services"] = {n: {"name": n} for n in names}
        d["slos"] = [{**base["slos"][0], "id": f"{n}-availability", "service": n} for n in names]
        d["maintenance_windows"] = [{**base["maintenance_windows"][0], "excluded_from": [s["id"] for s in d["slos"]]}]
        credit = base["remedies"][0]
        d["remedies"] = [{**credit, "id": f"{s['id']}-credit", "slo": s["id"]} for s in d["slos"]]
        agreements.append(Agreement.model_validate(d))
    return Registry(agreements)


def slices(services: int, days: float, decode: bool):
    """Time-ordered 1-minute slices; service n has a 30-minute 50 % outage on day n % days."""
    minutes = int(days * 24 * 60)
    step = timedelta(minutes=1)
    for m in range(minutes):
        start = START + step * m
        end = start + step
        for n in range(services):
            outage = m // 1440 == n % max(1, int(days)) and 600 + n % 60 <= m % 1440 < 630 + n % 60
            good = 500 if outage else 1000 - (m + n) % 2
            event = {"id": f"{n}-{m}", "type": "metric.observed", "service": f"svc-{n:04d}", "sli": "availability",
                     "start": start, "end": end, "good": good, "total": 1000}
            if decode:
                yield orjson.dumps(event)
            else:
                yield MetricObserved.model_construct(**event)


def run(services: int, days: float, decode: bool, engine: Engine | None = None) -> tuple[int, float, Counter, Engine]:
    engine = engine or Engine(registry(services))
    counts: Counter = Counter()
    n = 0
    began = time.perf_counter()
    for item in slices(services, days, decode):
        event = decode_event(item) if decode else item
        for out in engine.step(event).outputs:
            counts[out["type"]] += 1
        n += 1
    until = min(MONTH_END, START + timedelta(days=days))
    for out in engine.step(Tick(until)).outputs:
        counts[out["type"]] += 1
    return n, time.perf_counter() - began, counts, engine


def memory(services: int, days: float) -> tuple[float, float, float]:
    """(peak MiB of the traced run, retained KiB per SLO, snapshot KiB per SLO).

    Tracing starts after the agreements are loaded and compiled, so the figures are the run's state.
    """
    engine = Engine(registry(services))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    run(services, days, decode=False, engine=engine)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    snapshot = len(orjson.dumps(engine.metrics.to_dict()))
    return (peak - base) / 2**20, (current - base) / 1024 / services, snapshot / 1024 / services


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--days", type=float, default=31.0)
    ap.add_argument("--memory-days", type=float, default=2.0)
    ap.add_argument("--decode", action="store_true")
    args = ap.parse_args()
    n, seconds, counts, _ = run(args.services, args.days, args.decode)
    print(f"{n} slices ({args.services} services x {args.days:g} days of 1-minute slices) in {seconds:.1f} s: "
          f"{n / seconds:,.0f} slices/s{' (with JSON decoding)' if args.decode else ' (engine only)'}")
    print("outputs:", dict(sorted(counts.items())))
    peak, retained, snap = memory(args.services, args.memory_days)
    print(f"memory ({args.memory_days:g}-day traced run): peak {peak:.1f} MiB, retained {retained:.1f} KiB per SLO, "
          f"snapshot {snap:.1f} KiB per SLO")


if __name__ == "__main__":
    main()
