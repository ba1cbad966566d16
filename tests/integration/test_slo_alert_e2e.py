"""End to end (DESIGN.md §14): a real Prometheus scraping a test exporter drives an SLO to a
burn-rate alert that a real Alertmanager shows as active, then resolved — through the real broker.

exporter (errors rise, then stop) -> Prometheus (scrape 1 s) -> `escalation sli prometheus` (live,
5 s slices, 2 s lag) -> metrics topic -> `escalation run` (SLO with a 2m/1m burn-rate rule and
`notify: [am]`) -> notifications topic -> `escalation deliver` -> Alertmanager /api/v2/alerts.

The smallest honest setup: the burn-rate machinery keeps 1-minute buckets for windows up to 2 h
(escalation/core/services/burn_rate.py), so the windows are 1m and 2m; the rule clears once the short
window's error ratio falls to the threshold, which fast good traffic after the errors stop
brings about within seconds rather than a window length.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.servers import get_json, stop_group, wait_scraped
from tests.integration.test_edges import ENV, read
from tests.integration.test_live_engine import Worker

pytestmark = pytest.mark.integration

AGREEMENT = """\
apiVersion: escalation/v1
kind: Agreement
id: {id}
revision: 1
priorities: [P1]
services:
  edge-svc: {{name: edge service}}
clocks:
  response: {{starts: opened, stops: acknowledged}}
targets:
  - {{clock: response, priority: P1, within: 15m, calendar: always}}
slos:
  - id: edge-availability
    service: edge-svc
    sli: availability
    objective: 90
    burn_rate_alerts: [{{long_window: 2m, short_window: 1m, factor: 2, severity: page}}]
    notify: [am]
notification_targets:
  am: {{kind: alertmanager, url: "{am}", resend: 5s}}
"""

SLI_CONFIG = """\
slice: 5s
lag: 2s
slis:
  - service: edge-svc
    sli: availability
    good: 'sum(increase(edge_requests_total{{run="{run}",code!~"5.."}}[5s]))'
    total: 'sum(increase(edge_requests_total{{run="{run}"}}[5s]))'
"""


class Traffic(threading.Thread):
    """10 errors/s and 10 successes/s until ``errors_stop`` is set, then 100 successes/s."""

    def __init__(self, exporter, run: str) -> None:
        super().__init__(daemon=True)
        self.exporter, self.run_id = exporter, run
        self.errors_stop, self.done = threading.Event(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            if self.errors_stop.is_set():
                self.exporter.add(self.run_id, "200", 10)
            else:
                self.exporter.add(self.run_id, "200", 1)
                self.exporter.add(self.run_id, "500", 1)


class Proc:
    """A CLI subprocess in its own process group, stderr to a file; stopped by PID."""

    def __init__(self, name: str, tmp: Path, *args: str) -> None:
        self.log_path = tmp / f"{name}.stderr"
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "escalation.cli", *args], stdout=subprocess.DEVNULL,
                                         stderr=err, cwd=tmp, env=ENV, start_new_session=True)

    def wait_for(self, text: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_bytes():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout}s: {self.log_path.read_text()[-2000:]}"
            time.sleep(0.2)

    def stop(self) -> None:
        stop_group(self.proc, 20)


def _our_alerts(alertmanager, agreement: str) -> list[dict]:
    return [a for a in get_json(f"{alertmanager.url}/api/v2/alerts")
            if a["labels"].get("agreement") == agreement and a["labels"].get("alertname") == "SloBurnRate"]


def _wait(predicate, timeout: float, what: str, procs: list):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for p in procs:
            assert p.proc.poll() is None, f"{p.log_path.name} exited: {p.log_path.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout}s; logs in {procs[0].log_path.parent}"
        time.sleep(0.5)


def test_prometheus_drives_a_burn_rate_alert_active_then_resolved_in_alertmanager(
        broker, namespace, tmp_path, exporter, prometheus, alertmanager):
    run, agreement_id = uuid.uuid4().hex[:8], f"edge-{namespace.tag}"
    exporter.declare(run, "200", "500")
    wait_scraped(prometheus, f'edge_requests_total{{run="{run}"}}', 30)
    agreement = tmp_path / "agreement.yaml"
    agreement.write_text(AGREEMENT.format(id=agreement_id, am=alertmanager.url))
    config = tmp_path / "slis.yaml"
    config.write_text(SLI_CONFIG.format(run=run))
    common = ["--broker", broker.url, "--topic-prefix", namespace.prefix, "--profile", "test"]

    worker = Worker(broker, namespace, tmp_path, agreements=agreement)
    traffic = Traffic(exporter, run)
    procs: list = []
    try:
        worker.wait_ready(60)
        deliver = Proc("deliver", tmp_path, "deliver", *common, "--app-id", namespace.app_id,
                       "--agreements", str(agreement), "--metrics-port", "0")
        procs.append(deliver)
        deliver.wait_for(b"deliver ready", 60)
        traffic.start()
        sli = Proc("sli", tmp_path, "sli", "prometheus", "--url", prometheus.url, "--config", str(config), *common)
        procs.append(sli)
        started = time.monotonic()
        (active,) = _wait(lambda: _our_alerts(alertmanager, agreement_id), 90, "active alert", [worker, *procs])
        fired_after = time.monotonic() - started
        assert active["status"]["state"] == "active"
        assert active["labels"]["service"] == "edge-svc" and active["labels"]["slo"] == "edge-availability"
        dedup_key = active["labels"]["dedup_key"]
        traffic.errors_stop.set()
        stopped = time.monotonic()
        _wait(lambda: not _our_alerts(alertmanager, agreement_id), 180, "resolved alert", [worker, *procs])
        resolved_after = time.monotonic() - stopped
    finally:
        traffic.done.set()
        for p in reversed(procs):
            p.stop()
        worker.stop()
    burns = [json.loads(r.value) for r in read(broker, f"{namespace.prefix}notifications", 2)]
    assert [(b["type"], b["data"]["state"], b["data"]["dedup_key"]) for b in burns] == [
        ("slo.burn_rate", "firing", dedup_key), ("slo.burn_rate", "resolved", dedup_key)]
    assert all([r["name"] for r in b["data"]["recipients"]] == ["am"] for b in burns)
    print(f"\nalert active {fired_after:.1f}s after the SLI exporter started, resolved {resolved_after:.1f}s "
          f"after the errors stopped")
