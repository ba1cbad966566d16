"""Contract terms of DESIGN.md §13, money half: percentage penalties, caps with allocation and
rolling 12 months, ticket objectives, objective credits and earn-back, with hand-computed figures.

Agreement: examples/agreements/acme-erp-contract.yaml (Europe/Berlin; fees.monthly 20000.00;
P1 resolution penalty 2.5 % = 500.00; P2 response penalty 250.00; caps: 20 % = 4000.00 a month
with allocation p1-resolution-penalty 10 % (400.00), p2-response-penalty 10 % (400.00),
p2-objective-credit 50 % (2000.00), and 2000.00 over a rolling 12 months; objective p2-resolution
at least 85 % with min_cycles 3; credit < 85 -> 5 % (1000.00), < 50 -> 15 % (3000.00); earn-back
after 2 periods at or above 85). Berlin March 2026 ends at 2026-03-31T22:00Z.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from ruamel.yaml import YAML

from escalation.agreement.models import Agreement
from escalation.core.contract.compiled import compile_agreement
from escalation.core.contract.registry import Registry
from escalation.core.engine import Engine
from escalation.core.money.caps import CapBudget, charge
from escalation.paths import EXAMPLES
from escalation.replay import replay
from tests.helpers import Events, run

CONTRACT = EXAMPLES / "agreements" / "acme-erp-contract.yaml"
BASE = YAML(typ="safe").load(CONTRACT.read_text())


def _agreement(**changes) -> Agreement:
    return Agreement.model_validate({**BASE, **changes})


def _of(outputs: list[dict], type_: str) -> list[dict]:
    return [o for o in outputs if o["type"] == type_]


def _remedy(**changes) -> list[dict]:
    remedies = [dict(r) for r in BASE["remedies"]]
    remedies[1] = {**{k: v for k, v in remedies[1].items() if k not in ("percent_of", "percent")}, **changes}
    return remedies


@pytest.mark.parametrize("form, amount, explain", [
    # 2.5 % of 20000.00 = 500.00 (the bundled remedy)
    ({"percent_of": "fees.monthly", "percent": 2.5}, "500.00", {"basis": "fees.monthly", "basis_amount": "20000.00", "percent": "2.5"}),
    # 0.125 % of 20000.00 = 25.00
    ({"percent_of": "fees.monthly", "percent": 0.125}, "25.00", {"basis": "fees.monthly", "basis_amount": "20000.00", "percent": "0.125"}),
    # 0.00125 % of 20000.00 = 0.25
    ({"percent_of": "fees.monthly", "percent": 0.00125}, "0.25", {"basis": "fees.monthly", "basis_amount": "20000.00", "percent": "0.00125"}),
    # a fixed amount says no basis
    ({"amount": "123.45"}, "123.45", {}),
])
def test_percentage_penalties(form, amount, explain):
    # one P1 resolution breach at 13:00 local; no caps, so nothing is reduced
    reg = Registry([_agreement(remedies=_remedy(**form), caps=[])])
    events = Events().open("2026-03-10T09:00:00+01:00", "P1", "T-1", agreement="acme-erp-contract", service="s4-prod")
    outputs, _, _ = run(events, until="2026-03-10T13:00:00+00:00", reg=reg)
    (p,) = _of(outputs, "penalty.assessed")
    assert (p["time"], p["data"]["amount"], p["data"]["capped"]) == ("2026-03-10T12:00:00+00:00", amount, False)
    assert {k: p["data"]["explain"][k] for k in explain} == explain
    assert "basis" in p["data"]["explain"] or not explain


CAPS = BASE["caps"]


@pytest.mark.parametrize("caps, bookings, granted", [
    # the bundled caps: P1 penalties share 400.00 a month (10 % of 4000.00): 300 + 100, then 0
    (CAPS, [("2026-03", "p1-resolution-penalty", "300"), ("2026-03", "p1-resolution-penalty", "300"),
            ("2026-03", "p1-resolution-penalty", "300")], ["300.00", "100.00", "0.00"]),
    # allocations are per remedy: the P2 penalty still has its own 400.00 after P1 used its share
    (CAPS, [("2026-03", "p1-resolution-penalty", "500"), ("2026-03", "p2-response-penalty", "250"),
            ("2026-03", "p2-response-penalty", "250")], ["400.00", "250.00", "150.00"]),
    # the rolling 2000.00: 1000 credit in March + 400 + 400 penalties = 1800; April's 400 gets 200
    (CAPS, [("2026-03", "p2-objective-credit", "1000"), ("2026-03", "p1-resolution-penalty", "400"),
            ("2026-03", "p2-response-penalty", "400"), ("2026-04", "p1-resolution-penalty", "400")],
     ["1000.00", "400.00", "400.00", "200.00"]),
    # 12 months ending with 2027-02 start at 2026-03 (March 2026 spent all 1000.00: 0.00 left);
    # those ending with 2027-03 start at 2026-04, so March 2026 no longer counts: 800.00 granted
    ([{"period": "rolling_12_months", "max_amount": "1000.00"}],
     [("2026-03", "p1-resolution-penalty", "1000"), ("2027-02", "p1-resolution-penalty", "500"),
      ("2027-03", "p1-resolution-penalty", "800")], ["1000.00", "0.00", "800.00"]),
    # a remedy the allocation does not list is limited by the cap alone (4000.00)
    ([{"period": "calendar_month", "max_amount": "4000.00", "allocation": {"p1-resolution-penalty": 10}}],
     [("2026-03", "p2-response-penalty", "3900"), ("2026-03", "p1-resolution-penalty", "500")], ["3900.00", "100.00"]),
    # a calendar-month cap without allocation: one budget per month, as before
    ([{"period": "calendar_month", "max_amount": "500.00"}],
     [("2026-03", "p1-resolution-penalty", "400"), ("2026-03", "p2-response-penalty", "400"),
      ("2026-04", "p2-response-penalty", "400")], ["400.00", "100.00", "400.00"]),
])
def test_caps_allocation_and_rolling_months(caps, bookings, granted):
    compiled = compile_agreement(_agreement(caps=caps))
    ledger = CapBudget()
    got = [str(charge(compiled, ledger, label, Decimal(amount), remedy)[0]) for label, remedy, amount in bookings]
    assert got == granted


def test_money_explains_each_cap():
    # the bundled caps, 300.00 of P1 penalties already booked in March, a 500.00 request
    compiled = compile_agreement(_agreement())
    ledger = CapBudget()
    charge(compiled, ledger, "2026-03", Decimal("300"), "p1-resolution-penalty")
    granted, capped, left, lines = charge(compiled, ledger, "2026-03", Decimal("500"), "p1-resolution-penalty")
    assert (granted, capped, left) == (Decimal("100.00"), True, Decimal("0.00"))
    assert lines == [
        {"clause": "caps[0]", "period": "calendar_month", "limit": "4000.00", "months": ["2026-03", "2026-03"],
         "used": "300.00", "allocation": {"remedy": "p1-resolution-penalty", "percent": "10", "share": "400.00",
                                          "used": "300.00"}, "left": "100.00"},
        {"clause": "caps[1]", "period": "rolling_12_months", "limit": "2000.00", "months": ["2025-04", "2026-03"],
         "used": "300.00", "left": "1700.00"},
    ]


def _p2(events: Events, ticket: str, opened: str, resolved: str | None, service: str = "s4-prod") -> Events:
    events.open(opened, "P2", ticket, agreement="acme-erp-contract", service=service)
    events.add("acknowledged", opened, ticket)
    if resolved:
        events.add("resolved", resolved, ticket)
    return events


# P2 tickets opened on Tuesdays 10:00 local (prime: 8h resolution, due 18:00 local)
MET = ("2026-03-03T10:00:00+01:00", "2026-03-03T12:00:00+01:00")
MISSED = ("2026-03-10T10:00:00+01:00", None)          # breached at 18:00 local, never resolved


@pytest.mark.parametrize("tickets, kind, figures, credit", [
    # 3 met of 3 -> 100 %, achieved, no credit
    ([MET] * 3, "objective.attainment", (3, 0, 100.0), None),
    # 2 met, 1 missed -> 66.666667 %, below 85 but not below 50 -> 5 % = 1000.00
    ([MET, MET, MISSED], "objective.attainment", (2, 1, 66.666667), ("1000.00", 5)),
    # 1 met, 2 missed -> 33.333333 % -> below 50 -> 15 % = 3000.00, capped to 2000.00 (the
    # credit's allocation, 50 % of 4000.00, and the rolling 2000.00; no penalty was owed before)
    ([MET, MISSED, MISSED], "objective.attainment", (1, 2, 33.333333), ("2000.00", 15)),
    # 2 decided cycles < min_cycles 3 -> no verdict, no credit
    ([MET, MISSED], "objective.no_verdict", (1, 1, None), None),
    # a ticket still open at the month end (not decided: opened 31 March 20:00, 16h non-prime)
    ([MET, MET, ("2026-03-31T20:00:00+02:00", None)], "objective.no_verdict", (2, 0, None), None),
])
def test_objective_verdicts_and_credits(tickets, kind, figures, credit):
    events = Events()
    for n, (opened, resolved) in enumerate(tickets):
        _p2(events, f"T-{n}", opened, resolved)
    outputs, rejects, _ = run(events, until="2026-03-31T22:00:00+00:00",
                              reg=Registry([_agreement(objectives=BASE["objectives"][:1])]))
    assert rejects == []
    (verdict,) = [o for o in outputs if o["type"].startswith("objective.")]
    d = verdict["data"]
    assert (verdict["type"], verdict["time"], d["met"], d["missed"], d.get("attainment")) == (
        kind, "2026-03-31T22:00:00+00:00", *figures)
    credits = _of(outputs, "credit.issued")
    assert [(c["data"]["amount"], c["data"]["credit_percent"]) for c in credits] == ([credit] if credit else [])
    (report,) = _of(outputs, "report.published")
    assert report["data"]["summary"]["objectives"][0]["met"] == figures[0]


def test_a_cycle_counts_once_in_the_period_it_is_decided():
    # met at its first stop on 3 March; reopened (resume) and resolved again: not counted twice.
    # A second ticket opened 27 February breaches on 2 March (decided in March, not February).
    events = _p2(Events(), "T-1", *MET)
    events.add("reopened", "2026-03-03T13:00:00+01:00", "T-1").add("resolved", "2026-03-03T14:00:00+01:00", "T-1")
    _p2(events, "T-2", "2026-02-27T18:00:00+01:00", None)     # prime, 8h -> 28 Feb 02:00 local: February
    _p2(events, "T-3", "2026-03-01T20:00:00+01:00", None)     # Sunday, non-prime 16h -> 2 March 12:00 local
    outputs, _, _ = run(events, until="2026-03-31T22:00:00+00:00", reg=Registry([_agreement(
        objectives=[{**BASE["objectives"][0], "min_cycles": 1}])]))
    by_period = {o["data"]["period"]: (o["data"]["met"], o["data"]["missed"]) for o in outputs
                 if o["type"] == "objective.attainment"}
    assert by_period == {"2026-02": (0, 1), "2026-03": (1, 1)}


def _month(events: Events, month: str, met: int, missed: int) -> None:
    for n in range(met + missed):
        day = f"2026-{month}-{2 + n:02d}"
        opened = f"{day}T10:00:00+02:00" if month >= "04" else f"{day}T10:00:00+01:00"
        resolved = opened.replace("T10:", "T12:") if n < met else None
        _p2(events, f"T-{month}-{n}", opened, resolved)


@pytest.mark.parametrize("months, earned", [
    # March 2 of 3 (credit 1000.00), April 3 of 3, May 3 of 3: earned back at the end of May
    ([("03", 2, 1), ("04", 3, 0), ("05", 3, 0)], [("2026-05-31T22:00:00+00:00", "1000.00", "2026-03", ["2026-04", "2026-05"])]),
    # April misses (2 of 3): the chain is forfeited, May's 100 % does not bring it back
    ([("03", 2, 1), ("04", 2, 1), ("05", 3, 0)], []),
    # April has no verdict (1 decided cycle): forfeited
    ([("03", 2, 1), ("04", 1, 0), ("05", 3, 0)], []),
])
def test_earn_back(months, earned):
    events = Events()
    for month, met, missed in months:
        _month(events, month, met, missed)
    outputs, rejects, _ = run(events, until="2026-06-01T00:00:00+02:00", reg=Registry([_agreement(caps=[])]))
    assert rejects == []
    got = [(o["time"], o["data"]["amount"], o["data"]["period"], o["data"]["earned_in"])
           for o in _of(outputs, "credit.earned_back")]
    assert got == earned


def test_state_split_anywhere_continues_exactly():
    # the bundled example, snapshotted and restored after every event: the same outputs (the
    # objective counts, earn-back chains and per-remedy ledger live in the persisted state)
    lines = (EXAMPLES / "events" / "acme-erp-contract.jsonl").read_text().splitlines()
    reg = Registry([_agreement()])
    from datetime import datetime
    until = datetime.fromisoformat("2026-06-01T00:00:00+02:00")
    whole: list = []
    replay(reg, lines, whole.append, lambda r: None, until, Engine(reg))
    split: list = []
    engine = Engine(reg)
    for line in lines:
        replay(reg, [line], split.append, lambda r: None, None, engine)
        engine = Engine.restore(reg, engine.snapshot())
    replay(reg, [], split.append, lambda r: None, until, engine)
    assert split == whole
    assert [o.type for o in whole].count("credit.earned_back") == 1


def test_the_bundled_example():
    # examples/events/acme-erp-contract.jsonl (README "Contract terms"): every line applies; March:
    # S4-3's P2 response breach 250.00, S4-5's 2.5 % P1 penalty 500.00 capped to its 400.00 share,
    # 4 of 5 P2 resolutions in time = 80 % < 85 -> 5 % = 1000.00; April: S4-10's 500.00 capped to
    # the 350.00 the rolling 2000.00 leaves (250 + 400 + 1000 used); April and May at 100 % ->
    # the 1000.00 comes back at the end of May
    lines = (EXAMPLES / "events" / "acme-erp-contract.jsonl").read_text().splitlines()
    outputs, rejects, _ = run(lines, until="2026-06-01T00:00:00+02:00", reg=Registry([_agreement()]))
    assert rejects == []
    assert [(p["data"]["amount"], p["data"]["capped"]) for p in _of(outputs, "penalty.assessed")] == [
        ("250.00", False), ("400.00", True), ("350.00", True)]
    assert [(o["data"]["period"], o["data"]["attainment"]) for o in _of(outputs, "objective.attainment")
            if o["data"]["objective"] == "p2-resolution"] == [("2026-03", 80.0), ("2026-04", 100.0), ("2026-05", 100.0)]
    assert [(c["data"]["period"], c["data"]["amount"]) for c in _of(outputs, "credit.issued")] == [("2026-03", "1000.00")]
    assert [(e["time"], e["data"]["amount"]) for e in _of(outputs, "credit.earned_back")] == [
        ("2026-05-31T22:00:00+00:00", "1000.00")]


@pytest.mark.parametrize("april, earned", [
    # reference agreement (acme-erp), availability credit with earn_back {periods: 1, at_least:
    # 99.9}: March at 99.5 % -> 10 % of 40000.00 = 4000.00; April at 100 % -> returned at April's
    # end (Berlin, 2026-04-30T22:00Z)
    ((10000, 10000), [("2026-04-30T22:00:00+00:00", "4000.00", "2026-03", ["2026-04"])]),
    # April at 99.8 % (below 99.9): forfeited (and April's own 10 % credit opens a new chain)
    ((9980, 10000), []),
])
def test_earn_back_of_an_slo_credit(april, earned):
    from tests.helpers import agreement_dict
    from tests.unit.test_slo_support import Metrics, variant
    from tests.unit.test_slo_support import run as run_metrics

    remedies = agreement_dict()["remedies"]
    remedies[0] = {**remedies[0], "earn_back": {"periods": 1, "at_least": 99.9}}
    m = Metrics().slice("2026-03-10T00:00", "2026-03-10T10:00", 9950, 10000)
    m.slice("2026-04-10T00:00", "2026-04-10T10:00", *april)
    outputs, rejects, _ = run_metrics(m, "2026-04-30T22:00", reg=variant(remedies=remedies))
    assert rejects == []
    got = [(o["time"], o["data"]["amount"], o["data"]["period"], o["data"]["earned_in"])
           for o in _of(outputs, "credit.earned_back")]
    assert got == earned
