"""Ticket clocks against DESIGN.md §5, with hand-computed instants (reference agreement acme-erp).

2026-03-02 is a Monday; Berlin is UTC+1 until 2026-03-29, then UTC+2. Times in the tables are
UTC as the outputs give them.
"""

from __future__ import annotations

import pytest

from tests.helpers import Events, agreement_dict, brief, registry, run

OPEN = "2026-03-02T09:00:00+01:00"  # 08:00Z


def test_p1_unacknowledged_warns_breaches_and_escalates_at_exact_instants():
    outputs, rejects, _ = run(Events().open(OPEN), until="2026-03-02T08:16:00+00:00")
    assert rejects == []
    assert brief(outputs) == [
        ("2026-03-02T08:07:30+00:00", "sla.warning", "response", 0.5),     # 50 % of 15m
        ("2026-03-02T08:12:00+00:00", "sla.warning", "response", 0.8),     # 80 % of 15m
        ("2026-03-02T08:15:00+00:00", "sla.breached", "response"),        # 15m
        ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),         # level 1 at response 1.0
    ]


@pytest.mark.parametrize("ack, expected", [
    # acknowledged after 10m: the 50 % warning fired (alert open), then acknowledged (no level yet),
    # met with PT10M, and the alert resolved with no overrun
    ("2026-03-02T08:10:00Z", [("2026-03-02T08:07:30+00:00", "sla.warning", "response", 0.5),
                              ("2026-03-02T08:10:00+00:00", "escalation.acknowledged", "response", "ticket", None),
                              ("2026-03-02T08:10:00+00:00", "sla.met", "response", "PT10M"),
                              ("2026-03-02T08:10:00+00:00", "escalation.resolved", "response", "clock_stopped", "PT0S")]),
    # acknowledged at exactly 15m: an event at T comes before a deadline at T, so it is met
    ("2026-03-02T08:15:00Z", [("2026-03-02T08:07:30+00:00", "sla.warning", "response", 0.5),
                              ("2026-03-02T08:12:00+00:00", "sla.warning", "response", 0.8),
                              ("2026-03-02T08:15:00+00:00", "escalation.acknowledged", "response", "ticket", None),
                              ("2026-03-02T08:15:00+00:00", "sla.met", "response", "PT15M"),
                              ("2026-03-02T08:15:00+00:00", "escalation.resolved", "response", "clock_stopped", "PT0S")]),
    # acknowledged after the breach: no sla.met for that cycle; level 1 acknowledged, 1m overrun
    ("2026-03-02T08:16:00Z", [("2026-03-02T08:07:30+00:00", "sla.warning", "response", 0.5),
                              ("2026-03-02T08:12:00+00:00", "sla.warning", "response", 0.8),
                              ("2026-03-02T08:15:00+00:00", "sla.breached", "response"),
                              ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),
                              ("2026-03-02T08:16:00+00:00", "escalation.acknowledged", "response", "ticket", 1),
                              ("2026-03-02T08:16:00+00:00", "escalation.resolved", "response", "clock_stopped", "PT1M")]),
])
def test_response_met_or_breached(ack, expected):
    outputs, _, _ = run(Events().open(OPEN).add("acknowledged", ack), until="2026-03-02T08:20:00Z")
    assert [r for r in brief(outputs) if r[2:3] in (("response",), (1,))] == expected


def test_pause_moves_the_resolution_deadline_and_keeps_elapsed():
    # P2 resolution 8h with warn 0.75: paused 1h after 2h -> warning at 7h, breach at 9h after open.
    ev = (Events().open(OPEN, priority="P2").add("acknowledged", "2026-03-02T08:05:00Z")
          .add("status_changed", "2026-03-02T10:00:00Z", status="pending_customer")
          .add("status_changed", "2026-03-02T11:00:00Z", status="in_progress"))
    outputs, _, _ = run(ev, until="2026-03-02T18:00:00Z")
    resolution = [o for o in outputs if o["data"].get("clock") == "resolution"]
    assert brief(resolution) == [
        ("2026-03-02T15:00:00+00:00", "sla.warning", "resolution", 0.75),
        ("2026-03-02T17:00:00+00:00", "sla.breached", "resolution"),
    ]
    explain = resolution[1]["data"]["explain"]
    assert (explain["elapsed"], explain["paused"], explain["target"]) == ("PT8H", "PT1H", "PT8H")
    assert resolution[0]["data"]["due"] == "2026-03-02T17:00:00+00:00"


def test_status_not_in_pause_when_does_not_pause():
    # pending_vendor pauses resolution but not the response clock (no pause_when there).
    ev = Events().open(OPEN).add("status_changed", "2026-03-02T08:01:00Z", status="pending_vendor")
    outputs, _, _ = run(ev, until="2026-03-02T08:15:00Z")
    assert ("2026-03-02T08:15:00+00:00", "sla.breached", "response") in brief(outputs)


@pytest.mark.parametrize("opened, breach", [
    # P3 response 4h business (Mon-Fri 08-18 Berlin): Friday 16:00 -> 2h Friday + 2h Monday
    ("2026-03-06T16:00:00+01:00", "2026-03-09T09:00:00+00:00"),
    # across the spring-forward weekend: Monday 10:00 is now UTC+2
    ("2026-03-27T16:00:00+01:00", "2026-03-30T08:00:00+00:00"),
    # Good Friday (Apr 3) and Easter Monday (Apr 6) are Berlin holidays
    ("2026-04-02T16:00:00+02:00", "2026-04-07T08:00:00+00:00"),
    # opened on Saturday: counting starts Monday 08:00
    ("2026-03-07T11:00:00+01:00", "2026-03-09T11:00:00+00:00"),
    # explicit holiday 2026-12-24 and public holidays 25/26 Dec: Wed 23rd 16:00 -> Mon 28th 10:00
    ("2026-12-23T16:00:00+01:00", "2026-12-28T09:00:00+00:00"),
])
def test_business_hours_response(opened, breach):
    outputs, _, _ = run(Events().open(opened, priority="P3"), until="2027-01-10T00:00:00Z")
    assert [o["time"] for o in outputs if o["type"] == "sla.breached" and o["data"]["clock"] == "response"] == [breach]


