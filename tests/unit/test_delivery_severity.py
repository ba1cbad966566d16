"""Delivery's on-call severity (DESIGN.md §4, §12): SLO burn-rate outputs carry the rule's
``page``/``ticket`` in ``data.severity`` and the core's ``notification_severity``; every vendor
mapping sees one of critical/error/warning/info, decided in ``actions.severity_of``."""

from __future__ import annotations

import orjson
import pytest
from pydantic import TypeAdapter

from escalation.agreement.targets import NotificationTarget
from escalation.delivery.actions import SEVERITIES, severity_of
from escalation.delivery.plan import Endpoints, plan

TARGET = TypeAdapter(NotificationTarget)
ENV = {"PD_KEY": "pd-routing-key-1", "AM_URL": "http://127.0.0.1:2"}
EP = Endpoints(pagerduty_url="http://pd.test/v2/enqueue", opsgenie_url="http://og.test", smtp_from="esc@test")


def burn(**data) -> dict:
    base = {"agreement": "acme", "service": "erp-prod", "slo": "erp-availability", "state": "firing",
            "dedup_key": "acme/erp-availability/burn-rate/page-1", "summary": "burning",
            "recipients": [{"name": "am"}]}
    return {"specversion": "1.0", "id": "b-1", "source": "escalation/acme@1", "type": "slo.burn_rate",
            "subject": "erp-prod", "time": "2026-03-02T08:15:00+00:00", "data": {**base, **data}}


@pytest.mark.parametrize("data, expected", [
    ({"severity": "page", "notification_severity": "critical"}, "critical"),
    ({"severity": "ticket", "notification_severity": "warning"}, "warning"),
    ({"severity": "page"}, "critical"),                     # written before notification_severity existed
    ({"severity": "ticket"}, "warning"),
    ({"severity": "page", "notification_severity": "error"}, "error"),   # the output's own word wins
    ({"severity": "page", "notification_severity": "loud"}, "critical"),  # an unknown one does not
    ({"severity": "error"}, "error"),                       # SLA outputs: already an on-call severity
    ({"severity": "shrug"}, "info"),
    ({}, "info"),                                           # acknowledged / resolved carry none
])
def test_severity_of(data, expected):
    assert severity_of(burn(**data)) == expected
    assert expected in SEVERITIES


def test_alertmanager_and_pagerduty_get_the_mapped_severity():
    out = burn(severity="page", notification_severity="critical")
    am = plan(out, None, "am", TARGET.validate_python({"kind": "alertmanager", "url_env": "AM_URL"}), ENV, EP)
    (alert,) = orjson.loads(am.requests[0].body)
    assert alert["labels"]["severity"] == "critical"
    pd = plan(out, b"erp-prod", "pd", TARGET.validate_python({"kind": "pagerduty", "routing_key_env": "PD_KEY"}),
              ENV, EP)
    assert orjson.loads(pd.requests[0].body)["payload"]["severity"] == "critical"
