"""Shared test helpers: the reference agreement, variants of it, and compact event builders."""

from __future__ import annotations

import copy
from datetime import datetime
from itertools import count

import orjson
from ruamel.yaml import YAML

from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry
from escalation.paths import EXAMPLE_AGREEMENT
from escalation.replay import replay_to_lists

_REFERENCE = YAML(typ="safe").load(EXAMPLE_AGREEMENT.read_text())


def agreement_dict(**changes) -> dict:
    data = copy.deepcopy(_REFERENCE)
    data.update(changes)
    return data


def registry(*dicts: dict) -> Registry:
    return Registry([Agreement.model_validate(d) for d in (dicts or (agreement_dict(),))])


class Events:
    """Builds JSONL lines for one scenario; ids are sequential so tests stay short."""

    def __init__(self):
        self._ids = count(1)
        self.lines: list[str] = []

    def add(self, type_: str, time: str, ticket: str = "INC-1", **fields) -> "Events":
        event = {"id": f"e{next(self._ids)}", "type": f"ticket.{type_}", "time": time, "ticket": ticket, **fields}
        self.lines.append(orjson.dumps(event).decode())
        return self

    def notification_ack(self, time: str, clock: str, by: str = "bob", ticket: str = "INC-1",
                         source: str = "pagerduty", **fields) -> "Events":
        """A ``notification.acknowledged`` (DESIGN.md §11) for the ticket's ``clock`` alert."""
        event = {"id": f"e{next(self._ids)}", "type": "notification.acknowledged", "time": time, "ticket": ticket,
                 "dedup_key": f"acme-erp/{ticket}/{clock}", "by": by, "source": source, **fields}
        self.lines.append(orjson.dumps(event).decode())
        return self

    def open(self, time: str, priority: str = "P1", ticket: str = "INC-1", **fields) -> "Events":
        fields.setdefault("agreement", "acme-erp")
        fields.setdefault("service", "erp-prod")
        return self.add("opened", time, ticket, priority=priority, **fields)


def run(events: Events | list[str], until: str | None = None, reg: Registry | None = None):
    """(outputs as published: CloudEvent dicts, rejects, stats) of a replay of ``events``."""
    lines = events.lines if isinstance(events, Events) else events
    end = datetime.fromisoformat(until) if until else None
    outputs, rejects, stats = replay_to_lists(reg or registry(), lines, end)
    return [o.cloudevent() for o in outputs], rejects, stats


def brief(outputs: list[dict]) -> list[tuple]:
    """(time, type, clock-or-level detail) per output: what the tables compare."""
    rows = []
    for o in outputs:
        d = o["data"]
        detail = {
            "sla.warning": lambda: (d["clock"], d["fraction"]),
            "sla.breached": lambda: (d["clock"],),
            "sla.met": lambda: (d["clock"], d["elapsed"]),
            "escalation.triggered": lambda: (d["level"],),
            "escalation.repeated": lambda: (d["level"], d["repeat"]),
            "escalation.acknowledged": lambda: (d["clock"], d["by"], d["level"]),
            "escalation.resolved": lambda: (d["clock"], d["reason"], d["overrun"]),
            "penalty.assessed": lambda: (d["amount"], d["period"], d["capped"]),
        }.get(o["type"], lambda: ())()
        rows.append((o["time"], o["type"], *detail))
    return rows


def generated_workload(directory, tickets: int = 400, seed: int = 7):
    """A synthetic ticket workload (``bench/generate_tickets.py``) whose money binds: every priority
    owes a per-breach resolution penalty and the monthly cap is 2 % of the fee, so penalties of one
    period compete for the budget (the order they are booked in decides which is capped).
    Returns (events file, agreements directory)."""
    import subprocess
    import sys
    from pathlib import Path

    from escalation.paths import ROOT

    out = Path(directory) / "gen" / "tickets.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate_tickets.py"), "--tickets", str(tickets),
                    "--seed", str(seed), "--out", str(out)], check=True, cwd=ROOT, capture_output=True)
    for path in (out.parent / "agreements").glob("*.yaml"):
        text = path.read_text().replace("priority: [P1]", "priority: [P1, P2, P3, P4]").replace("percent: 30", "percent: 2")
        assert "priority: [P1, P2, P3, P4]" in text and "percent: 2" in text, path
        path.write_text(text)
    return out, out.parent / "agreements"


def _start(line: bytes) -> float:
    """Sort key of an event line: a metric slice's start or an event's time (bad lines first)."""
    try:
        d = orjson.loads(line)
        t = datetime.fromisoformat(d.get("start") or d["time"])
        return t.timestamp() if t.tzinfo else 0.0
    except Exception:  # noqa: BLE001 - malformed example lines sort first
        return 0.0


def example_tickets_and_metrics() -> list[bytes]:
    """The bundled ticket and metric examples merged into one time-ordered list of lines."""
    from escalation.paths import EXAMPLE_EVENTS

    files = (EXAMPLE_EVENTS, EXAMPLE_EVENTS.with_name("acme-erp-metrics.jsonl"))
    return sorted((ln for f in files for ln in f.read_bytes().splitlines() if ln.strip()), key=_start)
