"""Opsgenie Alert API (DESIGN.md §12): create with ``alias`` = dedup_key, acknowledge and close
by alias.

Invariants: the alias is the output's ``dedup_key`` (its SHA-256 hex when longer than the API's
512 characters), so every output of one incident clock addresses one Opsgenie alert; ``message``
is at most 130 characters (the API's limit), priority maps critical→P1, error→P2, warning→P3,
info→P5; the API key goes in the ``Authorization: GenieKey`` header only. Every other field is
cut to the API's documented limit (:data:`LIMITS`), because Opsgenie refuses an over-long field
with 422, which is not retried: the alert would never open.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from escalation.delivery.actions import (
    action_of,
    agreement_of,
    bounded_key,
    clip,
    dedup_key_of,
    severity_of,
    summary_of,
)
from escalation.delivery.requests import HttpRequest

DEFAULT_URL = "https://api.opsgenie.com"
PRIORITY = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}
# Alert API field limits (characters): create, acknowledge and close refuse longer values.
LIMITS = {"message": 130, "alias": 512, "description": 15000, "entity": 512, "source": 100, "user": 100,
          "note": 25000, "tag": 50}


def _source(output: dict) -> str:
    return clip(str(output.get("source") or "escalation"), LIMITS["source"])


def _details(output: dict) -> dict[str, str]:
    """Opsgenie details are a flat string map: the scalar data fields plus the reason."""
    data = output["data"]
    details = {k: str(v) for k, v in data.items() if isinstance(v, (str, int, float)) and k != "summary"}
    details.update(output_id=output["id"], type=output["type"], time=output["time"])
    reason = (data.get("explain") or {}).get("reason")
    if reason:
        details["reason"] = str(reason)
    return details


def create_body(output: dict, responders: list[dict]) -> dict:
    data = output["data"]
    body = {
        "message": clip(summary_of(output), LIMITS["message"]),
        "alias": bounded_key(dedup_key_of(output), LIMITS["alias"]),
        "description": clip(summary_of(output) + "\n\n" + orjson.dumps(data.get("explain") or {}).decode(),
                            LIMITS["description"]),
        "priority": PRIORITY[severity_of(output)],
        "source": _source(output),
        "entity": clip(str(data.get("ticket") or data.get("service") or output.get("subject", "")), LIMITS["entity"]),
        "tags": [clip(tag, LIMITS["tag"]) for tag in (output["type"], agreement_of(output))],
        "details": _details(output),
    }
    if responders:
        body["responders"] = responders
    return body


def opsgenie_requests(output: dict, api_key: str, responders: list[dict], base: str = DEFAULT_URL) -> list[HttpRequest]:
    action = action_of(output)
    if action is None:
        return []
    headers = (("Content-Type", "application/json"), ("Authorization", f"GenieKey {api_key}"))
    secret = frozenset({"Authorization"})
    base = base.rstrip("/")
    if action == "trigger":
        return [HttpRequest("POST", f"{base}/v2/alerts", orjson.dumps(create_body(output, responders)), headers, secret)]
    alias = quote(bounded_key(dedup_key_of(output), LIMITS["alias"]), safe="")
    verb = "acknowledge" if action == "acknowledge" else "close"
    note = summary_of(output)
    body: dict = {"source": _source(output), "note": clip(note, LIMITS["note"])}
    if action == "acknowledge" and output["data"].get("by"):
        body["user"] = clip(str(output["data"]["by"]), LIMITS["user"])
    return [HttpRequest("POST", f"{base}/v2/alerts/{alias}/{verb}?identifierType=alias", orjson.dumps(body), headers, secret)]
