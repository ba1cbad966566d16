"""E-mail (DESIGN.md §12): one message per output and address.

Invariants: the ``Message-ID`` is derived from the output id and the target name, so a message
re-sent after a crash carries the same id and mail tools can drop the copy; the subject is one
line (no header injection from a summary).
"""

from __future__ import annotations

from email.message import EmailMessage

import orjson

from escalation.delivery.actions import (
    agreement_of,
    clip,
    dedup_key_of,
    severity_of,
    summary_of,
)
from escalation.delivery.requests import MailRequest


def _one_line(text: str) -> str:
    return " ".join(text.split())


def email_message(output: dict, target_name: str, address: str, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = address
    msg["Subject"] = clip(_one_line(f"[{severity_of(output)}] {summary_of(output)}"), 200)
    msg["Message-ID"] = f"<{output['id']}.{_one_line(target_name).replace(' ', '_')}@escalation>"
    msg["X-Escalation-Type"] = output["type"]
    msg["X-Escalation-Dedup-Key"] = _one_line(dedup_key_of(output))
    explain = orjson.dumps(output["data"].get("explain") or {}, option=orjson.OPT_INDENT_2).decode()
    msg.set_content(f"{summary_of(output)}\n\nagreement: {agreement_of(output)}\ntype: {output['type']}\n"
                    f"time: {output['time']}\noutput id: {output['id']}\n\nwhy:\n{explain}\n")
    return msg


def mail_requests(output: dict, target_name: str, address: str, sender: str) -> list[MailRequest]:
    return [MailRequest(email_message(output, target_name, address, sender))]
