"""Parallel replay (`escalation replay --workers N`): wall time, events/s and scaling for N = 1, 2, ...

Runs the replay in this process exactly as the CLI does (JSONL outputs to a file, dead letters to
another; N = 1 is the one-engine path, N > 1 ``replay_parallel``) on the bench workload, N after N,
``--rounds`` times alternately, and prints per run: wall seconds, events/s (input lines / wall),
the CPU seconds of the parent and of each worker, the scaling factor (best N=1 wall / best N wall)
and the sha256 of the outputs and the dead letters (identical for every N, or the run says so).

    python bench/bench_replay_parallel.py                       # 10k tickets, N = 1, 2
    python bench/bench_replay_parallel.py --tickets 100000      # the 100k workload
    python bench/bench_replay_parallel.py --events F --agreements DIR --workers 1 2 3

The machine's cores are shared: with other work running, N processes do not get N cores, so the
CPU columns say what the split costs (every worker reads and peeks every line and moves its
clock at every line) independently of the load.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import resource
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from escalation.cli.common import load_registry  # noqa: E402
from escalation.core.engine import Engine  # noqa: E402
from escalation.replay import replay  # noqa: E402
from escalation.replay_parallel import LAST_RUN, replay_parallel  # noqa: E402


def _encode(out) -> bytes:
    return orjson.dumps(out.cloudevent()) + b"\n"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(registry, events: Path, workers: int, outdir: Path) -> dict:
    out_path, dead_path = outdir / f"par-{workers}.jsonl", outdir / f"par-{workers}.dead.jsonl"
    gc.collect()
    gc.set_threshold(50_000, 10, 10)  # as the CLI
    cpu0, child0, wall0 = time.process_time(), _children_cpu(), time.perf_counter()
    with out_path.open("wb") as sink, dead_path.open("wb") as dead:
        reject = lambda r: dead.write(orjson.dumps(r) + b"\n")  # noqa: E731
        stats, problem = None, None
        if workers > 1:
            stats = replay_parallel(registry, events, workers, sink.write, reject, _encode)
            problem = LAST_RUN.get("problem")
        if stats is None:
            with events.open("rb") as lines:
                stats = replay(registry, lines, lambda o: sink.write(_encode(o)), reject, None, Engine(registry))
    wall = time.perf_counter() - wall0
    return {"workers": workers, "wall": wall, "lines": stats.lines, "parent_cpu": time.process_time() - cpu0,
            "children_cpu": _children_cpu() - child0, "problem": problem,
            "worker_cpu": LAST_RUN.get("worker_cpu", []) if workers > 1 else [],
            "outputs": _sha(out_path), "dead": _sha(dead_path), "n_outputs": sum(stats.outputs.values())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=10_000, help="bench workload size (10000 or 100000)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/base/bench/out"),
                   help="where tickets-<n>-s42.jsonl and agreements/ are (bench/generate_tickets.py --out)")
    p.add_argument("--events", type=Path, help="events JSONL (default: <workdir>/tickets-<n>-s42.jsonl)")
    p.add_argument("--agreements", type=Path, help="agreements (default: <workdir>/agreements)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=1, help="runs of each N, alternating")
    p.add_argument("--outdir", type=Path, default=Path("/tmp"))
    args = p.parse_args()
    events = args.events or args.workdir / f"tickets-{args.tickets}-s42.jsonl"
    registry = load_registry([str(args.agreements or args.workdir / "agreements")])
    best: dict[int, dict] = {}
    for _ in range(args.rounds):
        for n in args.workers:
            r = run_once(registry, events, n, args.outdir)
            workers = " ".join(f"{c:.1f}" for c in r["worker_cpu"])
            print(f"N={n}  wall {r['wall']:7.2f} s  {r['lines'] / r['wall']:8.0f} events/s  "
                  f"cpu parent {r['parent_cpu']:6.2f} s workers [{workers}]  "
                  f"{'fallback: ' + r['problem'] if r['problem'] else ''}", flush=True)
            if n not in best or r["wall"] < best[n]["wall"]:
                best[n] = r
    base = best[min(best)]
    print(f"\n{events}  ({base['lines']} events, {base['n_outputs']} outputs)")
    for n, r in sorted(best.items()):
        crit = r["parent_cpu"] + max(r["worker_cpu"], default=0.0)
        print(f"N={n}  best wall {r['wall']:7.2f} s  {r['lines'] / r['wall']:8.0f} events/s  "
              f"scaling x{base['wall'] / r['wall']:.2f}  (CPU critical path {crit:6.2f} s: "
              f"x{(base['parent_cpu']) / crit:.2f} on idle cores)  outputs sha256 {r['outputs']}  "
              f"dead letters sha256 {r['dead']}")
    same = len({(r["outputs"], r["dead"]) for r in best.values()}) == 1
    print("outputs identical for every N" if same else "OUTPUTS DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
