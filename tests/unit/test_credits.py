"""Service credits: tiers, money rounding, and the period cap shared with per-breach penalties.

Reference agreement: fees.monthly 40000.00 EUR; tiers <99.9 -> 10 %, <99 -> 25 %, <95 -> 100 %;
P1 resolution breach -> 500.00; cap 30 % of fees.monthly = 12000.00 per calendar month.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.core.services.slo import tier_for
from tests.helpers import agreement_dict
from tests.unit.test_slo_support import Metrics, of, run, variant

MARCH_END = "2026-03-31T22:00"
TIERS = agreement_dict()["remedies"][0]


def _month(good: float, total: float = 10000) -> Metrics:
    return Metrics().slice("2026-03-10T00:00", "2026-03-10T10:00", good, total)


@pytest.mark.parametrize("good, percent, amount", [
    (9950, 10, "4000.00"),     # 99.5 -> band [99, 99.9): 10 %
    (9800, 25, "10000.00"),    # 98.0 -> band [95, 99): 25 %
    (9990, None, None),        # 99.9 -> at the objective: no credit (bands are half-open)
    (9995, None, None),        # 99.95 -> above: no credit
    (9900, 10, "4000.00"),     # 99.0 exactly -> smallest below greater than 99.0 is 99.9: 10 %
    (9500, 25, "10000.00"),    # 95.0 exactly -> 25 %
    (9499, 100, "12000.00"),   # 94.99 -> 100 % = 40000.00, capped to 12000.00
    (10000, None, None),       # 100 -> no credit
])
def test_tier_table(good, percent, amount):
    outputs, _, _ = run(_month(good), MARCH_END)
    credits = of(outputs, "credit.issued")
    if percent is None:
        assert credits == []
        return
    (credit,) = credits
    d = credit["data"]
    assert (d["credit_percent"], d["amount"], d["currency"], d["period"]) == (percent, amount, "EUR", "2026-03")
    assert d["attainment"] == good / 100


def test_tier_for_picks_the_smallest_below_still_greater():
    from escalation.agreement.remedies import TieredCredit
    remedy = TieredCredit.model_validate(TIERS)
    assert [getattr(tier_for(remedy, v), "below", None) for v in (99.5, 98.0, 99.9, 94.0)] == [99.9, 99.0, None, 95.0]


def test_cap_shared_between_penalties_and_a_credit():
    # 23 P1 tickets opened on Mar 3 never resolved: 23 resolution breaches x 500 = 11500.00 of
    # the 12000.00 budget. The month closes at 98.0 % -> 25 % = 10000.00, capped to the 500.00 left.
    m = Metrics()
    for n in range(23):
        m.ticket("opened", f"2026-03-03T08:{n:02d}", f"INC-{n}", agreement="acme-erp", service="erp-prod", priority="P1")
    m.slice("2026-03-10T00:00", "2026-03-10T10:00", 9800, 10000)
    outputs, rejects, _ = run(m, MARCH_END)
    assert not rejects
    penalties = of(outputs, "penalty.assessed")
    assert [p["data"]["amount"] for p in penalties] == ["500.00"] * 23
    assert not any(p["data"]["capped"] for p in penalties)
    (credit,) = of(outputs, "credit.issued")
    d = credit["data"]
    assert (d["amount"], d["capped"], d["credit_percent"]) == ("500.00", True, 25)
    assert (d["explain"]["requested"], d["explain"]["cap_left"], d["explain"]["cap_limit"]) == ("10000.00", "0.00", "12000.00")
    (report,) = of(outputs, "report.published")
    totals = report["data"]["summary"]["totals"]
    assert (totals["penalties"], totals["credits"], totals["total"], totals["cap_left"]) == ("11500.00", "500.00", "12000.00", "0.00")
    assert report["data"]["summary"]["tickets"]["opened"]["P1"] == 23


def test_credit_after_the_budget_is_spent_is_zero_and_capped():
    # 24 breaches x 500 = 12000.00 exhaust the cap; a 10 % credit is emitted as 0.00, capped.
    m = Metrics()
    for n in range(24):
        m.ticket("opened", f"2026-03-03T08:{n:02d}", f"INC-{n}", agreement="acme-erp", service="erp-prod", priority="P1")
    m.slice("2026-03-10T00:00", "2026-03-10T10:00", 9950, 10000)
    outputs, _, _ = run(m, MARCH_END)
    assert [(c["data"]["amount"], c["data"]["capped"]) for c in of(outputs, "credit.issued")] == [("0.00", True)]


@pytest.mark.parametrize("changes, amount, capped", [
    # 100.05 x 10 % = 10.005 -> half-up to 10.01 (banker's rounding would give 10.00).
    ({"fees": {"monthly": "100.05"}, "caps": []}, "10.01", False),
    # A fixed cap of 3000.00 below the 4000.00 credit.
    ({"caps": [{"period": "calendar_month", "max_amount": "3000.00"}]}, "3000.00", True),
    # Two caps: the tightest applies (30 % = 12000 vs 2500.00).
    ({"caps": [{"max_percent_of": "fees.monthly", "percent": 30}, {"max_amount": "2500.00"}]}, "2500.00", True),
    # No caps: the full amount.
    ({"caps": []}, "4000.00", False),
])
def test_money_rounding_and_caps(changes, amount, capped):
    outputs, _, _ = run(_month(9950), MARCH_END, variant(**changes))
    assert [(c["data"]["amount"], c["data"]["capped"]) for c in of(outputs, "credit.issued")] == [(amount, capped)]


def test_fractional_credit_percent():
    remedy = {**TIERS, "tiers": [{"below": 99.9, "credit_percent": 12.5}]}
    outputs, _, _ = run(_month(9950), MARCH_END, variant(remedies=[remedy]))
    d = of(outputs, "credit.issued")[0]["data"]
    assert (d["credit_percent"], d["amount"]) == (12.5, "5000.00")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(breaches=st.integers(0, 30), good=st.integers(9000, 10000))
def test_credits_and_penalties_never_exceed_the_cap(breaches, good):
    m = Metrics()
    for n in range(breaches):
        m.ticket("opened", f"2026-03-03T08:{n:02d}", f"INC-{n}", agreement="acme-erp", service="erp-prod", priority="P1")
    m.slice("2026-03-10T00:00", "2026-03-10T10:00", good, 10000)
    outputs, _, _ = run(m, MARCH_END)
    money = [o for o in outputs if o["type"] in ("penalty.assessed", "credit.issued")]
    assert sum(Decimal(o["data"]["amount"]) for o in money) <= Decimal("12000.00")
    for o in money:
        requested = Decimal(o["data"]["explain"]["requested"])
        assert Decimal("0") <= Decimal(o["data"]["amount"]) <= requested
        assert o["data"]["capped"] == (Decimal(o["data"]["amount"]) < requested)
