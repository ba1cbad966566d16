"""Periods (calendar months in a zone) and maintenance windows: hand-computed tables."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from escalation.agreement.models import Agreement
from escalation.core.contract.compiled import compile_agreement
from escalation.core.time.maintenance import Maintenance, subtract
from escalation.core.time.periods import by_label, month, period_at, to_dt, to_us
from tests.helpers import agreement_dict
from tests.unit.test_slo_support import z

BER = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("tz, label, start, end", [
    # March 2026 in Berlin: starts at CET midnight (23:00Z), ends at CEST midnight (22:00Z): 743 hours.
    ("Europe/Berlin", "2026-03", "2026-02-28T23:00", "2026-03-31T22:00"),
    # February 2026 in Berlin: CET at both ends.
    ("Europe/Berlin", "2026-02", "2026-01-31T23:00", "2026-02-28T23:00"),
    # October 2026 in Berlin: CEST start, CET end (fall back on the 25th): 745 hours.
    ("Europe/Berlin", "2026-10", "2026-09-30T22:00", "2026-10-31T23:00"),
    # UTC: plain midnights.
    ("UTC", "2026-03", "2026-03-01T00:00", "2026-04-01T00:00"),
    # Half-hour zone: Kolkata is +05:30 all year.
    ("Asia/Kolkata", "2026-03", "2026-02-28T18:30", "2026-03-31T18:30"),
])
def test_month_boundaries(tz, label, start, end):
    p = by_label(ZoneInfo(tz), label)
    assert (p.start, p.end) == (z(start), z(end))


@pytest.mark.parametrize("instant, label", [
    ("2026-02-28T22:59:59", "2026-02"),   # one second before Berlin March
    ("2026-02-28T23:00:00", "2026-03"),   # Berlin March starts here
    ("2026-03-31T21:59:59", "2026-03"),   # last second of Berlin March
    ("2026-03-31T22:00:00", "2026-04"),   # April starts at CEST midnight
])
def test_period_at_agrees_with_period_of(instant, label):
    compiled = compile_agreement(Agreement.model_validate(agreement_dict()))
    assert period_at(BER, to_us(z(instant))).label == label == compiled.period_of(z(instant))


def test_periods_tile_the_time_line():
    p = month(BER, 2025, 11)
    for _ in range(30):
        nxt = period_at(BER, p.end_us)
        assert nxt.start_us == p.end_us and nxt.label > p.label
        p = nxt


def _windows(**changes) -> Maintenance:
    return Maintenance(Agreement.model_validate(agreement_dict(**changes)))


def _spans(m: Maintenance, label: str, slo: str = "erp-availability") -> list[tuple[str, str]]:
    flat = m.excluded(slo, by_label(BER, label))
    return [(to_dt(flat[i]).strftime("%m-%dT%H:%M"), to_dt(flat[i + 1]).strftime("%m-%dT%H:%M"))
            for i in range(0, len(flat), 2)]


def test_sunday_patch_in_march_2026_including_the_dst_gap():
    # Sundays 02:00 local for 2h. CET (Mar 1-22): 01:00Z-03:00Z. On Mar 29 02:00 does not exist:
    # shifted to the first instant after the gap, 03:00 CEST = 01:00Z, still 2 real hours.
    assert _spans(_windows(), "2026-03") == [
        ("03-01T01:00", "03-01T03:00"), ("03-08T01:00", "03-08T03:00"), ("03-15T01:00", "03-15T03:00"),
        ("03-22T01:00", "03-22T03:00"), ("03-29T01:00", "03-29T03:00")]


def test_sunday_patch_in_april_and_the_fall_back_sunday():
    # April is CEST: 02:00 local = 00:00Z.
    assert _spans(_windows(), "2026-04")[0] == ("04-05T00:00", "04-05T02:00")
    # Oct 25 02:00 is ambiguous (fall back 03:00 CEST -> 02:00 CET): first occurrence, 00:00Z.
    assert _spans(_windows(), "2026-10")[-1] == ("10-25T00:00", "10-25T02:00")


def test_window_timezone_dtstart_and_other_slos():
    windows = [
        # 23:30-00:30 New York time daily from Mar 30 (EDT, -4): 03:30Z-04:30Z.
        {"id": "ny", "rrule": "FREQ=DAILY", "duration": "1h", "excluded_from": ["erp-availability"],
         "timezone": "America/New_York", "dtstart": "2026-03-30T23:30:00"},
        # A window that excludes another SLO does not touch this one.
        {"id": "other", "rrule": "FREQ=DAILY", "duration": "1h", "excluded_from": ["erp-latency"]},
    ]
    slos = [agreement_dict()["slos"][0], {**agreement_dict()["slos"][0], "id": "erp-latency", "sli": "latency"}]
    m = _windows(maintenance_windows=windows, slos=slos)
    # Mar 30 23:30 EDT = Mar 31 03:30Z; the one of Mar 31 23:30 EDT (Apr 1 03:30Z) is in April.
    assert _spans(m, "2026-03") == [("03-31T03:30", "03-31T04:30")]
    assert len(_spans(m, "2026-03", "erp-latency")) == 31


def test_overlapping_windows_merge():
    windows = [{"id": "a", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "duration": "2h", "excluded_from": ["erp-availability"]},
               {"id": "b", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=3", "duration": "2h", "excluded_from": ["erp-availability"]}]
    # 02:00-04:00 and 03:00-05:00 CET merge into 01:00Z-04:00Z.
    assert _spans(_windows(maintenance_windows=windows), "2026-03")[0] == ("03-01T01:00", "03-01T04:00")


@pytest.mark.parametrize("a, b, excluded, expected", [
    (0, 100, (), [(0, 100)]),                               # nothing excluded
    (0, 100, (10, 20, 30, 40), [(0, 10), (20, 30), (40, 100)]),  # two holes
    (15, 35, (10, 20, 30, 40), [(20, 30)]),                 # starts and ends inside windows
    (10, 20, (10, 20), []),                                 # exactly a window
    (20, 30, (10, 20, 30, 40), [(20, 30)]),                 # touches both windows, overlaps neither
    (50, 60, (10, 20), [(50, 60)]),                         # after every window
])
def test_subtract(a, b, excluded, expected):
    assert subtract(a, b, excluded) == expected


def test_occurrence_cache_is_bounded():
    m = _windows()
    start = month(BER, 2020, 1)
    p = start
    for _ in range(100):
        m.excluded("erp-availability", p)
        p = period_at(BER, p.end_us)
    assert len(m._cache) <= 64
