"""Backtests: one hand-made history under two revisions of acme-erp, with hand-computed changes.

Revision 3 is the reference agreement (DESIGN.md §5). Revision 4 (the "draft") tightens the P1
response target 15m -> 10m and the P2 resolution target 8h -> 4h, and adds a 200.00 EUR P2
resolution penalty. Four tickets, all opened Monday 2026-03-02 09:00 (+01:00, Europe/Berlin):

| ticket | events                          | rev 3                    | rev 4                          |
|--------|---------------------------------|--------------------------|--------------------------------|
| INC-1  | P1, ack 09:12, resolved 10:00   | response met (12m<15m)   | response breached 09:10, L1    |
| INC-2  | P2, ack 09:30, resolved 15:00   | resolution met (6h<8h)   | resolution breached 13:00, 200 |
| INC-3  | P1, ack 09:20, resolved 10:00   | response breached 09:15  | response breached 09:10        |
| INC-4  | P1, ack 09:05, resolved 14:00   | resolution breached 13:00, 500, L2 11:00, L3 13:00 (both) |

So: flips INC-1/response and INC-2/resolution (met -> breached); escalation added INC-1 L1;
INC-3 L1 moves 09:15 -> 09:10; penalties 2026-03: 500.00 -> 700.00 (+200.00).
"""

from __future__ import annotations

import copy
import json

import orjson
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from escalation.backtest import (
    backtest,
    clock_verdicts,
    compare,
    default_agreement_map,
    parse_agreement_map,
    rewrite_agreements,
)
from escalation.cli import main
from escalation.core.outputs import Output
from tests.helpers import Events, agreement_dict, registry

T0 = "2026-03-02T09:"


def draft(**changes) -> dict:
    data = agreement_dict(**{"revision": 4, **changes})
    data["targets"] = copy.deepcopy(data["targets"])
    for t in data["targets"]:
        if (t["clock"], t["priority"]) == ("response", "P1"):
            t["within"] = "10m"
        if (t["clock"], t["priority"]) == ("resolution", "P2"):
            t["within"] = "4h"
    data["remedies"] = copy.deepcopy(data["remedies"]) + [
        {"id": "p2-resolution-penalty", "kind": "per_breach", "clock": "resolution", "priority": ["P2"],
         "amount": "200.00"}]
    return data


def history(agreement: str = "acme-erp") -> list[str]:
    ev = Events()
    for ticket, prio, ack, resolved in (("INC-1", "P1", "09:12", "10:00"), ("INC-2", "P2", "09:30", "15:00"),
                                        ("INC-3", "P1", "09:20", "10:00"), ("INC-4", "P1", "09:05", "14:00")):
        ev.open("2026-03-02T09:00:00+01:00", prio, ticket, agreement=agreement)
    for ticket, ack in (("INC-4", "09:05"), ("INC-1", "09:12"), ("INC-3", "09:20"), ("INC-2", "09:30")):
        ev.add("acknowledged", f"2026-03-02T{ack}:00+01:00", ticket)
    for ticket, resolved in (("INC-1", "10:00"), ("INC-3", "10:00"), ("INC-4", "14:00"), ("INC-2", "15:00")):
        ev.add("resolved", f"2026-03-02T{resolved}:00+01:00", ticket)
    return ev.lines


def utc(local_hm: str) -> str:
    """'09:10' Berlin (+01:00) on 2026-03-02 -> the UTC string outputs carry."""
    h, m = (int(x) for x in local_hm.split(":"))
    return f"2026-03-02T{h - 1:02d}:{m:02d}:00+00:00"


@pytest.fixture(scope="module")
def result():
    return backtest(registry(agreement_dict()), registry(draft()), history())


def test_each_side_uses_its_own_revision(result):
    _, run_a, run_b = result
    assert run_a.agreements() == ["acme-erp@3"] and run_b.agreements() == ["acme-erp@4"]
    assert {o.data["revision"] for o in run_a.outputs if "revision" in o.data} == {3}
    assert {o.data["revision"] for o in run_b.outputs if "revision" in o.data} == {4}
    assert run_a.stats.rejected == run_b.stats.rejected == 0


def test_flips_are_the_hand_computed_ones(result):
    bt, _, _ = result
    assert [(f["ticket"], f["clock"], f["a"], f["b"], f["time_b"]) for f in bt.flips] == [
        ("INC-1", "response", "met", "breached", utc("09:10")),
        ("INC-2", "resolution", "met", "breached", utc("13:00")),
    ]
    assert bt.flip_counts() == {"resolution": {"met->breached": 1}, "response": {"met->breached": 1}}
    # P1 tickets get no public update within 30m: the update clock breaches on both sides alike
    update = {"met": 0, "breached": 3}
    assert bt.verdicts["a"] == {"resolution": {"met": 3, "breached": 1}, "response": {"met": 3, "breached": 1},
                                "update": update}
    assert bt.verdicts["b"] == {"resolution": {"met": 2, "breached": 2}, "response": {"met": 2, "breached": 2},
                                "update": update}
    assert bt.appeared == []


