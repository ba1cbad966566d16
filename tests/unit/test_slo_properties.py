"""Hypothesis properties of the metric side: split-stream equality, bounds, determinism.

Streams: random slices of erp-prod/availability (1 to 120 minutes, gaps, duplicates, late ones)
from 2026-03-29 (the DST Sunday, with its maintenance window) across the Berlin month boundary
(2026-03-31T22:00Z), plus a few P1 tickets, under two agreements sharing the service: the
reference one and a New York one that counts business hours only, with custom burn-rate rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.core.engine import Engine
from escalation.replay import replay
from tests.helpers import agreement_dict, registry
from tests.unit.test_slo_support import slo

START = datetime(2026, 3, 29, 0, 0, tzinfo=timezone.utc)
UNTIL = datetime(2026, 4, 30, 23, 0, tzinfo=timezone.utc)
NEW_YORK = agreement_dict(
    id="globex-erp", timezone="America/New_York",
    slos=[slo(objective=99.5, counted_time="business",
              burn_rate_alerts=[{"long_window": "30m", "short_window": "5m", "factor": 2, "severity": "ticket"}])],
    maintenance_windows=[{"id": "nightly", "rrule": "FREQ=DAILY;BYHOUR=1", "duration": "90m",
                          "excluded_from": ["erp-availability"]}])
REG = registry(agreement_dict(), NEW_YORK)
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def streams(draw):
    lines, t = [], START
    for n in range(draw(st.integers(1, 60))):
        if lines and draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(lines)))  # a redelivered line
            continue
        if draw(st.integers(0, 14)) == 0:  # a late slice: accepted while March is open, else rejected
            lines.append(orjson.dumps({"id": f"late{n}", "type": "metric.observed", "service": "erp-prod",
                                       "sli": "availability", "start": START.isoformat(),
                                       "end": (START + timedelta(minutes=5)).isoformat(), "good": 1, "total": 2}))
        t += timedelta(minutes=draw(st.sampled_from([0, 0, 0, 5, 60, 600])))
        length = timedelta(minutes=draw(st.sampled_from([1, 5, 30, 60, 120, 1440])))
        total = draw(st.integers(0, 1000))
        good = draw(st.integers(0, total)) if draw(st.booleans()) else total
        lines.append(orjson.dumps({"id": f"m{n}", "type": "metric.observed", "service": "erp-prod", "sli": "availability",
                                   "start": t.isoformat(), "end": (t + length).isoformat(), "good": good, "total": total}))
        if draw(st.integers(0, 14)) == 0:
            lines.append(orjson.dumps({"id": f"t{n}", "type": "ticket.opened", "time": (t + length).isoformat(), "ticket": f"T{n}",
                                       "agreement": "acme-erp", "service": "erp-prod", "priority": "P1"}))
        t += length
    return lines


def _run(lines, engine=None, until=UNTIL):
    outputs, rejects = [], []
    replay(REG, lines, lambda o: outputs.append(orjson.dumps(o.cloudevent())), rejects.append, until, engine)
    return outputs, rejects


@PROPS
@given(streams(), st.data(), st.sampled_from([timedelta(0), timedelta(minutes=30)]))
def test_split_stream_with_state_carried_over_equals_one_run(lines, data, grace):
    whole, whole_rejects = _run(lines, Engine(REG, metric_grace=grace))
    cut = data.draw(st.integers(0, len(lines)))
    first = Engine(REG, metric_grace=grace)
    head, head_rejects = _run(lines[:cut], first, until=None)
    carried = Engine.restore(REG, orjson.loads(orjson.dumps(first.snapshot())))
    tail, tail_rejects = _run(lines[cut:], carried)
    assert head + tail == whole
    assert [r["reason"] for r in head_rejects + tail_rejects] == [r["reason"] for r in whole_rejects]


@PROPS
@given(streams())
def test_same_stream_gives_byte_identical_outputs(lines):
    assert _run(lines) == _run(lines)


@PROPS
@given(streams())
def test_attainment_bounds_caps_time_order_and_unique_ids(lines):
    outputs = [orjson.loads(o) for o in _run(lines)[0]]
    for o in outputs:
        if o["type"] == "slo.attainment":
            assert 0.0 <= o["data"]["attainment"] <= 100.0
            assert o["data"]["met"] == (o["data"]["attainment"] >= o["data"]["objective"])
    spent: dict = {}
    for o in outputs:
        if o["type"] in ("penalty.assessed", "credit.issued"):
            key = (o["data"]["agreement"], o["data"]["period"])
            spent[key] = spent.get(key, Decimal(0)) + Decimal(o["data"]["amount"])
    assert all(v <= Decimal("12000.00") for v in spent.values())
    times = [datetime.fromisoformat(o["time"]) for o in outputs]
    assert times == sorted(times)
    assert len({o["id"] for o in outputs}) == len(outputs)
