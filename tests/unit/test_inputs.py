"""Bad input never stops a replay: each rejected line names what and where; the rest is processed."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from escalation.core.events import Rejected
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
    assert inc1[-4:-2] == [("2026-03-02T08:15:00+00:00", "sla.breached"), ("2026-03-02T08:15:00+00:00", "escalation.triggered")]
    # the late ack still closes the alert the breach opened, at its own time, saying it was late
    assert inc1[-2:] == [("2026-03-02T08:10:00+00:00", "escalation.acknowledged"), ("2026-03-02T08:10:00+00:00", "escalation.resolved")]
    resolved = next(o for o in outputs if o["type"] == "escalation.resolved")
    assert resolved["data"]["explain"]["late_event"]["late_by"] == "PT20M"   # applied when the clock was at 08:30
    assert resolved["data"]["overrun"] == "PT0S"  # stopped at its own 08:10: 10m of 15m


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


def test_cli_refuses_an_agreements_directory_without_agreements_and_an_unwritable_output(tmp_path):
    # §8: non-zero on unusable agreements or arguments, with a message and no traceback
    empty, events = tmp_path / "none", tmp_path / "e.jsonl"
    empty.mkdir()
    events.write_text("\n".join(Events().open(OPEN).lines) + "\n")
    cli = [sys.executable, "-m", "escalation.cli"]
    run_ = lambda *args: subprocess.run([*cli, *args], capture_output=True, text=True, check=False)  # noqa: E731
    replay = run_("replay", "--agreements", str(empty), "--events", str(events))
    assert replay.returncode == 1 and f"{empty}: no agreement files (*.yaml) found" in replay.stderr
    validate = run_("validate", str(empty))
    assert validate.returncode == 1 and f"{empty}: no agreement files (*.yaml) found" in validate.stdout
    unwritable = run_("replay", "--events", str(events), "--out", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr and "Traceback" not in unwritable.stderr


def test_outputs_of_a_late_event_record_the_lateness():
    # the ack stamped 08:10 is read after an event at 08:12: applied at its own time, met, noted late
    ev = (Events().open(OPEN).open("2026-03-02T08:12:00Z", ticket="INC-2")
          .add("acknowledged", "2026-03-02T08:10:00Z"))
    outputs, _, _ = run(ev)
    met = [o for o in outputs if o["type"] == "sla.met"]
    assert [(o["time"], o["data"]["elapsed"]) for o in met] == [("2026-03-02T08:10:00+00:00", "PT10M")]
    assert met[0]["data"]["explain"]["late_event"]["late_by"] == "PT2M"


# --- DESIGN.md §10: a rejected record changes nothing ------------------------------------------

def test_a_rejected_event_dated_ahead_fires_no_deadline():
    # an ack for an unknown ticket, dated an hour ahead, used to move the clock and breach INC-1
    ev = Events().open(OPEN).add("acknowledged", "2026-03-02T09:00:00Z", ticket="INC-404")
    ev.add("acknowledged", "2026-03-02T08:05:00Z")
    outputs, rejects, stats = run(ev)
    assert [r["line"] for r in rejects] == [2] and stats.late == 0
    assert [o["type"] for o in outputs if o["data"].get("clock") == "response"] == ["sla.met"]


def test_a_rejected_line_at_year_end_closes_no_period():
    from tests.unit.test_slo_support import Metrics

    m = Metrics().slice("2026-03-10T00:00", "2026-03-10T01:00", 1, 1)
    m.slice("2026-12-31T00:00", "2026-12-31T01:00", 1, 1, service="nope")      # rejected: no SLO
    m.slice("2026-03-10T01:00", "2026-03-10T02:00", 1, 1)                      # still in an open period
    outputs, rejects, _ = run(m.lines)
    assert [r["line"] for r in rejects] == [2] and rejects[0]["reason"].startswith("no SLO covers")
    assert not [o for o in outputs if o["type"] in ("slo.attainment", "slo.no_data")]


def test_an_invalid_priority_change_leaves_the_incident_untouched():
    from escalation.core.engine import Engine
    from escalation.core.events import decode_event
    from tests.helpers import registry

    proc = Engine(registry())
    proc.step(decode_event(Events().open(OPEN).lines[0]))
    before = proc.snapshot()
    bad = '{"id": "p", "type": "ticket.priority_changed", "time": "2026-03-02T10:00:00Z", "ticket": "INC-1", "priority": "P9"}'
    try:
        proc.step(decode_event(bad))
    except Rejected as err:
        assert err.reason.startswith("unknown priority 'P9'")
    else:
        raise AssertionError("not rejected")
    assert proc.snapshot() == before


# --- decoding: plausible time, strict types ------------------------------------------------------

ACK = '{"id": "a", "type": "ticket.acknowledged", "ticket": "INC-1", "time": %s}'
SLICE = ('{"id": "m", "type": "metric.observed", "service": "erp-prod", "sli": "availability", '
         '"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:01:00Z", "good": %s, "total": %s}')


@pytest.mark.parametrize("time, reason", [
    ('"0001-01-01T00:00:00Z"', "outside the plausible range"),
    ('"9999-12-31T23:59:59Z"', "outside the plausible range"),
    ('"9999-12-31T23:59:59-01:00"', "outside the plausible range"),
    ('"2200-01-01T00:00:00Z"', "outside the plausible range"),
    ('"1969-12-31T23:59:59.999999Z"', "outside the plausible range"),
    ("1772438400", "numbers are not timestamps"),
    ('"1772438400"', "numbers are not timestamps"),
    ('"2026-03-02T08:00:00"', "naive timestamp"),
    # not RFC 3339 although Python would parse them: an offset without its colon or its minutes,
    # a separator of its own, ISO 8601's basic format
    ('"2026-03-02T08:05:00+01"', "not an RFC 3339 timestamp"),
    ('"2026-03-02T08:05:00+0100"', "not an RFC 3339 timestamp"),
    ('"2026-03-02_08:05:00Z"', "not an RFC 3339 timestamp"),
    ('"20260302T080500Z"', "not an RFC 3339 timestamp"),
])
def test_implausible_or_non_text_times_are_rejected(time, reason):
    outputs, rejects, stats = run(Events().open(OPEN).lines + [ACK % time])
    assert stats.internal_errors == 0 and [r["line"] for r in rejects] == [2]
    assert rejects[0]["reason"].startswith("field 'time': ") and reason in rejects[0]["reason"]


@pytest.mark.parametrize("time", ['"1970-01-01T00:00:00Z"', '"2199-12-31T23:59:59.999999Z"'])
def test_the_edges_of_the_plausible_window_decode(time):
    from escalation.core.events import decode_event

    assert decode_event(ACK % time).id == "a"


@pytest.mark.parametrize("good, total, field", [
    ("NaN", "1", "good"), ("1", "Infinity", "total"), ("1e400", "1e400", "good"), ("1.0", "2", "good"),
    ('"1"', "2", "good"), ("true", "2", "good"), ("1", "false", "total"), ("-1", "2", "good"),
    ("1", "9007199254740993", "total"), ("3", "2", "good"),
])
def test_counts_are_finite_integers_within_range(good, total, field):
    outputs, rejects, stats = run([SLICE % (good, total)])
    assert outputs == [] and stats.internal_errors == 0
    assert len(rejects) == 1 and field in rejects[0]["reason"]


@pytest.mark.parametrize("line, field", [
    ('{"id": "u", "type": "ticket.updated", "ticket": "INC-1", "time": "2026-03-02T08:01:00Z", "public": "false"}', "public"),
    ('{"id": "u", "type": "ticket.updated", "ticket": "INC-1", "time": "2026-03-02T08:01:00Z", "public": 0}', "public"),
    ('{"id": 7, "type": "ticket.acknowledged", "ticket": "INC-1", "time": "2026-03-02T08:01:00Z"}', "id"),
    ('{"id": "s", "type": "ticket.status_changed", "ticket": "INC-1", "time": "2026-03-02T08:01:00Z", "status": 3}', "status"),
])
def test_no_coercion(line, field):
    _, rejects, _ = run(Events().open(OPEN).lines + [line])
    assert [r["line"] for r in rejects] == [2] and f"field '{field}'" in rejects[0]["reason"]


# --- replay input bytes, repeated ids, the safety net -------------------------------------------

def test_a_byte_order_mark_is_skipped_and_invalid_utf8_keeps_its_bytes():
    import base64

    lines = [b"\xef\xbb\xbf" + Events().open(OPEN).lines[0].encode(), b'{"id": "\xff\xfe", "type": "x"}\n']
    outputs, rejects, stats = run(lines, until="2026-03-02T08:08:00Z")
    assert stats.events == 1 and outputs[0]["type"] == "sla.warning"
    assert rejects == [{"line": 2, "reason": "invalid UTF-8 at byte 8", "input_base64": base64.b64encode(lines[1][:-1]).decode()}]


def test_a_repeated_id_with_other_content_is_ignored_and_dead_lettered_as_duplicate():
    ev = Events().open(OPEN)
    ack = '{"id": "a", "type": "ticket.acknowledged", "time": "2026-03-02T08:05:00Z", "ticket": "INC-1"}'
    same_instant = ack.replace("08:05:00Z", "09:05:00+01:00")                 # same content
    other = ack.replace("08:05", "08:06")
    outputs, rejects, stats = run(ev.lines + [ack, same_instant, other], until="2026-03-02T09:00:00Z")
    assert stats.duplicates == 2 and stats.conflicts == 1 and stats.rejected == 0
    assert rejects == [{"line": 4, "reason": "duplicate id 'a' with different content", "duplicate": True, "input": other}]
    assert [o["data"]["elapsed"] for o in outputs if o["type"] == "sla.met"] == ["PT5M"]


def test_a_repeated_metric_id_with_other_content_is_flagged_too():
    from tests.unit.test_slo_support import Metrics

    m = Metrics().slice("2026-03-10T00:00", "2026-03-10T01:00", 1, 1, id_="s")
    m.slice("2026-03-10T00:00", "2026-03-10T01:00", 1, 1, id_="s").slice("2026-03-10T00:00", "2026-03-10T01:00", 0, 1, id_="s")
    _, rejects, stats = run(m.lines)
    assert stats.duplicates == 2 and stats.conflicts == 1 and [(r["line"], r["duplicate"]) for r in rejects] == [(3, True)]


def test_content_digests_survive_a_snapshot_and_tombstones():
    from escalation.core.engine import Engine
    from escalation.core.events import decode_event
    from tests.helpers import registry

    reg = registry()
    proc = Engine(reg, forget_closed=True)
    ev = Events().open(OPEN).add("closed", "2026-03-02T08:30:00Z")
    for line in ev.lines:
        proc.step(decode_event(line))
    carried = Engine.restore(reg, orjson.loads(orjson.dumps(proc.snapshot())))
    reopened = ev.lines[0].replace('"P1"', '"P2"')
    assert carried.step(decode_event(ev.lines[0])).conflict is None
    assert carried.step(decode_event(reopened)).conflict == "duplicate id 'e1' with different content"


def test_an_internal_error_dead_letters_the_record_and_the_run_goes_on(monkeypatch, caplog):
    from escalation.core.engine import Engine

    step = Engine.step

    def flaky(self, event):
        if getattr(event, "id", None) == "e2":  # the final Tick has no id
            raise ZeroDivisionError("boom")
        return step(self, event)

    monkeypatch.setattr(Engine, "step", flaky)
    ev = Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z").add("acknowledged", "2026-03-02T08:06:00Z")
    with caplog.at_level("ERROR", logger="escalation.replay"):
        outputs, rejects, stats = run(ev)
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "internal error: ZeroDivisionError: boom")]
    assert stats.internal_errors == 1 and stats.events == 2
    assert [o["type"] for o in outputs if o["data"].get("clock") == "response"] == ["sla.met"]
    assert "Traceback" in caplog.text and "ZeroDivisionError: boom" in caplog.text


def test_an_internal_error_after_the_clock_moved_keeps_what_fired(monkeypatch):
    # DESIGN.md §10 "nothing lost": INC-1 (P1, 08:00) warns at 08:07:30 and 08:12 and breaches at
    # 08:15 (level 1 too); INC-2's opening at 08:20 moves the clock past them all, then fails to
    # apply. What the move fired is still published; only INC-2's line is dead-lettered.
    from escalation.core.engine import Engine

    apply = Engine._apply

    def flaky(self, event, plan, kind):
        if getattr(event, "ticket", None) == "INC-2":
            raise ZeroDivisionError("boom")
        return apply(self, event, plan, kind)

    monkeypatch.setattr(Engine, "_apply", flaky)
    ev = Events().open(OPEN).open("2026-03-02T08:20:00Z", ticket="INC-2").add("acknowledged", "2026-03-02T08:25:00Z")
    outputs, rejects, stats = run(ev)
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "internal error: ZeroDivisionError: boom")]
    response = [(o["time"], o["type"]) for o in outputs if o["data"].get("clock") == "response"]
    assert response[:4] == [("2026-03-02T08:07:30+00:00", "sla.warning"), ("2026-03-02T08:12:00+00:00", "sla.warning"),
                            ("2026-03-02T08:15:00+00:00", "sla.breached"), ("2026-03-02T08:15:00+00:00", "escalation.triggered")]
    assert stats.internal_errors == 1 and all(o["subject"] == "INC-1" for o in outputs)


@pytest.mark.parametrize("time", ["2026-03-02t08:05:00z", "2026-03-02 08:05:00Z", "2026-03-02T09:05:00.250+01:00",
                                  "2026-03-02T09:05+01:00"])
def test_rfc3339_variants_decode(time):
    # RFC 3339 5.6 allows lowercase t/z, and its note a space for the T; fractions of any length;
    # seconds left out, as people write times, are taken too
    outputs, rejects, stats = run(Events().open(OPEN).lines + [ACK % f'"{time}"'])
    assert rejects == [] and stats.events == 2
