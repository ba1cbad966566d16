"""Delivery end to end on the real broker, to real local servers (DESIGN.md §12).

`escalation deliver` runs as a subprocess against the embedded broker; hand-made output records
(every notification type, including escalation.acknowledged / escalation.resolved of §11) are
produced to the notifications topic; the vendors are aiohttp servers on 127.0.0.1 answering as
each vendor documents (tests/integration/vendors.py) and a real SMTP server (aiosmtpd).

(a) every output type reaches every target kind, mapped and in order; Alertmanager re-posts open alerts;
(b) 429 and 5xx are retried until accepted; a 400 fails at once with delivery.failed;
(c) a burst above the PagerDuty rate limit waits: nothing is dropped, the rate holds;
(d) kill -9 mid-stream and a restart: every output delivered, none twice that the log had;
(e) the receiver turns a signed PagerDuty webhook into notification.acknowledged, refuses a bad one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from email import message_from_bytes
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiosmtpd.controller import Controller
from vendors import HOOK_SECRET, VendorServer

from escalation.live.readback import read_all

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DK = "acme-erp/INC-1/response"
TYPES = ["sla.warning", "sla.breached", "escalation.triggered", "escalation.repeated", "escalation.acknowledged",
         "escalation.resolved"]
KINDS = ["pd", "og", "chat", "hook", "mail", "bus", "am"]

AGREEMENT = """\
apiVersion: escalation/v1
kind: Agreement
id: acme-erp
revision: 3
priorities: [P1]
clocks:
  response: {{starts: opened, stops: acknowledged}}
targets:
  - {{clock: response, priority: P1, within: 15m, calendar: always}}
notification_targets:
  pd: {{kind: pagerduty, routing_key_env: PD_KEY}}
  pd-flaky: {{kind: pagerduty, routing_key_env: PD_FLAKY}}
  pd-bad: {{kind: pagerduty, routing_key_env: PD_BAD}}
  pd-down: {{kind: pagerduty, routing_key_env: PD_DOWN}}
  og: {{kind: opsgenie, api_key_env: OG_KEY, responders: [{{type: team, name: ops}}]}}
  chat: {{kind: slack, webhook_url_env: SLACK_URL}}
  hook: {{kind: webhook, url: "{hook}", secret_env: HOOK_SECRET}}
  mail: {{kind: email, address: duty@warp.example}}
  bus: {{kind: kafka, topic: "{bus}"}}
  am: {{kind: alertmanager, url_env: AM_URL, resend: 1s}}
  l2: {{kind: oncall_schedule, ref: "pagerduty:PERP2"}}
