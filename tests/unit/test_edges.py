"""The pure parts of the edges (DESIGN.md §14): send's line checks and routing, tail's short
lines, the broker file, the SLI config and Prometheus values -> slices. Table-driven."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import orjson
import pytest

from escalation.edges.brokerfile import NoBroker, discover, read_broker_file, remove_broker_file, write_broker_file
from escalation.edges.send import Accepted, Refused, check_lines
from escalation.edges.sli_config import SliConfigError, SliQuery, load_sli_config
from escalation.edges.slices import Skip, count, iso, metric_event, slice_ends, slice_id
from escalation.edges.tail import short_line

T = "2026-03-02T09:00:00Z"
OPENED = {"id": "e-1", "type": "ticket.opened", "time": T, "ticket": "INC-1", "agreement": "acme-erp",
          "service": "erp-prod", "priority": "P1"}
METRIC = {"id": "m-1", "type": "metric.observed", "service": "erp-prod", "sli": "availability",
          "start": T, "end": "2026-03-02T09:01:00Z", "good": 59, "total": 60}


def _line(doc) -> bytes:
    return orjson.dumps(doc) + b"\n"


def test_send_routes_accepted_lines_and_numbers_refused_ones():
    lines = [b"\xef\xbb\xbf" + _line(OPENED), b"\n", _line(METRIC), b"not json\n",
             _line({**OPENED, "time": "2026-03-02T09:00:00"}), b"\xff\xfe\n", _line({**METRIC, "good": 61}),
             _line({**METRIC, "good": 5.0}), _line({"id": "x", "type": "ticket.exploded", "time": T})]
    results = list(check_lines(lines))
    assert [(type(r).__name__, r.line) for r in results] == [
        ("Accepted", 1), ("Accepted", 3), ("Refused", 4), ("Refused", 5), ("Refused", 6), ("Refused", 7),
        ("Refused", 8), ("Refused", 9)]
    opened, metric = results[0], results[1]
    assert (opened.topic, opened.key, opened.value) == ("tickets", b"INC-1", orjson.dumps(OPENED))   # BOM, \n gone
    assert (metric.topic, metric.key) == ("metrics", b"erp-prod")
    reasons = [r.reason for r in results[2:]]
    assert reasons[0].startswith("malformed JSON")
    assert "naive timestamp" in reasons[1]
    assert reasons[2].startswith("invalid UTF-8")
    assert "exceeds total" in reasons[3]
    assert "good" in reasons[4]
    assert "unknown event type 'ticket.exploded'" == reasons[5]


def test_send_refuses_what_the_worker_would_dead_letter_as_from_the_future():
    # wall clock 09:00:30Z, skew 300 s: an opening at 09:00 and a slice ending at 09:05:30 are
    # accepted; a slice ending at 09:05:31 and an opening 30 days ahead are refused with line numbers
    skew = 300.0
    latest = datetime(2026, 3, 2, 9, 5, 30, tzinfo=timezone.utc)
    lines = [_line(OPENED), _line({**METRIC, "start": "2026-03-02T09:04:30Z", "end": "2026-03-02T09:05:30Z"}),
             _line({**METRIC, "start": "2026-03-02T09:04:31Z", "end": "2026-03-02T09:05:31Z"}),
             _line({**OPENED, "id": "e-2", "time": "2026-04-01T09:00:00+02:00"})]
    results = list(check_lines(lines, clock=lambda: (latest, skew)))
    assert [(type(r).__name__, r.line) for r in results] == [
        ("Accepted", 1), ("Accepted", 2), ("Refused", 3), ("Refused", 4)]
    assert results[3].reason == ("from the future: time 2026-04-01T09:00:00+02:00 is more than 300 s ahead of "
                                 "the sender's clock (2026-03-02T09:05:30+00:00 + skew)")
    assert all(isinstance(r, Accepted) for r in check_lines(lines))   # no clock: shape only


def test_send_routes_acknowledgements_by_ticket_when_the_decoder_knows_them():
    ack = {"id": "a-1", "type": "notification.acknowledged", "time": T, "ticket": "INC-1",
           "dedup_key": "acme-erp/INC-1/response", "by": "alice"}
    (result,) = check_lines([_line(ack)])
    if isinstance(result, Refused):   # a core without §11 input types rejects it; nothing to route
        assert "unknown event type" in result.reason
    else:
        assert (result.topic, result.key) == ("tickets", b"INC-1")


@pytest.mark.parametrize("value, expected", [
    (_line({"specversion": "1.0", "id": "x", "type": "sla.breached", "subject": "INC-1",
            "time": "2026-03-02T09:15:00+00:00", "data": {"summary": "INC-1 P1 response breached"}}),
     "2026-03-02 09:15:00  sla.breached           INC-1        INC-1 P1 response breached"),
    (_line({"reason": "unknown ticket 'X'", "topic": "t.tickets", "partition": 2, "offset": 7, "key": "X"}),
     "-                    deadletter             X            unknown ticket 'X' (t.tickets[2]@7)"),
    (b"\x00garbage", "timeline: (not JSON) b'\\x00garbage'"),
])
def test_tail_short_lines(value, expected):
    assert short_line("timeline", value) == expected


def test_broker_file_round_trip_and_stale_file(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        write_broker_file(address, tmp_path)
        assert read_broker_file(tmp_path) == address and discover(tmp_path) == address
        remove_broker_file("127.0.0.1:1", tmp_path)          # another run's address: left alone
        assert read_broker_file(tmp_path) == address
    with pytest.raises(NoBroker, match="no broker answers"):  # the listener is gone: stale file
        discover(tmp_path)
    remove_broker_file(address, tmp_path)
    assert read_broker_file(tmp_path) is None
    with pytest.raises(NoBroker, match="start `escalation run`"):
        discover(tmp_path)


def test_sli_config_problems_name_file_line_and_path(tmp_path):
    path = tmp_path / "slis.yaml"
    path.write_text("slice: 7s\nlag: 2bd\nslis:\n  - service: a\n    sli: b\n    good: x\n"
                    "  - {service: a, sli: b, good: x, total: y, extra: 1}\n")
    with pytest.raises(SliConfigError) as err:
        load_sli_config(path)
    assert err.value.problems == [
        f"{path}:1: slice: slice '7s' must be at least 1s and divide a day (e.g. 10s, 1m, 5m, 1h)",
        f"{path}:2: lag: lag is wall-clock time, not business days",
        f"{path}:4: slis[0].total: Field required",
        f"{path}:7: slis[1].extra: Extra inputs are not permitted",
    ]


def test_sli_config_defaults_and_duplicates(tmp_path):
    path = tmp_path / "slis.yaml"
    path.write_text("slis:\n  - {service: a, sli: b, good: g, total: t}\n")
    config = load_sli_config(path)
    assert (config.slice_seconds, config.lag_seconds) == (60, 120)
    path.write_text("slis:\n  - {service: a, sli: b, good: g, total: t}\n  - {service: a, sli: b, good: g, total: t}\n")
    with pytest.raises(SliConfigError, match="duplicate SLI 'b' of service 'a'"):
        load_sli_config(path)


@pytest.mark.parametrize("value, expected", [
    ("59", 59), ("59.5", 60), ("60.49999", 60), ("0.5", 1), ("0.49", 0), ("2.5", 3), ("-0.4", 0), ("1e3", 1000),
    (None, "no data"), ("NaN", "not a finite number"), ("+Inf", "not a finite number"), ("-3", "negative"),
    ("x", "not a number"),
])
def test_counts_round_half_up_and_refuse_what_is_no_count(value, expected):
    if isinstance(expected, int):
        assert count(value) == expected
    else:
        with pytest.raises(ValueError, match=expected):
            count(value)


SLI = SliQuery(service="erp-prod", sli="availability", good="g", total="t")
START, END = 1_772_442_000, 1_772_442_060   # 2026-03-02T09:00:00Z, one minute


def test_slice_events_have_ids_from_service_sli_and_start():
    event = metric_event(SLI, START, END, "59.5", "60.2")
    assert event == {"id": "prometheus:erp-prod:availability:2026-03-02T09:00:00Z", "type": "metric.observed",
                     "service": "erp-prod", "sli": "availability", "start": T, "end": "2026-03-02T09:01:00Z",
                     "good": 60, "total": 60}
    assert event["id"] == slice_id(SLI, START) == metric_event(SLI, START, END, "1", "2")["id"]


@pytest.mark.parametrize("good, total, reason", [
    (None, "60", "good: no data"), ("59", None, "total: no data"), ("NaN", "60", "good: value NaN is not a finite"),
    ("61", "60", "good (61) exceeds total (60); not clamped"), ("-1", "60", "good: value -1 is negative"),
])
def test_slices_without_two_good_counts_are_skipped_with_the_reason(good, total, reason):
    skip = metric_event(SLI, START, END, good, total)
    assert isinstance(skip, Skip) and skip.reason.startswith(reason)
    assert "erp-prod/availability 2026-03-02T09:00:00Z..2026-03-02T09:01:00Z" in str(skip)


def test_slices_are_aligned_to_multiples_of_their_size():
    assert slice_ends(START + 30, START + 200, 60) == [START + 60, START + 120, START + 180]
    assert slice_ends(START, START + 59, 60) == []     # the first slice is not over yet
    assert slice_ends(START + 3, START + 20, 5) == [START + 5, START + 10, START + 15, START + 20]


def test_live_loop_waits_for_the_lag_and_retries_an_unavailable_prometheus_without_skipping():
    import asyncio

    from escalation.edges.prometheus import Unavailable, live
    from escalation.edges.sli_config import SliConfig

    config = SliConfig(slice="5s", lag="2s", slis=[SLI])
    clock = [START + 13.0]          # the newest slice that is 2 s old ends at START + 10
    asked, failures = [], [1]

    class Prom:
        async def instant(self, expr, at):
            if failures[0]:
                failures[0] -= 1
                raise Unavailable("down")
            asked.append((expr, at))
            return [{"metric": {}, "value": [at, "10"]}]

    async def sleep_by_clock(seconds):
        clock[0] += seconds

    async def main():
        stop, warnings, events = asyncio.Event(), [], []
        import escalation.edges.prometheus as mod

        original = mod._sleep
        mod._sleep = lambda _stop, seconds: sleep_by_clock(seconds)
        try:
            async for item in live(Prom(), config, lambda: clock[0], warnings.append, stop):
                events.append(item)
                if len(events) == 3:
                    break
        finally:
            mod._sleep = original
        return warnings, events

    warnings, events = asyncio.run(main())
    assert [(e["start"], e["end"]) for e in events] == [(iso(START + k), iso(START + k + 5)) for k in (5, 10, 15)]
    assert len(warnings) == 1 and "unavailable" in warnings[0]          # retried, the slice was not skipped
    assert sorted({at for _, at in asked}) == [START + 10, START + 15, START + 20]   # each slice end, once
    assert clock[0] >= START + 22                                       # the last one waited for its lag
