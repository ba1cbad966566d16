"""Hypothesis properties of the whole ticket core: determinism and state carry-over."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.core.engine import Engine
from escalation.replay import replay
from tests.helpers import registry

REG = registry()
START = datetime(2026, 3, 2, 7, 0, tzinfo=timezone.utc)
UNTIL = START + timedelta(days=9)
KINDS = ["acknowledged", "updated", "status_changed", "priority_changed", "assigned", "resolved", "reopened", "closed"]
NOTIFICATION_ACK = "notification.acknowledged"  # DESIGN.md §11: by dedup_key, any clock (or none)
_CLOCKS = ["response", "resolution", "update", "nope"]


def _type_of(kind: str) -> str:
    return kind if kind == NOTIFICATION_ACK else f"ticket.{kind}"


@st.composite
def histories(draw):
    """A few tickets with random follow-up events, in time order (some invalid on purpose)."""
    lines, t = [], START
    tickets = [f"T{n}" for n in range(draw(st.integers(1, 4)))]
    for n, ticket in enumerate(tickets):
        lines.append({"id": f"o{n}", "type": "ticket.opened", "time": t + timedelta(minutes=n * 7), "ticket": ticket,
                      "agreement": "acme-erp", "service": "erp-prod", "priority": draw(st.sampled_from(["P1", "P2", "P3", "P4"]))})
    t += timedelta(minutes=len(tickets) * 7)
    for n in range(draw(st.integers(0, 25))):
        t += timedelta(minutes=draw(st.integers(0, 400)))
        kind = draw(st.sampled_from(KINDS + [NOTIFICATION_ACK]))
        event = {"id": f"x{n}", "type": _type_of(kind), "time": t, "ticket": draw(st.sampled_from(tickets))}
        if kind == NOTIFICATION_ACK:
            event.update(dedup_key=f"acme-erp/{event['ticket']}/{draw(st.sampled_from(_CLOCKS))}", by="bob", source="pagerduty")
        elif kind == "status_changed":
            event["status"] = draw(st.sampled_from(["pending_customer", "pending_vendor", "in_progress"]))
        elif kind == "priority_changed":
            event["priority"] = draw(st.sampled_from(["P1", "P2", "P3", "P4"]))
        elif kind == "assigned":
            event["assignee"] = "alice"
        lines.append(event)
    return [orjson.dumps({**e, "time": e["time"].isoformat()}) for e in lines]


def _run(lines, engine=None, until=UNTIL):
    outputs, rejects = [], []
    replay(REG, lines, lambda o: outputs.append(orjson.dumps(o.cloudevent())), rejects.append, until, engine)
    return outputs, rejects


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_same_input_gives_byte_identical_output(lines):
    assert _run(lines) == _run(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_two_halves_with_state_carried_over_equal_one_run(lines, data):
    cut = data.draw(st.integers(0, len(lines)))
    whole, whole_rejects = _run(lines)
    first = Engine(REG)
    head, head_rejects = _run(lines[:cut], first, until=None)
    carried = Engine.restore(REG, orjson.loads(orjson.dumps(first.snapshot())))
    tail, tail_rejects = _run(lines[cut:], carried)
    assert head + tail == whole
    assert len(head_rejects) + len(tail_rejects) == len(whole_rejects)


@settings(max_examples=40, deadline=None)
@given(histories())
def test_outputs_are_in_time_order_and_ids_unique(lines):
    outputs, _ = _run(lines)
    events = [orjson.loads(o) for o in outputs]
    times = [datetime.fromisoformat(e["time"]) for e in events]
    assert times == sorted(times)
    assert len({e["id"] for e in events}) == len(events)


# --- DESIGN.md §10: a rejected record changes nothing -------------------------------------------

_PRIORITIES = ["P1", "P2", "P3", "P4", "P9"]
_SLICE = {"type": "metric.observed", "sli": "availability"}


@st.composite
def probes(draw, tickets: list[str]):
    """Any one event: a known or unknown ticket or metric stream, valid or not, at any plausible time."""
    t = draw(st.datetimes(datetime(1970, 1, 2), datetime(2199, 12, 30), timezones=st.just(timezone.utc)))
    if draw(st.booleans()):
        start = t - timedelta(minutes=draw(st.integers(1, 600)))
        total = draw(st.integers(0, 100))
        return {**_SLICE, "id": draw(st.sampled_from(["m0", "m1", "probe"])), "service": draw(st.sampled_from(["erp-prod", "nope"])),
                "start": start.isoformat(), "end": t.isoformat(), "good": draw(st.integers(0, total)), "total": total}
    kind = draw(st.sampled_from(["opened"] + KINDS + [NOTIFICATION_ACK]))
    ticket = draw(st.sampled_from(tickets + ["UNKNOWN"]))
    event = {"id": draw(st.sampled_from(["o0", "x0", "probe"])), "type": _type_of(kind), "time": t.isoformat(),
             "ticket": ticket, "priority": draw(st.sampled_from(_PRIORITIES)),
             "status": "pending_customer", "agreement": draw(st.sampled_from(["acme-erp", "nope"])), "service": "erp-prod",
             "dedup_key": f"acme-erp/{ticket}/{draw(st.sampled_from(_CLOCKS))}", "by": "bob"}
    return event


def _slices(lines: list[bytes]) -> list[bytes]:
    """A few metric slices among the ticket lines, so SLO periods are open when the probe comes."""
    first = orjson.loads(lines[0])["time"]
    t = datetime.fromisoformat(first)
    return [orjson.dumps({**_SLICE, "id": f"m{n}", "service": "erp-prod", "start": (t + timedelta(hours=n)).isoformat(),
                          "end": (t + timedelta(hours=n + 1)).isoformat(), "good": 9, "total": 10}) for n in range(2)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_step_rejection_changes_nothing(lines, data):
    from escalation.core.events import Rejected, decode_event

    engine = Engine(REG, forget_closed=data.draw(st.booleans()))
    _run(_slices(lines) + lines, engine, until=None)
    tickets = sorted(set(engine.incidents) | set(engine.closed))
    probe = decode_event(orjson.dumps(data.draw(probes(tickets))))
    before = orjson.dumps(engine.snapshot())
    try:
        engine._plan(probe)  # the checks ``step`` makes before it moves the clock
        verdict = "accepted"
    except Rejected:
        verdict = "rejected"
    assert orjson.dumps(engine.snapshot()) == before  # checking never changes anything
    try:
        result = engine.step(probe)
    except Rejected:
        assert verdict == "rejected"  # step refuses exactly what its checks refuse
        assert orjson.dumps(engine.snapshot()) == before
        return
    assert verdict != "rejected"
    if result.duplicate:
        assert result.outputs == [] and orjson.dumps(engine.snapshot()) == before
