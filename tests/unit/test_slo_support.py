"""Helpers for the SLO, credit and burn-rate tests (no tests here): metric lines and a runner."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import orjson

from escalation.core.contract.registry import Registry
from escalation.core.engine import Engine
from escalation.replay import replay
from tests.helpers import agreement_dict, registry

Z = "+00:00"


def z(text: str) -> datetime:
    """``"2026-03-02T09:00"`` -> that instant in UTC."""
    return datetime.fromisoformat(text + Z)


def count_of(value: float) -> int | float:
    """A count as the contract writes it: a whole number is a JSON integer (DESIGN.md §10: counts
    are integers; a fractional one stays a float, so a test of it sees the rejection)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class Metrics:
    """JSONL lines of metric (and ticket) events for one scenario; ids are sequential."""

    def __init__(self, service: str = "erp-prod", sli: str = "availability"):
        self.service, self.sli = service, sli
        self._ids = count(1)
        self.lines: list[str] = []

    def slice(self, start: str | datetime, end: str | datetime, good: float, total: float, id_: str | None = None,
              **fields) -> "Metrics":
        start, end = (z(t) if isinstance(t, str) else t for t in (start, end))
        event = {"id": id_ or f"m{next(self._ids)}", "type": "metric.observed", "service": self.service,
                 "sli": self.sli, "start": start.isoformat(), "end": end.isoformat(),
                 "good": count_of(good), "total": count_of(total)}
        self.lines.append(orjson.dumps({**event, **fields}).decode())
        return self

    def series(self, start: str, end: str, step: timedelta, good: float, total: float) -> "Metrics":
        t, stop = z(start), z(end)
        while t < stop:
            self.slice(t, t + step, good, total)
            t += step
        return self

    def ticket(self, type_: str, time: str, ticket: str, **fields) -> "Metrics":
        event = {"id": f"t{next(self._ids)}", "type": f"ticket.{type_}", "time": time + Z, "ticket": ticket, **fields}
        self.lines.append(orjson.dumps(event).decode())
        return self


def run(lines, until: str | None = None, reg: Registry | None = None, grace: timedelta = timedelta(0),
        engine: Engine | None = None):
    """Replay ``lines``: (outputs, rejects, engine)."""
    engine = engine or Engine(reg or registry(), metric_grace=grace)
    outputs, rejects = [], []
    lines = lines.lines if isinstance(lines, Metrics) else lines
    replay(engine.registry, lines, lambda o: outputs.append(o.cloudevent()), rejects.append, z(until) if until else None, engine)
    return outputs, rejects, engine


def of(outputs: list[dict], type_: str) -> list[dict]:
    return [o for o in outputs if o["type"] == type_]


def variant(**changes) -> Registry:
    """The reference agreement with top-level fields replaced."""
    return registry(agreement_dict(**changes))


def slo(**changes) -> dict:
    base = {"id": "erp-availability", "service": "erp-prod", "sli": "availability", "objective": 99.9,
            "window": "calendar_month", "counted_time": "always", "burn_rate_alerts": "google-default"}
    return {**base, **changes}