def test_escalations_added_removed_and_moved(result):
    bt, _, _ = result
    assert [(e["ticket"], e["policy"], e["level"], e["time"]) for e in bt.escalations_added] == [
        ("INC-1", "p1-ladder", 1, utc("09:10"))]
    assert bt.escalations_removed == []
    assert [(e["ticket"], e["level"], e["time_a"], e["time_b"]) for e in bt.escalations_retimed] == [
        ("INC-3", 1, utc("09:15"), utc("09:10"))]
    # INC-4: level 2 (50 % of 4h) and level 3 (breach) on both sides; INC-3: level 1 on both
    assert bt.escalations == {"triggered_a": 3, "repeated_a": 0, "triggered_b": 4, "repeated_b": 0,
                              "pages_a": 3, "pages_b": 4, "pages_delta": 1}
    level1 = next(r for r in bt.escalations_by_level if r["level"] == 1)
    assert (level1["triggered_a"], level1["triggered_b"], level1["delta"]) == (1, 2, 1)


def test_money_per_period_and_delta(result):
    bt, _, _ = result
    assert bt.money == [{"kind": "penalty", "period": "2026-03", "currency": "EUR", "a": "500.00", "b": "700.00",
                         "delta": "200.00", "count_a": 1, "count_b": 2, "capped_a": 0, "capped_b": 0}]
    assert bt.money_totals == [{"kind": "penalty", "currency": "EUR", "a": "500.00", "b": "700.00",
                                "delta": "200.00", "count_a": 1, "count_b": 2}]
    assert bt.penalty_changes == [{"ticket": "INC-2", "a": "0.00", "b": "200.00", "delta": "200.00"}]
    json.dumps(bt.to_dict())  # JSON-ready


def test_identical_sides_have_no_differences():
    lines = history()
    bt, _, _ = backtest(registry(), registry(), lines)
    assert bt.flips == [] and bt.escalations_added == [] and bt.escalations_removed == []
    assert all(r["delta"] == "0.00" for r in bt.money)


def test_breached_wins_over_met_across_cycles():
    outs = [
        {"type": "sla.met", "time": "2026-03-02T09:00:00+00:00",
         "data": {"ticket": "T", "clock": "resolution", "cycle": 1, "priority": "P1"}},
        {"type": "sla.breached", "time": "2026-03-03T09:00:00+00:00",
         "data": {"ticket": "T", "clock": "resolution", "cycle": 1, "priority": "P1"}},
        {"type": "sla.met", "time": "2026-03-04T09:00:00+00:00",
         "data": {"ticket": "T", "clock": "resolution", "cycle": 2, "priority": "P1"}},
    ]
    outs = [Output.from_cloudevent({"id": f"o{i}", "source": "escalation/acme-erp@3", "subject": "T", **o})
            for i, o in enumerate(outs)]
    v = clock_verdicts(outs)[("T", "resolution")]
    assert (v.verdict, v.time) == ("breached", "2026-03-03T09:00:00+00:00")
    assert compare(outs, outs[:1]).flips[0]["a"] == "breached"


def test_rewrite_agreements_only_touches_opened_events():
    lines = history() + ["not json", '{"type": "ticket.opened", "agreement": "other"}']
    out = list(rewrite_agreements(lines, {"acme-erp": "draft"}))
    assert out[-2:] == lines[-2:]
    opened = [orjson.loads(x) for x in out[:4]]
    assert {e["agreement"] for e in opened} == {"draft"}
    assert out[4:-2] == lines[4:-2]
    assert list(rewrite_agreements(lines, {})) == lines


def test_agreement_maps():
    assert parse_agreement_map(["a=b", " c = d "]) == {"a": "b", "c": "d"}
    with pytest.raises(ValueError):
        parse_agreement_map(["a"])
    assert default_agreement_map(registry(), registry(draft(id="acme-draft"))) == {"acme-erp": "acme-draft"}
    assert default_agreement_map(registry(), registry(draft())) == {}


def _write(path, data) -> str:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with open(path, "w") as handle:
        yaml.dump(data, handle)
    return str(path)


def test_cli_json_with_renamed_agreement(tmp_path):
    a = _write(tmp_path / "rev3.yaml", agreement_dict())
    b = _write(tmp_path / "draft.yaml", draft(id="acme-draft", revision=1))
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(history()) + "\n")
    runner = CliRunner()
    res = runner.invoke(main, ["backtest", "--agreements", a, "--against", b, "--events", str(events),
                               "--map-agreement", "acme-erp=acme-draft", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["sides"]["b"]["agreements"] == ["acme-draft@1"]
    assert data["sides"]["b"]["agreement_map"] == {"acme-erp": "acme-draft"}
    assert [(f["ticket"], f["clock"]) for f in data["flips"]] == [("INC-1", "response"), ("INC-2", "resolution")]
    assert data["money"]["totals"][0]["delta"] == "200.00"
    assert data["escalations"]["pages_delta"] == 1

    table = runner.invoke(main, ["backtest", "--agreements", a, "--against", b, "--events", str(events)])
    assert table.exit_code == 0, table.output
    assert "tickets of acme-erp open under acme-draft" in table.stderr
    for text in ("Flips", "INC-1", "INC-2", "met→breached", "+200.00", "Escalations"):
        assert text in table.stdout

    bad = runner.invoke(main, ["backtest", "--agreements", a, "--against", b, "--events", str(events),
                               "--map-agreement", "acme-erp=nope"])
    assert bad.exit_code == 2 and "no agreement nope" in bad.output
