"""Operating a live worker (`escalation run` subprocess on the real broker, never a mock):
/health and /metrics over HTTP, agreement reload on SIGHUP without losing state (incidents keep
their pinned revision, new ones take the new revision, an invalid set is refused and logged), and
SIGTERM -> clean exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import urllib.request
from datetime import datetime, timedelta

import pytest

from escalation.live.ticker import send_tick
from tests.integration.test_live_engine import (
    AGREEMENT, PARTITIONS, Worker, _opened, collect, produce, topics, wait_consumed,
)

pytestmark = pytest.mark.integration
T0 = datetime.fromisoformat("2026-03-02T08:00:00+00:00")
P1_RESPONSE = "{clock: response,   priority: P1, within: 15m,"


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


def _series(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait(predicate, timeout: float, what: str, w: Worker):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert w.proc.poll() is None, f"worker exited ({w.proc.returncode}) waiting for {what}, see {w.log_path}"
        assert time.time() < deadline, f"no {what} within {timeout}s, see {w.log_path}"
        time.sleep(0.2)


def _log(w: Worker) -> list[dict]:
    """The worker's stderr: JSON lines (stderr is not a terminal, so --log-format auto = json)."""
    return [json.loads(line) for line in w.log_path.read_text().splitlines() if line.startswith("{")]


def test_health_metrics_reload_and_clean_stop(broker, namespace, tmp_path):
    agreements = tmp_path / "agreements"
    agreements.mkdir()
    (agreements / "acme-erp.yaml").write_text(AGREEMENT.read_text())
    r4 = AGREEMENT.read_text().replace("revision: 3", "revision: 4")
    r4 = r4.replace(P1_RESPONSE, P1_RESPONSE.replace("15m", "10m"))
    assert r4.count("within: 10m,") == 1
    names = topics(namespace)
    w = Worker(broker, namespace, tmp_path, "--manual-ticks", "--metrics-port", "0", agreements=agreements)
    try:
        w.wait_ready()
        port = int(re.search(rb"http://127\.0\.0\.1:(\d+)/metrics", w.log_path.read_bytes()).group(1))
        base = f"http://127.0.0.1:{port}"
        assert all("ts" in d and "level" in d and "logger" in d and "msg" in d for d in _log(w))

        code, body = _get(base + "/health")
        health = json.loads(body)
        assert code == 200 and health["status"] == "ok" and health["ready"] and health["partitions_assigned"] > 0
        assert _get(base + "/health/ready")[0] == 200

        # one ticket event in -> the events counter moves
        produce(broker, names["tickets"], [_opened("OLD-1", T0)])
        _wait(lambda: _series(_get(base + "/metrics")[1], "escalation_events_in_total") >= 1, 20, "events_in", w)

        # SIGHUP with a new revision file: merged in place, the worker keeps running
        (agreements / "acme-erp-r4.yaml").write_text(r4)
        os.kill(w.proc.pid, signal.SIGHUP)
        reloaded = _wait(lambda: [d for d in _log(w) if "agreements reloaded" in d["msg"]], 20, "reload log line", w)
        assert reloaded[0]["added"] == ["acme-erp r4"] and reloaded[0]["reload"] == "ok"

        # invalid agreements: every problem of every file logged, the loaded set stays in force
        bad_tz = r4.replace("revision: 4", "revision: 5").replace("timezone: Europe/Berlin", "timezone: Mars/Olympus")
        broken = {"zz-tz.yaml": bad_tz, "zz-yaml.yaml": "id: [\n"}
        for name, text in broken.items():
            (agreements / name).write_text(text)
        os.kill(w.proc.pid, signal.SIGHUP)
        _wait(lambda: any("reload from" in d["msg"] and "refused (2 problems)" in d["msg"] for d in _log(w)), 20,
              "refusal", w)
        for name in broken:
            assert any(d["level"] == "WARNING" and f"{name}:" in d["msg"] for d in _log(w)), name
            (agreements / name).unlink()

        # the pinned incident keeps r3 (15m); a ticket opened after the reload takes r4 (10m)
        produce(broker, names["tickets"], [_opened("NEW-1", T0)])
        wait_consumed(broker, namespace.app_id, names["tickets"])
        asyncio.run(send_tick(broker.bootstrap, names["ticks"], T0 + timedelta(minutes=20), PARTITIONS))
        subjects = {"OLD-1", "NEW-1"}
        got = collect(broker, [names["notifications"]], timeout=30, quiet=1.0,
                      until=lambda got: {o["subject"] for _, _, o in got if o["type"] == "sla.breached"} >= subjects)
        assert w.proc.poll() is None
        _, metrics = _get(base + "/metrics")
        assert _series(metrics, 'escalation_agreement_reloads_total{result="ok"}') == 1
        assert _series(metrics, 'escalation_agreement_reloads_total{result="rejected"}') == 1

        # SIGTERM: clean exit 0 within a few seconds
        started = time.time()
        os.kill(w.proc.pid, signal.SIGTERM)
        code = w.proc.wait(timeout=20)
        stopped_in = time.time() - started
    finally:
        w.stop()
    breached = {o["subject"]: o for _, _, o in got if o["type"] == "sla.breached" and o["data"]["clock"] == "response"}
    assert set(breached) == subjects, f"want response breaches of {subjects}, got {sorted(breached)}; see {w.log_path}"
    for ticket, source, due in (("OLD-1", "@3", "08:15"), ("NEW-1", "@4", "08:10")):  # pinned r3; new ones r4
        assert breached[ticket]["source"].endswith(source), breached[ticket]
        assert breached[ticket]["data"]["due"] == f"2026-03-02T{due}:00+00:00", breached[ticket]
    assert code == 0, f"exit status {code} after SIGTERM; see {w.log_path}"
    assert _log(w)[-1]["msg"].startswith("escalation: worker stopped")
    assert stopped_in < 10, f"SIGTERM took {stopped_in:.1f}s"


def test_busy_metrics_port_is_logged_and_the_worker_runs_on(broker, namespace, tmp_path):
    from escalation.live.observability import start_http, stop_http

    server, port = start_http("127.0.0.1", 0)  # the port is taken
    w = Worker(broker, namespace, tmp_path, "--manual-ticks", "--metrics-port", str(port), "--log-format", "text")
    try:
        w.wait_ready()
        text = w.log_path.read_text()
        assert f"escalation: metrics endpoint not started on 127.0.0.1:{port}" in text
        assert "escalation: ready" in text and not text.lstrip().startswith("{")
    finally:
        w.stop()
        stop_http(server)
