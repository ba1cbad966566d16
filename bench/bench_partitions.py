"""The live engine's own cost, in process: events through ``escalation.live.partitions.Partitions``.

    python bench/bench_partitions.py [EVENTS] [--agreements DIR] [--partitions 4] [--batch 1000]
                                     [--open 100000]

1. **Throughput**: the generated ticket workload (default bench/out/tickets-10000-s42.jsonl, see
   bench/generate_tickets.py) decoded and routed by ticket over P partitions as the worker does
   (per-partition Engines, settlements left unsent), batch by batch, with ``end()`` and every
   table write into plain dicts: what a worker spends per event apart from Faust, the Kafka
   client and the broker. Prints events/s and µs per event (decode and engine apart).
2. **Memory per open incident**: ``--open`` P1 tickets opened in one batch and their state written
   to the tables (values as stored: partition-prefixed JSON bytes); prints the Python allocations
   per incident while decoded (during the batch) and after the batch, when each open incident is
   kept as its stored bytes, shared with the table (``escalation/live/frozen.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from escalation.cli.common import load_registry  # noqa: E402
from escalation.core.events import Rejected, decode_event  # noqa: E402
from escalation.live.partitions import Partitions  # noqa: E402
from escalation.live.store import INPUT_TABLES, TableStore  # noqa: E402


def write(writes: list) -> None:
    for table, _p, key, value in writes:
        table[key] = value


def throughput(events_path: Path, agreements: Path, partitions: int, batch: int) -> None:
    registry = load_registry([str(agreements)])
    lines = [ln for ln in events_path.read_bytes().splitlines() if ln.strip()]
    t0 = time.perf_counter()
    events = []
    for line in lines:
        try:
            events.append(decode_event(line))
        except Rejected:
            pass
    decode_s = time.perf_counter() - t0
    parts = Partitions(registry, TableStore({name: {} for name in INPUT_TABLES}), partitions)
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        for ev in events[i:i + batch]:
            key = getattr(ev, "ticket", None) or ev.service
            parts.step(zlib.crc32(key.encode()) % partitions, ev)
        write(parts.end()[0])
    engine_s = time.perf_counter() - t0
    n = len(events)
    print(f"{n:,} events through Partitions ({partitions} partitions, batches of {batch}): "
          f"{n / (decode_s + engine_s):,.0f} events/s; decode {decode_s / n * 1e6:.1f} µs/event, "
          f"engine + state writes {engine_s / n * 1e6:.1f} µs/event")


def memory(agreements: Path, partitions: int, n: int) -> None:
    registry = load_registry([str(agreements)])
    parts = Partitions(registry, TableStore({name: {} for name in INPUT_TABLES}), partitions)
    base = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    gc.collect()
    tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        ev = {"id": f"o{i}", "type": "ticket.opened", "time": (base + timedelta(seconds=i / 1000)).isoformat(),
              "ticket": f"T{i}", "agreement": "acme-erp", "service": "erp-prod", "priority": "P1"}
        parts.step(i % partitions, decode_event(json.dumps(ev).encode()))
    gc.collect()
    t1 = tracemalloc.get_traced_memory()[0]
    writes = parts.end()[0]
    write(writes)
    del writes
    gc.collect()
    t2 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # tracemalloc: the exact Python allocations (RSS would show allocator slack, hide growth that
    # reuses freed memory, and here also the tracer's own bookkeeping)
    print(f"{n:,} open incidents: decoded during their batch {(t1 - t0) / n:,.0f} B each; after it "
          f"{(t2 - t0) / n:,.0f} B each, table values included (open incidents kept as their stored bytes, "
          f"shared with the table: {parts.frozen():,} of {parts.sizes()[0]:,}) "
          f"(tracemalloc: Python allocations, without allocator slack)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("events", nargs="?", default=str(ROOT / "bench/out/tickets-10000-s42.jsonl"))
    ap.add_argument("--agreements", default=str(ROOT / "bench/out/agreements"))
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--open", type=int, default=100_000, help="open incidents for the memory figure (0: skip)")
    a = ap.parse_args()
    if a.open:  # first: memory the throughput run freed would be reused and hide the growth
        memory(ROOT / "examples/agreements/acme-erp.yaml", a.partitions, a.open)
    throughput(Path(a.events), Path(a.agreements), a.partitions, a.batch)


if __name__ == "__main__":
    main()
