"""Train, or measure, the zstd dictionary of stored table values (``escalation/live/value_compression.py``).

    python bench/train_value_dictionary.py --measure          # the shipped dictionary on held-out values
    python bench/train_value_dictionary.py --out FILE         # train a new one (never overwrite a released file)

Samples: every incident value the live state writes (``Partitions``, 4 partitions, batches of 500
records, as the worker stores them) while the bench workload (bench/out/tickets-10000-s42.jsonl,
``bench/generate_tickets.py``) and the examples' event files run through their agreements. Training
uses a shuffled 20,000 of the workload's values (seed 7) plus the examples'; ``--measure`` reports
sizes and times on 4,000 other values of the workload and on the examples' values.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zstandard  # noqa: E402

from escalation.cli.common import load_registry  # noqa: E402
from escalation.core.changes import INCIDENTS  # noqa: E402
from escalation.core.events import Rejected, decode_event  # noqa: E402
from escalation.live import value_compression as vc  # noqa: E402
from escalation.live.partitions import Partitions  # noqa: E402
from escalation.live.store import INPUT_TABLES, TableStore  # noqa: E402

EXAMPLES = [("acme-erp.jsonl", "acme-erp.yaml"), ("contracts.jsonl", "contracts"),
            ("acme-erp-contract.jsonl", "acme-erp-contract.yaml")]


def incident_values(events: Path, agreements: list[Path], batch: int = 500) -> list[bytes]:
    """The JSON of every incident value written while ``events`` run (the store's line removed)."""
    registry = load_registry([str(a) for a in agreements])
    tables: dict[str, dict] = {name: {} for name in INPUT_TABLES}
    parts = Partitions(registry, TableStore(tables), 4)
    lines = [ln for ln in events.read_bytes().splitlines() if ln.strip()]
    out = []
    for i in range(0, len(lines), batch):
        for line in lines[i:i + batch]:
            try:
                ev = decode_event(line)
            except Rejected:
                continue
            key = getattr(ev, "ticket", None) or ev.service
            parts.step(zlib.crc32(key.encode()) % 4, ev)
        for table, _p, _key, value in parts.end()[0]:
            if table is tables[INCIDENTS] and value:
                out.append(vc.expand(value[value.index(b"\n") + 1:]))
    return out


def samples() -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(training values, held-out workload values, examples' values)."""
    workload = incident_values(ROOT / "bench/out/tickets-10000-s42.jsonl", [ROOT / "bench/out/agreements"])
    random.Random(7).shuffle(workload)
    examples = []
    for events, agreements in EXAMPLES:
        examples += incident_values(ROOT / "examples/events" / events, [ROOT / "examples/agreements" / agreements], batch=3)
    return workload[:20_000] + examples, workload[20_000:24_000], examples


def measure(held_out: list[bytes], examples: list[bytes]) -> None:
    for name, values in (("workload (held out)", held_out), ("examples", examples)):
        t0 = time.perf_counter()
        packed = [vc.compress(v) for v in values]
        t1 = time.perf_counter()
        for p in packed:
            vc.expand(p)
        t2 = time.perf_counter()
        n = len(values)
        print(f"{name}: {n:,} values, {sum(map(len, values)) / n:,.0f} -> {sum(map(len, packed)) / n:,.0f} B; "
              f"compress {(t1 - t0) / n * 1e6:.1f} µs, expand {(t2 - t1) / n * 1e6:.1f} µs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write a newly trained dictionary here")
    ap.add_argument("--measure", action="store_true", help="sizes and times with the shipped dictionary")
    ap.add_argument("--size", type=int, default=16384, help="dictionary bytes")
    a = ap.parse_args()
    train, held_out, examples = samples()
    if a.out:
        data = zstandard.train_dictionary(a.size, train, level=vc.LEVEL).as_bytes()
        a.out.write_bytes(data)
        print(f"{a.out}: {len(data):,} B from {len(train):,} values")
    if a.measure:
        measure(held_out, examples)


if __name__ == "__main__":
    main()
