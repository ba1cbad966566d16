"""Alertmanager API v2 (DESIGN.md §12): ``POST /api/v2/alerts``.

An Alertmanager alert is identified by its label set and stays firing only while it is re-posted
(``resolve_timeout``), so delivery keeps the *open alerts* of each (target, dedup_key):

- a trigger output posts its alert (labels ``alertname`` = the type in CamelCase, ``agreement``,
  ``ticket`` or ``service``, ``clock`` (or ``slo``), ``severity``, ``dedup_key``; annotations
  ``summary`` and ``explain``; ``startsAt`` = the output's time) and adds it to the open set
  (replacing one with the same labels);
- ``escalation.acknowledged`` re-posts the open alerts with an ``acknowledged_by`` annotation
  (Alertmanager has no acknowledgement; the alert stays firing until resolved);
- ``escalation.resolved`` (or a cleared burn-rate rule) posts every open alert with the same
  labels and ``endsAt`` = its time, and empties the open set;
- the open alerts are re-posted every ``resend`` by the deliverer (:func:`resend_request`).

Invariants: pure functions; an open set is a tuple of alert dicts, never mutated.
"""

from __future__ import annotations

import orjson

from escalation.delivery.actions import (
    action_of,
    agreement_of,
    camel,
    clip,
    dedup_key_of,
    severity_of,
    summary_of,
)
from escalation.delivery.requests import HttpRequest

PATH = "/api/v2/alerts"


def labels_of(output: dict) -> dict[str, str]:
    data = output["data"]
    labels = {"alertname": camel(output["type"]), "agreement": agreement_of(output)}
    if data.get("ticket"):
        labels["ticket"] = str(data["ticket"])
    elif data.get("service"):
        labels["service"] = str(data["service"])
    if data.get("clock"):
        labels["clock"] = str(data["clock"])
    elif data.get("slo"):
        labels["slo"] = str(data["slo"])
    labels["severity"] = severity_of(output)
    labels["dedup_key"] = dedup_key_of(output)
    return labels


def alert_of(output: dict) -> dict:
    explain = orjson.dumps(output["data"].get("explain") or {}).decode()
    return {"labels": labels_of(output),
            "annotations": {"summary": clip(summary_of(output), 1024), "explain": explain},
            "startsAt": output["time"]}


def _post(url: str, alerts: list[dict]) -> HttpRequest:
    return HttpRequest("POST", url.rstrip("/") + PATH, orjson.dumps(alerts), (("Content-Type", "application/json"),))


def alertmanager_plan(output: dict, url: str, open_alerts: tuple[dict, ...]) -> tuple[list[HttpRequest], tuple[dict, ...]]:
    """The requests for ``output`` and the open alerts of its dedup_key afterwards."""
    action = action_of(output)
    if action is None:
        return [], open_alerts
    if action == "trigger":
        alert = alert_of(output)
        kept = tuple(a for a in open_alerts if a["labels"] != alert["labels"])
        return [_post(url, [alert])], (*kept, alert)
    if not open_alerts:      # nothing of this key is firing here: nothing to acknowledge or end
        return [], ()
    if action == "acknowledge":
        by = str(output["data"].get("by") or "unknown")
        acked = tuple({**a, "annotations": {**a["annotations"], "acknowledged_by": by}} for a in open_alerts)
        return [_post(url, list(acked))], acked
    ended = [{**a, "endsAt": output["time"]} for a in open_alerts]
    return [_post(url, ended)], ()


def resend_request(url: str, open_alerts: list[dict]) -> HttpRequest:
    """Re-post open alerts so Alertmanager keeps them firing (its resolve_timeout)."""
    return _post(url, open_alerts)
