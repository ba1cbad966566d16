"""Bad input never stops a replay: each rejected line names what and where; the rest is processed."""

from __future__ import annotations

import subprocess
import sys

import orjson

from escalation.paths import EXAMPLE_AGREEMENT
from tests.helpers import Events, run

OPEN = "2026-03-02T08:00:00Z"


def test_each_kind_of_bad_line_is_dead_lettered_with_line_and_reason():
    ev = Events().open(OPEN)
    lines = ev.lines + [
        "{not json",                                                                    # 2
        '{"id": "x1", "type": "ticket.exploded", "time": "2026-03-02T08:01:00Z", "ticket": "INC-1"}',  # 3
        '{"id": "x2", "type": "ticket.acknowledged", "time": "2026-03-02T08:01:00", "ticket": "INC-1"}',  # 4 naive
        '{"id": "x3", "type": "ticket.opened", "time": "2026-03-02T08:01:00Z", "ticket": "INC-9", "agreement": "nope", "service": "erp-prod", "priority": "P1"}',
        '{"id": "x4", "type": "ticket.opened", "time": "2026-03-02T08:01:00Z", "ticket": "INC-8", "agreement": "acme-erp", "service": "erp-prod"}',
        '{"id": "x5", "type": "ticket.acknowledged", "time": "2026-03-02T08:01:00Z", "ticket": "INC-404"}',
        '{"id": "x6", "type": "ticket.opened", "time": "2026-03-02T08:01:00Z", "ticket": "INC-7", "agreement": "acme-erp", "service": "erp-prod", "priority": "P9"}',
        "[1, 2]",
        '{"id": "x7", "type": "ticket.acknowledged", "time": "2026-03-02T08:10:00Z", "ticket": "INC-1"}',  # 10: good
    ]
    outputs, rejects, stats = run(lines, until="2026-03-02T09:00:00Z")
    reasons = {r["line"]: r["reason"] for r in rejects}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert reasons[2].startswith("malformed JSON")
    assert reasons[3] == "unknown event type 'ticket.exploded'"
    assert "naive timestamp" in reasons[4] and "'time'" in reasons[4]
    assert reasons[5].startswith("unknown agreement 'nope'")
    assert reasons[6] == "missing field 'priority'"
    assert reasons[7].startswith("unknown ticket 'INC-404'")
    assert reasons[8].startswith("unknown priority 'P9'")
    assert "JSON object" in reasons[9]
    assert rejects[0]["input"] == "{not json"
    assert ("2026-03-02T08:10:00+00:00", "sla.met") in [(o["time"], o["type"]) for o in outputs]
    assert stats.events == 2 and stats.rejected == 8


def test_duplicate_ids_are_ignored():
    ev = Events().open(OPEN)
    ev.lines.append(ev.lines[0])
    ack = '{"id": "a", "type": "ticket.acknowledged", "time": "2026-03-02T08:05:00Z", "ticket": "INC-1"}'
    outputs, rejects, stats = run(ev.lines + [ack, ack], until="2026-03-02T09:00:00Z")
    assert rejects == [] and stats.duplicates == 2
    assert [o["type"] for o in outputs if o["data"].get("clock") == "response"] == ["sla.met"]


def test_late_event_is_applied_at_the_incident_clock_and_emitted_outputs_stay():
    # INC-2's event at 08:30 moves the clock; INC-1's ack stamped 08:10 arrives after it.
    ev = (Events().open(OPEN).open("2026-03-02T08:30:00Z", ticket="INC-2")
          .add("acknowledged", "2026-03-02T08:10:00Z"))
    outputs, rejects, stats = run(ev, until="2026-03-02T08:31:00Z")
    assert rejects == [] and stats.late == 1
    inc1 = [(o["time"], o["type"]) for o in outputs if o["subject"] == "INC-1" and o["data"]["clock"] == "response"]
    # the breach at 08:15 was emitted before the late ack was seen; it is not withdrawn and no met follows
    assert inc1[-2:] == [("2026-03-02T08:15:00+00:00", "sla.breached"), ("2026-03-02T08:15:00+00:00", "escalation.triggered")]


def test_unknown_fields_are_ignored():
    ev = Events().open(OPEN, extra_field={"a": 1})
    outputs, rejects, _ = run(ev, until="2026-03-02T08:08:00Z")
    assert rejects == [] and outputs[0]["type"] == "sla.warning"


def test_cli_replay_writes_outputs_and_dead_letters_and_exits_zero(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(Events().open(OPEN).lines + ["garbage"]) + "\n")
    out, dead = tmp_path / "out.jsonl", tmp_path / "dead.jsonl"
    cmd = [sys.executable, "-m", "escalation.cli", "replay", "--agreements", str(EXAMPLE_AGREEMENT),
           "--events", str(events), "--until", "2026-03-02T08:15:00Z", "--out", str(out), "--dead-letter", str(dead)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    types = [orjson.loads(line)["type"] for line in out.read_text().splitlines()]
    assert types == ["sla.warning", "sla.warning", "sla.breached", "escalation.triggered"]
    assert orjson.loads(dead.read_text())["line"] == 2


def test_cli_replay_exits_nonzero_on_an_unusable_agreement(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: escalation/v1\nkind: Agreement\n")
    events = tmp_path / "e.jsonl"
    events.write_text("")
    result = subprocess.run([sys.executable, "-m", "escalation.cli", "replay", "--agreements", str(bad), "--events", str(events)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and f"{bad}:1: id: Field required" in result.stderr


def test_outputs_of_a_late_event_record_the_lateness():
    # the ack stamped 08:10 is read after an event at 08:12: applied at its own time, met, noted late
    ev = (Events().open(OPEN).open("2026-03-02T08:12:00Z", ticket="INC-2")
          .add("acknowledged", "2026-03-02T08:10:00Z"))
    outputs, _, _ = run(ev)
    met = [o for o in outputs if o["type"] == "sla.met"]
    assert [(o["time"], o["data"]["elapsed"]) for o in met] == [("2026-03-02T08:10:00+00:00", "PT10M")]
    assert met[0]["data"]["explain"]["late_event"]["late_by"] == "PT2M"
