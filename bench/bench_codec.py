"""The state codec's cost per open incident: what a live batch pays to write a changed incident
and to decode a frozen one (and a restart, to load each).

    python bench/bench_codec.py [EVENTS] [--agreements DIR] [--incidents 2000]

Replays the generated workload (default bench/out/tickets-10000-s42.jsonl, see
bench/generate_tickets.py) without its close and cancel events, takes the first ``--incidents``
open incidents and times, per incident (best of 5, garbage collector off as ``timeit`` does):
``Incident.to_dict``, ``Incident.from_dict`` and the table value's JSON (orjson) both ways.
Checks that every decoded incident equals the one encoded and prints the sha256 of the encoded
values, so two trees can be compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import timeit
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_replay import _without_ends  # noqa: E402

from escalation.core.contract.registry import Registry  # noqa: E402
from escalation.core.engine import Engine  # noqa: E402
from escalation.core.tickets.state import Incident  # noqa: E402
from escalation.loader import load_agreements  # noqa: E402
from escalation.replay import replay  # noqa: E402


def per_incident_us(fn, n: int) -> float:
    return min(timeit.repeat(fn, number=3, repeat=5)) / 3 / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("events", nargs="?", default=str(ROOT / "bench/out/tickets-10000-s42.jsonl"))
    ap.add_argument("--agreements", default=str(ROOT / "bench/out/agreements"))
    ap.add_argument("--incidents", type=int, default=2000)
    a = ap.parse_args()
    registry = Registry(load_agreements([Path(a.agreements)]))
    engine = Engine(registry, forget_closed=True)
    replay(registry, _without_ends(Path(a.events)), lambda out: None, lambda rejected: None, None, engine)
    incidents = list(engine.incidents.values())[: a.incidents]
    n = len(incidents)
    saved = [i.to_dict() for i in incidents]
    assert all(Incident.from_dict(d) == i for d, i in zip(saved, incidents)), "decode(encode(x)) != x"
    raw = [orjson.dumps(d) for d in saved]
    to_dict = per_incident_us(lambda: [i.to_dict() for i in incidents], n)
    from_dict = per_incident_us(lambda: [Incident.from_dict(d) for d in saved], n)
    dumps = per_incident_us(lambda: [orjson.dumps(d) for d in saved], n)
    loads = per_incident_us(lambda: [orjson.loads(r) for r in raw], n)
    print(f"{n:,} open incidents ({sum(map(len, raw)) / n:,.0f} B of JSON each): to_dict {to_dict:.1f} µs, "
          f"from_dict {from_dict:.1f} µs, orjson dumps {dumps:.1f} µs, loads {loads:.1f} µs per incident; "
          f"encoded sha256 {hashlib.sha256(b''.join(raw)).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
