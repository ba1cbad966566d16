"""Hypothesis properties of the whole ticket core: determinism and state carry-over."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.core.processor import Processor
from escalation.replay import replay
from tests.helpers import registry

REG = registry()
START = datetime(2026, 3, 2, 7, 0, tzinfo=timezone.utc)
UNTIL = START + timedelta(days=9)
KINDS = ["acknowledged", "updated", "status_changed", "priority_changed", "assigned", "resolved", "reopened", "closed"]


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
        kind = draw(st.sampled_from(KINDS))
        event = {"id": f"x{n}", "type": f"ticket.{kind}", "time": t, "ticket": draw(st.sampled_from(tickets))}
        if kind == "status_changed":
            event["status"] = draw(st.sampled_from(["pending_customer", "pending_vendor", "in_progress"]))
        elif kind == "priority_changed":
            event["priority"] = draw(st.sampled_from(["P1", "P2", "P3", "P4"]))
        elif kind == "assigned":
            event["assignee"] = "alice"
        lines.append(event)
    return [orjson.dumps({**e, "time": e["time"].isoformat()}) for e in lines]


def _run(lines, processor=None, until=UNTIL):
    outputs, rejects = [], []
    replay(REG, lines, lambda o: outputs.append(orjson.dumps(o)), rejects.append, until, processor)
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
    first = Processor(REG)
    head, head_rejects = _run(lines[:cut], first, until=None)
    carried = Processor.restore(REG, orjson.loads(orjson.dumps(first.snapshot())))
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
