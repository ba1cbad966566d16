"""Priority-change and reopen policies, escalation repeats, per-breach penalties and caps.

Hand-computed instants; the reference agreement (acme-erp r3) or a variant of it named per test.
Opened at 08:00Z on Monday 2026-03-02 unless a case says otherwise.
"""

from __future__ import annotations

from tests.helpers import Events, agreement_dict, brief, registry, run

OPEN = "2026-03-02T08:00:00Z"


def clock_rows(outputs, clock):
    return [r for o, r in zip(outputs, brief(outputs)) if o["data"].get("clock") == clock]


def test_keep_elapsed_fires_passed_thresholds_once_at_the_change():
    # P2 -> P1 after 40m: response 40m >= 15m, so both warnings, the breach and level 1 fire at 08:40.
    ev = Events().open(OPEN, priority="P2").add("priority_changed", "2026-03-02T08:40:00Z", priority="P1")
    outputs, _, _ = run(ev, until="2026-03-02T12:00:00Z")
    assert clock_rows(outputs, "response") == [
        ("2026-03-02T08:40:00+00:00", "sla.warning", "response", 0.5),
        ("2026-03-02T08:40:00+00:00", "sla.warning", "response", 0.8),
        ("2026-03-02T08:40:00+00:00", "sla.breached", "response"),
        ("2026-03-02T08:40:00+00:00", "escalation.triggered", 1),
    ]
    # resolution keeps its 40m and is measured against P1's 4h: level 2 at 2h, warn at 3h, breach at 4h
    assert clock_rows(outputs, "resolution") == [
        ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
        ("2026-03-02T11:00:00+00:00", "sla.warning", "resolution", 0.75),
        ("2026-03-02T12:00:00+00:00", "sla.breached", "resolution"),
        ("2026-03-02T12:00:00+00:00", "penalty.assessed", "500.00", "2026-03", False),
        ("2026-03-02T12:00:00+00:00", "escalation.triggered", 3),
    ]
    assert outputs[0]["data"]["explain"]["policy"].startswith("keep_elapsed: priority P2 -> P1")


def test_keep_elapsed_downgrade_does_not_breach_twice():
    # P1 breached at 08:15, then P2 (1h): the same cycle never emits a second breach.
    ev = Events().open(OPEN).add("priority_changed", "2026-03-02T08:20:00Z", priority="P2")
    outputs, _, _ = run(ev, until="2026-03-02T10:00:00Z")
    assert [r[1] for r in clock_rows(outputs, "response")].count("sla.breached") == 1


def test_restart_starts_a_new_cycle_from_zero():
    reg = registry(agreement_dict(on_priority_change="restart"))
    ev = Events().open(OPEN, priority="P2").add("priority_changed", "2026-03-02T08:40:00Z", priority="P1")
    outputs, _, _ = run(ev, until="2026-03-02T08:56:00Z", reg=reg)
    assert clock_rows(outputs, "response") == [
        ("2026-03-02T08:47:30+00:00", "sla.warning", "response", 0.5),
        ("2026-03-02T08:52:00+00:00", "sla.warning", "response", 0.8),
        ("2026-03-02T08:55:00+00:00", "sla.breached", "response"),
        ("2026-03-02T08:55:00+00:00", "escalation.triggered", 1),
    ]
    assert {o["data"]["cycle"] for o in outputs if o["data"].get("clock") == "response"} == {2}


def test_recompute_from_start_uses_the_new_calendar_from_the_original_start():
    # P3 (business hours) opened Saturday 10:00 Berlin; P1 (24x7) at 12:00: 2h already count.
    ev = Events().open("2026-03-07T10:00:00+01:00", priority="P3").add(
        "priority_changed", "2026-03-07T12:00:00+01:00", priority="P1")
    outputs, _, _ = run(ev, until="2026-03-07T13:00:00Z", reg=registry(agreement_dict(on_priority_change="recompute_from_start")))
    assert clock_rows(outputs, "response") == [
        ("2026-03-07T11:00:00+00:00", "sla.warning", "response", 0.5),
        ("2026-03-07T11:00:00+00:00", "sla.warning", "response", 0.8),
        ("2026-03-07T11:00:00+00:00", "sla.breached", "response"),
        ("2026-03-07T11:00:00+00:00", "escalation.triggered", 1),
    ]
    assert clock_rows(outputs, "resolution") == [
        ("2026-03-07T11:00:00+00:00", "escalation.triggered", 2),   # 2h = 50 % of 4h, reached already
        ("2026-03-07T12:00:00+00:00", "sla.warning", "resolution", 0.75),
        ("2026-03-07T13:00:00+00:00", "sla.breached", "resolution"),
        ("2026-03-07T13:00:00+00:00", "penalty.assessed", "500.00", "2026-03", False),
        ("2026-03-07T13:00:00+00:00", "escalation.triggered", 3),
    ]
    # keep_elapsed on the same events: nothing counted on Saturday, so P1 starts from zero at 12:00
    kept, _, _ = run(ev, until="2026-03-07T11:16:00Z")
    assert ("2026-03-07T11:15:00+00:00", "sla.breached", "response") in brief(kept)


