"""Prometheus metrics of delivery (DESIGN.md §12), on the engine's registry so ``/metrics`` of
``escalation run --deliver`` and of ``escalation deliver`` show them beside the engine's.

Invariants: each function is one metric operation (cheap, no I/O); labels are the target kind,
the target name, the outcome and the status, never a secret or an output id (bounded cardinality).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from escalation.live.observability import REGISTRY

_DELIVERIES = Counter("escalation_deliveries", "Deliveries finished, by target kind and outcome "
                      "(succeeded, failed, skipped, duplicate).", ["kind", "outcome"], registry=REGISTRY)
_STATUS = Counter("escalation_delivery_http_status", "Responses of delivery attempts by target kind and "
                  "status (HTTP status, SMTP code, or 'error' for network errors).", ["kind", "status"],
                  registry=REGISTRY)
_ATTEMPTS = Counter("escalation_delivery_attempts", "Delivery attempts by target kind.", ["kind"], registry=REGISTRY)
_LATENCY = Histogram("escalation_delivery_latency_seconds", "Output time to accepted by the target.", ["kind"],
                     buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600), registry=REGISTRY)
_QUEUE = Gauge("escalation_delivery_queue", "Deliveries waiting or in progress, by target.", ["target"],
               registry=REGISTRY)


def finished(kind: str, outcome: str) -> None:
    _DELIVERIES.labels(kind=kind, outcome=outcome).inc()


def attempt(kind: str, status: int | None) -> None:
    _ATTEMPTS.labels(kind=kind).inc()
    _STATUS.labels(kind=kind, status=str(status) if status is not None else "error").inc()


def accepted(kind: str, seconds: float) -> None:
    _LATENCY.labels(kind=kind).observe(max(0.0, seconds))


def queued(target: str, delta: int) -> None:
    _QUEUE.labels(target=target).inc(delta)
