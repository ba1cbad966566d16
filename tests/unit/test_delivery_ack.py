"""Acknowledgements in (DESIGN.md §11, §12): signatures, payload mapping, deterministic ids."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

import orjson
import pytest

from escalation.delivery.ack import (AckRefused, Ignored, from_opsgenie, from_pagerduty, from_plain, ticket_of,
                                     verify_pagerduty)

NOW = datetime(2026, 3, 2, 8, 21, tzinfo=timezone.utc)


def pd_payload(event_type="incident.acknowledged", key="acme-erp/INC-1/response", id_="01DEV"):
    return {"event": {"id": id_, "event_type": event_type, "resource_type": "incident",
                      "occurred_at": "2026-03-02T08:21:00.000Z", "agent": {"id": "PUSER", "summary": "Alice",
                                                                           "type": "user_reference"},
                      "data": {"id": "Q1", "type": "incident", "incident_key": key, "status": "acknowledged"}}}


@pytest.mark.parametrize("key, ticket", [("acme-erp/INC-1/response", "INC-1"), ("a/team/INC-2/resolution", "team/INC-2")])
def test_ticket_from_dedup_key(key, ticket):
    assert ticket_of(key) == ticket


@pytest.mark.parametrize("key", ["INC-1", "a/b", "acme/erp-availability/burn-rate/page-1", "a//c"])
def test_refused_dedup_keys(key):
    with pytest.raises(AckRefused) as err:
        ticket_of(key)
    assert err.value.status == 422


def test_pagerduty_signature():
    body = orjson.dumps(pd_payload())
    good = "v1=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    verify_pagerduty(body, good, "s3cret")
    verify_pagerduty(body, "v1=00ff, " + good, "s3cret")          # rotation: any of several
    for bad in (None, "", "v1=00ff", good.replace("v1=", "v0="), "v1=" + "0" * 64):
        with pytest.raises(AckRefused) as err:
            verify_pagerduty(body, bad, "s3cret")
        assert err.value.status == 401
    with pytest.raises(AckRefused):
        verify_pagerduty(body + b" ", good, "s3cret")


def test_pagerduty_acknowledged_becomes_the_input_event():
    event = from_pagerduty(pd_payload(), NOW)
    assert {k: event[k] for k in ("type", "time", "ticket", "dedup_key", "by", "source")} == {
        "type": "notification.acknowledged", "time": "2026-03-02T08:21:00+00:00", "ticket": "INC-1",
        "dedup_key": "acme-erp/INC-1/response", "by": "Alice", "source": "pagerduty"}
    assert event["id"] == from_pagerduty(pd_payload(), NOW)["id"] != from_pagerduty(pd_payload(id_="other"), NOW)["id"]
    with pytest.raises(Ignored):
        from_pagerduty(pd_payload("incident.resolved"), NOW)


def test_opsgenie_callback():
    payload = {"action": "Acknowledge", "alert": {"alertId": "a1", "alias": "acme-erp/INC-1/response",
                                                  "username": "bob@x", "updatedAt": 1772439660000000000}}
    event = from_opsgenie(payload, NOW)
    assert (event["ticket"], event["by"], event["source"], event["time"]) == (
        "INC-1", "bob@x", "opsgenie", "2026-03-02T08:21:00+00:00")
    with pytest.raises(Ignored):
        from_opsgenie({**payload, "action": "Close"}, NOW)


def test_plain_ack_ids_depend_on_key_and_time():
    a = from_plain({"dedup_key": "acme-erp/INC-1/response", "by": "carol"}, NOW)
    assert a["id"] == from_plain({"dedup_key": "acme-erp/INC-1/response", "by": "carol"}, NOW)["id"]
    assert a["time"] == NOW.isoformat()
    for bad in ({}, {"dedup_key": "acme-erp/INC-1/response"}, {"dedup_key": "k/t/c", "by": "x", "time": "2026-03-02T08:00:00"}):
        with pytest.raises(AckRefused):
            from_plain(bad, NOW)
