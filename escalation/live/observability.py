"""Metrics and health of a live worker: Prometheus text on ``/metrics``, JSON on ``/health``.

The app calls the plain functions below from its agents (each is one counter/gauge/histogram
operation: cheap, thread-safe, no I/O). Every metric lives on the dedicated :data:`REGISTRY`, not
on prometheus_client's global one, so importing this module never clashes with other exporters
and ``/metrics`` shows exactly the engine's series.

HTTP (stdlib ``ThreadingHTTPServer`` in a daemon thread, started by ``escalation run``):

- ``GET /metrics``: Prometheus text exposition format of :data:`REGISTRY`;
- ``GET /health``: liveness, always 200 while the process serves HTTP;
  body ``{"status": "ok"|"starting", "ready": bool, "partitions_assigned": n}``;
- ``GET /health/ready``: readiness, same body, 200 when ready and 503 while starting.

``ready`` becomes true when the worker got its first partition assignment (:func:`set_ready`) and
stays true across rebalances (a worker with zero partitions is idle, not broken).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "REGISTRY", "events_in", "outputs_out", "dead_letter", "set_open_incidents", "set_due_index",
    "deadline_latency", "set_desk_pending", "lag", "reload_done", "set_ready", "set_assigned", "health", "metrics_text",
    "start_http", "stop_http", "internal_error", "duplicate_conflict", "refetched",
]

REGISTRY = CollectorRegistry(auto_describe=True)

_EVENTS_IN = Counter("escalation_events_in", "Input records consumed (ticket and metric events).", registry=REGISTRY)
_OUTPUTS_OUT = Counter("escalation_outputs_out", "Outputs published, by output type.", ["type"], registry=REGISTRY)
_DEAD_LETTERS = Counter("escalation_dead_letters", "Records sent to the dead-letter topic.", registry=REGISTRY)
_INTERNAL_ERRORS = Counter("escalation_internal_errors", "Records dead-lettered because processing them raised "
                           "an unexpected exception, by agent.", ["agent"], registry=REGISTRY)
_CONFLICTS = Counter("escalation_duplicate_conflicts", "Repeated input ids with different content (ignored, "
                     "dead-lettered as duplicate).", registry=REGISTRY)
_REFETCHED = Counter("escalation_input_refetched", "Input records the consumer did not deliver, read back from the "
                     "broker and applied in order, by topic.", ["topic"], registry=REGISTRY)
_OPEN_INCIDENTS = Gauge("escalation_open_incidents", "Incidents held by this worker.", registry=REGISTRY)
_DUE_INDEX = Gauge("escalation_due_index", "Scheduled deadlines in this worker's due indexes.", registry=REGISTRY)
_DEADLINE_LATENCY = Histogram(
    "escalation_deadline_latency_seconds", "Wall-clock delay between a deadline's instant and its output.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0), registry=REGISTRY)
_DESK_PENDING = Gauge("escalation_desk_pending", "Penalties and credits at this worker's desk waiting for every "
                      "input partition's clock to pass them.", registry=REGISTRY)
_LAG = Gauge("escalation_consumer_lag", "Records behind the log end, by input partition.", ["partition"],
             registry=REGISTRY)
_RELOADS = Counter("escalation_agreement_reloads", "Agreement reloads, by result (ok, rejected).", ["result"],
                   registry=REGISTRY)
_READY = Gauge("escalation_ready", "1 once the worker got its first partition assignment.", registry=REGISTRY)
_ASSIGNED = Gauge("escalation_partitions_assigned", "Partitions currently assigned to this worker.",
                  registry=REGISTRY)

_state = {"ready": False, "assigned": 0}


# -- called by the app (keep each one a single metric operation)
def events_in(n: int = 1) -> None:
    _EVENTS_IN.inc(n)


def outputs_out(type_: str, n: int = 1) -> None:
    _OUTPUTS_OUT.labels(type=type_).inc(n)


def dead_letter(n: int = 1) -> None:
    _DEAD_LETTERS.inc(n)


def internal_error(agent: str) -> None:
    _INTERNAL_ERRORS.labels(agent=agent).inc()


def duplicate_conflict() -> None:
    _CONFLICTS.inc()


def refetched(topic: str, n: int) -> None:
    _REFETCHED.labels(topic=topic).inc(n)


def set_open_incidents(n: int) -> None:
    _OPEN_INCIDENTS.set(n)


def set_due_index(n: int) -> None:
    _DUE_INDEX.set(n)


def set_desk_pending(n: int) -> None:
    _DESK_PENDING.set(n)


def deadline_latency(seconds: float) -> None:
    _DEADLINE_LATENCY.observe(max(0.0, seconds))


def lag(partition: int, n: int) -> None:
    _LAG.labels(partition=str(partition)).set(n)


# -- called by the runner
def reload_done(ok: bool) -> None:
    _RELOADS.labels(result="ok" if ok else "rejected").inc()


def set_ready(ready: bool) -> None:
    _state["ready"] = bool(ready)
    _READY.set(1 if ready else 0)


def set_assigned(n: int) -> None:
    _state["assigned"] = int(n)
    _ASSIGNED.set(n)


def health() -> dict:
    ready = _state["ready"]
    return {"status": "ok" if ready else "starting", "ready": ready, "partitions_assigned": _state["assigned"]}


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)


class _Handler(BaseHTTPRequestHandler):
    server_version = "escalation"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, metrics_text())
        elif path in ("/health", "/health/ready"):
            body = health()
            code = 503 if path == "/health/ready" and not body["ready"] else 200
            self._send(code, "application/json", json.dumps(body).encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /health\n")

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - scrapes every 15 s are not log lines
        pass


def start_http(host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, int]:
    """Serve /metrics and /health on ``host:port`` (0: a free port) in a daemon thread.

    Returns ``(server, port actually bound)``; raises ``OSError`` when the address is unusable.
    """
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="escalation-http", daemon=True)
    thread.start()
    return server, server.server_address[1]


def stop_http(server: ThreadingHTTPServer | None) -> None:
    """Stop serving and close the socket (idempotent; None is ignored)."""
    if server is None:
        return
    server.shutdown()
    server.server_close()