"""


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@pytest.fixture
def vendors():
    with VendorServer() as v:
        yield v


@pytest.fixture
def mailbox():
    import socket

    with socket.socket() as probe:           # aiosmtpd checks its own port after start: it needs a number
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    controller.stop()


class Deliverer:
    """`escalation deliver` in its own process group, stderr to a log file."""

    def __init__(self, broker, ns, tmp: Path, env: dict, *extra: str, name: str = "deliver") -> None:
        self.log_path = tmp / f"{name}.stderr"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "escalation.cli", "deliver", "--broker", broker.url, "--app-id", ns.app_id,
             "--topic-prefix", ns.prefix, "--agreements", str(tmp / "agreement.yaml"), "--profile", "test",
             "--metrics-port", "0", "--log-format", "text", *extra],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "ab"), cwd=tmp,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, start_new_session=True)

    def wait_ready(self, timeout: float = 20) -> None:
        wait_for(lambda: b"deliver ready" in self.log_path.read_bytes() or self.proc.poll() is not None, timeout)
        assert self.proc.poll() is None, self.log_path.read_text()

    def metrics(self) -> str:
        url = re.search(rb"metrics on (http://[0-9.]+:[0-9]+/metrics)", self.log_path.read_bytes()).group(1).decode()
        return urllib.request.urlopen(url, timeout=5).read().decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(predicate, timeout: float, every: float = 0.1):
    deadline = time.time() + timeout
    while not (result := predicate()):
        assert time.time() < deadline, "timed out"
        time.sleep(every)
    return result


def output(type_: str, n: int = 0, ticket: str = "INC-1", recipients=KINDS, dedup_key: str | None = None) -> dict:
    data = {"ticket": ticket, "agreement": "acme-erp", "revision": 3, "service": "erp-prod", "clock": "response",
            "cycle": 1, "dedup_key": dedup_key or f"acme-erp/{ticket}/response", "summary": f"{ticket} {type_} {n}",
            "explain": {"reason": f"test {type_}"},
            "recipients": [{"name": r} for r in recipients] + [{"name": "assignee", "kind": "assignee", "ref": "al"}]}
    if type_ == "escalation.acknowledged":
        data["by"] = "alice"
    elif type_ == "escalation.resolved":
        data.update(reason="clock_stopped", overrun="PT0S")
    else:
        data["severity"] = "error"
    return {"specversion": "1.0", "id": f"{type_}-{ticket}-{n}", "source": "escalation/acme-erp@3", "type": type_,
            "subject": ticket, "time": datetime.now(timezone.utc).isoformat(), "datacontenttype": "application/json",
            "data": data}


async def _produce(bootstrap: str, topic: str, outputs: list[dict]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1)
    await p.start()
    try:
        for o in outputs:
            await p.send_and_wait(topic, json.dumps(o).encode(), key=o["subject"].encode())
    finally:
        await p.stop()


async def _read(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict]]:
    """Every record of ``topic`` up to its current end, values decoded."""
    return [(key, json.loads(value)) for key, value in await read_all(bootstrap, topic)]


async def _create(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 4, 1)])
    finally:
        await admin.close()


def produce(broker, topic, outputs):
    asyncio.run(_produce(broker.bootstrap, topic, outputs))


def read(broker, topic):
    return asyncio.run(_read(broker.bootstrap, topic))


def deliveries(broker, ns) -> list[dict]:
    return [v for _k, v in read(broker, f"{ns.prefix}deliveries")]


@pytest.fixture
def setup(broker, namespace, tmp_path, vendors, mailbox):
    """Agreement file, the Kafka target's topic, and the deliverer's environment."""
    bus = f"{namespace.prefix}service-owner"
    asyncio.run(_create(broker.bootstrap, bus))
    (tmp_path / "agreement.yaml").write_text(AGREEMENT.format(hook=vendors.url("/hook"), bus=bus))
    env = {"PD_KEY": "pd-key", "PD_FLAKY": "pd-flaky", "PD_BAD": "pd-bad", "PD_DOWN": "pd-down", "OG_KEY": "og-key",
           "SLACK_URL": vendors.url("/slack/hook"), "HOOK_SECRET": HOOK_SECRET, "AM_URL": vendors.url("/am"),
           "ESCALATION_PAGERDUTY_URL": vendors.url("/pd/v2/enqueue"), "ESCALATION_OPSGENIE_URL": vendors.url("/og"),
           "ESCALATION_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}", "ESCALATION_SMTP_FROM": "escalation@warp.example"}
    return {"env": env, "bus": bus, "notifications": f"{namespace.prefix}notifications", "tmp": tmp_path}


def start(broker, namespace, setup, *extra, name="deliver") -> Deliverer:
    d = Deliverer(broker, namespace, setup["tmp"], setup["env"], *extra, name=name)
    d.wait_ready()
    return d


def _by_target(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(r["target"], []).append(r)
    return out


def test_every_output_type_reaches_every_target_kind(broker, namespace, setup, vendors, mailbox):
    d = start(broker, namespace, setup)
    try:
        produce(broker, setup["notifications"], [output(t, i) for i, t in enumerate(TYPES)]
                + [output("sla.breached", 9, ticket="INC-2", recipients=["am"])])
        wait_for(lambda: len(deliveries(broker, namespace)) >= len(TYPES) * len(KINDS) + 1, 25, every=0.5)
        records = deliveries(broker, namespace)
        assert {r["type"] for r in records} == {"delivery.succeeded"} and len(records) == len(TYPES) * len(KINDS) + 1
        assert len({r["key"] for r in records}) == len(records)

        pd = [r.json for r in vendors.seen("pd", 202)]
        assert [b["event_action"] for b in pd] == ["trigger"] * 4 + ["acknowledge", "resolve"]
        assert {b["dedup_key"] for b in pd} == {DK} and [b["payload"]["class"] for b in pd[:4]] == TYPES[:4]
        og = vendors.seen("og", 202)
        assert [r.path.split("?")[0].rsplit("/", 1)[-1] for r in og] == ["alerts"] * 4 + ["acknowledge", "close"]
        assert {r.json["alias"] for r in og[:4]} == {DK} and og[4].json["user"] == "alice"
        slack = vendors.seen("slack", 200)
        assert [t for r in slack for t in TYPES if f"*{t}*" in r.json["text"]] == TYPES
        assert all(b.at - a.at >= 0.9 for a, b in zip(slack, slack[1:]))        # Slack: 1 per second
        assert [r.json["type"] for r in vendors.seen("hook", 200)] == TYPES       # signed CloudEvents, in order
        mails = [message_from_bytes(m) for m in mailbox.messages]
        assert [m["X-Escalation-Type"] for m in mails] == TYPES and {m["To"] for m in mails} == {"duty@warp.example"}
        assert [v["type"] for _k, v in read(broker, setup["bus"])] == TYPES

        posts = [r.json for r in vendors.seen("am", 200)]
        ended = [p for p in posts if all("endsAt" in a for a in p)]
        assert len(ended) == 1 and {a["labels"]["alertname"] for a in ended[0]} == {
            "SlaWarning", "SlaBreached", "EscalationTriggered", "EscalationRepeated"}
        # INC-2's alert stays open: re-posted every `resend` (1 s here)
        wait_for(lambda: sum(1 for p in [r.json for r in vendors.seen("am")]
                             for a in p if a["labels"].get("ticket") == "INC-2") >= 3, 5)
        assert 'escalation_deliveries_total{kind="pagerduty",outcome="succeeded"} 6.0' in d.metrics()
    finally:
        d.stop()


def test_429_and_5xx_are_retried_400_fails_at_once_and_max_age_gives_up(broker, namespace, setup, vendors):
    vendors.script.update({"pd-flaky": [429, 500], "pd-bad": [400] * 5, "pd-down": [503] * 100})
    d = start(broker, namespace, setup, "--max-age", "3s")
    try:
        t0 = time.monotonic()
        produce(broker, setup["notifications"], [output("sla.breached", 1, "INC-3", ["pd-flaky"]),
                                                 output("sla.breached", 2, "INC-4", ["pd-bad"]),
                                                 output("sla.breached", 3, "INC-5", ["pd-down"])])
        wait_for(lambda: len(deliveries(broker, namespace)) >= 3, 20, every=0.3)
        by = _by_target(deliveries(broker, namespace))
        flaky, bad, down = by["pd-flaky"][0], by["pd-bad"][0], by["pd-down"][0]
        assert (flaky["type"], flaky["attempts"], flaky["status"]) == ("delivery.succeeded", 3, 202)
        assert (bad["type"], bad["attempts"], bad["status"]) == ("delivery.failed", 1, 400)
        assert down["type"] == "delivery.failed" and down["status"] == 503 and down["attempts"] >= 3
        tries = [r for r in vendors.seen("pd") if r.json["routing_key"] == "pd-flaky"]
        assert [r.status for r in tries] == [429, 500, 202]
        assert tries[1].at - tries[0].at >= 0.95                                 # Retry-After: 1 honoured
        assert len([r for r in vendors.seen("pd") if r.json["routing_key"] == "pd-bad"]) == 1
        assert time.monotonic() - t0 < 15
        text = d.metrics()
        assert 'escalation_deliveries_total{kind="pagerduty",outcome="failed"} 2.0' in text
        assert 'escalation_delivery_http_status_total{kind="pagerduty",status="429"} 1.0' in text
    finally:
        d.stop()


def test_a_repeated_output_in_flight_is_delivered_once_per_target(broker, namespace, setup, vendors):
    # an engine's redelivery after a restart: the same output record twice, taken in one fetch,
    # the second while the first is still being sent
    d = start(broker, namespace, setup)
    try:
        twice = output("sla.breached", 7, "INC-D", ["pd", "hook"])
        produce(broker, setup["notifications"], [twice, twice])
        wait_for(lambda: len(deliveries(broker, namespace)) >= 2, 20, every=0.3)
        time.sleep(1.0)  # a second send, if any, would be on its way by now
        assert len(vendors.seen("pd", 202)) == 1 and len(vendors.seen("hook", 200)) == 1
        records = deliveries(broker, namespace)
        assert sorted(r["key"] for r in records) == sorted(f"{twice['id']}/{t}" for t in ("pd", "hook"))
        assert 'escalation_deliveries_total{kind="pagerduty",outcome="duplicate"} 1.0' in d.metrics()
    finally:
        d.stop()


def test_a_burst_above_the_rate_limit_waits_and_nothing_is_dropped(broker, namespace, setup, vendors):
    d = start(broker, namespace, setup, "--rate-limit", "pagerduty=5/1")
    try:
        produce(broker, setup["notifications"], [output("sla.breached", i, f"INC-B{i}", ["pd"]) for i in range(25)])
        wait_for(lambda: len(vendors.seen("pd", 202)) >= 25, 20)
        seen = vendors.seen("pd", 202)
        assert sorted(r.json["dedup_key"] for r in seen) == sorted(f"acme-erp/INC-B{i}/response" for i in range(25))
        times = [r.at for r in seen]
        assert times[-1] - times[0] >= (25 - 5) / 5 - 0.3       # burst of 5, then 5 per second
        assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 10
        wait_for(lambda: len(deliveries(broker, namespace)) >= 25, 10, every=0.3)
        assert {r["type"] for r in deliveries(broker, namespace)} == {"delivery.succeeded"}
    finally:
        d.stop()


def test_kill_9_mid_stream_and_restart_delivers_everything_never_twice_what_the_log_had(
        broker, namespace, setup, vendors):
    vendors.delay = 0.1            # one lane (one dedup_key): ~10 deliveries per second
    outputs = [output("sla.warning", i, "INC-K", ["hook"]) for i in range(40)]
    d = start(broker, namespace, setup, name="first")
    try:
        produce(broker, setup["notifications"], outputs)
        wait_for(lambda: len(vendors.seen("hook")) >= 12, 20)
    finally:
        d.kill()
    logged_before = {r["output"] for r in deliveries(broker, namespace)}
    assert 0 < len(logged_before) < 40
    d2 = start(broker, namespace, setup, name="second")
    try:
        wait_for(lambda: len({r["key"] for r in deliveries(broker, namespace)}) >= 40, 20, every=0.3)
    finally:
        d2.stop()
    received: dict[str, int] = {}
    for r in vendors.seen("hook", 200):
        received[r.json["id"]] = received.get(r.json["id"], 0) + 1
    assert set(received) == {o["id"] for o in outputs}                          # every output delivered
    assert all(received[i] == 1 for i in logged_before)                         # none twice that the log had
    records = deliveries(broker, namespace)
    assert len(records) == 40 and {r["type"] for r in records} == {"delivery.succeeded"}   # one record per key
    ids = [r.json["id"] for r in vendors.seen("hook", 200)]
    assert list(dict.fromkeys(ids)) == [o["id"] for o in outputs]               # one lane: in order, across the restart


def test_receiver_turns_a_signed_pagerduty_webhook_into_notification_acknowledged(broker, namespace, tmp_path):
    secret = "pd-webhook-secret"
    log_path = tmp_path / "receive.stderr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "escalation.cli", "receive", "--broker", broker.url, "--topic-prefix", namespace.prefix,
         "--app-id", namespace.app_id, "--port", "0", "--log-format", "text"],
        stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"), cwd=tmp_path, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ESCALATION_PAGERDUTY_WEBHOOK_SECRET": secret})
    try:
        port = int(wait_for(lambda: re.search(rb"listening on http://127.0.0.1:(\d+)", log_path.read_bytes()), 20).group(1))
        body = json.dumps({"event": {"id": "01EVT", "event_type": "incident.acknowledged", "resource_type": "incident",
                                     "occurred_at": "2026-03-02T08:21:00.000Z",
                                     "agent": {"id": "PU1", "summary": "Alice", "type": "user_reference"},
                                     "data": {"id": "Q1", "type": "incident", "incident_key": DK}}}).encode()
        good = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert post(port, "/pagerduty", body, {"X-PagerDuty-Signature": good}) == 202
        assert post(port, "/pagerduty", body, {"X-PagerDuty-Signature": "v1=" + "0" * 64}) == 401
        assert post(port, "/pagerduty", body + b" ", {"X-PagerDuty-Signature": good}) == 401
        assert post(port, "/pagerduty", body, {}) == 401
        assert post(port, "/ack", json.dumps({"dedup_key": DK, "by": "bob"}).encode(), {}) == 202
        events = wait_for(lambda: (got := read(broker, f"{namespace.prefix}tickets")) and len(got) >= 2 and got, 10)
        assert len(events) == 2 and {k for k, _v in events} == {b"INC-1"}
        pd = next(v for _k, v in events if v["source"] == "pagerduty")
        assert {k: pd[k] for k in ("type", "time", "ticket", "dedup_key", "by")} == {
            "type": "notification.acknowledged", "time": "2026-03-02T08:21:00+00:00", "ticket": "INC-1",
            "dedup_key": DK, "by": "Alice"}
        assert secret.encode() not in log_path.read_bytes()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def post(port: int, path: str, body: bytes, headers: dict) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        return urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as err:
        return err.code


# --- the core's real outputs through the deliverer (DESIGN.md §11, §12) -----------------------------

VENDOR_TARGETS = ["pd", "og", "chat", "hook", "mail", "am"]


def _example_with_local_targets(setup, vendors) -> Path:
    """The bundled agreement with the local vendors as targets of every level; the Kafka target
    writes to a topic that exists here (Tansu does not create one on produce)."""
    from ruamel.yaml import YAML

    from escalation.paths import EXAMPLE_AGREEMENT

    yaml = YAML(typ="safe")
    data = yaml.load(EXAMPLE_AGREEMENT.read_text())
    data["notification_targets"].update({
        "pd": {"kind": "pagerduty", "routing_key_env": "PD_KEY"},
        "og": {"kind": "opsgenie", "api_key_env": "OG_KEY", "responders": [{"type": "team", "name": "ops"}]},
        "chat": {"kind": "slack", "webhook_url_env": "SLACK_URL"},
        "hook": {"kind": "webhook", "url": vendors.url("/hook"), "secret_env": "HOOK_SECRET"},
        "mail": {"kind": "email", "address": "oncall@warp.example"},
        "am": {"kind": "alertmanager", "url_env": "AM_URL", "resend": "1m"}})
    data["notification_targets"]["service-owner"]["topic"] = setup["bus"]
    for policy in data["escalation"]:
        for level in policy["levels"]:
            level["notify"] += VENDOR_TARGETS
    path = setup["tmp"] / "agreement.yaml"
    with path.open("w") as f:
        yaml.dump(data, f)
    return path


def _replayed_notifications(agreement: Path, tmp: Path) -> list[dict]:
    """`escalation replay` of the bundled events: its outputs bound for the notifications topic."""
    from escalation.core.outputs import NOTIFICATIONS, topic_for
    from escalation.paths import EXAMPLE_EVENTS

    out = tmp / "outputs.jsonl"
    subprocess.run([sys.executable, "-m", "escalation.cli", "replay", "--agreements", str(agreement), "--events",
                    str(EXAMPLE_EVENTS), "--until", "2026-03-03T12:00:00Z", "--out", str(out)],
                   check=True, capture_output=True, cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT)})
    outputs = [json.loads(line) for line in out.read_text().splitlines()]
    return [o for o in outputs if topic_for(o["type"]) == NOTIFICATIONS]


def _for(outputs: list[dict], target: str, types=None) -> list[dict]:
    """The outputs a target must act on, in output order."""
    from escalation.delivery.actions import action_of

    return [o for o in outputs if target in {r["name"] for r in o["data"]["recipients"]}
            and (types is None or o["type"] in types) and action_of(o) is not None]


def test_the_cores_outputs_for_the_bundled_example_reach_every_vendor_as_section_12_says(
        broker, namespace, setup, vendors, mailbox):
    from escalation.delivery.actions import action_of

    outputs = _replayed_notifications(_example_with_local_targets(setup, vendors), setup["tmp"])
    lifecycle = [(o["type"], o["data"]["dedup_key"]) for o in outputs if o["data"]["dedup_key"] == DK]
    assert [t for t, _ in lifecycle][-3:] == ["escalation.triggered", "escalation.acknowledged", "escalation.resolved"]
    d = start(broker, namespace, setup)
    try:
        produce(broker, setup["notifications"], outputs)
        wanted = sum(len({r["name"] for r in o["data"]["recipients"]} & set(VENDOR_TARGETS)) for o in outputs)
        wait_for(lambda: len([r for r in deliveries(broker, namespace) if r["target"] in VENDOR_TARGETS]) >= wanted,
                 40, every=0.5)
    finally:
        d.stop()
    records = [r for r in deliveries(broker, namespace) if r["target"] in VENDOR_TARGETS]
    assert len({r["key"] for r in records}) == len(records) == wanted                  # once per (output, target)
    assert all(r["type"] == "delivery.succeeded" for r in records), [r for r in records if r["type"] != "delivery.succeeded"]
    _check_pagerduty(_for(outputs, "pd"), [r.json for r in vendors.seen("pd")])
    _check_opsgenie(_for(outputs, "og"), vendors.seen("og"))
    _check_alertmanager(_for(outputs, "am"), [r.json for r in vendors.seen("am")])
    hooks = vendors.seen("hook")
    assert all(r.status == 200 for r in hooks)                                         # every body signed
    assert [r.json["id"] for r in hooks if r.json["data"]["dedup_key"] == DK] == [
        o["id"] for o in _for(outputs, "hook") if o["data"]["dedup_key"] == DK]
    slack = vendors.seen("slack", 200)
    assert sorted(t for r in slack for t in [r.json["text"].split("*")[1]]) == sorted(o["type"] for o in _for(outputs, "chat"))
    mails = [message_from_bytes(m) for m in mailbox.messages if b"oncall@warp.example" in m]
    assert sorted(m["Message-ID"] for m in mails) == sorted(f"<{o['id']}.mail@escalation>" for o in _for(outputs, "mail"))
    assert {action_of(o) for o in outputs} == {"trigger", "acknowledge", "resolve"}


def _check_pagerduty(outputs: list[dict], bodies: list[dict]) -> None:
    """One Events v2 request per output, in order per dedup_key, every field as DESIGN.md §12 says."""
    action = {"escalation.acknowledged": "acknowledge", "escalation.resolved": "resolve"}
    assert len(bodies) == len(outputs)
    for key in {o["data"]["dedup_key"] for o in outputs}:
        mine = [o for o in outputs if o["data"]["dedup_key"] == key]
        got = [b for b in bodies if b["dedup_key"] == key]
        assert [b["event_action"] for b in got] == [action.get(o["type"], "trigger") for o in mine]
        for o, b in zip(mine, got):
            assert b["routing_key"] == "pd-key"
            if b["event_action"] != "trigger":
                continue
            data = o["data"]
            assert b["payload"] == {
                "summary": data["summary"], "source": f"acme-erp/{data['service']}", "severity": data["severity"],
                "timestamp": o["time"], "component": data["service"], "group": "acme-erp", "class": o["type"],
                "custom_details": data}
    assert [b["event_action"] for b in bodies if b["dedup_key"] == DK] == ["trigger", "acknowledge", "resolve"]


def _check_opsgenie(outputs: list[dict], seen) -> None:
    """Create with alias = dedup_key, then acknowledge and close by alias (Opsgenie Alert API)."""
    from urllib.parse import quote

    assert len(seen) == len(outputs) and all(r.status == 202 for r in seen)
    alias = quote(DK, safe="")
    mine = [r for r in seen if (r.json.get("alias") == DK) or f"/alerts/{alias}/" in r.path]
    assert [r.path.split("?")[0].rsplit("/", 1)[-1] for r in mine] == ["alerts", "acknowledge", "close"]
    create = mine[0].json
    assert create["priority"] == "P2" and len(create["message"]) <= 130 and create["responders"] == [
        {"type": "team", "name": "ops"}]
    assert mine[1].json["user"] == "alice" and all(r.path.endswith("?identifierType=alias") for r in mine[1:])
    priorities = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}
    creates = [r.json for r in seen if r.path.endswith("/v2/alerts")]
    assert sorted(c["priority"] for c in creates) == sorted(
        priorities[o["data"]["severity"]] for o in outputs if o["type"] in ("escalation.triggered", "escalation.repeated"))


def _check_alertmanager(outputs: list[dict], posts: list[list[dict]]) -> None:
    """The trigger's alert starts at its time; the resolve posts the same labels with endsAt = its time."""
    trig, ack, res = [o for o in outputs if o["data"]["dedup_key"] == DK]
    mine = [p for p in posts if any(a["labels"]["dedup_key"] == DK for a in p)]
    assert len(mine) >= 3
    first, acked, ended = mine[0], mine[1], mine[-1]
    [alert] = first
    assert alert["labels"] == {"alertname": "EscalationTriggered", "agreement": "acme-erp", "ticket": "INC-1",
                               "clock": "response", "severity": "error", "dedup_key": DK}
    assert alert["startsAt"] == trig["time"] and alert["annotations"]["summary"] == trig["data"]["summary"]
    assert json.loads(alert["annotations"]["explain"]) == trig["data"]["explain"]
    assert acked[0]["annotations"]["acknowledged_by"] == "alice"
    assert [a["labels"] for a in ended] == [alert["labels"]] and ended[0]["endsAt"] == res["time"]
    assert ack["time"] <= res["time"]
