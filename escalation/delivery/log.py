"""The delivery log: the compacted ``deliveries`` topic (DESIGN.md §12).

Key ``<output id>/<target name>``; value a JSON record ``delivery.succeeded`` or
``delivery.failed`` with the attempts, the last status, the latency (output time → accepted, in
seconds) and, for Alertmanager targets, the open alerts of the output's dedup_key afterwards.

Invariants: a key present in the log (either type) is final: it is never sent again; a record is
written only after the delivery's outcome is known, and input offsets are committed only after
their records are written (:mod:`escalation.delivery.worker`). The open Alertmanager alerts are
rebuilt from the log by output time (then trigger < acknowledge < resolve), because one dedup_key's
records live on different partitions of the log (their keys differ), so log order is not theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from escalation.delivery.actions import action_of, dedup_key_of

_RANK = {"trigger": 0, "acknowledge": 1, "resolve": 2, None: 3}


def log_key(output_id: str, target_name: str) -> str:
    return f"{output_id}/{target_name}"


@dataclass(frozen=True)
class Result:
    """The final result of delivering one output to one target."""

    ok: bool
    attempts: int
    status: int | None
    error: str | None
    accepted_at: datetime
    alerts: tuple[dict, ...] | None = None


def latency(output: dict, at: datetime) -> float:
    return (at - datetime.fromisoformat(output["time"])).total_seconds()


def delivery_record(output: dict, agreement: str, name: str, kind: str, result: Result) -> dict:
    record = {
        "type": "delivery.succeeded" if result.ok else "delivery.failed",
        "key": log_key(output["id"], name), "output": output["id"], "output_type": output["type"],
        "output_time": output["time"], "action": action_of(output), "dedup_key": dedup_key_of(output),
        "agreement": agreement, "target": name, "kind": kind, "attempts": result.attempts,
        "status": result.status, "latency": round(latency(output, result.accepted_at), 6),
        "error": result.error, "time": result.accepted_at.astimezone(timezone.utc).isoformat(),
    }
    if result.alerts is not None:
        record["alerts"] = list(result.alerts)
    return record


def encode(record: dict) -> tuple[bytes, bytes]:
    return record["key"].encode(), orjson.dumps(record)


class DeliveryLog:
    """What the log says, in memory: final keys and the open Alertmanager alerts."""

    def __init__(self) -> None:
        self.final: dict[str, str] = {}                       # key -> delivery.succeeded | failed
        self._alerts: dict[tuple, tuple[tuple, tuple[dict, ...]]] = {}  # (agreement, target, dk) -> (order, alerts)

    def __contains__(self, key: str) -> bool:
        return key in self.final

    def apply(self, record: dict) -> None:
        """Take one record (from the topic at start, or just written); idempotent."""
        self.final[record["key"]] = record["type"]
        if record["type"] != "delivery.succeeded" or "alerts" not in record:
            return
        slot = (record["agreement"], record["target"], record["dedup_key"])
        order = (datetime.fromisoformat(record["output_time"]), _RANK.get(record.get("action"), 3))
        if slot not in self._alerts or self._alerts[slot][0] <= order:
            self._alerts[slot] = (order, tuple(record["alerts"]))

    def open_alerts(self, agreement: str, target: str, dedup_key: str) -> tuple[dict, ...]:
        entry = self._alerts.get((agreement, target, dedup_key))
        return entry[1] if entry else ()

    def firing(self) -> dict[tuple[str, str], list[dict]]:
        """Every open alert by (agreement, target): what the resender re-posts."""
        out: dict[tuple[str, str], list[dict]] = {}
        for (agreement, target, _dk), (_order, alerts) in self._alerts.items():
            if alerts:
                out.setdefault((agreement, target), []).extend(alerts)
        return out
