"""Ticket-tool webhooks (DESIGN.md §14): vendor-format samples (tests/data/webhooks/) through the
bundled mapping files into §3 events, table-driven; deterministic ids; refusals with reasons;
each tool's signature or token check; the receiver produces all of a webhook's events or none."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from escalation.core.events import decode_event
from escalation.delivery.ack import AckRefused, Ignored
from escalation.delivery.hook_auth import check_jira, check_servicenow, check_zendesk
from escalation.delivery.hook_events import ticket_events
from escalation.delivery.hook_mapping import HookMappingError, load_hook_mapping, load_hook_mappings
from escalation.delivery.receive import build_app

DATA = Path(__file__).resolve().parents[1] / "data" / "webhooks"
MAPPINGS = load_hook_mappings({})
SECRET = "hook-secret-123"


def sample(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def events(name: str, body: dict | None = None) -> list[dict]:
    return ticket_events(body if body is not None else sample(name), MAPPINGS[name.split("-")[0]])


def short(event: dict) -> tuple:
    """(id, type, the fields beyond id/type/time/ticket) — what each row of the table states."""
    return (event["id"], event["type"], {k: v for k, v in event.items() if k not in ("id", "type", "time", "ticket")})


J, S, Z = "jira:SUP-12", "servicenow:INC0010001", "zendesk:4711"
TABLE = {
    "jira-issue-created.json": [
        (f"{J}:created@2026-03-02T08:00:00+00:00:opened", "ticket.opened",
         {"priority": "P1", "service": "erp-prod", "agreement": "SUP", "summary": "ERP login fails for all users",
          "attributes": {"source": "jira"}})],
    "jira-issue-updated-in-progress.json": [
        (f"{J}:10500:acknowledged", "ticket.acknowledged", {}),
        (f"{J}:10500:status_changed", "ticket.status_changed", {"status": "in_progress"}),
        (f"{J}:10500:assigned", "ticket.assigned", {"assignee": "Alice Agent"})],
    "jira-issue-updated-priority.json": [(f"{J}:10501:priority_changed", "ticket.priority_changed", {"priority": "P2"})],
    "jira-issue-updated-resolved.json": [(f"{J}:10502:resolved", "ticket.resolved", {})],
    "jira-issue-updated-reopened.json": [
        (f"{J}:10503:reopened", "ticket.reopened", {}),
        (f"{J}:10503:status_changed", "ticket.status_changed", {"status": "in_progress"})],
    "jira-comment-created.json": [(f"{J}:comment-10200:updated", "ticket.updated", {"public": True})],
    "jira-comment-internal.json": [(f"{J}:comment-10201:updated", "ticket.updated", {"public": False})],
    "zendesk-created.json": [
        (f"{Z}:created@2026-03-02T08:00:00+00:00:opened", "ticket.opened",
         {"priority": "P1", "service": "shop-prod", "agreement": "zendesk-support", "customer": "Globex",
          "summary": "Checkout page returns 500", "group": "Tier 1", "attributes": {"source": "zendesk"}})],
    "zendesk-status-open.json": [
        (f"{Z}:status@2026-03-02T08:04:30+00:00:acknowledged", "ticket.acknowledged", {}),
        (f"{Z}:status@2026-03-02T08:04:30+00:00:status_changed", "ticket.status_changed", {"status": "in_progress"})],
    "zendesk-priority.json": [
        (f"{Z}:priority@2026-03-02T08:30:00+00:00:priority_changed", "ticket.priority_changed", {"priority": "P2"})],
    "zendesk-comment.json": [(f"{Z}:comment@2026-03-02T08:45:00+00:00:updated", "ticket.updated", {"public": True})],
    "zendesk-status-solved.json": [(f"{Z}:status@2026-03-02T09:15:00+00:00:resolved", "ticket.resolved", {})],
    "servicenow-insert.json": [
        (f"{S}:0:opened", "ticket.opened",
         {"priority": "P1", "service": "Email", "agreement": "servicenow-incidents", "customer": "ACME North America",
          "summary": "Email server down", "group": "Service Desk", "attributes": {"source": "servicenow"}})],
    "servicenow-update-in-progress.json": [
        (f"{S}:1:acknowledged", "ticket.acknowledged", {}),
        (f"{S}:1:status_changed", "ticket.status_changed", {"status": "in_progress"}),
        (f"{S}:1:assigned", "ticket.assigned", {"assignee": "Beth Anglin", "group": "Service Desk"}),
        (f"{S}:1:updated", "ticket.updated", {"public": True})],
    "servicenow-update-on-hold.json": [
        (f"{S}:2:status_changed", "ticket.status_changed", {"status": "pending_customer"}),
        (f"{S}:2:priority_changed", "ticket.priority_changed", {"priority": "P2"})],
    "servicenow-update-resolved.json": [(f"{S}:3:resolved", "ticket.resolved", {})],
}
TIMES = {"jira-issue-updated-in-progress.json": "2026-03-02T08:07:12.345000+00:00",   # epoch ms, kept exactly
         "servicenow-update-on-hold.json": "2026-03-02T08:20:00+00:00"}                # naive sys_updated_on: UTC


def test_every_sample_is_in_the_table():
    assert sorted(p.name for p in DATA.glob("*.json")) == sorted([*TABLE, "servicenow-update-description.json"])


@pytest.mark.parametrize("name", sorted(TABLE))
def test_sample_maps_to_the_expected_events(name):
    got = events(name)
    assert [short(e) for e in got] == TABLE[name]
    for event in got:
        decode_event(event)                                   # the engine's own check
        assert event["ticket"] == event["id"].split(":")[1]   # keyed by the ticket
    if name in TIMES:
        assert {e["time"] for e in got} == {TIMES[name]}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_a_retried_webhook_gives_the_same_events_and_ids(name):
    assert events(name) == events(name, json.loads(json.dumps(sample(name))))


def test_one_jira_comment_is_one_event_whichever_webhook_carries_it():
    as_update = {**sample("jira-comment-created.json"), "webhookEvent": "jira:issue_updated"}
    assert [e["id"] for e in events("jira-comment-created.json", as_update)] == [f"{J}:comment-10200:updated"]


def test_an_update_that_changes_nothing_followed_is_ignored():
    with pytest.raises(Ignored, match="changes nothing"):
        events("servicenow-update-description.json")


def test_the_same_ticket_time_and_another_zendesk_trigger_is_another_id():
    priority = events("zendesk-priority.json")[0]["id"]
    as_status = {**sample("zendesk-priority.json"), "change": "status"}
    assert priority not in {e["id"] for e in events("zendesk-priority.json", as_status)}


def _edit(name: str, path: str, value) -> dict:
    body = sample(name)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize("name, path, value, reason", [
    ("jira-issue-created.json", "issue.fields.status.name", "Triage", "status 'Triage'"),
    ("jira-issue-created.json", "issue.fields.priority.name", "Blocker", "priority 'Blocker'"),
    ("jira-issue-created.json", "issue.fields.priority", None, "priority None"),
    ("jira-issue-created.json", "issue.key", ..., "issue.key: missing"),
    ("jira-issue-created.json", "timestamp", ..., "timestamp: missing"),
    ("jira-issue-created.json", "timestamp", "yesterday", "not an RFC 3339 time"),
    ("jira-issue-created.json", "timestamp", 10**13, "outside the plausible range"),   # 2286: decode_event says no
    ("jira-issue-created.json", "webhookEvent", "jira:worklog_updated", "webhookEvent 'jira:worklog_updated'"),
    ("jira-issue-updated-in-progress.json", "changelog.items.0.toString", "Triage", "status 'Triage'"),
    ("zendesk-created.json", "ticket.priority", "-", "priority '-'"),
    ("zendesk-created.json", "ticket.updated_at", "2026-03-02T08:00:00", None),        # naive: read as UTC
    ("servicenow-insert.json", "state", "99", "status '99'"),
    ("servicenow-update-on-hold.json", "priority", "9", "priority '9'"),
    ("servicenow-insert.json", "number", "", "number: missing"),
])
def test_unmappable_bodies_are_refused_with_a_reason(name, path, value, reason):
    body = _edit(name, path, value)
    if reason is None:
        assert events(name, body)
        return
    with pytest.raises(AckRefused, match=reason) as err:
        events(name, body)
    assert err.value.status == 422


def test_a_body_that_is_no_object_and_ignored_kinds():
    with pytest.raises(AckRefused, match="not a JSON object"):
        ticket_events([1, 2], MAPPINGS["jira"])
    with pytest.raises(Ignored):
        events("jira-issue-created.json", {**sample("jira-issue-created.json"), "webhookEvent": "jira:issue_deleted"})


def test_mapping_files_are_checked(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("tool: jira\nticket: issue.key\nsurprise: 1\n")
    with pytest.raises(HookMappingError, match=r"m\.yaml: surprise: Extra inputs"):
        load_hook_mapping(bad)
    text = (Path(__file__).resolve().parents[2] / "examples/mappings/jira.yaml").read_text()
    bad.write_text(text.replace('"Pending": {status: pending_vendor}', '"Pending": {}'))
    with pytest.raises(HookMappingError, match=r"statuses\.Pending: a status rule needs"):
        load_hook_mapping(bad)
    with pytest.raises(HookMappingError, match="this is a jira mapping, given for zendesk"):
        load_hook_mappings({"zendesk": _copy(text, tmp_path)})


def _copy(text: str, tmp_path: Path) -> str:
    path = tmp_path / "jira-copy.yaml"
    path.write_text(text)
    return str(path)


# --- signatures and tokens -------------------------------------------------------------------------

BODY = b'{"webhookEvent": "jira:issue_created"}'


def jira_sig(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def zendesk_headers(body: bytes, stamp: str = "2026-03-02T08:00:00Z", secret: str = SECRET) -> dict:
    sig = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {"X-Zendesk-Webhook-Signature": sig, "X-Zendesk-Webhook-Signature-Timestamp": stamp}


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


JENV = {"ESCALATION_JIRA_WEBHOOK_SECRET": SECRET}
ZENV = {"ESCALATION_ZENDESK_WEBHOOK_SECRET": SECRET}
SENV = {"ESCALATION_SERVICENOW_WEBHOOK_TOKEN": SECRET, "ESCALATION_SERVICENOW_WEBHOOK_USER": "sn",
        "ESCALATION_SERVICENOW_WEBHOOK_PASSWORD": "sn-password"}


@pytest.mark.parametrize("check, headers, query, env, status", [
    (check_jira, {"X-Hub-Signature": jira_sig(BODY)}, {}, JENV, None),
    (check_jira, {}, {"token": SECRET}, JENV, None),                          # Data Center: no signing
    (check_jira, {"X-Escalation-Token": SECRET}, {}, JENV, None),
    (check_jira, {"X-Hub-Signature": jira_sig(BODY, "other")}, {}, JENV, 401),
    (check_jira, {"X-Hub-Signature": jira_sig(BODY + b" ")}, {"token": SECRET}, JENV, 401),  # a bad signature is not saved by a token
    (check_jira, {}, {"token": "guess"}, JENV, 401),
    (check_jira, {}, {}, JENV, 401),
    (check_jira, {"X-Hub-Signature": jira_sig(BODY)}, {}, {}, 503),           # no secret: refuse everything
    (check_zendesk, zendesk_headers(BODY), {}, ZENV, None),
    (check_zendesk, zendesk_headers(BODY + b" "), {}, ZENV, 401),
    (check_zendesk, {**zendesk_headers(BODY), "X-Zendesk-Webhook-Signature-Timestamp": "2026-03-02T08:00:01Z"},
     {}, ZENV, 401),
    (check_zendesk, {"X-Zendesk-Webhook-Signature": "%%%"}, {}, ZENV, 401),
    (check_zendesk, zendesk_headers(BODY), {}, {}, 503),
    (check_servicenow, {"Authorization": f"Bearer {SECRET}"}, {}, SENV, None),
    (check_servicenow, basic("sn", "sn-password"), {}, SENV, None),
    (check_servicenow, basic("sn", "wrong"), {}, SENV, 401),
    (check_servicenow, {"Authorization": "Bearer nope"}, {}, SENV, 401),
    (check_servicenow, {"Authorization": "Basic !!"}, {}, SENV, 401),
    (check_servicenow, {}, {}, SENV, 401),
    (check_servicenow, basic("sn", "sn-password"), {}, {"ESCALATION_SERVICENOW_WEBHOOK_TOKEN": SECRET}, 401),
    (check_servicenow, {"Authorization": f"Bearer {SECRET}"}, {}, {}, 503),
])
def test_signature_and_token_checks(check, headers, query, env, status):
    if status is None:
        check(BODY, headers, query, env)
        return
    with pytest.raises(AckRefused) as err:
        check(BODY, headers, query, env)
    assert err.value.status == status and SECRET not in str(err.value)


# --- the receiver: all of a webhook's events, in order, or nothing -----------------------------------

def _post(path: str, body: bytes, headers: dict, env: dict) -> tuple[int, dict, list[dict]]:
    produced: list[dict] = []

    async def produce(event: dict) -> None:
        produced.append(event)

    async def run():
        async with TestClient(TestServer(build_app(produce, env, hooks=MAPPINGS))) as client:
            resp = await client.post(path, data=body, headers={"Content-Type": "application/json", **headers})
            return resp.status, await resp.json()

    status, answer = asyncio.run(run())
    return status, answer, produced


def test_receiver_produces_every_event_of_a_signed_webhook_in_order():
    body = (DATA / "jira-issue-updated-in-progress.json").read_bytes()
    status, answer, produced = _post("/hooks/jira", body, {"X-Hub-Signature": jira_sig(body)}, JENV)
    assert status == 202 and [e["id"] for e in produced] == answer["ids"] == [r[0] for r in
                                                                              TABLE["jira-issue-updated-in-progress.json"]]


@pytest.mark.parametrize("path, body, headers, env, status", [
    ("/hooks/jira", (DATA / "jira-issue-created.json").read_bytes(), {"X-Hub-Signature": "sha256=00"}, JENV, 401),
    ("/hooks/jira", b"not json", {"X-Hub-Signature": jira_sig(b"not json")}, JENV, 400),
    ("/hooks/zendesk", (DATA / "zendesk-created.json").read_bytes().replace(b'"Urgent"', b'"Whenever"'), {}, ZENV, 401),
    ("/hooks/servicenow", (DATA / "servicenow-insert.json").read_bytes().replace(b'"1"', b'"42"'),
     {"Authorization": f"Bearer {SECRET}"}, SENV, 422),
    ("/hooks/servicenow", (DATA / "servicenow-update-description.json").read_bytes(),
     {"Authorization": f"Bearer {SECRET}"}, SENV, 200),
])
def test_receiver_refusals_produce_nothing(path, body, headers, env, status):
    got, answer, produced = _post(path, body, headers, env)
    assert got == status and produced == []
    assert ("error" in answer) == (status != 200)


def test_receiver_zendesk_signed_webhook():
    body = (DATA / "zendesk-created.json").read_bytes()
    status, _answer, produced = _post("/hooks/zendesk", body, zendesk_headers(body), ZENV)
    assert status == 202 and [e["type"] for e in produced] == ["ticket.opened"]
