"""SLO alerts (DESIGN.md §12): an SLO's ``notify`` targets are the recipients of its
``slo.burn_rate`` outputs, firing and clearing alike, under one dedup_key; unknown names are
agreement errors."""

from __future__ import annotations

from datetime import timedelta

from escalation.agreement.models import Agreement
from escalation.agreement.references import check_references
from tests.helpers import agreement_dict
from tests.unit.test_slo_support import Metrics, of, run, slo, variant

RULE = [{"long_window": "10m", "short_window": "5m", "factor": 2, "severity": "page"}]


def test_burn_rate_outputs_carry_the_slo_notify_targets_and_clear_under_the_same_key():
    reg = variant(slos=[slo(objective=90.0, burn_rate_alerts=RULE, notify=["duty-manager", "service-owner"])])
    lines = (Metrics().series("2026-03-02T09:00", "2026-03-02T09:05", timedelta(minutes=1), 0, 100)
             .series("2026-03-02T09:05", "2026-03-02T09:30", timedelta(minutes=1), 100, 100))
    outputs, rejects, _ = run(lines, reg=reg)
    burns = of(outputs, "slo.burn_rate")
    assert not rejects and [b["data"]["state"] for b in burns] == ["firing", "resolved"]
    assert burns[0]["data"]["dedup_key"] == burns[1]["data"]["dedup_key"]
    for b in burns:
        assert b["data"]["recipients"] == [
            {"name": "duty-manager", "kind": "email", "address": "duty@warp.example"},
            {"name": "service-owner", "kind": "kafka", "topic": "notifications.service-owner"}]


def test_without_notify_burn_rate_outputs_have_no_recipients():
    reg = variant(slos=[slo(objective=90.0, burn_rate_alerts=RULE)])
    outputs, _, _ = run(Metrics().series("2026-03-02T09:00", "2026-03-02T09:05", timedelta(minutes=1), 0, 100),
                        reg=reg)
    assert [b["data"]["recipients"] for b in of(outputs, "slo.burn_rate")] == [[]]


def test_an_unknown_notify_target_is_an_agreement_error():
    agreement = Agreement.model_validate(agreement_dict(slos=[slo(notify=["duty-manager", "nobody"])]))
    problems = list(check_references(agreement))
    assert len(problems) == 1 and problems[0][0] == ("slos", 0, "notify") and "'nobody'" in problems[0][1]
