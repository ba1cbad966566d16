"""SLO attainment per period: exclusions, counted time, period boundaries, no data, late input.

Reference agreement: erp-availability on erp-prod/availability, objective 99.9, Europe/Berlin,
Sunday 02:00 local maintenance for 2h, tiers <99.9 -> 10 %, <99 -> 25 %, <95 -> 100 % of 40000,
cap 30 % = 12000 per month.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import agreement_dict, registry
from tests.unit.test_slo_support import Metrics, of, run, slo, variant

MARCH_END = "2026-03-31T22:00"     # 2026-04-01T00:00+02:00
APRIL_END = "2026-04-30T22:00"


def _figures(out: dict) -> tuple:
    d = out["data"]
    return d["period"], d["attainment"], d["good"], d["total"], d["excluded"], d["met"]


def _credits(outputs) -> list[tuple]:
    return [(o["data"]["period"], o["data"]["credit_percent"], o["data"]["amount"], o["data"]["capped"])
            for o in of(outputs, "credit.issued")]


@pytest.mark.parametrize("windows, figures, credits", [
    # With the Sunday window, the 500 failed requests of Mar 8 01:00Z-03:00Z are excluded:
    # 9950 / 10000 = 99.5 % -> 10 % of 40000 = 4000.00.
    (None, ("2026-03", 99.5, 9950.0, 10000.0, 500.0, False), [("2026-03", 10, "4000.00", False)]),
    # Without it they count: 9950 / 10500 = 94.761905 % -> 100 % = 40000.00, capped to 12000.00.
    ([], ("2026-03", 94.761905, 9950.0, 10500.0, 0.0, False), [("2026-03", 100, "12000.00", True)]),
])
def test_maintenance_exclusion_changes_the_credit_tier(windows, figures, credits):
    reg = registry() if windows is None else variant(maintenance_windows=windows)
    m = Metrics().slice("2026-03-02T00:00", "2026-03-02T10:00", 9950, 10000) \
                 .slice("2026-03-08T01:00", "2026-03-08T03:00", 0, 500)
    outputs, rejects, _ = run(m, MARCH_END, reg)
    assert not rejects
    assert [_figures(o) for o in of(outputs, "slo.attainment")] == [figures]
    assert _credits(outputs) == credits


def test_slice_half_inside_a_maintenance_window():
    # [02:00Z, 04:00Z) on Mar 8: 02:00-03:00Z is in the window -> 600 of 1200 excluded, 600 counted.
    m = Metrics().slice("2026-03-08T02:00", "2026-03-08T04:00", 0, 1200).slice("2026-03-09T00:00", "2026-03-09T01:00", 9400, 9400)
    outputs, _, _ = run(m, MARCH_END)
    # 9400 / (9400 + 600) = 94.0 %
    assert _figures(of(outputs, "slo.attainment")[0]) == ("2026-03", 94.0, 9400.0, 10000.0, 600.0, False)


def test_counted_time_only_inside_open_hours():
    reg = variant(slos=[slo(counted_time="business", burn_rate_alerts=None)])
    m = Metrics() \
        .slice("2026-03-02T06:00", "2026-03-02T08:00", 100, 200) \
        .slice("2026-03-07T10:00", "2026-03-07T11:00", 0, 100)
    # Mon 07:00-09:00 CET: only 08:00-09:00 counts -> good 50 of 100. Saturday: nothing counts.
    outputs, _, _ = run(m, MARCH_END, reg)
    out = of(outputs, "slo.attainment")[0]["data"]
    assert (out["attainment"], out["good"], out["total"], out["uncounted"]) == (50.0, 50.0, 100.0, 200.0)


@pytest.mark.parametrize("start, end, first, second", [
    # Berlin March ends at 22:00Z (CEST): [21:00Z, 23:00Z) is half March, half April.
    ("2026-03-31T21:00", "2026-03-31T23:00", ("2026-03", 50.0, 100.0), ("2026-04", 50.0, 100.0)),
    # Berlin February ends at 23:00Z (CET): [22:30Z, 23:30Z) likewise.
    ("2026-02-28T22:30", "2026-02-28T23:30", ("2026-02", 50.0, 100.0), ("2026-03", 50.0, 100.0)),
    # Three quarters before the boundary: [21:15Z, 22:15Z) -> 75 / 25.
    ("2026-03-31T21:15", "2026-03-31T22:15", ("2026-03", 75.0, 150.0), ("2026-04", 25.0, 50.0)),
])
def test_slice_across_a_local_month_boundary_is_split(start, end, first, second):
    # A grace of 1h lets the straddling slice arrive before the close (closes at end + 1h).
    m = Metrics().slice(start, end, 100 * (first[2] + second[2]) / 200, first[2] + second[2])
    outputs, rejects, _ = run(m, "2026-05-01T00:00", grace=timedelta(hours=1))
    assert not rejects
    got = [(o["data"]["period"], o["data"]["good"], o["data"]["total"]) for o in of(outputs, "slo.attainment")][:2]
    assert got == [first, second]


def test_close_happens_at_month_end_plus_grace_and_outputs_carry_the_month_end():
    m = Metrics().slice("2026-03-10T00:00", "2026-03-10T01:00", 10, 10)
    # March (CEST end 22:00Z) closes at 22:30Z: not yet at 22:29Z; April not at all.
    outputs, _, _ = run(m, "2026-03-31T22:29", grace=timedelta(minutes=30))
    assert outputs == []
    outputs, _, _ = run(m, "2026-03-31T22:30", grace=timedelta(minutes=30))
    # the time is the instant the period was over (DESIGN.md §4), not the close after the grace
    assert [(o["type"], o["time"]) for o in outputs] == [
        ("slo.attainment", "2026-03-31T22:00:00+00:00"), ("report.published", "2026-03-31T22:00:00+00:00")]


def test_until_exactly_at_the_period_end_closes_it():
    m = Metrics().slice("2026-03-31T21:55", "2026-03-31T22:00", 10, 10)
    outputs, _, _ = run(m, MARCH_END)
    assert [o["type"] for o in outputs] == ["slo.attainment", "report.published"]
    outputs, _, _ = run(m, "2026-03-31T21:59")
    assert outputs == []


def test_slice_across_the_boundary_is_split_in_replay():
    # The slice 21:00-23:00Z straddles the Berlin month end (22:00Z) and is counted before March
    # closes: half of it (5 good of 10) goes to March, so March has 15 good of 20 = 75 %.
    m = Metrics().slice("2026-03-31T20:00", "2026-03-31T21:00", 10, 10) \
                 .slice("2026-03-31T21:00", "2026-03-31T23:00", 10, 20)
    outputs, rejects, _ = run(m, MARCH_END)
    assert rejects == []
    assert [(o["data"]["period"], o["data"]["attainment"]) for o in of(outputs, "slo.attainment")] == [("2026-03", 75.0)]
    assert [o["time"] for o in of(outputs, "slo.attainment")] == ["2026-03-31T22:00:00+00:00"]


def test_late_slice_after_close_is_rejected_and_changes_nothing():
    m = Metrics().slice("2026-03-30T00:00", "2026-03-30T01:00", 999, 1000) \
                 .slice("2026-04-01T00:00", "2026-04-01T01:00", 1000, 1000) \
                 .slice("2026-03-30T01:00", "2026-03-30T02:00", 0, 1000)
    outputs, rejects, _ = run(m, APRIL_END)
    # Line 3 is for March, closed when the April slice moved the clock past 2026-03-31T22:00Z.
    assert [r["line"] for r in rejects] == [3]
    assert "period closed" in rejects[0]["reason"] and "escalation replay" in rejects[0]["reason"]
    assert [(o["data"]["period"], o["data"]["attainment"]) for o in of(outputs, "slo.attainment")] == [
        ("2026-03", 99.9), ("2026-04", 100.0)]


def test_first_slice_of_a_period_the_clock_already_passed_is_late():
    # A ticket moves the clock into April; erp-prod has no SLO state yet, March is still over.
    m = Metrics().ticket("opened", "2026-04-02T09:00", "INC-1", agreement="acme-erp", service="erp-prod", priority="P4") \
                 .slice("2026-03-30T00:00", "2026-03-30T01:00", 10, 10)
    _, rejects, _ = run(m)
    assert "period closed" in rejects[0]["reason"]


def test_duplicate_ids_are_ignored():
    m = Metrics().slice("2026-03-10T00:00", "2026-03-10T01:00", 990, 1000, id_="same") \
                 .slice("2026-03-10T00:00", "2026-03-10T01:00", 990, 1000, id_="same")
    outputs, rejects, engine = run(m, MARCH_END)
    assert not rejects
    assert _figures(of(outputs, "slo.attainment")[0])[1:4] == (99.0, 990.0, 1000.0)


@pytest.mark.parametrize("service, sli, reason", [
    # erp-test has no SLO.
    ("erp-test", "availability", "no SLO covers service 'erp-test' sli 'availability'"),
    # erp-prod has no latency SLO.
    ("erp-prod", "latency", "no SLO covers service 'erp-prod' sli 'latency'"),
])
def test_metric_nobody_covers_is_rejected(service, sli, reason):
    _, rejects, _ = run(Metrics(service, sli).slice("2026-03-10T00:00", "2026-03-10T01:00", 1, 1))
    assert rejects[0]["reason"] == reason


def test_metric_outside_the_validity_is_rejected():
    # The agreement is valid 2026-01-01 .. 2026-12-31 (Berlin).
    _, rejects, _ = run(Metrics().slice("2027-01-05T00:00", "2027-01-05T01:00", 1, 1))
    assert rejects[0]["reason"].startswith("no SLO covers service 'erp-prod' sli 'availability' at 2027-01-05")


def test_no_data_periods_give_no_credit():
    # March has only a slice inside the maintenance window; April has nothing at all.
    m = Metrics().slice("2026-03-08T01:00", "2026-03-08T03:00", 0, 500)
    outputs, _, _ = run(m, APRIL_END)
    assert [(o["type"], o["data"].get("period")) for o in outputs] == [
        ("slo.no_data", "2026-03"), ("report.published", "2026-03"),
        ("slo.no_data", "2026-04"), ("report.published", "2026-04")]
    assert of(outputs, "slo.no_data")[0]["data"]["excluded"] == 500.0


def test_every_agreement_with_the_service_receives_the_slice():
    other = agreement_dict(id="globex-erp", slos=[slo(objective=99.0)],
                           remedies=[{"id": "c", "kind": "tiered_credit", "slo": "erp-availability", "basis": "fees.monthly",
                                      "tiers": [{"below": 99.0, "credit_percent": 5}]}])
    m = Metrics().slice("2026-03-10T00:00", "2026-03-10T01:00", 985, 1000)
    outputs, _, _ = run(m, MARCH_END, registry(agreement_dict(), other))
    # 98.5 %: acme-erp tier <99 -> 25 % = 10000.00; globex-erp tier <99 -> 5 % = 2000.00.
    assert [(o["data"]["agreement"], o["data"]["amount"]) for o in of(outputs, "credit.issued")] == [
        ("acme-erp", "10000.00"), ("globex-erp", "2000.00")]
    assert len(of(outputs, "slo.attainment")) == 2


def test_attainment_output_fields_and_stable_ids():
    m = Metrics().slice("2026-03-10T00:00", "2026-03-10T01:00", 999, 1000)
    first, _, _ = run(m, MARCH_END)
    again, _, _ = run(m, MARCH_END)
    out = of(first, "slo.attainment")[0]
    assert out["subject"] == "erp-prod" and out["time"] == "2026-03-31T22:00:00+00:00"
    assert out["data"]["period_start"] == "2026-02-28T23:00:00+00:00"
    assert {"agreement", "slo", "period", "attainment", "good", "total", "excluded", "objective", "met"} <= set(out["data"])
    assert [o["id"] for o in first] == [o["id"] for o in again]


def test_rejected_slice_changes_no_state():
    m = Metrics().slice("2026-03-30T00:00", "2026-03-30T01:00", 999, 1000) \
                 .slice("2026-04-01T00:00", "2026-04-01T01:00", 1000, 1000)
    _, _, engine = run(m)
    before = engine.snapshot()
    _, rejects, _ = run(Metrics().slice("2026-03-30T01:00", "2026-03-30T02:00", 0, 1000, id_="late"), engine=engine)
    assert "period closed" in rejects[0]["reason"]
    assert engine.snapshot() == before


def test_state_is_grouped_by_service_for_the_live_table():
    _, _, engine = run(Metrics().slice("2026-03-10T00:00", "2026-03-10T01:00", 1, 1))
    state = engine.metrics.to_dict()
    assert list(state["services"]) == ["erp-prod"]
    assert list(state["services"]["erp-prod"]["slos"]["acme-erp"]) == ["erp-availability"]
    assert len(state["services"]["erp-prod"]["streams"]["availability"]["order"]) == 1
