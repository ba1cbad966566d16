"""Delivery mappings (DESIGN.md §12), table-driven: for an output and a target, the request(s).

Outputs are hand-made records of every notification type, including ``escalation.acknowledged``
and ``escalation.resolved`` (DESIGN.md §11), built the way the core words them.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import default as email_policy

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from escalation.agreement.targets import NotificationTarget
from escalation.delivery.actions import action_of, bounded_key, camel
from escalation.delivery.alertmanager import alertmanager_plan
from escalation.delivery.log import DeliveryLog, Result, delivery_record
from escalation.delivery.offsets import OffsetTracker
from escalation.delivery.plan import Endpoints, NotDeliverable, plan
from escalation.delivery.ratelimit import parse_limit
from escalation.delivery.requests import MissingSecret
from escalation.delivery.retry import Outcome, RetryPolicy, http_outcome, parse_retry_after

DK = "acme-erp/INC-1/response"
TARGET = TypeAdapter(NotificationTarget)
ENV = {"PD_KEY": "pd-routing-key-1", "OG_KEY": "og-api-key-1", "SLACK_URL": "http://127.0.0.1:1/hook",
       "HOOK_SECRET": "hook-secret-1", "AM_URL": "http://127.0.0.1:2"}
EP = Endpoints(pagerduty_url="http://pd.test/v2/enqueue", opsgenie_url="http://og.test", smtp_from="esc@test")


def output(type_: str, time: str = "2026-03-02T08:15:00+00:00", **data) -> dict:
    base = {"ticket": "INC-1", "agreement": "acme-erp", "revision": 3, "service": "erp-prod", "clock": "response",
            "cycle": 1, "dedup_key": DK, "summary": f"INC-1 P1 response {type_}",
            "explain": {"reason": "because"}, "recipients": [{"name": "pd", "kind": "pagerduty"}]}
    if type_ not in ("escalation.acknowledged", "escalation.resolved"):
        base["severity"] = "error"
    base.update(data)
    return {"specversion": "1.0", "id": f"id-{type_}", "source": "escalation/acme-erp@3", "type": type_,
            "subject": "INC-1", "time": time, "datacontenttype": "application/json", "data": base}


TRIGGERS = ["sla.warning", "sla.breached", "escalation.triggered", "escalation.repeated"]
ALL = [*TRIGGERS, "escalation.acknowledged", "escalation.resolved"]


@pytest.mark.parametrize("type_, action", [(t, "trigger") for t in TRIGGERS] + [
    ("escalation.acknowledged", "acknowledge"), ("escalation.resolved", "resolve"), ("sla.met", None)])
def test_action_of_each_type(type_, action):
    assert action_of(output(type_)) == action


@pytest.mark.parametrize("state, action", [("firing", "trigger"), ("resolved", "resolve")])
def test_burn_rate_opens_and_clears(state, action):
    assert action_of(output("slo.burn_rate", state=state)) == action


@pytest.mark.parametrize("type_, event_action", [(t, "trigger") for t in TRIGGERS] + [
    ("escalation.acknowledged", "acknowledge"), ("escalation.resolved", "resolve")])
def test_pagerduty_events_v2(type_, event_action):
    (req,) = plan(output(type_), b"INC-1", "pd", TARGET.validate_python({"kind": "pagerduty", "routing_key_env": "PD_KEY"}),
                  ENV, EP).requests
    body = orjson.loads(req.body)
    assert req.url == "http://pd.test/v2/enqueue" and body["event_action"] == event_action
    assert body["routing_key"] == "pd-routing-key-1" and body["dedup_key"] == DK
    assert "pd-routing-key-1" not in repr(req)
    if event_action == "trigger":
        p = body["payload"]
        assert p == {"summary": f"INC-1 P1 response {type_}", "source": "acme-erp/erp-prod", "severity": "error",
                     "timestamp": "2026-03-02T08:15:00+00:00", "component": "erp-prod", "group": "acme-erp",
                     "class": type_, "custom_details": output(type_)["data"]}
    else:
        assert "payload" not in body


def test_pagerduty_limits_dedup_key_and_summary():
    long_key, long_summary = "a/" + "x" * 300 + "/response", "s" * 2000
    (req,) = plan(output("sla.breached", dedup_key=long_key, summary=long_summary), None, "pd",
                  TARGET.validate_python({"kind": "pagerduty", "routing_key_env": "PD_KEY"}), ENV, EP).requests
    body = orjson.loads(req.body)
    assert body["dedup_key"] == hashlib.sha256(long_key.encode()).hexdigest()
    assert len(body["payload"]["summary"]) == 1024
    assert bounded_key("short") == "short"


@pytest.mark.parametrize("severity, priority", [("critical", "P1"), ("error", "P2"), ("warning", "P3"), ("info", "P5")])
def test_opsgenie_create(severity, priority):
    target = TARGET.validate_python({"kind": "opsgenie", "api_key_env": "OG_KEY", "responders": [{"type": "team", "name": "ops"}]})
    (req,) = plan(output("sla.breached", severity=severity, summary="m" * 200), None, "og", target, ENV, EP).requests
    body = orjson.loads(req.body)
    assert req.url == "http://og.test/v2/alerts" and ("Authorization", "GenieKey og-api-key-1") in req.headers
    assert body["alias"] == DK and body["priority"] == priority and len(body["message"]) == 130
    assert body["responders"] == [{"type": "team", "name": "ops"}]
    assert all(isinstance(v, str) for v in body["details"].values())
    assert "og-api-key-1" not in repr(req)


@pytest.mark.parametrize("type_, verb, extra", [("escalation.acknowledged", "acknowledge", {"by": "alice"}),
                                                 ("escalation.resolved", "close", {"reason": "clock_stopped"})])
def test_opsgenie_acknowledge_and_close_by_alias(type_, verb, extra):
    target = TARGET.validate_python({"kind": "opsgenie", "api_key_env": "OG_KEY"})
    (req,) = plan(output(type_, **extra), None, "og", target, ENV, EP).requests
    assert req.url == f"http://og.test/v2/alerts/acme-erp%2FINC-1%2Fresponse/{verb}?identifierType=alias"
    assert orjson.loads(req.body).get("user") == extra.get("by")


def test_opsgenie_fields_never_exceed_the_alert_apis_limits():
    """Opsgenie answers an over-long field with 422 (not retried): every field is cut to its limit."""
    target = TARGET.validate_python({"kind": "opsgenie", "api_key_env": "OG_KEY"})
    long_id = "x" * 300
    trigger = output("escalation.triggered", ticket=long_id * 2, agreement=long_id)
    trigger["source"] = f"escalation/{long_id}@3"
    (req,) = plan(trigger, None, "og", target, ENV, EP).requests
    body = orjson.loads(req.body)
    assert len(body["source"]) == 100 and len(body["entity"]) == 512 and all(len(t) <= 50 for t in body["tags"])
    ack = output("escalation.acknowledged", by="b" * 200)
    ack["source"] = trigger["source"]
    (req,) = plan(ack, None, "og", target, ENV, EP).requests
    assert len(orjson.loads(req.body)["user"]) == 100 and len(orjson.loads(req.body)["source"]) == 100


@pytest.mark.parametrize("type_", ALL + ["sla.met"])
def test_slack_one_message_per_output(type_):
    target = TARGET.validate_python({"kind": "slack", "webhook_url_env": "SLACK_URL"})
    (req,) = plan(output(type_), None, "chat", target, ENV, EP).requests
    assert req.url == ENV["SLACK_URL"] and type_ in orjson.loads(req.body)["text"]
    assert ENV["SLACK_URL"] not in repr(req)


@pytest.mark.parametrize("secret_env", [None, "HOOK_SECRET"])
def test_webhook_cloudevents_structured_and_signed(secret_env):
    spec = {"kind": "webhook", "url": "http://127.0.0.1:3/in"} | ({"secret_env": secret_env} if secret_env else {})
    out = output("escalation.resolved")
    (req,) = plan(out, None, "hook", TARGET.validate_python(spec), ENV, EP).requests
    headers = dict(req.headers)
    assert headers["Content-Type"].startswith("application/cloudevents+json") and orjson.loads(req.body) == out
    want = "sha256=" + hmac.new(b"hook-secret-1", req.body, hashlib.sha256).hexdigest()
    assert headers.get("X-Escalation-Signature") == (want if secret_env else None)


def test_email_message():
    target = TARGET.validate_python({"kind": "email", "address": "duty@warp.example"})
    (req,) = plan(output("sla.breached", summary="line one\nBcc: evil@x"), None, "duty", target, ENV, EP).requests
    msg = message_from_bytes(req.message.as_bytes(), policy=email_policy)
    assert msg["To"] == "duty@warp.example" and msg["From"] == "esc@test"
    assert msg["Subject"] == "[error] line one Bcc: evil@x" and msg["Bcc"] is None
    assert msg["Message-ID"] == "<id-sla.breached.duty@escalation>"


def test_kafka_produces_the_output():
    out = output("sla.warning")
    (req,) = plan(out, b"INC-1", "so", TARGET.validate_python({"kind": "kafka", "topic": "t"}), ENV, EP).requests
    assert (req.topic, req.key, orjson.loads(req.value)) == ("t", b"INC-1", out)


def test_alertmanager_lifecycle():
    am = TARGET.validate_python({"kind": "alertmanager", "url_env": "AM_URL"})
    p1 = plan(output("sla.breached"), None, "am", am, ENV, EP)
    (req,) = p1.requests
    (alert,) = orjson.loads(req.body)
    assert req.url == "http://127.0.0.1:2/api/v2/alerts"
    assert alert["labels"] == {"alertname": "SlaBreached", "agreement": "acme-erp", "ticket": "INC-1",
                               "clock": "response", "severity": "error", "dedup_key": DK}
    assert alert["startsAt"] == "2026-03-02T08:15:00+00:00" and set(alert["annotations"]) == {"summary", "explain"}
    p2 = plan(output("escalation.triggered", time="2026-03-02T08:16:00+00:00"), None, "am", am, ENV, EP, p1.alerts)
    assert [a["labels"]["alertname"] for a in p2.alerts] == ["SlaBreached", "EscalationTriggered"]
    p3 = plan(output("escalation.acknowledged", by="bob"), None, "am", am, ENV, EP, p2.alerts)
    assert all(a["annotations"]["acknowledged_by"] == "bob" for a in p3.alerts)
    p4 = plan(output("escalation.resolved", time="2026-03-02T09:00:00+00:00"), None, "am", am, ENV, EP, p3.alerts)
    ended = orjson.loads(p4.requests[0].body)
    assert p4.alerts == () and [a["labels"] for a in ended] == [a["labels"] for a in p2.alerts]
    assert {a["endsAt"] for a in ended} == {"2026-03-02T09:00:00+00:00"}
    assert alertmanager_plan(output("escalation.resolved"), "http://x", ())[0] == []   # nothing open
    assert camel("slo.burn_rate") == "SloBurnRate"


def test_missing_secret_and_undeliverable_kinds():
    with pytest.raises(MissingSecret, match="NOT_SET") as err:
        plan(output("sla.breached"), None, "pd", TARGET.validate_python({"kind": "pagerduty", "routing_key_env": "NOT_SET"}), ENV, EP)
    with pytest.raises(NotDeliverable):
        plan(output("sla.breached"), None, "l2", TARGET.validate_python({"kind": "oncall_schedule", "ref": "pagerduty:P"}), ENV, EP)
    assert plan(output("sla.met"), None, "pd", TARGET.validate_python({"kind": "pagerduty", "routing_key_env": "PD_KEY"}), ENV, EP).requests == ()
    assert err.value is not None


@pytest.mark.parametrize("spec", [
    {"kind": "pagerduty", "routing_key_env": "has space"},
    {"kind": "pagerduty", "routing_key": "the-key-itself"},
    {"kind": "alertmanager"},
    {"kind": "alertmanager", "url": "http://a", "url_env": "A"},
    {"kind": "alertmanager", "url": "http://a", "resend": "1bd"},
    {"kind": "opsgenie", "api_key_env": "K", "responders": [{"type": "team"}]},
    {"kind": "slack", "webhook_url": "https://hooks.slack.com/x"},
])
def test_target_models_refuse(spec):
    with pytest.raises(ValidationError):
        TARGET.validate_python(spec)


@pytest.mark.parametrize("status, ok, retryable", [(200, True, False), (202, True, False), (400, False, False),
                                                   (401, False, False), (404, False, False), (429, False, True),
                                                   (500, False, True), (503, False, True)])
def test_http_outcomes(status, ok, retryable):
    o = http_outcome(status)
    assert (o.ok, o.retryable) == (ok, retryable)


def test_retry_after_and_backoff():
    now = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0 and parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("Mon, 02 Mar 2026 08:00:30 GMT", now) == 30.0
    policy, rng = RetryPolicy(max_age=100), random.Random(1)
    waits = [policy.backoff(n, rng) for n in range(1, 12)]
    steps = [min(60, 0.5 * 2 ** (n - 1)) for n in range(1, 12)]
    assert all(s <= w <= min(60, s * 1.25) for w, s in zip(waits, steps))   # never below the step
    assert len({round(w, 6) for w in waits[:6]}) == 6                           # jittered
    fail = Outcome(False, True, 503)
    assert policy.next_wait(Outcome(False, True, 429, retry_after=9), 1, 0, rng) == 9
    assert policy.next_wait(fail, 1, 99.9, rng) is None                  # max_age reached
    assert policy.next_wait(Outcome(False, False, 400), 1, 0, rng) is None


def test_offsets_commit_below_unfinished():
    t = OffsetTracker()
    t.add("p0", 10, 2)
    t.add("p0", 11, 0)
    t.add("p0", 12, 1)
    assert t.committable() == {"p0": 10}
    t.committed({"p0": 10})
    t.done("p0", 12)
    t.done("p0", 10)
    assert t.committable() == {}            # offset 10 still has one delivery to finish
    t.done("p0", 10)
    assert t.committable() == {"p0": 13}


def test_delivery_log_rebuilds_open_alerts_by_output_time():
    am = TARGET.validate_python({"kind": "alertmanager", "url": "http://127.0.0.1:2"})
    at = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    trig = plan(output("sla.breached"), None, "am", am, ENV, EP)
    res = plan(output("escalation.resolved", time="2026-03-02T08:30:00+00:00"), None, "am", am, ENV, EP, trig.alerts)
    r1 = delivery_record(output("sla.breached"), "acme-erp", "am", "alertmanager", Result(True, 1, 200, None, at, trig.alerts))
    r2 = delivery_record(output("escalation.resolved", time="2026-03-02T08:30:00+00:00"), "acme-erp", "am", "alertmanager",
                         Result(True, 1, 200, None, at, res.alerts))
    for order in ([r1, r2], [r2, r1]):       # log order across partitions is not output order
        log = DeliveryLog()
        for r in order:
            log.apply(r)
        assert log.open_alerts("acme-erp", "am", DK) == () and r1["key"] in log
    assert r1["latency"] == 2700.0 and r1["type"] == "delivery.succeeded"


@pytest.mark.parametrize("text, want", [("pagerduty=5/1", ("pagerduty", (5, 1.0))), ("slack=2", ("slack", (2, 1.0)))])
def test_parse_limit(text, want):
    assert parse_limit(text) == want
    with pytest.raises(ValueError):
        parse_limit("pagerduty=0/1")
