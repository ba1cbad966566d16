"""Compliance reports: figures of a small hand-made history, Markdown content, a self-contained
well-formed HTML page with charts, the CLI, and the made_sla comparison on synthetic tickets.

History (acme-erp rev 3, Europe/Berlin, cap lowered to a fixed 600.00 EUR per month):

| ticket | events                                              | outcome                                   |
|--------|-----------------------------------------------------|-------------------------------------------|
| INC-1  | P1 Mon 03-02 09:00, ack 09:05, resolved 14:00       | resolution breached 13:00, 500.00         |
| INC-2  | P1 Tue 03-03 09:00, ack 09:10, resolved 15:00       | resolution breached 13:00, 500 capped 100 |
| INC-3  | P2 Wed 03-04 09:00, ack 09:20, resolved 12:00       | all met                                   |
| INC-4  | P2 Tue 03-31 23:30 (+02:00), ack 04-01 00:10        | response met in 2026-04 (Berlin), 03 UTC  |
| INC-5  | P4 Tue 03-31 20:00 (+02:00), nothing else           | no output at all; still listed            |
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import orjson
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from escalation.backtest import replay_side
from escalation.cli import main
from escalation.reports import (
    agreement_infos,
    build_report,
    compare_made_sla,
    engine_state,
    percentile,
    render_html,
    render_markdown,
)
from escalation.reports.numbers import iso_seconds, seconds_text
from escalation.reports.made_sla import wall_clock_fit
from tests.helpers import Events, agreement_dict, registry

CAPPED = agreement_dict(caps=[{"period": "calendar_month", "max_amount": "600.00"}])
TICKETS = ("INC-1", "INC-2", "INC-3", "INC-4", "INC-5")


def history() -> list[str]:
    ev = Events()
    ev.open("2026-03-02T09:00:00+01:00", "P1", "INC-1")
    ev.add("acknowledged", "2026-03-02T09:05:00+01:00", "INC-1")
    ev.add("resolved", "2026-03-02T14:00:00+01:00", "INC-1")
    ev.open("2026-03-03T09:00:00+01:00", "P1", "INC-2")
    ev.add("acknowledged", "2026-03-03T09:10:00+01:00", "INC-2")
    ev.add("resolved", "2026-03-03T15:00:00+01:00", "INC-2")
    ev.open("2026-03-04T09:00:00+01:00", "P2", "INC-3")
    ev.add("acknowledged", "2026-03-04T09:20:00+01:00", "INC-3")
    ev.add("resolved", "2026-03-04T12:00:00+01:00", "INC-3")
    ev.open("2026-03-31T20:00:00+02:00", "P4", "INC-5")
    ev.open("2026-03-31T23:30:00+02:00", "P2", "INC-4")
    ev.add("acknowledged", "2026-04-01T00:10:00+02:00", "INC-4")
    return ev.lines


@pytest.fixture(scope="module")
def replayed():
    reg = registry(CAPPED)
    run = replay_side("r", reg, history())
    assert run.stats.rejected == 0
    return reg, run


@pytest.fixture(scope="module")
def report(replayed):
    reg, run = replayed
    times, tickets = engine_state(run.engine, reg)
    return build_report(run.outputs, agreement_infos(reg), clock_times=times, tickets=tickets,
                        title="ACME March", source={"events": "history.jsonl"})


def _period(report, period):
    (agreement,) = report["agreements"]
    return next(p for p in agreement["periods"] if p["period"] == period)


def test_helpers():
    assert percentile([], 50) is None
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile(list(range(11)), 90) == 9
    assert percentile([7], 95) == 7
    assert iso_seconds("PT26H7M30S") == 94050 and iso_seconds("P1DT1H") == 90000 and iso_seconds("x") is None
    assert seconds_text(94050) == "26h 07m" and seconds_text(600) == "10m" and seconds_text(None) == "–"


def test_periods_follow_the_agreement_time_zone(report):
    (agreement,) = report["agreements"]
    assert [p["period"] for p in agreement["periods"]] == ["2026-03", "2026-04"]
    april = _period(report, "2026-04")
    assert [(r["clock"], r["priority"], r["met"]) for r in april["verdicts"] if r["priority"] != "all"] == [
        ("response", "P2", 1)]
    assert report["tickets_total"] == 5


def test_met_and_breached_per_priority_and_clock(report):
    march = _period(report, "2026-03")
    rows = {(r["clock"], r["priority"]): (r["met"], r["breached"]) for r in march["verdicts"]}
    assert rows[("response", "P1")] == (2, 0)
    assert rows[("response", "P2")] == (1, 0)
    assert rows[("resolution", "P1")] == (0, 2)
    assert rows[("resolution", "P2")] == (1, 0)
    assert rows[("resolution", "all")] == (1, 2)
    assert rows[("update", "P1")] == (0, 2)       # no public update within 30m


def test_counted_time_percentiles_are_exact_from_engine_state(report):
    march = _period(report, "2026-03")
    res_p1 = next(r for r in march["counted_time"] if (r["clock"], r["priority"]) == ("resolution", "P1"))
    # INC-1 5h and INC-2 6h of counted time (24x7 calendar), both breached against 4h
    assert (res_p1["n"], res_p1["p50"], res_p1["p90"], res_p1["max"]) == (2, 5.5 * 3600, 5.9 * 3600, 6 * 3600)
    assert res_p1["exact"] and res_p1["targets"] == [4 * 3600]
    assert res_p1["over_target_p50"] == 1.5 * 3600
    resp_p1 = next(r for r in march["counted_time"] if (r["clock"], r["priority"]) == ("response", "P1"))
    assert (resp_p1["p50"], resp_p1["max"]) == (7.5 * 60, 10 * 60)


def test_breaches_escalations_money_and_drivers(report):
    march = _period(report, "2026-03")
    assert [(b["ticket"], b["clock"]) for b in march["breaches"] if b["clock"] == "resolution"] == [
        ("INC-1", "resolution"), ("INC-2", "resolution")]
    assert march["breaches_by_day"]["2026-03-02"] == {"update": 1, "resolution": 1}
    assert [(e["policy"], e["level"], e["triggered"], e["repeated"]) for e in march["escalations"]] == [
        ("p1-ladder", 2, 2, 0), ("p1-ladder", 3, 2, 0)]
    m = march["money"]
    assert (m["penalty_requested"], m["penalty_total"], m["cap_limit"], m["cap_used_percent"]) == (
        "1000.00", "600.00", "600.00", 100.0)
    assert m["penalties"] == [{"remedy": "p1-resolution-penalty", "kind": "penalty", "clock": "resolution",
                               "count": 2, "requested": "1000.00", "granted": "600.00", "capped": 1}]
    assert [c["total"] for c in m["cumulative"]] == ["500.00", "600.00"]
    assert [(d["ticket"], d["penalty"], d["pages"], d["max_level"]) for d in march["drivers"]] == [
        ("INC-1", "500.00", 2, 3), ("INC-2", "100.00", 2, 3)]


def test_every_ticket_is_listed_including_silent_ones(report):
    listed = {t["ticket"] for a in report["agreements"] for p in a["periods"] for t in p["tickets"]}
    assert listed == set(TICKETS)
    inc5 = next(t for t in _period(report, "2026-03")["tickets"] if t["ticket"] == "INC-5")
    assert inc5["note"] == "no verdict (open)" and inc5["priority"] == "P4"


def test_period_filter(replayed):
    reg, run = replayed
    rep = build_report(run.outputs, agreement_infos(reg), period="2026-04")
    assert [p["period"] for p in rep["agreements"][0]["periods"]] == ["2026-04"]
    assert rep["tickets_total"] == 1
    assert build_report(run.outputs, agreement_infos(reg), period="2025-01")["agreements"] == []


def test_outputs_only_marks_lower_bounds(replayed):
    _, run = replayed
    rep = build_report(run.outputs)        # no agreements: UTC periods, no engine state
    assert not rep["counted_time_exact"]
    (agreement,) = rep["agreements"]
    assert [p["period"] for p in agreement["periods"]] == ["2026-03"]  # INC-4 22:10Z is March in UTC
    assert "≥ " in render_markdown(rep)


def test_markdown_content(report):
    md = render_markdown(report)
    assert md.startswith("# ACME March\n")
    for text in ("## acme-erp — ERP managed service for ACME", "### acme-erp · 2026-03",
                 "#### Met and breached per clock and priority", "| resolution | P1 | 0 | 2 | 2 | 0.0 % |",
                 "#### Counted time (p50 / p90 / p95)", "| resolution | P1 | 2 | 4h 00m | 5h 30m | 5h 54m | 5h 57m | 6h 00m |",
                 "| p1-ladder | 3 | resolution | critical | 2 | 0 | 2 |",
                 "Assessed 600.00 EUR (penalties 600.00 of 1000.00 requested, credits 0.00) · cap 600.00 EUR, 100.0 % used.",
                 "| p1-resolution-penalty | resolution | 2 | 1000.00 | 600.00 | 1 |",
                 "| INC-1 | P1 | resolution, update | 2 | 3 | 500.00 |",
                 "no verdict (open)"):
        assert text in md, text
    for ticket in TICKETS:
        assert f"| {ticket} |" in md
    assert "<svg" not in md


class _Checker(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.ids: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self._attrs(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)
        self._attrs(attrs)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def _attrs(self, attrs):
        for name, value in attrs:
            if name == "id":
                self.ids.append(value)
            if name.split(":")[-1] == "href" and value and value.startswith("#"):
                self.refs.append(value[1:])
            for ref in re.findall(r"url\(#([^)]+)\)", value or ""):
                self.refs.append(ref)
            if name.split(":")[-1] in ("src", "href", "action", "data") and value and re.match(r"\s*(https?:)?//", value):
                self.urls.append(value)


def check_html(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    assert checker.urls == []
    assert len(checker.ids) == len(set(checker.ids)), "ids must be unique across inline charts"
    assert set(checker.refs) <= set(checker.ids)
    assert "script" not in checker.tags and "link" not in checker.tags and "iframe" not in checker.tags
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "url(http" not in page and "@import" not in page
    return checker


def test_html_is_self_contained_and_well_formed(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    checker = check_html(page)
    assert {"html", "head", "body", "style", "table", "svg", "details"} <= checker.tags
    assert page.count("<svg") >= 4            # counted time, timeline, levels, money for March
    assert "<svg" in page or "data:image" in page
    for ticket in TICKETS:
        assert f">{ticket}<" in page
    assert render_html(report) == page        # deterministic


def _yaml(path, data) -> str:
    yaml = YAML(typ="safe")
    with open(path, "w") as handle:
        yaml.dump(data, handle)
    return str(path)


def test_cli_report_from_events_and_from_outputs(tmp_path):
    agreements = _yaml(tmp_path / "acme.yaml", CAPPED)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(history()) + "\n")
    runner = CliRunner()
    out = tmp_path / "r.html"
    res = runner.invoke(main, ["report", "--events", str(events), "--agreements", agreements, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "report: 5 tickets, 1 agreements, 2 periods" in res.stderr
    check_html(out.read_text())

    outputs = tmp_path / "outputs.jsonl"
    res = runner.invoke(main, ["replay", "--agreements", agreements, "--events", str(events), "--out", str(outputs)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["report", "--outputs", str(outputs), "--agreements", agreements, "--period", "2026-03"])
    assert res.exit_code == 0, res.output
    assert "### acme-erp · 2026-03" in res.stdout and "2026-04" not in res.stdout
    # breached resolution: from outputs only, the largest elapsed any output reported is a lower
    # bound; escalation.resolved reports it when the clock stopped (5h and 6h: median 5h30m)
    assert "| resolution | P1 | 2 | 4h 00m | ≥ 5h 30m |" in res.stdout

    res = runner.invoke(main, ["report", "--events", str(events), "--agreements", agreements, "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["tickets_total"] == 5

    assert runner.invoke(main, ["report", "--agreements", agreements]).exit_code == 2
    assert runner.invoke(main, ["report", "--events", str(events)]).exit_code == 2
    assert runner.invoke(main, ["report", "--outputs", str(outputs), "--compare-made-sla"]).exit_code == 2
    assert runner.invoke(main, ["report", "--outputs", str(outputs), "--period", "2026-3"]).exit_code == 2


# --- made_sla ---------------------------------------------------------------------------------

SN = agreement_dict(
    id="sn", priorities=["P1", "P3"],
    clocks={"resolution": {"starts": "opened", "stops": "resolved", "pause_when": ["pending_customer"]}},
    targets=[{"clock": "resolution", "priority": "P1", "within": "8h", "calendar": "always"},
             {"clock": "resolution", "priority": "P3", "within": "2bd", "calendar": "business"}],
    escalation=[], remedies=[], slos=[], maintenance_windows=[], caps=[],
    reporting={"period": "calendar_month", "deliver_to": []})


def sn_history() -> list[str]:
    """Mon 2026-03-02 (Berlin). 2bd = 20 business hours (08:00-18:00)."""
    ev = Events()
    opened = {"service": "erp-prod", "agreement": "sn"}
    # agree: met + made
    ev.open("2026-03-02T09:00:00+01:00", "P3", "A", attributes={"made_sla": True}, **opened)
    ev.add("resolved", "2026-03-02T10:00:00+01:00", "A")
    # agree: breached + missed
    ev.open("2026-03-02T09:00:00+01:00", "P1", "B", attributes={"made_sla": False}, **opened)
    ev.add("resolved", "2026-03-02T19:00:00+01:00", "B")
    # calendar: 20h business = Mon 09-18 + Tue 08-18 + Wed 08-09; resolved Tue 20:00 -> 19 counted, 35 wall
    ev.open("2026-03-02T09:00:00+01:00", "P3", "C", attributes={"made_sla": False}, **opened)
    ev.add("resolved", "2026-03-03T20:00:00+01:00", "C")
    # pauses: Mon 09:00 -> paused 10:00 .. Wed 08:00 resumed -> resolved Wed 12:00: 5 counted, 23 with pauses
    ev.open("2026-03-02T09:00:00+01:00", "P3", "D", attributes={"made_sla": False}, **opened)
    ev.add("status_changed", "2026-03-02T10:00:00+01:00", "D", status="pending_customer")
    ev.add("status_changed", "2026-03-04T08:00:00+01:00", "D", status="in_progress")
    ev.add("resolved", "2026-03-04T12:00:00+01:00", "D")
    # longer target in ServiceNow: breached (10h > 8h) but made
    ev.open("2026-03-02T09:00:00+01:00", "P1", "E", attributes={"made_sla": True}, **opened)
    ev.add("resolved", "2026-03-02T19:00:00+01:00", "E")
    # unknown made_sla
    ev.open("2026-03-02T09:00:00+01:00", "P1", "F", **opened)
    ev.add("resolved", "2026-03-02T10:00:00+01:00", "F")
    return ev.lines


def test_made_sla_comparison():
    reg = registry(SN)
    lines = sn_history()
    run = replay_side("sn", reg, lines)
    assert run.stats.rejected == 0, run.rejects
    result = compare_made_sla([orjson.loads(x) for x in lines], run.outputs, reg)
    assert result["confusion"] == {"met": {"made": 1, "missed": 2, "unknown": 1},
                                   "breached": {"made": 1, "missed": 1, "unknown": 0},
                                   "none": {"made": 0, "missed": 0, "unknown": 0}}
    assert (result["compared"], result["agreeing"], result["agreement_rate"]) == (5, 2, 0.4)
    assert 0 <= result["agreement_rate"] <= 1
    reasons = {k: {r["reason"]: [e["ticket"] for e in r["examples"]] for r in v} for k, v in result["reasons"].items()}
    assert reasons == {"met_missed": {"calendar": ["C"], "pauses": ["D"]}, "breached_made": {"longer_target": ["E"]}}
    md = render_markdown({"title": "t", "source": {}, "tickets_total": 0, "agreements": [], "made_sla": result})
    assert "they agree on 2 (40.0 %)" in md and "| pauses | 1 |" in md
    check_html(render_html({"title": "t", "source": {}, "tickets_total": 0, "agreements": [], "made_sla": result}))


def test_wall_clock_fit():
    rows = [{"wall_hours": h, "made_sla": m} for h, m in ((1, True), (2, True), (5, False), (9, False), (3, False))]
    fit = wall_clock_fit(rows)
    assert (fit["limit_hours"], fit["accuracy"], fit["cut_between_hours"]) == (2.5, 1.0, [2, 3])
    assert wall_clock_fit([{"wall_hours": 1, "made_sla": False}])["limit_hours"] is None
    assert wall_clock_fit([])["n"] == 0
