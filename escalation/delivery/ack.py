"""Acknowledgements from on-call tools as ``notification.acknowledged`` input events (DESIGN.md §11).

Pure: signature checks and payload mapping; :mod:`escalation.delivery.receive` serves them.

Invariants: an event's ``id`` is deterministic, the vendor's own event id where there is one
(PagerDuty ``event.id``; Opsgenie alert id, action and update time), else a hash of source,
dedup_key and time, so a webhook retried by the tool is ignored by the engine (a repeated id);
the ticket is derived from the dedup_key ``<agreement>/<ticket>/<clock>`` (a ticket id may itself
contain ``/``); keys of SLO alerts (``.../burn-rate/...``) and keys that are not of that form are
refused (:class:`AckRefused`, 422), as are bad signatures (401).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

ACK_TYPE = "notification.acknowledged"


class AckRefused(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Ignored(Exception):
    """A well-formed callback that is no acknowledgement (e.g. ``incident.resolved``): 200, nothing sent."""


def ticket_of(dedup_key: str) -> str:
    parts = dedup_key.split("/")
    if len(parts) < 3 or "burn-rate" in parts[1:-1] or not all(parts):
        raise AckRefused(422, f"dedup_key {dedup_key!r} is not <agreement>/<ticket>/<clock>")
    return "/".join(parts[1:-1])


def event_id(*parts: str) -> str:
    return "ack-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def ack_event(dedup_key: str, by: str, time: datetime, source: str, vendor_id: str | None = None) -> dict:
    instant = time.astimezone(timezone.utc).isoformat()
    return {"id": event_id(source, vendor_id) if vendor_id else event_id(source, dedup_key, instant),
            "type": ACK_TYPE, "time": instant, "ticket": ticket_of(dedup_key), "dedup_key": dedup_key,
            "by": by, "source": source}


def verify_pagerduty(body: bytes, header: str | None, secret: str) -> None:
    """``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`` (several while a secret rotates)."""
    want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    offered = [s.strip()[3:] for s in (header or "").split(",") if s.strip().startswith("v1=")]
    if not any(hmac.compare_digest(want, s) for s in offered):
        raise AckRefused(401, "bad or missing X-PagerDuty-Signature")


def _instant(text: str | None, default: datetime) -> datetime:
    if not text:
        return default
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AckRefused(400, f"bad time {text!r}") from None
    if instant.tzinfo is None:
        raise AckRefused(400, f"time {text!r} has no offset")
    return instant


def from_pagerduty(payload: dict, now: datetime) -> dict:
    """A v3 webhook: ``incident.acknowledged`` -> the event; other event types are ignored."""
    event = payload.get("event") if isinstance(payload, dict) else None
    if not isinstance(event, dict):
        raise AckRefused(400, "not a PagerDuty v3 webhook (no event)")
    if event.get("event_type") != "incident.acknowledged":
        raise Ignored(event.get("event_type"))
    data = event.get("data") or {}
    key = data.get("incident_key")
    if not isinstance(key, str) or not key:
        raise AckRefused(422, "incident has no incident_key (not opened by escalation)")
    agent = event.get("agent") or {}
    by = agent.get("summary") or agent.get("id") or "pagerduty"
    return ack_event(key, str(by), _instant(event.get("occurred_at"), now), "pagerduty", str(event.get("id") or "") or None)


def _epoch(value, now: datetime) -> datetime:
    """Opsgenie times are epoch numbers in s, ms or ns depending on the field."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return now
    scale = 1e9 if value > 1e15 else 1e3 if value > 1e11 else 1
    return datetime.fromtimestamp(value / scale, timezone.utc)


def from_opsgenie(payload: dict, now: datetime) -> dict:
    """An Opsgenie webhook callback: ``action: Acknowledge`` -> the event; others ignored."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alert"), dict):
        raise AckRefused(400, "not an Opsgenie callback (no alert)")
    if payload.get("action") != "Acknowledge":
        raise Ignored(payload.get("action"))
    alert = payload["alert"]
    key = alert.get("alias")
    if not isinstance(key, str) or not key:
        raise AckRefused(422, "alert has no alias (not opened by escalation)")
    by = alert.get("username") or alert.get("userId") or "opsgenie"
    vendor = f"{alert.get('alertId')}/{payload['action']}/{alert.get('updatedAt')}"
    return ack_event(key, str(by), _epoch(alert.get("updatedAt"), now), "opsgenie", vendor)


def from_plain(payload: dict, now: datetime) -> dict:
    """``POST /ack {"dedup_key", "by"[, "time"]}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("dedup_key"), str):
        raise AckRefused(400, 'want {"dedup_key": "...", "by": "..."}')
    by = payload.get("by")
    if not isinstance(by, str) or not by:
        raise AckRefused(400, '"by" must be a non-empty string')
    return ack_event(payload["dedup_key"], by, _instant(payload.get("time"), now), "api")
