"""The edges users already run (DESIGN.md §14), on the real broker and a real Prometheus:

(a) `escalation send` of a file with good and bad lines: the good ones arrive on tickets/metrics
    with their keys, the bad ones are reported with line numbers and not sent;
(b) `escalation tail` prints what arrives on the chosen topics (JSONL, and short lines);
(c) `escalation run` with the embedded broker writes .escalation/broker and removes it on exit;
    `send` and `tail` with no broker flag find it;
(d) `escalation sli prometheus --from --to` against Prometheus scraping a test exporter with
    known counters: exact integer counts per slice, and the same ids when run twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.integration.servers import stop_group, wait_scraped

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("ESCALATION_")}, "PYTHONPATH": str(ROOT)}
NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def cli(*args: str, cwd: Path | None = None, timeout: float = 60, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "escalation.cli", *args], input=stdin, capture_output=True,
                          cwd=cwd, env=ENV, timeout=timeout)


def where(broker, ns) -> list[str]:
    return ["--broker", broker.url, "--topic-prefix", ns.prefix, "--profile", "test"]


async def _read(bootstrap: str, topic: str, n: int, timeout: float = 20) -> list:
    """The first ``n`` records of ``topic`` (all partitions, from the start)."""
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await c.start()
    out, deadline = [], time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            for records in (await c.getmany(timeout_ms=200)).values():
                out += records
    finally:
        await c.stop()
    return out


def read(broker, topic: str, n: int, timeout: float = 20) -> list:
    return asyncio.run(_read(broker.bootstrap, topic, n, timeout))


def ticket(i: int, type_: str = "ticket.opened", **extra) -> dict:
    base = {"id": f"e-{i}", "type": type_, "time": NOW, "ticket": f"INC-{i}"}
    if type_ == "ticket.opened":
        base |= {"agreement": "acme-erp", "service": "erp-prod", "priority": "P3"}
    return base | extra


def test_send_produces_good_lines_with_their_keys_and_reports_bad_ones(broker, namespace, tmp_path):
    metric = {"id": "m-1", "type": "metric.observed", "service": "erp-prod", "sli": "availability",
              "start": "2026-03-02T09:00:00Z", "end": "2026-03-02T09:01:00Z", "good": 59, "total": 60}
    lines = [json.dumps(ticket(1)), "{oops", json.dumps(metric), "", json.dumps(ticket(2, time="2026-03-02T09:00")),
             json.dumps(ticket(3, "ticket.acknowledged", ticket="INC-1")), json.dumps({**metric, "good": 61}),
             json.dumps({"id": "x", "type": "ticket.exploded", "time": NOW, "ticket": "INC-1"})]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    result = cli("send", str(events), *where(broker, namespace))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert [line.split(": ", 1)[0] for line in err.splitlines() if line.startswith(str(events))] == [
        f"{events}:2", f"{events}:5", f"{events}:7", f"{events}:8"]
    assert "naive timestamp" in err and "good (61) exceeds total (60)" in err and "'ticket.exploded'" in err
    assert "sent 3 events (2 to tickets, 1 to metrics), rejected 4 of 8 lines" in err
    tickets = read(broker, f"{namespace.prefix}tickets", 2)
    metrics = read(broker, f"{namespace.prefix}metrics", 1)
    assert sorted((r.key, r.value) for r in tickets) == [(b"INC-1", lines[0].encode()), (b"INC-1", lines[5].encode())]
    assert [(r.key, r.value) for r in metrics] == [(b"erp-prod", lines[2].encode())]
    assert len(read(broker, f"{namespace.prefix}tickets", 3, timeout=2)) == 2    # nothing else was sent


def _output(i: int, type_: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": f"o-{i}", "source": "escalation/acme-erp@3", "type": type_,
                       "subject": f"INC-{i}", "time": "2026-03-02T09:15:00+00:00",
                       "data": {"summary": f"INC-{i} summary"}}).encode()


async def _produce(bootstrap: str, records: list[tuple[str, bytes]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        for topic, value in records:
            await p.send_and_wait(topic, value, key=b"k")
    finally:
        await p.stop()


def _tail(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "escalation.cli", "tail", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, env=ENV, start_new_session=True)


def _wait_tailing(proc: subprocess.Popen, timeout: float = 30) -> str:
    """Read tail's stderr up to its "tailing ..." line (its positions are fixed by then)."""
    deadline, seen = time.monotonic() + timeout, b""
    while b"tailing" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, f"tail did not start: {seen!r}"
        seen += proc.stderr.readline()
    return seen.decode()


