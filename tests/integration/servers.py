"""Real Prometheus and Alertmanager for the integration tier (DESIGN.md §14), started on
127.0.0.1 for the test session and stopped by PID at its end; a test exporter in-process
(prometheus-client) whose counters the tests drive.

Missing binaries FAIL the tests with what to install (Debian packages ``prometheus`` and
``prometheus-alertmanager``; ``.ci/run`` installs them), unless
``ESCALATION_ALLOW_MISSING_SERVERS=1``, which turns that into a skip.

Fixtures (imported by conftest.py): ``exporter`` (session), ``prometheus`` (session, scraping the
exporter every second), ``alertmanager`` (session, null receiver, clustering off).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from escalation.live.probe import free_port

ALLOW_MISSING = "ESCALATION_ALLOW_MISSING_SERVERS"
INSTALL = "apt-get install -y prometheus prometheus-alertmanager"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = (f"{name} is not installed: the integration tests run a real Prometheus and Alertmanager "
               f"(Debian: {INSTALL}; .ci/run installs them). Set {ALLOW_MISSING}=1 to skip these tests instead.")
    if os.environ.get(ALLOW_MISSING) == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class Server:
    """One server process in its own process group, log in its temp dir; stop() by PID."""

    def __init__(self, name: str, argv: list[str], workdir: Path, port: int) -> None:
        self.name, self.workdir, self.port = name, workdir, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=workdir, start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.proc.returncode}):\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} not ready within {timeout}s:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_group(self.proc, 10)


def stop_group(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the process group we started (start_new_session), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Exporter:
    """``edge_requests_total{run, code}`` served on 127.0.0.1:``port``; tests use their own ``run``."""

    port: int
    requests: Counter

    def add(self, run: str, code: str, n: int) -> None:
        self.requests.labels(run=run, code=code).inc(n)

    def declare(self, run: str, *codes: str) -> None:
        """Make the series exist at 0 (an absent series is "no data", not zero)."""
        for code in codes:
            self.requests.labels(run=run, code=code)


@pytest.fixture(scope="session")
def exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    requests = Counter("edge_requests", "requests served, by outcome", ["run", "code"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield Exporter(port, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


PROMETHEUS_CONFIG = """\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: edge
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


@pytest.fixture(scope="session")
def prometheus(exporter) -> Iterator[Server]:
    exe = binary("prometheus")
    with tempfile.TemporaryDirectory(prefix="escalation-prometheus-") as tmp:
        work = Path(tmp)
        (work / "prometheus.yml").write_text(PROMETHEUS_CONFIG.format(port=exporter.port))
        port = free_port()
        server = Server("prometheus", [exe, f"--config.file={work / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={work / 'data'}",
                                       f"--web.listen-address=127.0.0.1:{port}"], work, port)
        try:
            server.wait_ready()
            wait_scraped(server, 'up{job="edge"} == 1', 30.0)
            yield server
        finally:
            server.stop()


def query(server: Server, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr} | ({"time": str(at)} if at is not None else {})
    return get_json(f"{server.url}/api/v1/query?{urllib.parse.urlencode(params)}")["data"]["result"]


def wait_scraped(server: Server, expr: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not query(server, expr):
        if time.monotonic() > deadline:
            pytest.fail(f"prometheus: {expr} still empty after {timeout}s\n{server.log_path.read_text()[-2000:]}")
        time.sleep(0.2)


ALERTMANAGER_CONFIG = """\
route: {receiver: "null"}
receivers: [{name: "null"}]
"""


@pytest.fixture(scope="session")
def alertmanager() -> Iterator[Server]:
    exe = binary("prometheus-alertmanager")
    with tempfile.TemporaryDirectory(prefix="escalation-alertmanager-") as tmp:
        work = Path(tmp)
        (work / "alertmanager.yml").write_text(ALERTMANAGER_CONFIG)
        port = free_port()
        server = Server("alertmanager", [exe, f"--config.file={work / 'alertmanager.yml'}",
                                         f"--storage.path={work / 'data'}",
                                         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                        work, port)
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()
