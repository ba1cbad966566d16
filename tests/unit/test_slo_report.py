"""``report.published``: per agreement and calendar month, tickets, clocks, SLOs, money."""

from __future__ import annotations

from tests.unit.test_slo_support import Metrics, of, run, variant

MARCH_END = "2026-03-31T22:00"


def _march() -> Metrics:
    m = Metrics()
    # INC-1 P1 09:00Z: acknowledged after 10m (response met), never updated (update breached at
    # 09:30), resolved at 14:00 (resolution breached at 13:00: penalty 500.00).
    m.ticket("opened", "2026-03-02T09:00", "INC-1", agreement="acme-erp", service="erp-prod", priority="P1")
    m.ticket("acknowledged", "2026-03-02T09:10", "INC-1")
    # INC-2 P3 on Mon 10:00 CET: acknowledged in business hours after 1h (met), resolved after 2h (met).
    m.ticket("opened", "2026-03-02T09:00", "INC-2", agreement="acme-erp", service="erp-prod", priority="P3")
    m.ticket("acknowledged", "2026-03-02T10:00", "INC-2")
    m.ticket("resolved", "2026-03-02T11:00", "INC-2")
    m.ticket("resolved", "2026-03-02T14:00", "INC-1")
    # 99.5 % -> 10 % credit = 4000.00.
    m.slice("2026-03-10T00:00", "2026-03-10T10:00", 9950, 10000)
    return m


def test_march_report():
    outputs, rejects, _ = run(_march(), MARCH_END)
    assert not rejects
    (report,) = of(outputs, "report.published")
    assert outputs[-1] is report and report["subject"] == "acme-erp"
    assert report["time"] == "2026-03-31T22:00:00+00:00"
    d = report["data"]
    assert (d["agreement"], d["period"], d["period_start"], d["period_end"]) == (
        "acme-erp", "2026-03", "2026-02-28T23:00:00+00:00", "2026-03-31T22:00:00+00:00")
    s = d["summary"]
    assert s["tickets"] == {"opened": {"P1": 1, "P2": 0, "P3": 1, "P4": 0}, "opened_total": 2}
    assert s["clocks"]["response"]["P1"] == {"met": 1, "breached": 0}
    assert s["clocks"]["update"]["P1"] == {"met": 0, "breached": 1}
    assert s["clocks"]["resolution"]["P1"] == {"met": 0, "breached": 1}
    assert s["clocks"]["response"]["P3"] == {"met": 1, "breached": 0}
    assert s["clocks"]["resolution"]["P3"] == {"met": 1, "breached": 0}
    assert s["slos"] == [{"slo": "erp-availability", "service": "erp-prod", "attainment": 99.5, "objective": 99.9,
                          "met": False, "good": 9950.0, "total": 10000.0, "excluded": 0.0}]
    assert s["penalties"] == {"count": 1, "amount": "500.00", "capped": 0}
    assert [(c["slo"], c["amount"], c["credit_percent"]) for c in s["credits"]] == [("erp-availability", "4000.00", 10)]
    assert s["totals"] == {"penalties": "500.00", "credits": "4000.00", "total": "4500.00", "currency": "EUR",
                           "cap_limit": "12000.00", "cap_left": "7500.00"}
    assert [t["name"] for t in d["deliver_to"]] == ["service-owner", "customer-contact"]


def test_reports_continue_monthly_until_the_validity_ends():
    # Activity in March only; the agreement is valid until 2026-12-31: ten monthly reports,
    # and the SLO reports no data for April .. December.
    outputs, _, _ = run(_march(), "2027-03-01T00:00")
    assert [o["data"]["period"] for o in of(outputs, "report.published")] == [f"2026-{m:02d}" for m in range(3, 13)]
    assert [o["data"]["period"] for o in of(outputs, "slo.no_data")] == [f"2026-{m:02d}" for m in range(4, 13)]
    assert of(outputs, "report.published")[1]["data"]["summary"]["tickets"]["opened_total"] == 0


def test_no_reporting_section_no_report():
    outputs, _, _ = run(_march(), MARCH_END, variant(reporting=None))
    assert of(outputs, "report.published") == [] and len(of(outputs, "credit.issued")) == 1


def test_report_is_deterministic():
    first, _, _ = run(_march(), MARCH_END)
    again, _, _ = run(_march(), MARCH_END)
    assert of(first, "report.published") == of(again, "report.published")