def test_tail_prints_what_arrives(broker, namespace):
    p = namespace.prefix
    jsonl = _tail("notifications", *where(broker, namespace), "--limit", "2")
    lines = _tail("all", *where(broker, namespace), "--format", "line", "--limit", "3")
    try:
        _wait_tailing(jsonl)
        _wait_tailing(lines)
        records = [(f"{p}notifications", _output(1, "sla.breached")), (f"{p}timeline", _output(2, "sla.met")),
                   (f"{p}notifications", _output(3, "escalation.triggered"))]
        asyncio.run(_produce(broker.bootstrap, records))
        out_jsonl, _ = jsonl.communicate(timeout=30)
        out_lines, _ = lines.communicate(timeout=30)
    finally:
        for proc in (jsonl, lines):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert jsonl.returncode == 0 and lines.returncode == 0
    assert out_jsonl.splitlines() == [records[0][1], records[2][1]]      # JSONL, only notifications
    assert sorted(out_lines.decode().splitlines()) == [
        "2026-03-02 09:15:00  escalation.triggered   INC-3        INC-3 summary",
        "2026-03-02 09:15:00  sla.breached           INC-1        INC-1 summary",
        "2026-03-02 09:15:00  sla.met                INC-2        INC-2 summary"]


def test_run_writes_the_broker_file_and_send_and_tail_find_it(tmp_path):
    log = tmp_path / "run.stderr"
    with open(log, "wb") as err:
        run = subprocess.Popen([sys.executable, "-m", "escalation.cli", "run", "--metrics-port", "0"],
                               stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path, env=ENV, start_new_session=True)
    broker_file = tmp_path / ".escalation" / "broker"
    try:
        deadline = time.monotonic() + 60
        while b"escalation: ready" not in log.read_bytes():
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        address = broker_file.read_text().strip()
        assert address.startswith("127.0.0.1:") and f"on {address}" in log.read_text()
        tail = _tail("timeline", "--limit", "1", cwd=tmp_path)
        _wait_tailing(tail)
        events = "\n".join(json.dumps(e) for e in (ticket(1), ticket(2, "ticket.acknowledged", ticket="INC-1")))
        sent = cli("send", "-", cwd=tmp_path, stdin=events.encode())
        assert sent.returncode == 0 and b"sent 2 events" in sent.stderr, sent.stderr
        out, _ = tail.communicate(timeout=60)
        (line,) = out.splitlines()
        output = json.loads(line)
        assert (output["type"], output["subject"], output["data"]["clock"]) == ("sla.met", "INC-1", "response")
        assert cli("topics", "--check", cwd=tmp_path).returncode == 0
    finally:
        stop_group(run, 30)
    assert run.returncode == 0 and not broker_file.exists()
    after = cli("send", "-", cwd=tmp_path, stdin=b"")
    assert after.returncode == 2 and b"no broker configured and no .escalation/broker" in after.stderr


SLI_CONFIG = """\
slice: 5s
lag: 2s
slis:
  - service: edge-svc
    sli: availability
    good: 'sum(edge_requests_total{{run="{run}",code="200"}}) - sum(edge_requests_total{{run="{run}",code="200"}} offset 5s)'
    total: 'sum(edge_requests_total{{run="{run}"}}) - sum(edge_requests_total{{run="{run}"}} offset 5s)'
  - service: edge-svc
    sli: absent
    good: 'sum(edge_requests_total{{run="nobody"}})'
    total: 'sum(edge_requests_total{{run="nobody"}})'
"""


def test_sli_prometheus_backfill_counts_exactly_with_stable_ids(broker, namespace, tmp_path, exporter, prometheus):
    run = uuid.uuid4().hex[:8]
    exporter.declare(run, "200", "500")
    wait_scraped(prometheus, f'edge_requests_total{{run="{run}"}}', 30)
    time.sleep(6)                                     # a whole slice of zeros precedes the first one counted
    # One increment per slice, 1.5 s after its start: scraped (every 1 s) well inside the slice.
    plan = [(7, 3), (0, 0), (120, 1), (5, 5)]          # (good, bad) per slice
    first = (int(time.time()) // 5 + 1) * 5
    for k, (good, bad) in enumerate(plan):
        time.sleep(max(0.0, first + 5 * k + 1.5 - time.time()))
        exporter.add(run, "200", good)
        exporter.add(run, "500", bad)
    time.sleep(max(0.0, first + 5 * len(plan) + 3 - time.time()))   # the last slice is lag (2 s) old
    config = tmp_path / "slis.yaml"
    config.write_text(SLI_CONFIG.format(run=run))
    span = ["--from", _iso(first), "--to", _iso(first + 5 * len(plan))]
    runs = [cli("sli", "prometheus", "--url", prometheus.url, "--config", str(config), *span, *where(broker, namespace))
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert r.stderr.decode().count("absent") == len(plan) and b"no data" in r.stderr   # skipped, said why
        assert b"sent 4 slices, skipped 4" in r.stderr
    events = [[json.loads(line) for line in r.stdout.splitlines()] for r in runs]
    assert events[0] == events[1]                   # same ids, same counts
    assert [(e["start"], e["end"], e["good"], e["total"]) for e in events[0]] == [
        (_iso(first + 5 * k), _iso(first + 5 * k + 5), good, good + bad) for k, (good, bad) in enumerate(plan)]
    assert [e["id"] for e in events[0]] == [f"prometheus:edge-svc:availability:{_iso(first + 5 * k)}"
                                            for k in range(len(plan))]
    on_topic = read(broker, f"{namespace.prefix}metrics", 8)
    assert sorted(json.loads(r.value)["id"] for r in on_topic) == sorted(e["id"] for e in events[0] * 2)
    assert {r.key for r in on_topic} == {b"edge-svc"}


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
