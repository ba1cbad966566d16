"""``escalation replay --workers N``: byte-identical outputs and dead letters to one worker.

The bundled examples (with their agreements and ``--until``, as README.md runs them) and a
generated workload (tickets on several services, metric slices, money, reports, repeats, rejected
and broken lines) are replayed with 1, 2 and 3 workers; the parallel runs must not have fallen back
to one worker (``LAST_RUN``), except where the input makes one engine's clock differ, which is
checked too (then the output is still one engine's).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from escalation.cli.replay import replay_command
from escalation.replay_parallel import LAST_RUN

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    (["--agreements", "examples/agreements/acme-erp.yaml", "--events", "examples/events/acme-erp.jsonl",
      "--until", "2026-03-03T12:00:00Z"]),
    (["--agreements", "examples/agreements/contracts", "--events", "examples/events/contracts.jsonl"]),
    (["--events", "examples/events/acme-erp-metrics.jsonl", "--until", "2026-04-01T00:00:00+02:00"]),
    (["--agreements", "examples/agreements/acme-erp-contract.yaml", "--events",
      "examples/events/acme-erp-contract.jsonl", "--until", "2026-06-01T00:00:00+02:00"]),
]


def _replay(tmp_path: Path, args: list[str], workers: int, *extra: str) -> tuple[bytes, bytes]:
    out, dead = tmp_path / f"out-{workers}.jsonl", tmp_path / f"dead-{workers}.jsonl"
    result = CliRunner().invoke(replay_command, [*args, "--workers", str(workers), "--out", str(out),
                                                 "--dead-letter", str(dead), *extra])
    assert result.exit_code == 0, result.output
    return out.read_bytes(), dead.read_bytes()


def _same_as_one(tmp_path: Path, args: list[str], *extra: str, parallel: bool = True) -> bytes:
    one = _replay(tmp_path, args, 1, *extra)
    for workers in (2, 3):
        LAST_RUN.clear()
        assert _replay(tmp_path, args, workers, *extra) == one, f"--workers {workers}"
        assert (LAST_RUN["problem"] is None) == parallel, LAST_RUN
    return one[0]


@pytest.mark.parametrize("args", EXAMPLES, ids=lambda a: Path(a[a.index("--events") + 1]).stem)
def test_examples_identical(tmp_path, monkeypatch, args):
    monkeypatch.chdir(ROOT)
    assert _same_as_one(tmp_path, args)


def test_examples_pretty_identical(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    _same_as_one(tmp_path, EXAMPLES[3], "--pretty")


def _workload(seed: int, tickets: int) -> list[bytes]:
    """Tickets on two services (every lifecycle path the generator knows), five-minute slices for
    erp-prod with an outage, in time order; then a repeat, a conflicting repeat, an unknown ticket,
    a line that is not JSON, a blank line and two times outside the plausible window (whose
    conversion to UTC overflows) among them."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    events: list[tuple[datetime, dict]] = []
    for n in range(tickets):
        t, key = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 26)), f"T-{n}"
        events.append((t, {"type": "ticket.opened", "ticket": key, "agreement": "acme-erp",
                           "service": rng.choice(["erp-prod", "erp-test"]), "priority": rng.choice(["P1", "P2", "P3"]),
                           "customer": "acme"}))
        for kind in ("ticket.acknowledged", "ticket.resolved", "ticket.closed")[: rng.randrange(0, 4)]:
            t += timedelta(minutes=rng.choice([3, 20, 50, 200, 600]))
            events.append((t, {"type": kind, "ticket": key}))
    for i in range(12 * 24 * 6):
        s = datetime(2026, 3, 25, tzinfo=UTC) + timedelta(minutes=5 * i)
        total = 2400
        good = total - (600 if 300 <= i < 340 else rng.randrange(0, 3))
        events.append((s + timedelta(minutes=5), {"type": "metric.observed", "service": "erp-prod",
                                                  "sli": "availability", "start": s.isoformat(),
                                                  "end": (s + timedelta(minutes=5)).isoformat(),
                                                  "good": good, "total": total}))
    events.sort(key=lambda e: e[0])
    lines = []
    for i, (t, e) in enumerate(events):
        e = {"id": f"e-{i}", **e}
        if e["type"] != "metric.observed":
            e["time"] = t.isoformat()
        lines.append(orjson.dumps(e))
    lines.insert(40, lines[20])                                   # a repeat
    lines.insert(60, lines[30].replace(b'"ticket.', b'"ticket.', 1)[:-1] + b',"x":1}')  # repeat, same content
    lines.insert(80, orjson.dumps({"id": "u-1", "type": "ticket.acknowledged", "ticket": "NOPE",
                                   "time": orjson.loads(lines[80]).get("time", "2026-03-03T00:00:00Z")}))
    lines.insert(90, b"not json")
    lines.insert(100, b"")
    for at, when in ((110, "9999-12-31T23:59:59-01:00"), (120, "0001-01-01T00:00:00+01:00")):  # dead letters
        lines.insert(at, orjson.dumps({"id": f"far-{at}", "type": "ticket.updated", "ticket": "T-1", "time": when}))
    return [line + b"\n" for line in lines]


def test_generated_workload_identical(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(_workload(7, 400)))
    out = _same_as_one(tmp_path, ["--events", str(events), "--until", "2026-04-02T00:00:00Z"])
    kinds = {orjson.loads(line)["type"] for line in out.splitlines()}
    # the merge is exercised on deadlines, money, SLO closes and reports
    assert {"sla.breached", "penalty.assessed", "slo.attainment", "credit.issued", "report.published"} <= kinds


def test_generated_workload_with_grace_and_no_until(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(_workload(11, 150)))
    _same_as_one(tmp_path, ["--events", str(events), "--period-grace", "600"])


def test_clock_one_engine_would_not_move_falls_back(tmp_path):
    """A rejected line far ahead in time moves the workers' clocks but not one engine's: the run
    is redone with one worker, and the output is one engine's."""
    lines = _workload(3, 60)
    lines.insert(50, orjson.dumps({"id": "bad", "type": "ticket.resolved", "ticket": "NOPE",
                                   "time": "2026-03-30T00:00:00Z"}) + b"\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(lines))
    _same_as_one(tmp_path, ["--events", str(events), "--until", "2026-04-02T00:00:00Z"], parallel=False)
