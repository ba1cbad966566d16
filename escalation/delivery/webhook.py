"""Generic webhooks (DESIGN.md §12): the CloudEvents HTTP binding in structured mode.

Invariants: the body is the output itself (already a CloudEvents 1.0 object) serialised once;
``X-Escalation-Signature: sha256=<hex>`` is the HMAC-SHA256 of exactly those bytes under the
target's secret, so a receiver verifies what it got, byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

from escalation.delivery.requests import HttpRequest

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SIGNATURE_HEADER = "X-Escalation-Signature"


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_requests(output: dict, url: str, secret: str | None) -> list[HttpRequest]:
    body = orjson.dumps(output)
    headers = [("Content-Type", CONTENT_TYPE)]
    if secret is not None:
        headers.append((SIGNATURE_HEADER, signature(body, secret)))
    return [HttpRequest("POST", url, body, tuple(headers))]
