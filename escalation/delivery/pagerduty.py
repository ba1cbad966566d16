"""PagerDuty Events API v2 (DESIGN.md §12): one ``enqueue`` request per output.

Invariants: ``dedup_key`` is the output's (its SHA-256 hex when longer than 255 characters, the
API's limit), so trigger, acknowledge and resolve of one incident clock address one PagerDuty
alert; a trigger carries the payload (summary at most 1024 characters, the API's limit),
acknowledge and resolve carry only the key (the API ignores a payload on them).
"""

from __future__ import annotations

import orjson

from escalation.delivery.actions import (
    action_of,
    agreement_of,
    bounded_key,
    clip,
    component_of,
    dedup_key_of,
    severity_of,
    summary_of,
)
from escalation.delivery.requests import HttpRequest

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
_ACTION = {"trigger": "trigger", "acknowledge": "acknowledge", "resolve": "resolve"}


def pagerduty_body(output: dict, routing_key: str) -> dict | None:
    """The Events API v2 body for ``output``, or None when the output type opens no alert."""
    action = action_of(output)
    if action is None:
        return None
    body = {"routing_key": routing_key, "event_action": _ACTION[action],
            "dedup_key": bounded_key(dedup_key_of(output), 255)}
    if action == "trigger":
        body["payload"] = _payload(output)
        body["client"] = "escalation"
    return body


def _payload(output: dict) -> dict:
    agreement, service = agreement_of(output), component_of(output)
    payload = {
        "summary": clip(summary_of(output), 1024),
        "source": f"{agreement}/{service}" if service else agreement,
        "severity": severity_of(output),
        "timestamp": output["time"],
        "group": agreement,
        "class": output["type"],
        "custom_details": output["data"],   # includes the explain block: why it fired
    }
    if service:
        payload["component"] = service
    return payload


def pagerduty_requests(output: dict, routing_key: str, url: str = DEFAULT_URL) -> list[HttpRequest]:
    body = pagerduty_body(output, routing_key)
    if body is None:
        return []
    # The routing key travels in the body, which a request's repr never shows.
    return [HttpRequest("POST", url, orjson.dumps(body), (("Content-Type", "application/json"),))]
