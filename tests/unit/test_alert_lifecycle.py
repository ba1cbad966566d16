"""The alert lifecycle for on-call systems (DESIGN.md §11), with hand-computed instants.

Reference agreement acme-erp r3 unless a case names a variant. Opened at 08:00Z on Monday
2026-03-02. P1: response 15m (warn 50 %, 80 %), resolution 4h (warn 75 %), update 30m; p1-ladder
level 1 at response 100 % (assignee, l2-oncall), 2 at resolution 50 % (2h), 3 at resolution
100 % (4h), 4 two hours after the resolution breach, repeated every 30m up to 3 times. P2:
response 1h, resolution 8h (warn 75 %), no update target, no ladder.

Rows are ``brief`` rows: acknowledged -> (time, type, clock, by, level); resolved -> (time, type,
clock, reason, overrun).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from escalation.agreement.models import Agreement
from escalation.core.engine import Engine
from escalation.core.events import Tick, decode_event
from escalation.core.tickets.incident import next_due
from tests.helpers import Events, agreement_dict, brief, registry, run

OPEN = "2026-03-02T08:00:00Z"
ACK, RESOLVED = "escalation.acknowledged", "escalation.resolved"
LIFECYCLE = (ACK, RESOLVED)


def lifecycle(outputs, types=LIFECYCLE):
    return [r for r in brief(outputs) if r[1] in types]


def timeout_ladder(**level1) -> list[dict]:
    """Level 1 at the response breach with a 10m ack timeout; level 2 at half the resolution time."""
    return [{"id": "ladder", "when": {"priority": ["P1"]}, "levels": [
        {"level": 1, "at": {"clock": "response", "fraction": 1.0}, "notify": ["l2-oncall"], "ack_timeout": "10m", **level1},
        {"level": 2, "at": {"clock": "resolution", "fraction": 0.5}, "notify": ["duty-manager"]}]}]


TIMEOUTS = registry(agreement_dict(escalation=timeout_ladder()))
RESTART = registry(agreement_dict(on_priority_change="restart"))

CASES = {
    # ack after the resolution breach: level 3 fired at 12:00 (4h), bob acknowledges at 12:10;
    # resolved at 12:30 = 4h30m counted, 30m past 4h. The update clock (30m) breached at 08:30
    # and stops on resolve too: 4h30m - 30m. Response was met at 08:05, before any warning: silent.
    "ack after breach, then resolve": (
        Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z")
        .notification_ack("2026-03-02T12:10:00Z", "resolution", by="bob").add("resolved", "2026-03-02T12:30:00Z"),
        None, "2026-03-02T13:00:00Z", LIFECYCLE, [
            ("2026-03-02T12:10:00+00:00", ACK, "resolution", "bob", 3),
            ("2026-03-02T12:30:00+00:00", RESOLVED, "resolution", "clock_stopped", "PT30M"),
            ("2026-03-02T12:30:00+00:00", RESOLVED, "update", "clock_stopped", "PT4H"),
        ]),
    # P2 resolution 8h warns at 6h (14:00); resolved at 15:00 (7h): met, so the alert the warning
    # opened resolves with no overrun
    "met clock with a warning": (
        Events().open(OPEN, priority="P2").add("acknowledged", "2026-03-02T08:30:00Z")
        .add("resolved", "2026-03-02T15:00:00Z"),
        None, "2026-03-02T16:00:00Z", LIFECYCLE, [
            ("2026-03-02T15:00:00+00:00", RESOLVED, "resolution", "clock_stopped", "PT0S"),
        ]),
    # P2 acknowledged at 30m (of 1h), resolved at 2h (of 8h): nothing went to notifications
    "no notification in the cycle": (
        Events().open(OPEN, priority="P2").add("acknowledged", "2026-03-02T08:30:00Z")
        .add("resolved", "2026-03-02T10:00:00Z"),
        None, "2026-03-02T16:00:00Z", LIFECYCLE, []),
    # level 4 at 14:00 (2h after the 12:00 breach), repeat 1 at 14:30; bob acknowledges the
    # resolution alert at 14:45: the repeats due at 15:00 and 15:30 do not come
    "notification ack stops repeats": (
        Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z")
        .notification_ack("2026-03-02T14:45:00Z", "resolution", by="bob"),
        None, "2026-03-02T16:00:00Z", ("escalation.triggered", "escalation.repeated", ACK), [
            ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
            ("2026-03-02T12:00:00+00:00", "escalation.triggered", 3),
            ("2026-03-02T14:00:00+00:00", "escalation.triggered", 4),
            ("2026-03-02T14:30:00+00:00", "escalation.repeated", 4, 1),
            ("2026-03-02T14:45:00+00:00", ACK, "resolution", "bob", 4),
        ]),
    # as above, bob acknowledges at 14:10 (level 4 fired at 14:00); resolved at 14:20, reopened at
    # 14:50 (resume: same cycle, the clock runs again). The acknowledged level stays quiet: no
    # repeat at 14:50 (the one due 14:30, late) nor at 15:00 or 15:30
    "acknowledged repeats stay stopped after a resumed reopen": (
        Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z")
        .notification_ack("2026-03-02T14:10:00Z", "resolution", by="bob").add("resolved", "2026-03-02T14:20:00Z")
        .add("reopened", "2026-03-02T14:50:00Z"),
        None, "2026-03-02T17:00:00Z", ("escalation.triggered", "escalation.repeated", ACK), [
            ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
            ("2026-03-02T12:00:00+00:00", "escalation.triggered", 3),
            ("2026-03-02T14:00:00+00:00", "escalation.triggered", 4),
            ("2026-03-02T14:10:00+00:00", ACK, "resolution", "bob", 4),
        ]),
    # level 4 at 14:00, repeat 1 at 14:30; P2 at 14:40 (keep_elapsed) resolves the alert (the
    # ladder is P1 only), P1 again at 16:00: the repeats due at 15:00 and 15:30 belonged to the
    # resolved alert, so they do not come in a burst at 16:00
    "repeats of a resolved alert do not come back with the policy": (
        Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z")
        .add("priority_changed", "2026-03-02T14:40:00Z", priority="P2")
        .add("priority_changed", "2026-03-02T16:00:00Z", priority="P1"),
        None, "2026-03-02T17:30:00Z", ("escalation.triggered", "escalation.repeated"), [
            ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
            ("2026-03-02T12:00:00+00:00", "escalation.triggered", 3),
            ("2026-03-02T14:00:00+00:00", "escalation.triggered", 4),
            ("2026-03-02T14:30:00+00:00", "escalation.repeated", 4, 1),
        ]),
    # level 1 at 08:15, not acknowledged by 08:25: level 2 fires then instead of at 10:00 (2h)
    "ack timeout escalates": (
        Events().open(OPEN), TIMEOUTS, "2026-03-02T10:30:00Z", ("escalation.triggered",), [
            ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),
            ("2026-03-02T08:25:00+00:00", "escalation.triggered", 2),
        ]),
    # pending_customer at 08:20 pauses the resolution clock (not response): the timeout is
    # wall-clock time, so level 2 still fires at 08:25, on the paused clock
    "ack timeout while the next clock is paused": (
        Events().open(OPEN).add("status_changed", "2026-03-02T08:20:00Z", status="pending_customer"),
        TIMEOUTS, "2026-03-02T10:30:00Z", ("escalation.triggered",), [
            ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),
            ("2026-03-02T08:25:00+00:00", "escalation.triggered", 2),
        ]),
    # bob acknowledges the response alert at 08:20, within 10m of 08:15: level 2 waits for its 2h
    "notification ack before the timeout": (
        Events().open(OPEN).notification_ack("2026-03-02T08:20:00Z", "response", by="bob"),
        TIMEOUTS, "2026-03-02T10:30:00Z", ("escalation.triggered", ACK), [
            ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),
            ("2026-03-02T08:20:00+00:00", ACK, "response", "bob", 1),
            ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
        ]),
    # the ticket acknowledged at 08:20 (no assignee: by "ticket"): the response alert is
    # acknowledged, then resolved as the clock stops (20m - 15m); level 2 at its own 10:00
    "ticket ack before the timeout": (
        Events().open(OPEN).add("acknowledged", "2026-03-02T08:20:00Z"),
        TIMEOUTS, "2026-03-02T10:30:00Z", ("escalation.triggered", ACK, RESOLVED), [
            ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),
            ("2026-03-02T08:20:00+00:00", ACK, "response", "ticket", 1),
            ("2026-03-02T08:20:00+00:00", RESOLVED, "response", "clock_stopped", "PT5M"),
            ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
        ]),
    # closed at 12:30 with the resolution (breached 12:00) and update (breached 08:30) alerts
    # open: each resolves, in clock order; nothing fires afterwards (level 4 was due at 14:00)
    "closed ticket": (
        Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z").add("closed", "2026-03-02T12:30:00Z"),
        None, "2026-03-02T18:00:00Z", LIFECYCLE + ("escalation.triggered",), [
            ("2026-03-02T10:00:00+00:00", "escalation.triggered", 2),
            ("2026-03-02T12:00:00+00:00", "escalation.triggered", 3),
            ("2026-03-02T12:30:00+00:00", RESOLVED, "resolution", "ticket_closed", "PT30M"),
            ("2026-03-02T12:30:00+00:00", RESOLVED, "update", "ticket_closed", "PT4H"),
        ]),
    # cancelled at 08:20: the response alert (level 1 at 08:15) resolves 5m past 15m; the update
    # clock (30m) has warned nobody yet
    "cancelled ticket": (
        Events().open(OPEN).add("cancelled", "2026-03-02T08:20:00Z"),
        None, "2026-03-02T18:00:00Z", LIFECYCLE, [
            ("2026-03-02T08:20:00+00:00", RESOLVED, "response", "ticket_cancelled", "PT5M"),
        ]),
    # P1 -> P2 at 08:20 (keep_elapsed): p1-ladder's level 1 (08:15) no longer applies, so the
    # response alert resolves, measured against P1's 15m (20m - 15m). The breach is in this
    # cycle's past, so P2's 1h brings nothing new and the ack at 09:10 has no alert to close
    "priority change: policy no longer applies": (
        Events().open(OPEN).add("priority_changed", "2026-03-02T08:20:00Z", priority="P2")
        .add("acknowledged", "2026-03-02T09:10:00Z"),
        None, "2026-03-02T09:30:00Z", LIFECYCLE + ("sla.breached",), [
            ("2026-03-02T08:15:00+00:00", "sla.breached", "response"),
            ("2026-03-02T08:20:00+00:00", RESOLVED, "response", "policy_no_longer_applies", "PT5M"),
        ]),
    # P2 resolution 8h: warned at 6h (14:00), resolved at 14:30 (met: alert 1 resolves), reopened
    # at 15:00 (resume: 6h30m kept), breaches at 16:30 in the same cycle (alert 2), closed at 17:00
    "reopened cycle opens a second alert": (
        Events().open(OPEN, priority="P2").add("acknowledged", "2026-03-02T08:05:00Z")
        .add("resolved", "2026-03-02T14:30:00Z").add("reopened", "2026-03-02T15:00:00Z")
        .add("closed", "2026-03-02T17:00:00Z"),
        None, "2026-03-02T18:00:00Z", LIFECYCLE + ("sla.breached",), [
            ("2026-03-02T14:30:00+00:00", RESOLVED, "resolution", "clock_stopped", "PT0S"),
            ("2026-03-02T16:30:00+00:00", "sla.breached", "resolution"),
            ("2026-03-02T17:00:00+00:00", RESOLVED, "resolution", "ticket_closed", "PT30M"),
        ]),
    # restart: the change at 08:20 ends every running cycle, so the response alert (level 1 at
    # 08:15) resolves as a stopped clock (20m - 15m); cycle 2 (P2, 1h) breaches at 09:20
    "priority change: restart": (
        Events().open(OPEN).add("priority_changed", "2026-03-02T08:20:00Z", priority="P2"),
        RESTART, "2026-03-02T09:30:00Z", LIFECYCLE + ("sla.breached",), [
            ("2026-03-02T08:15:00+00:00", "sla.breached", "response"),
            ("2026-03-02T08:20:00+00:00", RESOLVED, "response", "clock_stopped", "PT5M"),
            ("2026-03-02T09:20:00+00:00", "sla.breached", "response"),
        ]),
    # update 30m: cycle 1 breaches at 08:30, the public update at 08:40 ends it (10m over);
    # cycle 2 from 08:40 breaches at 09:10, the private update at 09:15 changes nothing, the
    # public one at 09:20 ends it (10m over); cycle 3 from 09:20 has not breached by 09:45
    "update clock cycles": (
        Events().open(OPEN).add("acknowledged", "2026-03-02T08:05:00Z").add("updated", "2026-03-02T08:40:00Z")
        .add("updated", "2026-03-02T09:15:00Z", public=False).add("updated", "2026-03-02T09:20:00Z"),
        None, "2026-03-02T09:45:00Z", LIFECYCLE + ("sla.breached",), [
            ("2026-03-02T08:30:00+00:00", "sla.breached", "update"),
            ("2026-03-02T08:40:00+00:00", RESOLVED, "update", "clock_stopped", "PT10M"),
            ("2026-03-02T09:10:00+00:00", "sla.breached", "update"),
            ("2026-03-02T09:20:00+00:00", RESOLVED, "update", "clock_stopped", "PT10M"),
        ]),
}


@pytest.mark.parametrize("events, reg, until, types, expected", CASES.values(), ids=CASES.keys())
def test_lifecycle(events, reg, until, types, expected):
    outputs, rejects, _ = run(events, until=until, reg=reg)
    assert rejects == []
    assert lifecycle(outputs, types) == expected
    assert len({o["id"] for o in outputs}) == len(outputs)  # second alerts and cycles: new ids


def test_update_cycles_carry_their_cycle_number():
    events, _, until, _, _ = CASES["update clock cycles"]
    outputs, _, _ = run(events, until=until)
    assert [o["data"]["cycle"] for o in outputs if o["type"] == RESOLVED] == [1, 2]


def test_lifecycle_outputs_carry_what_on_call_tools_need():
    # alice assigned at 08:01; level 1 at 08:15 pages alice and l2-oncall; the 50 % warning at
    # 08:07:30 went to alice already; acknowledged at 08:16: both carry both, once each
    ev = Events().open(OPEN).add("assigned", "2026-03-02T08:01:00Z", assignee="alice").add("acknowledged", "2026-03-02T08:16:00Z")
    outputs, _, _ = run(ev, until="2026-03-02T08:20:00Z")
    ack, resolved = [o for o in outputs if o["type"] in LIFECYCLE]
    recipients = [{"name": "assignee", "kind": "assignee", "ref": "alice"},
                  {"name": "l2-oncall", "kind": "oncall_schedule", "ref": "pagerduty:PERP2"}]
    for out in (ack, resolved):
        data = out["data"]
        assert data["recipients"] == recipients and data["severity"] == "info"
        assert data["dedup_key"] == "acme-erp/INC-1/response" and data["cycle"] == 1 and data["ticket"] == "INC-1"
        assert data["summary"] and "\n" not in data["summary"] and data["explain"]["clause"] == "targets[0]"
    assert (ack["data"]["by"], ack["data"]["level"]) == ("alice", 1)
    assert ack["data"]["explain"]["reason"] == "response alert acknowledged by alice (ticket.acknowledged)"
    assert (resolved["data"]["reason"], resolved["data"]["overrun"]) == ("clock_stopped", "PT1M")


def test_ack_timeout_output_names_the_unacknowledged_level():
    outputs, _, _ = run(Events().open(OPEN), until="2026-03-02T08:25:00Z", reg=TIMEOUTS)
    level2 = outputs[-1]
    assert (level2["type"], level2["time"], level2["data"]["level"]) == ("escalation.triggered", "2026-03-02T08:25:00+00:00", 2)
    # the next level's own clock and dedup_key, and why it fired early
    assert level2["data"]["clock"] == "resolution" and level2["data"]["dedup_key"] == "acme-erp/INC-1/resolution"
    assert level2["data"]["explain"]["reason"] == "level 1 not acknowledged within 10m"
    assert level2["data"]["explain"]["clause"] == "escalation[0].levels[0].ack_timeout"
    assert level2["data"]["recipients"] == [{"name": "duty-manager", "kind": "email", "address": "duty@warp.example"}]


def test_ack_timeout_is_the_next_deadline():
    # after level 1 fires at 08:15, the incident's next instant is 08:25 (fired + 10m), not the
    # 50 % resolution point at 10:00: ticks and replay jump there, nobody polls
    processor = Engine(TIMEOUTS)
    processor.step(decode_event(Events().open(OPEN).lines[0]))
    processor.step(Tick(datetime.fromisoformat("2026-03-02T08:15:00+00:00")))
    incident = processor.incidents["INC-1"]
    assert next_due(TIMEOUTS.get("acme-erp", 3), incident) == datetime.fromisoformat("2026-03-02T08:25:00+00:00")
    assert processor._deadlines.due_of("INC-1") == datetime.fromisoformat("2026-03-02T08:25:00+00:00")


def test_a_level_fires_once_whichever_comes_first():
    # level 2's own condition (resolution 50 % = 08:10 with a 20m resolution target) comes before
    # level 1's timeout (08:15 + 10m): it fires at 08:10, and not again at 08:25
    targets = [t for t in agreement_dict()["targets"] if not (t["clock"] == "resolution" and t["priority"] == "P1")]
    reg = registry(agreement_dict(escalation=timeout_ladder(), targets=targets + [
        {"clock": "resolution", "priority": "P1", "within": "20m", "calendar": "always"}]))
    outputs, _, _ = run(Events().open(OPEN), until="2026-03-02T09:00:00Z", reg=reg)
    assert lifecycle(outputs, ("escalation.triggered",)) == [
        ("2026-03-02T08:10:00+00:00", "escalation.triggered", 2),
        ("2026-03-02T08:15:00+00:00", "escalation.triggered", 1),
    ]


# --- notification.acknowledged as input -------------------------------------------------------

@pytest.mark.parametrize("ack, reason", [
    # no such clock on the ticket
    ({"dedup_key": "acme-erp/INC-1/nope"}, "unknown dedup_key 'acme-erp/INC-1/nope' for ticket 'INC-1'"),
    # another ticket's key
    ({"dedup_key": "acme-erp/INC-2/response"}, "unknown dedup_key 'acme-erp/INC-2/response'"),
    # strict decoding: missing by, a number for the dedup_key, an empty by
    ({"by": None}, "field 'by'"),
    ({"dedup_key": 7}, "field 'dedup_key'"),
    ({"by": ""}, "field 'by'"),
])
def test_a_bad_notification_ack_is_rejected(ack, reason):
    ev = Events().open(OPEN).notification_ack("2026-03-02T08:20:00Z", "response", **ack)
    if ack.get("by", 0) is None:
        ev.lines[-1] = ev.lines[-1].replace('"by":null,', "")
    outputs, rejects, _ = run(ev, until="2026-03-02T08:30:00Z")
    assert len(rejects) == 1 and reason in rejects[0]["reason"]
    assert not lifecycle(outputs)


def test_a_notification_ack_for_a_closed_ticket_is_rejected():
    ev = Events().open(OPEN).add("closed", "2026-03-02T08:20:00Z").notification_ack("2026-03-02T08:21:00Z", "response")
    _, rejects, _ = run(ev, until="2026-03-02T08:30:00Z")
    assert [r["reason"] for r in rejects] == [
        "notification.acknowledged does not apply to ticket 'INC-1' in state 'closed'"]


def test_only_the_first_ack_of_an_open_alert_counts():
    # 08:05: nothing paged yet, nothing to acknowledge; 08:20 acknowledges level 1 (08:15);
    # 08:25 (another tool) is accepted and says nothing; no clock moved: breach stands, no met
    ev = (Events().open(OPEN).notification_ack("2026-03-02T08:05:00Z", "response")
          .notification_ack("2026-03-02T08:20:00Z", "response", by="bob")
          .notification_ack("2026-03-02T08:25:00Z", "response", by="carol", source="opsgenie"))
    outputs, rejects, _ = run(ev, until="2026-03-02T08:29:00Z")
    assert rejects == []
    assert lifecycle(outputs) == [("2026-03-02T08:20:00+00:00", ACK, "response", "bob", 1)]
    assert "sla.met" not in [o["type"] for o in outputs]


def test_an_open_alert_survives_a_snapshot():
    # the response alert opened at 08:15 is acknowledged after a snapshot/restore at 08:17
    lines = Events().open(OPEN).add("acknowledged", "2026-03-02T08:20:00Z").lines
    processor = Engine(registry())
    processor.step(decode_event(lines[0]))
    processor.step(Tick(datetime.fromisoformat("2026-03-02T08:17:00+00:00"), inclusive=False))
    restored = Engine.restore(registry(), processor.snapshot())
    assert restored.snapshot() == processor.snapshot()
    applied = restored.step(decode_event(lines[1]))
    assert lifecycle([o.cloudevent() for o in applied.outputs]) == [
        ("2026-03-02T08:20:00+00:00", ACK, "response", "ticket", 1),
        ("2026-03-02T08:20:00+00:00", RESOLVED, "response", "clock_stopped", "PT5M"),
    ]


# --- ack_timeout in the agreement -------------------------------------------------------------

@pytest.mark.parametrize("timeout, message", [
    ("0m", "longer than zero"),
    ("3654d", "longer than 10 years"),
    ("2bd", "wall-clock time"),
    ("soon", "invalid duration"),
])
def test_ack_timeout_is_a_bounded_wall_clock_duration(timeout, message):
    with pytest.raises(ValidationError, match=message):
        Agreement.model_validate(agreement_dict(escalation=timeout_ladder(ack_timeout=timeout)))


def test_ack_timeout_on_the_last_level_is_refused():
    ladder = timeout_ladder()
    ladder[0]["levels"][1]["ack_timeout"] = "5m"
    with pytest.raises(ValidationError, match="level 2 is the last level of 'ladder'"):
        Agreement.model_validate(agreement_dict(escalation=ladder))