def test_reopen_resume_continues_the_elapsed_time():
    # P2 resolution 8h: resolved after 3h (met), reopened 2h later: 5h left -> breach at 18:00
    ev = (Events().open(OPEN, priority="P2").add("acknowledged", "2026-03-02T08:05:00Z")
          .add("resolved", "2026-03-02T11:00:00Z").add("reopened", "2026-03-02T13:00:00Z"))
    outputs, _, _ = run(ev, until="2026-03-02T23:00:00Z")
    assert [(r[0], r[1]) for r in clock_rows(outputs, "resolution")] == [
        ("2026-03-02T11:00:00+00:00", "sla.met"),
        ("2026-03-02T16:00:00+00:00", "sla.warning"),
        ("2026-03-02T18:00:00+00:00", "sla.breached"),
    ]


def test_reopen_new_cycle_starts_from_zero_with_cycle_2():
    ev = (Events().open(OPEN, priority="P2").add("acknowledged", "2026-03-02T08:05:00Z")
          .add("resolved", "2026-03-02T11:00:00Z").add("reopened", "2026-03-02T13:00:00Z"))
    outputs, _, _ = run(ev, until="2026-03-02T23:00:00Z", reg=registry(agreement_dict(on_reopen="new_cycle")))
    rows = [(o["time"], o["type"], o["data"]["cycle"]) for o in outputs if o["data"].get("clock") == "resolution"]
    assert rows == [
        ("2026-03-02T11:00:00+00:00", "sla.met", 1),
        ("2026-03-02T19:00:00+00:00", "sla.warning", 2),
        ("2026-03-02T21:00:00+00:00", "sla.breached", 2),
    ]


def test_level_repeats_every_interval_until_resolved():
    # level 4: 2h after the 12:00 breach, then every 30m up to 3 times; resolved at 14:40.
    ev = Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z").add("resolved", "2026-03-02T14:40:00Z")
    outputs, _, _ = run(ev, until="2026-03-03T00:00:00Z")
    assert [r for r in brief(outputs) if r[1].startswith("escalation")] == [
        ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
        ("2026-03-02T12:00:00+00:00", "escalation.triggered", 3),
        ("2026-03-02T14:00:00+00:00", "escalation.triggered", 4),
        ("2026-03-02T14:30:00+00:00", "escalation.repeated", 4, 1),
        ("2026-03-02T14:40:00+00:00", "escalation.resolved", "resolution", "clock_stopped", "PT2H40M"),  # 6h40m - 4h
        # the update clock (30m, no levels) breached at 08:30 and stops on resolve too: 6h40m - 30m
        ("2026-03-02T14:40:00+00:00", "escalation.resolved", "update", "clock_stopped", "PT6H10M"),
    ]


