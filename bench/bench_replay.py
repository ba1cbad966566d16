"""Replay throughput of the core on a generated ticket workload (see bench/generate_tickets.py).

    python bench/generate_tickets.py --tickets 100000
    python bench/bench_replay.py bench/out/tickets-100000-s42.jsonl [--agreements DIR] [--until TIME]
                                 [--profile] [--tracemalloc] [--outputs FILE] [--json]

Same path as ``escalation replay``: ``escalation.replay.replay`` reads the JSONL file line by line
(decode -> Engine.step) and every output is serialised with orjson and
written to a sink (``/dev/null`` unless ``--outputs FILE`` keeps them, e.g. to compare outputs
byte for byte before and after an optimisation). Single-threaded, one core.

Prints events, outputs by type, wall time, events/s, outputs/s, CPU us/event of the engine and of
the decode/encode floor of issue #11 (measured in the same run on the same file, see ``floor``) and
their ratio, peak memory and memory per open incident. Memory is the ru_maxrss growth during the run by default (cheap, includes allocator
slack); ``--tracemalloc`` measures Python allocations exactly but slows the run ~2-3x, so its
timing figures are not comparable. The peak number of open incidents (opened and not yet
closed/cancelled) is counted from the file after the timed run. ``--profile`` runs under cProfile and
prints the top 15 functions by cumulative and by own time (timings then include profiler overhead).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import gc
import io
import os
import pstats
import resource
import sys
import time
import tracemalloc
import types
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from escalation.core.contract.registry import Registry  # noqa: E402
from escalation.core.engine import Engine  # noqa: E402
from escalation.loader import load_agreements  # noqa: E402
from escalation.replay import replay, replay_engine  # noqa: E402

_ENDS = frozenset(("ticket.closed", "ticket.cancelled"))


def open_incidents(events: Path) -> tuple[int, int]:
    """(peak, at end) of open incidents (opened, not closed or cancelled), counted from the file
    after the timed run (the bench workload has no rejects or repeats), so the count costs the
    replay nothing."""
    now = peak = 0
    with events.open("rb") as lines:
        for line in lines:
            kind = orjson.loads(line).get("type") if line.strip() else None
            if kind == "ticket.opened":
                now += 1
                peak = max(peak, now)
            elif kind in _ENDS:
                now -= 1
    return peak, now


def deep_size(root) -> int:
    """Bytes held by ``root`` and everything it reaches (``sys.getsizeof``, each object once),
    stopping at what incident state only points to: compiled agreements, calendars, the registry
    (shared by all incidents), and at classes, modules and functions. Interned/cached strings
    shared between records count once."""
    seen: set[int] = set()
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (bool, type, types.ModuleType, types.FunctionType)):
            continue
        if type(obj).__module__.startswith(("escalation.core.contract", "escalation.core.time", "escalation.agreement")):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):  # the entries as held (a mapping of frozen incidents would decode them)
            stack.extend(dict.keys(obj))
            stack.extend(dict.values(obj))
            decoded = getattr(obj, "_decoded", None)  # CappedIncidents: the order of its decoded entries
            if decoded is not None:
                stack.append(decoded)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif dataclasses.is_dataclass(obj):
            stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
    return total


def _without_ends(path: Path) -> list[bytes]:
    """The workload's lines without its ticket.closed/ticket.cancelled events: every incident stays open."""
    with path.open("rb") as lines:
        return [line for line in lines if not line.strip() or orjson.loads(line).get("type") not in _ENDS]


