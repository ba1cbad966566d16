"""Ticket tools' webhooks on the real broker (DESIGN.md §14 "Ticket tools").

`escalation receive` runs as a subprocess on a free 127.0.0.1 port with no broker flag: it finds
the broker through `.escalation/broker` in its working directory, as `send` and `tail` do. The
vendor-format samples of tests/data/webhooks are posted as each tool would (Jira signed with
X-Hub-Signature or with the token in the URL, Zendesk signed, ServiceNow with bearer and basic
auth), and the tickets topic is read back:

(a) every webhook's events arrive, keyed by their ticket, with the ids the bundled mappings give;
(b) a webhook retried by the tool produces records with the same ids (the engine ignores repeats);
(c) a bad signature is 401 and an unmappable body 422, and neither produces anything;
(d) no secret appears in the receiver's log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from escalation.core.events import decode_event
from escalation.delivery.hook_events import ticket_events
from escalation.delivery.hook_mapping import load_hook_mappings
from escalation.edges.brokerfile import write_broker_file
from escalation.live.readback import read_all
from tests.integration.servers import stop_group

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "webhooks"
SECRETS = {"ESCALATION_JIRA_WEBHOOK_SECRET": "jira-secret-1", "ESCALATION_ZENDESK_WEBHOOK_SECRET": "zd-secret-1",
           "ESCALATION_SERVICENOW_WEBHOOK_TOKEN": "sn-token-1", "ESCALATION_SERVICENOW_WEBHOOK_USER": "sn",
           "ESCALATION_SERVICENOW_WEBHOOK_PASSWORD": "sn-password-1"}
# no ESCALATION_* from the outside: the broker must come from .escalation/broker
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("ESCALATION_")}, "PYTHONPATH": str(ROOT), **SECRETS}


def body_of(name: str) -> bytes:
    return (DATA / name).read_bytes()


def jira_signed(body: bytes, secret: str = SECRETS["ESCALATION_JIRA_WEBHOOK_SECRET"]) -> dict:
    return {"X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def zendesk_signed(body: bytes, secret: str = SECRETS["ESCALATION_ZENDESK_WEBHOOK_SECRET"]) -> dict:
    stamp = "2026-03-02T08:00:05Z"
    sig = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {"X-Zendesk-Webhook-Signature": base64.b64encode(sig).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp}


BEARER = {"Authorization": f"Bearer {SECRETS['ESCALATION_SERVICENOW_WEBHOOK_TOKEN']}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(b"sn:sn-password-1").decode()}


def post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict]]:
    """Every record of ``topic`` up to its current end, values decoded."""
    return [(key, json.loads(value)) for key, value in await read_all(bootstrap, topic)]


@pytest.fixture
def receiver(broker, namespace, tmp_path):
    write_broker_file(broker.bootstrap, tmp_path)
    log = tmp_path / "receive.stderr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "escalation.cli", "receive", "--topic-prefix", namespace.prefix,
         "--app-id", namespace.app_id, "--port", "0", "--log-format", "text"],
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"), cwd=tmp_path, env=ENV, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(rb"listening on http://127.0.0.1:(\d+)", log.read_bytes())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield int(found.group(1)), log
    finally:
        stop_group(proc, 15)


def expected_ids(name: str) -> list[str]:
    return [e["id"] for e in ticket_events(json.loads(body_of(name)), MAPPINGS[name.split("-")[0]])]


MAPPINGS = load_hook_mappings({})
GOOD = [  # (route, sample, headers)
    ("/hooks/jira", "jira-issue-created.json", jira_signed(body_of("jira-issue-created.json"))),
    ("/hooks/jira?token=jira-secret-1", "jira-issue-updated-in-progress.json", {}),
    ("/hooks/zendesk", "zendesk-created.json", zendesk_signed(body_of("zendesk-created.json"))),
    ("/hooks/servicenow", "servicenow-insert.json", BEARER),
    ("/hooks/servicenow", "servicenow-update-in-progress.json", BASIC),
]


def test_webhooks_become_ticket_events_on_the_tickets_topic(broker, namespace, receiver):
    port, log = receiver
    # (c) refused first: had they produced anything, it would sit before the good records
    assert post(port, "/hooks/zendesk", body_of("zendesk-priority.json"),
                zendesk_signed(body_of("zendesk-priority.json"), "wrong"))[0] == 401
    assert post(port, "/hooks/jira", body_of("jira-issue-updated-priority.json"),
                jira_signed(body_of("jira-issue-updated-resolved.json")))[0] == 401
    unmappable = body_of("servicenow-update-resolved.json").replace(b'"state": "6"', b'"state": "99"')
    status, answer = post(port, "/hooks/servicenow", unmappable, BEARER)
    assert status == 422 and "status '99'" in answer["error"]

    sent: list[str] = []
    for path, name, headers in GOOD:
        status, answer = post(port, path, body_of(name), headers)
        assert status == 202, answer
        assert answer["ids"] == expected_ids(name)
        sent += answer["ids"]
    # (b) Jira retries the in-progress webhook (say our 202 was lost): the same ids again
    status, again = post(port, "/hooks/jira?token=jira-secret-1", body_of("jira-issue-updated-in-progress.json"), {})
    assert status == 202 and again["ids"] == expected_ids("jira-issue-updated-in-progress.json")

    records = asyncio.run(_read_all(broker.bootstrap, f"{namespace.prefix}tickets"))
    # (a) exactly what was accepted, each keyed by its ticket and valid §3 input
    assert Counter(v["id"] for _k, v in records) == Counter(sent + again["ids"])
    for key, value in records:
        assert key == value["ticket"].encode()
        decode_event(value)
    assert {v["ticket"] for _k, v in records} == {"SUP-12", "4711", "INC0010001"}
    # one ticket's events in the order the webhooks and their changes came (one partition per key)
    assert [v["id"] for _k, v in records if v["ticket"] == "INC0010001"] == expected_ids(
        "servicenow-insert.json") + expected_ids("servicenow-update-in-progress.json")
    # (b) the retried records are identical, so the engine's repeated-id rule drops them silently
    by_id: dict[str, list[dict]] = {}
    for _k, v in records:
        by_id.setdefault(v["id"], []).append(v)
    assert all(len({json.dumps(v, sort_keys=True) for v in vs}) == 1 for vs in by_id.values())
    # (d)
    text = log.read_bytes()
    assert not any(secret.encode() in text for secret in SECRETS.values() if len(secret) > 4)