def test_level_repeats_all_times_when_never_resolved():
    outputs, _, _ = run(Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z"), until="2026-03-03T00:00:00Z")
    repeats = [r for r in brief(outputs) if r[1] == "escalation.repeated"]
    assert repeats == [("2026-03-02T14:30:00+00:00", "escalation.repeated", 4, 1),
                       ("2026-03-02T15:00:00+00:00", "escalation.repeated", 4, 2),
                       ("2026-03-02T15:30:00+00:00", "escalation.repeated", 4, 3)]
    assert outputs[-1]["data"]["recipients"] == [{"name": "cio", "kind": "email", "address": "cio@warp.example"}]


def test_response_level_repeats_stop_at_acknowledge():
    ladder = [{"id": "resp", "when": {"priority": ["P1"]}, "levels": [
        {"level": 1, "at": {"clock": "response", "fraction": 1.0}, "notify": ["l2-oncall"],
         "severity": "critical", "repeat": {"every": "5m", "times": 3}}]}]
    ev = Events().open(OPEN).add("acknowledged", "2026-03-02T08:22:00Z")
    outputs, _, _ = run(ev, until="2026-03-02T09:00:00Z", reg=registry(agreement_dict(escalation=ladder)))
    assert [r for r in brief(outputs) if r[1].startswith("escalation")] == [
        ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),
        ("2026-03-02T08:20:00+00:00", "escalation.repeated", 1, 1),
        ("2026-03-02T08:22:00+00:00", "escalation.acknowledged", "response", "ticket", 1),    # no assignee
        ("2026-03-02T08:22:00+00:00", "escalation.resolved", "response", "clock_stopped", "PT7M"),  # 22m - 15m
    ]


def test_policy_applies_only_while_priority_matches():
    # P2 has no ladder: no escalation at all, only the clock outputs
    outputs, _, _ = run(Events().open(OPEN, priority="P2"), until="2026-03-02T20:00:00Z")
    assert not [o for o in outputs if o["type"].startswith("escalation")]


def test_penalties_are_capped_per_period_and_still_emitted():
    reg = registry(agreement_dict(caps=[{"period": "calendar_month", "max_amount": "1200.00"}]))
    ev = Events()
    for n in range(4):  # four P1 tickets, acknowledged, never resolved: breaches at 12:00..12:03
        ev.open(f"2026-03-02T08:0{n}:00Z", ticket=f"INC-{n}").add("acknowledged", f"2026-03-02T08:0{n}:30Z", ticket=f"INC-{n}")
    outputs, _, _ = run(ev, until="2026-03-02T12:10:00Z", reg=reg)
    assert [r[2:] for r in brief(outputs) if r[1] == "penalty.assessed"] == [
        ("500.00", "2026-03", False), ("500.00", "2026-03", False), ("200.00", "2026-03", True), ("0.00", "2026-03", True)]


def test_penalty_belongs_to_the_period_of_the_breach_in_agreement_time_zone():
    # breaches at 21:30Z (23:30 March 31 in Berlin) and 22:30Z (00:30 April 1 in Berlin)
    ev = (Events().open("2026-03-31T17:30:00Z", ticket="A").add("acknowledged", "2026-03-31T17:31:00Z", ticket="A")
          .open("2026-03-31T18:30:00Z", ticket="B").add("acknowledged", "2026-03-31T18:31:00Z", ticket="B"))
    outputs, _, _ = run(ev, until="2026-04-01T00:00:00Z")
    penalties = [(o["subject"], o["data"]["period"], o["data"]["amount"]) for o in outputs if o["type"] == "penalty.assessed"]
    assert penalties == [("A", "2026-03", "500.00"), ("B", "2026-04", "500.00")]


def test_reference_cap_is_thirty_percent_of_monthly_fees():
    ev = Events()
    for n in range(25):  # 25 x 500 = 12500 requested; the cap is 12000
        ev.open(f"2026-03-03T{n % 24:02d}:00:00Z", ticket=f"T{n:02d}").add("acknowledged", f"2026-03-03T{n % 24:02d}:01:00Z", ticket=f"T{n:02d}")
    outputs, _, _ = run(ev, until="2026-03-05T00:00:00Z")
    amounts = [o["data"]["amount"] for o in outputs if o["type"] == "penalty.assessed"]
    assert amounts[:23] == ["500.00"] * 23 and amounts[23:] == ["500.00", "0.00"]


def test_policy_with_a_service_condition_applies_only_to_those_services():
    ladder = [{"id": "test-only", "when": {"priority": ["P1"], "service": ["erp-test"]}, "levels": [
        {"level": 1, "at": {"clock": "response", "fraction": 1.0}, "notify": ["l2-oncall"]}]}]
    ev = Events().open(OPEN).open(OPEN, ticket="INC-2", service="erp-test")
    outputs, _, _ = run(ev, until="2026-03-02T08:20:00Z", reg=registry(agreement_dict(escalation=ladder)))
    assert [(o["subject"], o["time"]) for o in outputs if o["type"] == "escalation.triggered"] == [
        ("INC-2", "2026-03-02T08:15:00+00:00")]