def floor(events: Path) -> dict:
    """The decode/encode floor of issue #11 on the same file: a plain loop that decodes each line
    with orjson, parses its time (``datetime.fromisoformat``) and encodes one output (orjson.dumps
    of a small dict) per three events, written to /dev/null. Best of three runs (CPU time)."""
    best = None
    for _ in range(3):
        with events.open("rb") as lines, open(os.devnull, "wb") as sink:
            started, cpu_started = time.perf_counter(), time.process_time()
            n = 0
            for line in lines:
                record = orjson.loads(line)
                at = datetime.fromisoformat(record["time"])
                n += 1
                if n % 3 == 0:
                    sink.write(orjson.dumps({"id": record["id"], "type": "sla.met", "time": at.isoformat(),
                                             "ticket": record.get("ticket")}) + b"\n")
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if best is None or cpu < best["cpu_s"]:
            best = {"events": n, "wall_s": wall, "cpu_s": cpu}
    return best


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def run(events: Path, agreements: Path, until: datetime | None, outputs: Path | None,
        profile: bool, trace: bool, forget_closed: bool = True, open_only: bool = False) -> dict:
    registry = Registry(load_agreements([agreements]))
    # as `escalation replay` makes it (--keep-closed: the old form, every incident decoded and kept)
    engine = replay_engine(registry) if forget_closed else Engine(registry)
    sink = open(outputs, "wb") if outputs else open(os.devnull, "wb")
    rejects: list[dict] = []
    dumps = orjson.dumps

    def emit(out) -> None:  # a typed Output: its CloudEvent is what `escalation replay` writes
        sink.write(dumps(out.cloudevent()) + b"\n")

    kept_lines = _without_ends(events) if open_only else None  # read before memory is measured
    gc.collect()
    rss_before = _maxrss_bytes()
    profiler = cProfile.Profile() if profile else None
    if trace:
        tracemalloc.start()
    with (contextlib.nullcontext(kept_lines) if open_only else events.open("rb")) as lines:
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        stats = replay(registry, lines, emit, rejects.append, until, engine)
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    sink.close()
    rss_after = _maxrss_bytes()
    traced = tracemalloc.get_traced_memory() if trace else None
    if trace:
        tracemalloc.stop()
    open_peak, open_at_end = (len(engine.incidents),) * 2 if open_only else open_incidents(events)
    base = floor(events)
    result = {
        "events_file": str(events), "lines": stats.lines, "events": stats.events, "rejected": stats.rejected,
        "duplicates": stats.duplicates, "late": stats.late, "outputs": sum(stats.outputs.values()),
        "outputs_by_type": dict(stats.outputs.most_common()), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "events_per_s": round(stats.events / wall), "outputs_per_s": round(sum(stats.outputs.values()) / wall),
        "open_peak": open_peak, "incidents_retained": len(engine.incidents), "tombstones": len(engine.closed),
        "open_at_end": open_at_end, "open_only": open_only,
        # deep sizes at the end (sys.getsizeof, shared objects once; allocator rounding not counted)
        "deep_bytes_per_open_incident": round(deep_size(engine.incidents) / len(engine.incidents))
        if engine.incidents else None,
        "deep_bytes_per_tombstone": round(deep_size(engine.closed) / len(engine.closed)) if engine.closed else None,
        "maxrss_delta_bytes": rss_after - rss_before, "maxrss_bytes": rss_after,
        "us_per_event": round(cpu / max(stats.events, 1) * 1e6, 2),
        "floor_us_per_event": round(base["cpu_s"] / max(base["events"], 1) * 1e6, 2),
        "floor_events_per_s": round(base["events"] / base["cpu_s"]),
        "profiled": profile, "tracemalloc": trace, "gc_threshold": gc.get_threshold(),
    }
    if trace:
        current, peak = traced
        result.update(traced_peak_bytes=peak, traced_retained_bytes=current)
    result["ratio_to_floor"] = round(result["us_per_event"] / result["floor_us_per_event"], 1)
    # with --open-only nothing closes: what is held at the end is what the open incidents cost
    peak_mem = (result["traced_retained_bytes"] if open_only else result["traced_peak_bytes"]) if trace \
        else result["maxrss_delta_bytes"]
    result["peak_bytes_per_open_incident"] = round(peak_mem / max(open_peak, 1))
    kept = len(engine.incidents) + len(engine.closed)
    result["retained_bytes_per_incident"] = round(result["traced_retained_bytes"] / max(kept, 1)) if trace else None
    if rejects:
        result["first_rejects"] = rejects[:3]
    if profiler:
        result["profile"] = {}
        for key in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(key).print_stats(15)
            result["profile"][key] = buf.getvalue()
    return result


