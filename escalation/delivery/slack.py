"""Slack incoming webhooks (DESIGN.md §12): one message per output.

Invariants: every output type is posted (chat is a log, not an alert store); the webhook URL is
the credential, so the request is marked ``secret_url`` and never printed.
"""

from __future__ import annotations

import orjson

from escalation.delivery.actions import (
    action_of,
    agreement_of,
    clip,
    severity_of,
    summary_of,
)
from escalation.delivery.requests import HttpRequest

_MARK = {"trigger": {"critical": ":rotating_light:", "error": ":red_circle:", "warning": ":warning:",
                     "info": ":information_source:"},
         "acknowledge": ":eyes:", "resolve": ":white_check_mark:"}


def slack_text(output: dict) -> str:
    action = action_of(output)
    mark = _MARK["trigger"][severity_of(output)] if action in (None, "trigger") else _MARK[action]
    reason = (output["data"].get("explain") or {}).get("reason")
    tail = f"\n_{reason}_" if isinstance(reason, str) and reason else ""
    # Slack caps a message at 40,000 characters; keep it to one readable screen.
    return clip(f"{mark} *{output['type']}* {summary_of(output)} ({agreement_of(output)}, {output['time']}){tail}", 3000)


def slack_requests(output: dict, webhook_url: str) -> list[HttpRequest]:
    body = orjson.dumps({"text": slack_text(output)})
    return [HttpRequest("POST", webhook_url, body, (("Content-Type", "application/json"),), secret_url=True)]
