"""Memory per open incident of one live worker on the embedded broker (issue #11, target 3).

    python bench/live_memory.py [--incidents 60000] [--config test|batched] [--rate 0]

Starts one ``escalation run`` worker (subprocess, memory store, shipped settings) on an
EmbeddedBroker on 127.0.0.1 (or $ESCALATION_TEST_BROKER), waits until it is ready and idle, reads
its resident memory, produces N ``ticket.opened`` events (P1, opened a minute ago, deadlines
30 minutes later so nothing fires during the run; all at once, a backlog the worker's consumer
reads ahead into memory, or ``--rate`` per second as they would arrive), waits until the worker has committed every one,
lets it settle for ``--settle`` seconds (default 35: past one memory maintenance run, ``LiveSettings.gc_interval`` 30 s)
and reads its memory again. Prints the RSS growth per open incident (VmRSS
after - VmRSS idle, over N) and the peak (VmHWM - idle RSS, over N). RSS includes the allocator's
slack and what the ingestion left in its free lists; ``bench_partitions.py --open`` gives the
exact Python allocations of the same state in process. Stops every process it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import live_latency as ll  # noqa: E402  (its bench agreement and ticket.opened records)

from escalation.live.topics import ensure_topics, load_topics  # noqa: E402

lb, lt = ll.lb, ll.lt


async def produce_paced(bootstrap: str, topic: str, records: list, rate: int) -> None:
    """``records`` at about ``rate`` per second: a second's worth at a time (``lb.preproduce``)."""
    start = time.perf_counter()
    for i in range(0, len(records), rate):
        await lb.preproduce(bootstrap, topic, records[i:i + rate])
        await asyncio.sleep(max(0.0, start + (i + rate) / rate - time.perf_counter()))


def run(broker, tmp: Path, n: int, config: str, settle: float, rate: int = 0) -> dict:
    space = lb.ns()
    asyncio.run(ensure_topics(broker.bootstrap, space.prefix, load_topics(), app_id=space.app_id, partitions=lt.PARTITIONS))
    agreement = tmp / "acme-erp.yaml"
    agreement.write_text(ll.bench_agreement())
    w = lb.BenchWorker(broker, space, tmp, agreements=agreement, name=f"memory-{n}-{config}", env=lb.CONFIGS[config])
    try:
        w.wait_ready(60)
        time.sleep(3)
        idle = lb.memory_mib(w.proc.pid)
        opened_at = datetime.now(timezone.utc) - timedelta(seconds=60)
        records = [ll.opened(f"MEM-{i:06d}", opened_at) for i in range(n)]
        t0 = time.perf_counter()
        if rate:
            asyncio.run(produce_paced(broker.bootstrap, f"{space.prefix}tickets", records, rate))
        else:
            asyncio.run(lb.preproduce(broker.bootstrap, f"{space.prefix}tickets", records))
        samples = asyncio.run(lb.watch_commits(broker.bootstrap, space.app_id, f"{space.prefix}tickets", n, timeout=1200))
        assert samples[-1][1] >= n, f"worker did not ingest {n} openings in time; see {w.log_path}"
        ingest_s = samples[-1][0] - t0
        time.sleep(settle)
        after = lb.memory_mib(w.proc.pid)
    finally:
        w.stop()
    return {"n": n, "config": config, "ingest_s": ingest_s, "idle": idle, "after": after,
            "per_open": (after["VmRSS"] - idle["VmRSS"]) * 2**20 / n,
            "peak_per_open": (after["VmHWM"] - idle["VmRSS"]) * 2**20 / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--incidents", type=int, default=60_000)
    ap.add_argument("--config", default="test", choices=sorted(lb.CONFIGS))
    ap.add_argument("--settle", type=float, default=35.0, help="seconds between the last commit and the reading")
    ap.add_argument("--rate", type=int, default=0, help="openings per second (0: all produced at once, a backlog)")
    a = ap.parse_args()
    with lb.bench_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        r = run(broker, Path(tmp), a.incidents, a.config, a.settle, a.rate)
    arrival = f"{a.rate:,}/s" if a.rate else "produced at once"
    print(f"live worker [{r['config']}], {r['n']:,} open incidents ({arrival}, ingested in {r['ingest_s']:.1f} s, "
          f"read {a.settle:.0f} s later): "
          f"RSS idle {r['idle']['VmRSS']:,.0f} MiB -> {r['after']['VmRSS']:,.0f} MiB (peak {r['after']['VmHWM']:,.0f} MiB); "
          f"RSS growth per open incident {r['per_open']:,.0f} B (peak {r['peak_per_open']:,.0f} B)")


if __name__ == "__main__":
    main()
