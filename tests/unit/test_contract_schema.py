"""Every new key of DESIGN.md §13 (targets and money half) in the JSON Schema and in ``validate``:
hostile values give ``file:line: path: message`` (DESIGN.md §10 ranges), never a traceback."""

from __future__ import annotations

import json

import pytest

from escalation.loader import AgreementError, parse_agreement
from escalation.paths import EXAMPLES

TEXT = (EXAMPLES / "agreements" / "acme-erp-contract.yaml").read_text()
ALLOC = "allocation: {p1-resolution-penalty: 10, p2-response-penalty: 10, p2-objective-credit: 50}"
EARN = "earn_back: {periods: 2, at_least: 85}"
OBJ = "{id: p2-resolution, clock: resolution, priority: [P2], at_least: 85.0, period: calendar_month, min_cycles: 3}"
PCT = "    percent_of: fees.monthly\n    percent: 2.5 "


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, path, message", [
    # caps: allocation shares above 100 %, unknown remedies, zero, negative and NaN shares, bad periods
    (ALLOC, "allocation: {p1-resolution-penalty: 60, p2-response-penalty: 50}", "caps[0]",
     "allocation shares sum to 110%, more than 100%"),
    (ALLOC, "allocation: {p9-penalty: 10}", "caps[0].allocation.p9-penalty",
     "unknown remedy 'p9-penalty' (known: p1-resolution-penalty, p2-objective-credit, p2-response-penalty)"),
    (ALLOC, "allocation: {p1-resolution-penalty: 0}", "caps[0].allocation.p1-resolution-penalty", "greater than"),
    (ALLOC, "allocation: {p1-resolution-penalty: -5}", "caps[0].allocation.p1-resolution-penalty", "greater than"),
    (ALLOC, "allocation: {p1-resolution-penalty: .nan}", "caps[0].allocation.p1-resolution-penalty", "finite number"),
    (ALLOC, "allocation: {p1-resolution-penalty: 101}", "caps[0].allocation.p1-resolution-penalty", "less than or equal to 100"),
    ("period: rolling_12_months", "period: rolling_13_months", "caps[1].period", "'calendar_month' or 'rolling_12_months'"),
    # earn-back: periods in [1, 120], at_least in (0, 100]
    (EARN, "earn_back: {periods: 0, at_least: 85}", "remedies[0].earn_back.periods", "greater than or equal to 1"),
    (EARN, "earn_back: {periods: 121, at_least: 85}", "remedies[0].earn_back.periods", "less than or equal to 120"),
    (EARN, "earn_back: {periods: 2, at_least: 0}", "remedies[0].earn_back.at_least", "greater than 0"),
    (EARN, "earn_back: {periods: 2, at_least: 100.5}", "remedies[0].earn_back.at_least", "less than or equal to 100"),
    (EARN, "earn_back: {periods: 2, at_least: .inf}", "remedies[0].earn_back.at_least", "finite number"),
    (EARN, "earn_back: {periods: 2}", "remedies[0].tiered_credit.earn_back.at_least", "Field required"),
    # objectives: ranges, references, duplicates
    (OBJ, OBJ.replace("min_cycles: 3", "min_cycles: 0"), "objectives[0].min_cycles", "greater than or equal to 1"),
    (OBJ, OBJ.replace("at_least: 85.0", "at_least: 100.01"), "objectives[0].at_least", "less than or equal to 100"),
    (OBJ, OBJ.replace("at_least: 85.0", "at_least: .nan"), "objectives[0].at_least", "finite number"),
    (OBJ, OBJ.replace("priority: [P2]", "priority: []"), "objectives[0].priority", "at least 1 item"),
    (OBJ, OBJ.replace("period: calendar_month", "period: quarter"), "objectives[0].period", "'calendar_month'"),
    (OBJ, OBJ.replace("clock: resolution", "clock: fix"), "objectives[0].clock",
     "unknown clock 'fix' (known: resolution, response)"),
    (OBJ, OBJ.replace("[P2]", "[P7]"), "objectives[0].priority", "unknown priority 'P7' (known: P1, P2, P3)"),
    (OBJ, OBJ.replace("clock: resolution,", "service: s4-dev, clock: resolution,"), "objectives[0].service",
     "unknown service 's4-dev' (known: s4-prod, s4-test)"),
    (OBJ, OBJ.replace("p2-resolution", "p1-response"), "objectives[1]",
     "duplicate objective id 'p1-response' (first at objectives[0])"),
    # tiered credits on objectives: exactly one measure, a known objective
    ("objective: p2-resolution", "objective: p2-resolution\n    slo: x", "remedies[0].tiered_credit",
     "a tiered_credit names exactly one of: slo, objective"),
    ("    objective: p2-resolution\n", "", "remedies[0].tiered_credit", "a tiered_credit names exactly one of: slo, objective"),
    ("objective: p2-resolution", "objective: p3-resolution", "remedies[0].objective",
     "unknown objective 'p3-resolution' (known: p1-response, p2-resolution)"),
    # percentage penalties: one form, both keys, a known fee, a percent in (0, 100]
    (PCT, PCT + '\n    amount: "5.00"', "remedies[1].per_breach", "a per_breach remedy needs either amount, or percent_of + percent"),
    (PCT, "    percent: 2.5", "remedies[1].per_breach", "a percentage penalty needs both percent_of and percent"),
    (PCT, "    percent_of: fees.yearly\n    percent: 2.5", "remedies[1].percent_of",
     "unknown fee 'fees.yearly' (known: fees.monthly)"),
    (PCT, "    percent_of: fees.monthly\n    percent: 0", "remedies[1].percent", "greater than 0"),
    (PCT, "    percent_of: fees.monthly\n    percent: 100.5", "remedies[1].percent", "less than or equal to 100"),
    (PCT, "    percent_of: fees.monthly\n    percent: 1e400", "remedies[1].percent", "finite number"),
    # opened_in must be a calendar name
    ("opened_in: prime, warn_at", "opened_in: 5, warn_at", "targets[4].opened_in", "valid string"),
    # maintenance services must be a list of known services
    ("services: [s4-prod]", "services: s4-prod", "maintenance_windows[0].services", "valid list"),
])
def test_hostile_contract_terms(old, new, path, message):
    assert old in TEXT
    text = TEXT.replace(old, new, 1)
    with pytest.raises(AgreementError) as err:
        parse_agreement(text.encode(), "c.yaml")
    found = [p for p in err.value.problems if p.path == path]
    assert found, [str(p) for p in err.value.problems]
    assert message in found[0].message
    # the line is the offending key's own (a field), or its item's (a whole-item check)
    last = path.rsplit(".", 1)[-1]
    where = text.splitlines()[found[0].line - 1]
    assert (last + ":" in where or "{" in where) if not last.endswith("]") and last not in ("tiered_credit", "per_breach") else (
        "- " in where or "{" in where or "id:" in where), (found[0].line, where)


def test_every_new_key_is_in_the_json_schema():
    from escalation.agreement.schema import agreement_schema

    schema = agreement_schema()
    text = json.dumps(schema)
    defs = schema["$defs"]
    assert "opened_in" in defs["Target"]["properties"]
    assert set(defs["Objective"]["properties"]) == {"id", "clock", "priority", "service", "at_least", "period", "min_cycles"}
    assert {"objective", "earn_back"} <= set(defs["TieredCredit"]["properties"])
    assert {"periods", "at_least"} == set(defs["EarnBack"]["properties"])
    assert {"percent_of", "percent", "amount"} <= set(defs["PerBreachPenalty"]["properties"])
    assert {"allocation", "period"} <= set(defs["Cap"]["properties"]) and "rolling_12_months" in text
    assert "services" in defs["MaintenanceWindow"]["properties"]
    assert "objectives" in schema["properties"]
