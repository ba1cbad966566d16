"""Who may post ticket-tool webhooks: each tool's own check (DESIGN.md §14), secrets only by
environment variable name.

- Jira: ``$ESCALATION_JIRA_WEBHOOK_SECRET``. When the request carries ``X-Hub-Signature:
  sha256=<hex>`` (Jira Cloud admin webhooks with a secret: HMAC-SHA256 of the raw body), that
  signature must match; otherwise the secret itself must come as ``?token=`` in the URL or in
  ``X-Escalation-Token`` (Jira Data Center and automation rules, which do not sign).
- Zendesk: ``$ESCALATION_ZENDESK_WEBHOOK_SECRET`` (the webhook's signing secret):
  ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, ``X-Zendesk-Webhook-Signature-Timestamp`` + body)).
- ServiceNow: ``Authorization: Bearer $ESCALATION_SERVICENOW_WEBHOOK_TOKEN``, or Basic auth with
  ``$ESCALATION_SERVICENOW_WEBHOOK_USER`` / ``$ESCALATION_SERVICENOW_WEBHOOK_PASSWORD``.

Invariants: checked on the raw body before it is parsed; a route whose secret is not configured
refuses everything (503) rather than accept unauthenticated input; every comparison is constant
time; no error message contains a secret or what was offered in its place.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Mapping

from escalation.delivery.ack import AckRefused

JIRA_SECRET = "ESCALATION_JIRA_WEBHOOK_SECRET"
ZENDESK_SECRET = "ESCALATION_ZENDESK_WEBHOOK_SECRET"
SERVICENOW_TOKEN = "ESCALATION_SERVICENOW_WEBHOOK_TOKEN"
SERVICENOW_USER = "ESCALATION_SERVICENOW_WEBHOOK_USER"
SERVICENOW_PASSWORD = "ESCALATION_SERVICENOW_WEBHOOK_PASSWORD"
#: every variable that holds a secret of these routes (``remember``ed by ``receive`` for redaction)
SECRET_VARS = (JIRA_SECRET, ZENDESK_SECRET, SERVICENOW_TOKEN, SERVICENOW_PASSWORD)


def _same(offered: str | bytes | None, secret: str | bytes) -> bool:
    if offered is None:
        return False
    a = offered.encode() if isinstance(offered, str) else offered
    b = secret.encode() if isinstance(secret, str) else secret
    return hmac.compare_digest(a, b)


def _hmac(secret: str, data: bytes) -> bytes:
    return hmac.new(secret.encode(), data, hashlib.sha256).digest()


def check_jira(body: bytes, headers: Mapping[str, str], query: Mapping[str, str], env: Mapping[str, str]) -> None:
    secret = env.get(JIRA_SECRET)
    if not secret:
        raise AckRefused(503, f"{JIRA_SECRET} is not set: Jira webhooks are refused")
    signature = headers.get("X-Hub-Signature")
    if signature is not None:
        # the WebSub form `sha256=<hex>`; a signed request must verify, a token does not replace it
        if not _same(signature.strip().lower(), "sha256=" + _hmac(secret, body).hex()):
            raise AckRefused(401, "bad X-Hub-Signature")
        return
    if not _same(headers.get("X-Escalation-Token") or query.get("token"), secret):
        raise AckRefused(401, "missing X-Hub-Signature and bad or missing token")


def check_zendesk(body: bytes, headers: Mapping[str, str], query: Mapping[str, str], env: Mapping[str, str]) -> None:
    secret = env.get(ZENDESK_SECRET)
    if not secret:
        raise AckRefused(503, f"{ZENDESK_SECRET} is not set: Zendesk webhooks are refused")
    stamp = headers.get("X-Zendesk-Webhook-Signature-Timestamp")
    try:
        offered = base64.b64decode(headers.get("X-Zendesk-Webhook-Signature") or "", validate=True)
    except (binascii.Error, ValueError):
        offered = None
    if stamp is None or not _same(offered, _hmac(secret, stamp.encode() + body)):
        raise AckRefused(401, "bad or missing X-Zendesk-Webhook-Signature")


def check_servicenow(body: bytes, headers: Mapping[str, str], query: Mapping[str, str],
                     env: Mapping[str, str]) -> None:
    token, user, password = env.get(SERVICENOW_TOKEN), env.get(SERVICENOW_USER), env.get(SERVICENOW_PASSWORD)
    if not token and not (user and password):
        raise AckRefused(503, f"neither {SERVICENOW_TOKEN} nor {SERVICENOW_USER}/{SERVICENOW_PASSWORD} is set: "
                              "ServiceNow webhooks are refused")
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and _same(credentials.strip(), token):
        return
    if user and password and scheme.lower() == "basic" and _same(_basic(credentials), f"{user}:{password}"):
        return
    raise AckRefused(401, "bad or missing Authorization")


def _basic(credentials: str) -> bytes | None:
    try:
        return base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


CHECKS = {"jira": check_jira, "zendesk": check_zendesk, "servicenow": check_servicenow}
