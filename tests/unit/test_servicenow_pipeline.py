"""The whole pipeline on the real ServiceNow log: import -> replay -> report, made_sla, backtest.

Data: "Incident management process enriched event log" (Amaral, Fantinato, Reijers, Peres; UCI
Machine Learning Repository, https://doi.org/10.24432/C57S4H), licensed CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/). The file is not shipped with the repository; the
tests are skipped when it is absent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from escalation.backtest import backtest
from escalation.cli import main
from escalation.core.contract.registry import Registry
from escalation.loader import load_agreements
from escalation.reports import SERVICENOW_ATTRIBUTION

REPO = Path(__file__).resolve().parents[2]
REAL_FILE = Path(__file__).resolve().parents[3] / "shared/data/servicenow-incident-log/incident_event_log.csv"
SAMPLE = REPO / "examples/agreements/servicenow-sample.yaml"
SAMPLE_R2 = REPO / "examples/agreements/servicenow-sample-r2.yaml"

pytestmark = pytest.mark.skipif(not REAL_FILE.exists(), reason=f"real ServiceNow log not found at {REAL_FILE}")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """`escalation import servicenow` -> `escalation replay` -> `escalation report`, as a user runs them."""
    tmp = tmp_path_factory.mktemp("servicenow")
    runner = CliRunner()
    events, outputs, report = tmp / "events.jsonl", tmp / "outputs.jsonl", tmp / "report.md"
    steps = [
        ["import", "servicenow", str(REAL_FILE), "--out", str(events), "--problems", str(tmp / "problems.txt")],
        ["replay", "--agreements", str(SAMPLE), "--events", str(events), "--out", str(outputs)],
        ["report", "--outputs", str(outputs), "--events", str(events), "--agreements", str(SAMPLE),
         "--compare-made-sla", "--out", str(report)],
    ]
    results = [runner.invoke(main, step) for step in steps]
    for step, res in zip(steps, results):
        assert res.exit_code == 0, (step, res.output)
    return {"events": events, "outputs": outputs, "report": report, "results": results, "tmp": tmp}


def _ticket_numbers() -> set[str]:
    with open(REAL_FILE, newline="", encoding="utf-8-sig") as handle:
        return {row["number"] for row in csv.DictReader(handle)}


def test_every_ticket_appears_in_the_report(pipeline):
    numbers = _ticket_numbers()
    assert len(numbers) > 800
    text = pipeline["report"].read_text()
    missing = sorted(n for n in numbers if f"| {n} |" not in text)
    assert missing == []
    assert SERVICENOW_ATTRIBUTION in text                      # CC BY 4.0: the derivative says where from
    assert "## servicenow-sample" in text and "## Engine verdict vs ServiceNow made_sla" in text
    assert f"report: {len(numbers)} tickets" in pipeline["results"][2].stderr


def test_made_sla_agreement_rate(pipeline):
    runner = CliRunner()
    res = runner.invoke(main, ["compare-made-sla", "--events", str(pipeline["events"]), "--agreements", str(SAMPLE),
                               "--outputs", str(pipeline["outputs"]), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert 0.0 <= result["agreement_rate"] <= 1.0
    assert result["compared"] == result["tickets"] == len(_ticket_numbers())
    confusion = result["confusion"]
    assert sum(confusion["met"].values()) + sum(confusion["breached"].values()) == result["compared"]
    assert result["agreeing"] == confusion["met"]["made"] + confusion["breached"]["missed"]
    disagreeing = sum(r["count"] for rows in result["reasons"].values() for r in rows)
    assert disagreeing == result["compared"] - result["agreeing"]
    assert f"{result['agreement_rate'] * 100:.1f} %" in pipeline["report"].read_text()


def test_html_report_for_one_month_is_self_contained(pipeline):
    from tests.unit.test_reports import check_html

    out = pipeline["tmp"] / "march.html"
    res = CliRunner().invoke(main, ["report", "--outputs", str(pipeline["outputs"]), "--agreements", str(SAMPLE),
                                    "--period", "2016-03", "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    check_html(page)
    assert page.count("<svg") >= 4


def test_tighter_revision_only_adds_breaches(pipeline):
    lines = pipeline["events"].read_bytes().splitlines()
    bt, run_a, run_b = backtest(Registry(load_agreements([SAMPLE])), Registry(load_agreements([SAMPLE_R2])), lines)
    assert run_a.agreements() == ["servicenow-sample@1"] and run_b.agreements() == ["servicenow-sample@2"]
    assert run_a.stats.rejected == run_b.stats.rejected == 0
    assert bt.flips and all((f["a"], f["b"]) == ("met", "breached") for f in bt.flips)
    assert bt.escalations["pages_b"] >= bt.escalations["pages_a"]