def test_business_days_target_is_counted_in_longest_daily_opening():
    # P4 resolution 5bd = 5 x 10h of business time: Mon 08:00 -> Fri 18:00 (17:00Z).
    outputs, _, _ = run(Events().open("2026-03-02T08:00:00+01:00", priority="P4"), until="2026-03-10T00:00:00Z")
    assert brief(outputs) == [("2026-03-06T17:00:00+00:00", "sla.breached", "resolution")]
    assert outputs[0]["data"]["target"] == "PT50H"


def test_update_clock_restarts_on_public_updates_only():
    ev = (Events().open(OPEN).add("acknowledged", "2026-03-02T08:01:00Z")
          .add("updated", "2026-03-02T08:20:00Z")                   # met, cycle 2 starts
          .add("updated", "2026-03-02T08:40:00Z", public=False))    # private: ignored
    outputs, _, _ = run(ev, until="2026-03-02T09:00:00Z")
    update = [(o["type"], o["time"], o["data"]["cycle"]) for o in outputs if o["data"].get("clock") == "update"]
    assert update == [("sla.met", "2026-03-02T08:20:00+00:00", 1), ("sla.breached", "2026-03-02T08:50:00+00:00", 2)]


def test_resolution_also_stops_an_unacknowledged_response_clock():
    ev = Events().open(OPEN).add("resolved", "2026-03-02T08:10:00Z")
    outputs, _, _ = run(ev, until="2026-03-03T00:00:00Z")
    assert [r for r in brief(outputs) if r[1] == "sla.met"] == [
        ("2026-03-02T08:10:00+00:00", "sla.met", "response", "PT10M"),
        ("2026-03-02T08:10:00+00:00", "sla.met", "resolution", "PT10M"),
        ("2026-03-02T08:10:00+00:00", "sla.met", "update", "PT10M"),     # update stops on resolved too
    ]


def test_closed_and_cancelled_end_the_incident():
    ev = (Events().open(OPEN).add("closed", "2026-03-02T08:05:00Z")
          .open(OPEN, ticket="INC-2").add("cancelled", "2026-03-02T08:05:00Z", ticket="INC-2")
          .add("acknowledged", "2026-03-02T08:06:00Z"))
    outputs, rejects, _ = run(ev, until="2026-03-03T00:00:00Z")
    assert outputs == []  # closed before the first warning (7m30s): nothing, then or later
    assert len(rejects) == 1 and "state 'closed'" in rejects[0]["reason"]


def test_outputs_explain_themselves_and_carry_notification_fields():
    outputs, _, _ = run(Events().open(OPEN).add("assigned", "2026-03-02T08:01:00Z", assignee="alice"),
                        until="2026-03-02T08:15:00Z")
    warning, escalation = outputs[0], outputs[-1]
    assert warning["specversion"] == "1.0" and warning["source"] == "escalation/acme-erp@3"
    assert warning["subject"] == "INC-1" and warning["datacontenttype"] == "application/json"
    data = warning["data"]
    assert (data["target"], data["fraction"], data["due"], data["elapsed"]) == ("PT15M", 0.5, "2026-03-02T08:15:00+00:00", "PT7M30S")
    assert data["severity"] == "warning" and data["dedup_key"] == "acme-erp/INC-1/response" and data["summary"]
    assert data["explain"]["clause"] == "targets[0].warn_at" and data["explain"]["calendar"] == "always"
    assert escalation["type"] == "escalation.triggered" and escalation["data"]["severity"] == "error"
    assert escalation["data"]["recipients"] == [
        {"name": "assignee", "kind": "assignee", "ref": "alice"},
        {"name": "l2-oncall", "kind": "oncall_schedule", "ref": "pagerduty:PERP2"},
    ]
    assert escalation["data"]["dedup_key"] == data["dedup_key"]


def test_agreement_found_by_customer_and_service():
    ev = Events().open(OPEN, agreement=None, customer="acme")
    ev.lines[0] = ev.lines[0].replace('"agreement":null,', "")
    outputs, rejects, _ = run(ev, until="2026-03-02T08:08:00Z")
    assert rejects == [] and outputs[0]["source"] == "escalation/acme-erp@3"


def test_incident_stays_pinned_to_the_revision_it_opened_under():
    r4 = agreement_dict(revision=4, targets=[{"clock": "response", "priority": "P1", "within": "1h", "calendar": "always"}])
    reg = registry(agreement_dict(validity={"start": "2026-01-01", "end": "2026-03-31"}),
                   {**r4, "validity": {"start": "2026-04-01", "end": "2026-12-31"}})
    ev = Events().open("2026-03-31T23:00:00+02:00").open("2026-04-01T00:30:00+02:00", ticket="INC-2")
    outputs, _, _ = run(ev, until="2026-04-01T00:00:00Z", reg=reg)
    breaches = [(o["subject"], o["source"], o["time"]) for o in outputs
                if o["type"] == "sla.breached" and o["data"]["clock"] == "response"]
    assert breaches == [("INC-1", "escalation/acme-erp@3", "2026-03-31T21:15:00+00:00"),
                        ("INC-2", "escalation/acme-erp@4", "2026-03-31T23:30:00+00:00")]