def report(r: dict) -> str:
    lines = [
        f"events file        {r['events_file']}",
        f"events             {r['events']} ({r['rejected']} rejected, {r['duplicates']} duplicate, {r['late']} late)",
        f"outputs            {r['outputs']}",
        *(f"  {k:<24} {v}" for k, v in r["outputs_by_type"].items()),
        f"wall time          {r['wall_s']:.2f} s (CPU {r['cpu_s']:.2f} s)" + ("  (under cProfile)" if r["profiled"] else "")
        + ("  (under tracemalloc)" if r["tracemalloc"] else "") + f"  gc thresholds {tuple(r['gc_threshold'])}",
        f"events/s           {r['events_per_s']:,}",
        f"engine             {r['us_per_event']:.2f} us/event (CPU; {round(1e6 / r['us_per_event']):,} events/s)",
        f"floor              {r['floor_us_per_event']:.2f} us/event (CPU; {r['floor_events_per_s']:,} events/s: "
        "orjson decode + fromisoformat + one orjson output per 3 events, best of 3)",
        f"ratio              {r['ratio_to_floor']}x the floor (target <= 3x, <= 10 us/event)",
        f"outputs/s          {r['outputs_per_s']:,}",
        f"open incidents     peak {r['open_peak']:,}, at end {r['open_at_end']:,}"
        + (" (--open-only: close/cancel events left out)" if r["open_only"] else "") + "; "
        f"incident records retained {r['incidents_retained']:,}, tombstones {r['tombstones']:,}",
        f"peak RSS           {_mib(r['maxrss_bytes'])} (growth during run {_mib(r['maxrss_delta_bytes'])})",
    ]
    if r["deep_bytes_per_open_incident"]:
        lines.append(f"open incident      {r['deep_bytes_per_open_incident']:,} B each (deep size of the records, "
                     "keys and index at the end)")
    if r["deep_bytes_per_tombstone"]:
        lines.append(f"tombstone          {r['deep_bytes_per_tombstone']:,} B each (deep size of the closed "
                     "index at the end)")
    if r["tracemalloc"]:
        held = "retained at end / open at end" if r["open_only"] else "traced peak / peak open"
        lines += [
            f"traced peak        {_mib(r['traced_peak_bytes'])}, retained at end {_mib(r['traced_retained_bytes'])}",
            f"per open incident  {r['peak_bytes_per_open_incident']:,} B ({held}; bounded caches included)",
            f"per incident kept  {r['retained_bytes_per_incident']:,} B (retained at end / (incident records + tombstones))",
        ]
    else:
        lines.append(f"per open incident  {r['peak_bytes_per_open_incident']:,} B (RSS growth / peak open)")
    for key, text in r.get("profile", {}).items():
        lines += [f"--- cProfile top 15 by {key} ---", text.rstrip()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events", nargs="?", type=Path, default=ROOT / "bench" / "out" / "tickets-100000-s42.jsonl",
                        help="JSONL ticket events (default bench/out/tickets-100000-s42.jsonl)")
    parser.add_argument("--agreements", type=Path, help="agreement dir (default <events dir>/agreements)")
    parser.add_argument("--until", help="advance the clock to this RFC 3339 instant at the end (as replay --until)")
    parser.add_argument("--outputs", type=Path, help="write outputs JSONL here instead of /dev/null")
    parser.add_argument("--profile", action="store_true", help="run under cProfile, print top 15 cumulative/tottime")
    parser.add_argument("--tracemalloc", action="store_true", help="measure memory with tracemalloc (slower run)")
    parser.add_argument("--gc-threshold", type=int, metavar="N",
                        help="set the cyclic GC's generation-0 threshold to N (Python default 700) for the run, "
                             "e.g. 50000 to see what the collector costs once many incident records are held")
    parser.add_argument("--keep-closed", action="store_true",
                        help="keep closed incidents whole (the engine's default before issue #11) instead of "
                             "shrinking them to tombstones as `escalation replay` and the live worker do")
    parser.add_argument("--open-only", action="store_true",
                        help="leave out ticket.closed/ticket.cancelled events, so every incident stays open and "
                             "memory per open incident is measured free of tombstones")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not args.events.exists():
        parser.error(f"{args.events} not found; generate it with bench/generate_tickets.py")
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    until = datetime.fromisoformat(args.until.replace("Z", "+00:00")) if args.until else None
    result = run(args.events, args.agreements or args.events.parent / "agreements", until, args.outputs,
                 args.profile, args.tracemalloc, not args.keep_closed, args.open_only)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() if args.json else report(result))


if __name__ == "__main__":
    main()
