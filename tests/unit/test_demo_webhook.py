"""The demo's local webhook (escalation/live/demo_hook.py) and the demo-only agreement copy.

The receiver checks signatures with its own code, so these tests sign with hmac directly and
through the deliverer's webhook mapper (the two must agree), and show a bad signature refused.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import urllib.error
import urllib.request
from datetime import date

import orjson
import pytest

from escalation.cli.common import load_registry
from escalation.core.contract.registry import Registry
from escalation.delivery.webhook import webhook_requests
from escalation.delivery.worker import DeliverConfig, Deliverer
from escalation.live.demo import still_valid
from escalation.live.demo_hook import (
    SECRET_ENV,
    TARGET,
    DemoWebhook,
    describe,
    with_demo_webhook,
)
from escalation.paths import EXAMPLE_AGREEMENT


def _event(id_: str = "o-1", type_: str = "escalation.triggered", **data) -> dict:
    return {"specversion": "1.0", "id": id_, "type": type_, "subject": "INC-1", "source": "escalation/acme-erp@3",
            "time": "2026-03-02T08:15:00+00:00",
            "data": {"dedup_key": "acme-erp/INC-1/response", "level": 1, **data}}


@pytest.fixture
def hook():
    out = io.StringIO()
    h = DemoWebhook(out).start()
    yield h, out
    h.stop()


def _post(url: str, body: bytes, headers: dict) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        return urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as err:
        return err.code


def test_a_signed_cloudevent_is_printed_once_a_repeat_is_marked_again(hook):
    h, out = hook
    assert h.url.startswith("http://127.0.0.1:")
    [req] = webhook_requests(_event(), h.url, h.secret)          # what the deliverer sends
    assert _post(req.url, req.body, dict(req.headers)) == 200
    assert _post(req.url, req.body, dict(req.headers)) == 200
    lines = out.getvalue().splitlines()
    assert lines[0] == ("  webhook <- escalation.triggered INC-1 level 1 (dedup acme-erp/INC-1/response), "
                        "signature ok")
    assert lines[1].endswith("AGAIN (2 times)") and h.seen == {"o-1": 2}


def test_a_bad_or_missing_signature_and_a_plain_json_body_are_refused(hook):
    h, out = hook
    body = orjson.dumps(_event("o-2"))
    wrong = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    ce = {"Content-Type": "application/cloudevents+json"}
    assert _post(h.url, body, {**ce, "X-Escalation-Signature": wrong}) == 401
    assert _post(h.url, body, ce) == 401
    right = "sha256=" + hmac.new(h.secret.encode(), body, hashlib.sha256).hexdigest()
    assert _post(h.url, body, {"Content-Type": "application/json", "X-Escalation-Signature": right}) == 415
    assert h.seen == {} and out.getvalue().count("refused") == 3


def test_describe_names_what_happened_to_the_alert():
    assert describe(_event(type_="escalation.acknowledged", by="alice")) == (
        "escalation.acknowledged INC-1 by alice at level 1 (dedup acme-erp/INC-1/response)")
    resolved = _event(type_="escalation.resolved", reason="clock_stopped", overrun="PT5S")
    assert describe(resolved) == ("escalation.resolved INC-1 clock_stopped, overrun PT5S "
                                  "(dedup acme-erp/INC-1/response)")


def test_the_demo_copy_adds_the_webhook_to_every_level_and_leaves_the_file_alone():
    before = EXAMPLE_AGREEMENT.read_bytes()
    registry = load_registry([EXAMPLE_AGREEMENT])
    [demo] = list(with_demo_webhook(registry, "http://127.0.0.1:1/hook"))
    target = demo.agreement.notification_targets[TARGET]
    assert (target.kind, target.url, target.secret_env) == ("webhook", "http://127.0.0.1:1/hook", SECRET_ENV)
    levels = [lv for policy in demo.agreement.escalation for lv in policy.levels]
    assert levels and all(lv.notify[-1] == TARGET and lv.notify.count(TARGET) == 1 for lv in levels)
    [original] = list(registry)
    assert TARGET not in original.agreement.notification_targets
    assert EXAMPLE_AGREEMENT.read_bytes() == before
    # applied twice: an agreement that already has the target is kept as it is
    [again] = list(with_demo_webhook(Registry([demo.agreement]), "http://127.0.0.1:2/hook"))
    assert again.agreement.notification_targets[TARGET].url == "http://127.0.0.1:1/hook"


def test_still_valid_opens_an_ended_validity_for_the_demo_only():
    registry = load_registry([EXAMPLE_AGREEMENT])
    [kept] = list(still_valid(registry, date(2026, 6, 1)))
    assert kept.agreement.validity.end == date(2026, 12, 31)
    [opened] = list(still_valid(registry, date(2027, 6, 1)))
    assert opened.agreement.validity.end is None and opened.agreement.validity.start == date(2026, 1, 1)


def test_a_deliverer_limited_to_some_targets_skips_every_other_recipient():
    config = DeliverConfig("127.0.0.1:1", "n", "d", "g", only=frozenset({TARGET}))
    d = Deliverer(config, registry=None, env={})
    assert not d._excluded(TARGET) and d._excluded("duty-manager") and d._excluded(None)
    assert not Deliverer(DeliverConfig("127.0.0.1:1", "n", "d", "g"), None, env={})._excluded("duty-manager")
