"""The live engine on the real broker: `escalation run` as a subprocess (never a mock).

(a) live == replay for the example events with one manual tick at T; for tickets and metrics
    together through month ends (SLO attainment, credits, capped penalties, reports); and for a
    generated workload of a few hundred tickets over three agreements whose caps bind;
(b) a deadline fires with no further input (real ticker);
(c) a malformed record goes to the dead-letter topic and the stream goes on;
(d) kill -9 of the worker mid-stream and a restart, with the memory and the RocksDB store, on a
    generated workload with penalties, caps and reports: no output missed, only replay's ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from escalation.core.outputs import topic_for
from escalation.live.ticker import send_tick

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
AGREEMENT = ROOT / "examples" / "agreements" / "acme-erp.yaml"
EVENTS = ROOT / "examples" / "events" / "acme-erp.jsonl"
PARTITIONS = 4
T = "2026-03-03T12:00:00+00:00"


class Worker:
    """`escalation run --broker ...` in its own process group; stderr to a log file."""

    def __init__(self, broker, ns, tmp: Path, *extra: str, agreements: Path = AGREEMENT, name: str = "worker",
                 env: dict | None = None, module: str = "escalation.cli"):
        self.log_path = tmp / f"{name}.stderr"
        self.log = open(self.log_path, "ab")
        if "--metrics-port" not in extra:
            extra = (*extra, "--metrics-port", "0")  # a free port each: workers may overlap
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "run", "--broker", broker.url, "--app-id", ns.app_id,
             "--topic-prefix", ns.prefix, "--agreements", str(agreements), "--partitions", str(PARTITIONS),
             "--profile", "test", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log, cwd=tmp,  # Faust's <app_id>-data goes to tmp
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while b"escalation: ready" not in self.log_path.read_bytes():
            assert self.proc.poll() is None, f"worker exited ({self.proc.returncode}), see {self.log_path}"
            assert time.time() < deadline, f"worker not ready within {timeout}s, see {self.log_path}"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def topics(ns):
    return {n: f"{ns.prefix}{n}" for n in ("tickets", "metrics", "notifications", "remedies", "timeline", "deadletter")} | {
        "ticks": f"{ns.app_id}-ticks"}


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        for key, value in records:
            await p.send_and_wait(topic, value, key=key)
    finally:
        await p.stop()


def produce(broker, topic: str, records) -> None:
    asyncio.run(_produce(broker.bootstrap, topic, records))


def event_records(lines) -> list[tuple[bytes | None, bytes]]:
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            key = data.get("ticket") or data.get("service") or data.get("agreement")  # agreement.terminated
        except Exception:
            key = None
        out.append((key.encode() if isinstance(key, str) else None, line if isinstance(line, bytes) else line.encode()))
    return out


async def _collect(bootstrap: str, names: list[str], *, until, timeout: float, quiet: float) -> list[tuple[str, bytes | None, dict]]:
    """Read ``names`` from the start until ``until(records)`` holds and nothing came for ``quiet`` s."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(n, p) for n in names for p in range(PARTITIONS)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        got: list = []
        deadline, last = time.time() + timeout, time.time()
        while time.time() < deadline:
            batches = await c.getmany(timeout_ms=200)
            for tp, msgs in batches.items():
                for m in msgs:
                    got.append((tp.topic, m.key, json.loads(m.value)))
                    last = time.time()
            if until(got) and time.time() - last >= quiet:
                break
        return got
    finally:
        await c.stop()


def collect(broker, names, *, until=lambda got: bool(got), timeout=30.0, quiet=1.0):
    return asyncio.run(_collect(broker.bootstrap, names, until=until, timeout=timeout, quiet=quiet))


def tick_and_collect(broker, names: dict, until: str, expected: dict, timeout: float = 60) -> list:
    """Tick every partition at ``until``, then read the three output topics until every id of
    ``expected`` is there and nothing more came for 2 s."""
    asyncio.run(send_tick(broker.bootstrap, names["ticks"], datetime.fromisoformat(until), PARTITIONS))
    return collect(broker, [names["notifications"], names["remedies"], names["timeline"]],
                   until=lambda got: set(expected) <= {o["id"] for _, _, o in got}, timeout=timeout, quiet=2.0)


async def _committed(bootstrap: str, group: str, topic: str) -> tuple[dict, dict]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await c.end_offsets(tps)
        committed = {tp: (await c.committed(tp)) or 0 for tp in tps}
        return committed, ends
    finally:
        await c.stop()


