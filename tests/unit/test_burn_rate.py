"""Burn-rate alerts: google-default rules firing and clearing at hand-computed instants.

Objective 99.9 -> error budget 0.1 %; burn rate = error ratio / 0.001. Scenario: 1-minute slices of
1000 requests from 2026-03-10T00:00Z, all good except a full outage 06:00Z-06:10Z (T = 06:00Z).
Before T there are 360 good minutes (no older data: windows hold what exists).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from escalation.agreement.models import Slo
from escalation.core.services.burn_rate import GOOGLE_DEFAULT, compile_burn
from tests.unit.test_slo_support import Metrics, of, run, slo, variant

MIN = timedelta(minutes=1)


def _outage_run():
    m = Metrics().series("2026-03-10T00:00", "2026-03-10T06:00", MIN, 1000, 1000) \
                 .series("2026-03-10T06:00", "2026-03-10T06:10", MIN, 0, 1000) \
                 .series("2026-03-10T06:10", "2026-03-10T12:40", MIN, 1000, 1000)
    return run(m)


def _rows(outputs):
    return [(o["time"][11:16], o["data"]["window"], o["data"]["short_window"], o["data"]["severity"], o["data"]["state"])
            for o in of(outputs, "slo.burn_rate")]


def test_google_default_rules_fire_and_clear_at_the_right_instants():
    outputs, rejects, _ = _outage_run()
    assert not rejects
    assert _rows(outputs) == [
        # T+1m: 1h = 1/60 bad = 16.7x > 14.4 and 5m = 1/5 = 200x -> page.
        ("06:01", "PT1H", "PT5M", "page", "firing"),
        # T+1m: 3d = 1/361 = 2.77x > 1 and 6h likewise -> ticket.
        ("06:01", "PT72H", "PT6H", "ticket", "firing"),
        # T+2m: 1d = 2/362 = 5.5x > 3 (at T+1m 2.77x was not) and 2h = 2/120 = 16.7x -> ticket.
        ("06:02", "PT24H", "PT2H", "ticket", "firing"),
        # T+3m: 6h = 3/363 = 8.3x > 6 (at T+2m 5.5x was not) and 30m = 3/30 = 100x -> page.
        ("06:03", "PT6H", "PT30M", "page", "firing"),
        # The short windows empty 5m, 30m, 2h and 6h after the outage's last bad minute (06:10).
        ("06:15", "PT1H", "PT5M", "page", "resolved"),
        ("06:40", "PT6H", "PT30M", "page", "resolved"),
        ("08:10", "PT24H", "PT2H", "ticket", "resolved"),
        ("12:10", "PT72H", "PT6H", "ticket", "resolved"),
    ]


def test_burn_rate_output_fields():
    outputs, _, _ = _outage_run()
    first, *rest = of(outputs, "slo.burn_rate")
    d = first["data"]
    assert (d["service"], d["slo"], d["agreement"], d["severity"], d["notification_severity"]) == (
        "erp-prod", "erp-availability", "acme-erp", "page", "critical")
    assert (d["rate"], d["window"], d["short_rate"], d["short_window"], d["factor"]) == (16.6667, "PT1H", 200.0, "PT5M", 14.4)
    assert first["subject"] == "erp-prod" and first["time"] == "2026-03-10T06:01:00+00:00"
    resolved = next(o for o in rest if o["data"]["rule"] == d["rule"])
    assert resolved["data"]["dedup_key"] == d["dedup_key"] and resolved["id"] != first["id"]
    again, _, _ = _outage_run()
    assert [o["id"] for o in of(again, "slo.burn_rate")] == [o["id"] for o in of(outputs, "slo.burn_rate")]


def test_custom_rules():
    rules = [{"long_window": "30m", "short_window": "5m", "factor": 2, "severity": "ticket"}]
    reg = variant(slos=[slo(burn_rate_alerts=rules)])
    # 0.3 % errors = 3x from 08:00 to 08:20, then clean.
    m = Metrics().series("2026-03-10T08:00", "2026-03-10T08:20", MIN, 997, 1000) \
                 .series("2026-03-10T08:20", "2026-03-10T08:40", MIN, 1000, 1000)
    outputs, _, _ = run(m, reg=reg)
    # Fires with the first slice (3x on both windows). At 08:21 the 5m window holds 4 bad minutes
    # of 5 = 2.4x; at 08:22 3 of 5 = 1.8x <= 2: cleared, though the 30m window is still 2.7x.
    assert _rows(outputs) == [("08:01", "PT30M", "PT5M", "ticket", "firing"),
                              ("08:22", "PT30M", "PT5M", "ticket", "resolved")]


def test_maintenance_minutes_do_not_burn_budget():
    # A full outage inside the Sunday window (Mar 8 01:00Z-03:00Z) raises nothing.
    m = Metrics().series("2026-03-08T00:00", "2026-03-08T01:00", MIN, 1000, 1000) \
                 .series("2026-03-08T01:00", "2026-03-08T03:00", MIN, 0, 1000) \
                 .series("2026-03-08T03:00", "2026-03-08T04:00", MIN, 1000, 1000)
    outputs, _, _ = run(m)
    assert of(outputs, "slo.burn_rate") == []


def test_no_alerts_without_rules():
    reg = variant(slos=[slo(burn_rate_alerts=None)])
    m = Metrics().series("2026-03-10T06:00", "2026-03-10T06:10", MIN, 0, 1000)
    outputs, _, _ = run(m, reg=reg)
    assert of(outputs, "slo.burn_rate") == []


def test_state_is_bounded_by_the_rule_windows():
    # 1-minute buckets for windows up to 2h (121), 5-minute for up to 3d (865), whatever the traffic.
    spec = compile_burn(Slo(id="s", service="x", sli="y", objective=99.9, burn_rate_alerts="google-default"), "slos[0]", None)
    assert spec.rings == ((60_000_000, 121), (300_000_000, 865))
    _, _, engine = _outage_run()
    state = engine.metrics.slos[("acme-erp", "erp-availability")]
    assert [len(a) for a in state.burn.good] == [121, 865]


@pytest.mark.parametrize("window, rings", [
    # rolling_30d adds a 1-hour ring of 721 buckets for the error budget.
    ("rolling_30d", ((60_000_000, 121), (300_000_000, 865), (3_600_000_000, 721))),
    ("calendar_month", ((60_000_000, 121), (300_000_000, 865))),
])
def test_rolling_window_adds_a_budget_ring(window, rings):
    s = Slo(id="s", service="x", sli="y", objective=99.9, window=window, burn_rate_alerts="google-default")
    window_us = 30 * 24 * 3_600_000_000 if window != "calendar_month" else None
    assert compile_burn(s, "slos[0]", window_us).rings == rings


def test_rolling_slo_reports_its_budget_and_monthly_attainment():
    reg = variant(slos=[slo(window="rolling_30d")])
    m = Metrics().series("2026-03-10T00:00", "2026-03-10T01:00", timedelta(minutes=10), 999, 1000)
    outputs, _, _ = run(m, "2026-03-31T22:00", reg)
    d = of(outputs, "slo.attainment")[0]["data"]
    # Credits stay per calendar month; the rolling window's budget: 0.1 % bad = all of it spent.
    assert (d["period"], d["attainment"]) == ("2026-03", 99.9)
    assert d["rolling"] == {"window": "rolling_30d", "attainment": 99.9, "budget_remaining": 0.0}


def test_google_default_is_the_sre_workbook_table():
    assert [(r.long_window, r.short_window, r.factor, r.severity) for r in GOOGLE_DEFAULT] == [
        ("1h", "5m", 14.4, "page"), ("6h", "30m", 6, "page"), ("1d", "2h", 3, "ticket"), ("3d", "6h", 1, "ticket")]


def test_exactly_the_factor_does_not_fire():
    # 1 bad of 1000 = 0.1 % = exactly 1x the budget: the 1x rule needs more (float noise ignored).
    m = Metrics().series("2026-03-10T00:00", "2026-03-10T08:00", MIN, 999, 1000)
    outputs, _, _ = run(m)
    assert of(outputs, "slo.burn_rate") == []