def wait_consumed(broker, group: str, topic: str, timeout: float = 30.0) -> None:
    """Until every record of ``topic`` was processed: the worker commits the offsets it has applied
    once their state is written (escalation.live.offsets), so committed == log end means done."""
    deadline = time.time() + timeout
    while True:
        committed, ends = asyncio.run(_committed(broker.bootstrap, group, topic))
        if all(committed[tp] >= ends[tp] for tp in ends):
            return
        assert time.time() < deadline, f"worker did not consume {topic}: committed {committed}, ends {ends}"
        time.sleep(0.5)


def replay_outputs(events: Path, until: str, agreements: Path = AGREEMENT) -> list[dict]:
    res = subprocess.run([sys.executable, "-m", "escalation.cli", "replay", "--agreements", str(agreements),
                          "--events", str(events), "--until", until, "--dead-letter", os.devnull],
                         capture_output=True, cwd=ROOT, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def outputs_of(records) -> dict[str, dict]:
    return {out["id"]: out for topic, _key, out in records if not topic.endswith("deadletter")}


def test_live_equals_replay(broker, namespace, tmp_path):
    assert len(replay_outputs(EVENTS, T)) > 10
    _live_vs_replay(broker, namespace, tmp_path, EVENTS, T, AGREEMENT, timeout=40)


AGREEMENT_KEYED = {"penalty.assessed", "credit.issued", "report.published"}


def assert_same_outputs(expected: dict[str, dict], records, context: str) -> dict[str, dict]:
    """Live outputs (``records`` read from the output topics) equal replay's ``expected``: the same
    ids and the same contents (repeats of an id are allowed here). Returns them by id."""
    live = outputs_of(records)
    missing, extra = sorted(set(expected) - set(live)), sorted(set(live) - set(expected))
    assert not missing and not extra, (
        f"live != replay ({context}): missing {[(expected[i]['type'], expected[i]['subject']) for i in missing][:20]}, "
        f"extra {[(live[i]['type'], live[i]['subject']) for i in extra][:20]}")
    differ = [i for i in expected if live[i] != expected[i]]
    assert not differ, (f"contents differ ({context}): {[(expected[i]['type'], expected[i]['subject']) for i in differ][:20]}; "
                        f"first: replay {expected[differ[0]] if differ else None} live {live[differ[0]] if differ else None}")
    return live


def _live_vs_replay(broker, namespace, tmp_path, events: Path, until: str, agreements: Path,
                    timeout: float = 60) -> None:
    """Feed ``events`` (tickets and metrics to their topics), tick every partition at ``until``,
    and compare every output on the three output topics with replay's, id for id and dict for dict."""
    names = topics(namespace)
    expected = {o["id"]: o for o in replay_outputs(events, until, agreements)}
    records = event_records(events.read_bytes().splitlines())
    metrics = [r for r in records if b'"metric.observed"' in r[1]]
    tickets = [r for r in records if b'"metric.observed"' not in r[1]]
    w = Worker(broker, namespace, tmp_path, "--manual-ticks", agreements=agreements)
    try:
        w.wait_ready()
        produce(broker, names["tickets"], tickets)
        produce(broker, names["metrics"], metrics)
        wait_consumed(broker, namespace.app_id, names["tickets"], timeout=timeout)
        wait_consumed(broker, namespace.app_id, names["metrics"], timeout=timeout)
        outs = tick_and_collect(broker, names, until, expected, timeout=timeout)
    finally:
        w.stop()
    live = assert_same_outputs(expected, outs, f"see {w.log_path}")
    assert len(outs) == len(live), "an output was published twice"
    for topic, key, out in outs:  # routing and keys (DESIGN.md §9)
        assert topic == f"{namespace.prefix}{topic_for(out['type'])}"
        want_key = out["data"]["agreement"] if out["type"] in AGREEMENT_KEYED else out["subject"]
        assert key == want_key.encode()


def test_live_equals_replay_for_tickets_and_metrics_across_month_ends(broker, namespace, tmp_path):
    from tests.helpers import example_tickets_and_metrics

    events = tmp_path / "combined.jsonl"
    events.write_bytes(b"\n".join(example_tickets_and_metrics()) + b"\n")
    types = {o["type"] for o in replay_outputs(events, "2026-05-01T00:10:00+02:00")}
    assert {"credit.issued", "report.published", "slo.attainment", "slo.burn_rate", "penalty.assessed"} <= types
    _live_vs_replay(broker, namespace, tmp_path, events, "2026-05-01T00:10:00+02:00", AGREEMENT)


def test_live_equals_replay_for_supporting_agreements_obligations_and_renewal(broker, namespace, tmp_path):
    """DESIGN.md §13 on the real broker: the contracts example (customer agreement, an OLA and an
    underpinning contract beside it on the same tickets, a missed customer obligation and an
    excused breach) plus an ``agreement.terminated`` keyed by agreement: live == replay through
    the term's end (terminated in March: no notice reminder, expired at the end of 2026)."""
    from escalation.paths import EXAMPLE_AGREEMENT, EXAMPLE_EVENTS

    events = tmp_path / "contracts.jsonl"
    termination = (b'{"id": "t-1", "type": "agreement.terminated", "time": "2026-03-05T10:00:00Z", '
                   b'"agreement": "initech-it", "by": "customer"}')
    events.write_bytes((EXAMPLE_EVENTS.parent / "contracts.jsonl").read_bytes() + termination + b"\n")
    until = "2027-01-01T00:10:00+01:00"
    agreements = EXAMPLE_AGREEMENT.parent / "contracts"
    types = {o["type"] for o in replay_outputs(events, until, agreements)}
    assert {"obligation.missed", "agreement.expired", "penalty.assessed"} <= types
    sources = {o["source"] for o in replay_outputs(events, until, agreements)}
    assert sources == {"escalation/initech-it@1", "escalation/network-ola@1", "escalation/telco-uc@1"}
    _live_vs_replay(broker, namespace, tmp_path, events, until, agreements, timeout=60)


def test_live_equals_replay_on_a_generated_workload(broker, namespace, tmp_path):
    from tests.helpers import generated_workload

    events, agreements = generated_workload(tmp_path, tickets=400, seed=7)
    until = "2026-06-01T00:10:00+02:00"  # after every partition's last event and the May close (live grace 5 min)
    expected = replay_outputs(events, until, agreements)
    capped = [o for o in expected if o["type"] == "penalty.assessed" and o["data"]["capped"]]
    assert len(capped) >= 5 and any(o["type"] == "report.published" for o in expected), "the workload must bind a cap"
    _live_vs_replay(broker, namespace, tmp_path, events, until, agreements, timeout=90)


SHORT_AGREEMENT = AGREEMENT.read_text().replace(
    "{clock: response,   priority: P1, within: 15m, calendar: always,   warn_at: [0.5, 0.8]}",
    "{clock: response,   priority: P1, within: 10s, calendar: always,   warn_at: [0.5, 0.8]}")


def _opened(ticket: str, at: datetime, priority: str = "P1", id_: str | None = None) -> tuple[bytes, bytes]:
    ev = {"id": id_ or f"open-{ticket}", "type": "ticket.opened", "time": at.isoformat(), "ticket": ticket,
          "agreement": "acme-erp", "service": "erp-prod", "priority": priority, "summary": "test"}
    return ticket.encode(), json.dumps(ev).encode()


def _acked(ticket: str, at: datetime) -> tuple[bytes, bytes]:
    ev = {"id": f"ack-{ticket}", "type": "ticket.acknowledged", "time": at.isoformat(), "ticket": ticket}
    return ticket.encode(), json.dumps(ev).encode()


def test_deadline_fires_without_input(broker, namespace, tmp_path):
    assert "within: 10s" in SHORT_AGREEMENT
    agreement = tmp_path / "acme-erp.yaml"
    agreement.write_text(SHORT_AGREEMENT)
    names = topics(namespace)
    w = Worker(broker, namespace, tmp_path, "--tick-interval", "0.5", "--tick-grace", "1", agreements=agreement)
    try:
        w.wait_ready()
        now = datetime.now(timezone.utc)  # warm-up: the pipeline is flowing before we time anything
        produce(broker, names["tickets"], [_opened("WARM-1", now), _acked("WARM-1", now + timedelta(seconds=1))])
        collect(broker, [names["timeline"]], until=lambda got: any(o["subject"] == "WARM-1" for _, _, o in got),
                timeout=20, quiet=0)
        opened = datetime.now(timezone.utc)
        produce(broker, names["tickets"], [_opened("INC-LIVE", opened)])
        budget = 10 * 0.5 + 3.0
        got = collect(broker, [names["notifications"]], timeout=budget + 5, quiet=0,
                      until=lambda got: any(o["type"] == "sla.warning" and o["subject"] == "INC-LIVE" for _, _, o in got))
        arrived = datetime.now(timezone.utc)
    finally:
        w.stop()
    warnings = [o for _, _, o in got if o["type"] == "sla.warning" and o["subject"] == "INC-LIVE"]
    assert warnings, f"no sla.warning for INC-LIVE within {budget + 5}s of opening; see {w.log_path}"
    first = min(warnings, key=lambda o: o["time"])
    assert first["data"]["fraction"] == 0.5
    assert datetime.fromisoformat(first["time"]) == opened + timedelta(seconds=5)  # the instant it became true
    assert (arrived - opened).total_seconds() <= budget, f"warning came {(arrived - opened).total_seconds():.1f}s after opening"


def test_malformed_record_goes_to_deadletter(broker, namespace, tmp_path):
    names = topics(namespace)
    w = Worker(broker, namespace, tmp_path, "--manual-ticks")
    try:
        w.wait_ready()
        now = datetime.now(timezone.utc)
        produce(broker, names["tickets"], [
            (b"INC-BAD", b"{not json"),
            (b"INC-BAD", b"\xff\xfe binary"),
            (b"INC-X", json.dumps({"id": "x1", "type": "ticket.acknowledged", "time": now.isoformat(), "ticket": "INC-X"}).encode()),
            _opened("INC-OK", now),
            _acked("INC-OK", now + timedelta(seconds=2)),
        ])
        dead = collect(broker, [names["deadletter"]], until=lambda got: len(got) >= 3, timeout=30, quiet=0.5)
        met = collect(broker, [names["timeline"]], timeout=30, quiet=0,
                      until=lambda got: any(o["type"] == "sla.met" and o["subject"] == "INC-OK" for _, _, o in got))
    finally:
        w.stop()
    assert len(dead) == 3, f"want 3 dead letters, got {dead}; see {w.log_path}"
    by_value = {rec["value"]: (key, rec) for _, key, rec in dead}
    key, rec = by_value["{not json"]
    assert key == b"INC-BAD" and rec["reason"] and rec["topic"] == names["tickets"] and rec["offset"] >= 0
    assert "partition" in rec
    binary = [rec for _, _, rec in dead if rec.get("value_encoding") == "base64"]
    assert len(binary) == 1 and binary[0]["reason"]
    unknown = [rec for _, _, rec in dead if "INC-X" in rec["value"]]
    assert unknown and "unknown ticket" in unknown[0]["reason"]
    assert any(o["type"] == "sla.met" and o["subject"] == "INC-OK" for _, _, o in met), "stream stopped after a bad record"


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_kill9_and_restart_misses_nothing(broker, namespace, tmp_path, store):
    """Also with the RocksDB store (rocksdict): its state survives on disk and the changelog
    recovery must agree with it (DESIGN.md §7: needs producer_max_batch_size=1 on Tansu)."""
    from tests.helpers import generated_workload

    env = {"ESCALATION_STORE": store}
    names = topics(namespace)
    events, agreements = generated_workload(tmp_path, tickets=300, seed=5)  # penalties, caps, reports
    until = "2026-06-01T00:10:00+02:00"  # past the May close (live grace 5 min)
    lines = events.read_bytes().splitlines()
    expected = {o["id"]: o for o in replay_outputs(events, until, agreements)}
    half = len(lines) // 2
    w = Worker(broker, namespace, tmp_path, "--manual-ticks", name="w1", env=env, agreements=agreements)
    try:
        w.wait_ready()
        produce(broker, names["tickets"], event_records(lines[:half]))
        wait_consumed(broker, namespace.app_id, names["tickets"])
        produce(broker, names["tickets"], event_records(lines[half:]))
        time.sleep(0.3)  # mid-stream: some of the second half may be processed, uncommitted
    finally:
        w.kill()
    w2 = Worker(broker, namespace, tmp_path, "--manual-ticks", name="w2", env=env, agreements=agreements)
    try:
        w2.wait_ready()
        wait_consumed(broker, namespace.app_id, names["tickets"], timeout=60)
        outs = tick_and_collect(broker, names, until, expected, timeout=60)
    finally:
        w2.stop()
    assert_same_outputs(expected, outs, f"after kill -9; see {w2.log_path}")


def test_two_workers_and_a_rebalance_give_replays_outputs(broker, namespace, tmp_path):
    names = topics(namespace)
    lines = EVENTS.read_bytes().splitlines()
    expected = {o["id"]: o for o in replay_outputs(EVENTS, T)}
    half = len(lines) // 2
    w1 = Worker(broker, namespace, tmp_path, "--manual-ticks", name="w1")
    w2 = None
    try:
        w1.wait_ready()
        produce(broker, names["tickets"], event_records(lines[:half]))
        wait_consumed(broker, namespace.app_id, names["tickets"])
        w2 = Worker(broker, namespace, tmp_path, "--manual-ticks", name="w2")  # rebalance: partitions move
        w2.wait_ready()
        produce(broker, names["tickets"], event_records(lines[half:]))
        wait_consumed(broker, namespace.app_id, names["tickets"])
        outs = tick_and_collect(broker, names, T, expected, timeout=40)
    finally:
        if w2 is not None:
            w2.stop()
        w1.stop()
    assert_same_outputs(expected, outs, f"across a rebalance; see {w1.log_path}, {w2.log_path if w2 else ''}")
