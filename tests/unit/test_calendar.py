"""Counted time: escalation.core.time.calendar (hand-computed tables + hypothesis properties)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.agreement.weekly_hours import parse_weekly_hours
from escalation.core.time.calendar import (
    AlwaysCalendar,
    Calendar,
    ComplementCalendar,
    WeeklyCalendar,
)

UTC = timezone.utc
BER = ZoneInfo("Europe/Berlin")
NYC = ZoneInfo("America/New_York")
SCL = ZoneInfo("America/Santiago")
H, M, US = timedelta(hours=1), timedelta(minutes=1), timedelta(microseconds=1)


def weekly(name, tz, spec, **kw) -> WeeklyCalendar:
    return WeeklyCalendar(name, tz, parse_weekly_hours(spec), **kw)


def b(*args) -> datetime:
    """Europe/Berlin local instant."""
    return datetime(*args, tzinfo=BER)


def z(*args) -> datetime:
    """UTC instant."""
    return datetime(*args, tzinfo=UTC)


ALWAYS = AlwaysCalendar("always")
BUSINESS = weekly("business", BER, {"mon-fri": "08:00-18:00"},
                  holiday_dates=frozenset({date(2026, 12, 24), date(2026, 12, 31)}),
                  holiday_country="DE", holiday_subdivision="BE")
PRIME = weekly("prime", BER, {"mon-fri": "07:00-19:00"})
NON_PRIME = ComplementCalendar("non_prime", PRIME)
BER_24 = weekly("ber24", BER, {"daily": "00:00-24:00"})
BER_SUN = weekly("bersun", BER, {"sun": "00:00-24:00"})
NY_BUSINESS = weekly("ny", NYC, {"mon-fri": "09:00-17:00"}, holiday_country="US")
NY_SUN = weekly("nysun", NYC, {"sun": "00:00-24:00"})
SCL_SAT = weekly("sclsat", SCL, {"sat": "00:00-24:00"})
SCL_SUN = weekly("sclsun", SCL, {"sun": "00:00-24:00"})
# Boundaries inside DST gaps / repeats of Berlin (Sundays 02:00-03:00) and Santiago (midnight).
BER_ODD = weekly("berodd", BER, {"sun": ["00:00-02:30", "02:40-04:00", "23:00-24:00"],
                                 "mon-sat": ["00:00-00:30", "02:15-02:45", "23:00-24:00"]})
BER_GAP = weekly("bergap", BER, {"daily": ["02:10-02:20", "02:30-02:50"]})
SCL_ODD = weekly("sclodd", SCL, {"daily": ["00:00-00:30", "12:00-13:00", "23:30-24:00"]})
LORD_HOWE = weekly("lhi", ZoneInfo("Australia/Lord_Howe"), {"mon-sat": ["01:45-02:15", "09:00-17:00"]})
BUSINESS_OFF = ComplementCalendar("business_off", BUSINESS)


# ---------------------------------------------------------------- add: hand-computed tables

ADD_CASES = [
    # 24x7: plain addition, result in UTC
    (ALWAYS, b(2026, 3, 29, 1, 30), 1 * H, z(2026, 3, 29, 1, 30)),
    # 24x7: zero amount returns the start (as UTC)
    (ALWAYS, b(2026, 1, 1, 12), timedelta(0), z(2026, 1, 1, 11)),
    # Friday 17:00 + 2h business -> Monday 09:00 Berlin = 08:00Z (winter)
    (BUSINESS, b(2026, 1, 9, 17), 2 * H, z(2026, 1, 12, 8)),
    # inside one business day: Tue 09:00 + 3h -> 12:00 local
    (BUSINESS, b(2026, 1, 13, 9), 3 * H, z(2026, 1, 13, 11)),
    # before opening: Tue 06:00 + 1h -> 09:00 local
    (BUSINESS, b(2026, 1, 13, 6), 1 * H, z(2026, 1, 13, 8)),
    # after closing: Tue 18:30 + 1h -> Wed 09:00 local
    (BUSINESS, b(2026, 1, 13, 18, 30), 1 * H, z(2026, 1, 14, 8)),
    # exact fit ends at 18:00 the same day, not at 08:00 the next day (earliest instant)
    (BUSINESS, b(2026, 1, 13, 8), 10 * H, z(2026, 1, 13, 17)),
    # from Saturday noon: Monday 08:30
    (BUSINESS, b(2026, 1, 10, 12), 30 * M, z(2026, 1, 12, 7, 30)),
    # 5bd from Monday 08:00 -> Friday 18:00
    (BUSINESS, b(2026, 1, 12, 8), 5 * BUSINESS.business_day, z(2026, 1, 16, 17)),
    # 3 weeks + 1h from Monday 08:00 (week jump) -> Monday 09:00 three weeks later
    (BUSINESS, b(2026, 1, 12, 8), 151 * H, z(2026, 2, 2, 8)),
    # Good Friday Apr 3 and Easter Monday Apr 6 (DE-BE): Thu 17:00 CEST + 2h -> Tue 09:00 CEST
    (BUSINESS, b(2026, 4, 2, 17), 2 * H, z(2026, 4, 7, 7)),
    # explicit Dec 24 (Thu) + library Dec 25 (Fri): Wed 17:00 + 2h -> Mon Dec 28 09:00
    (BUSINESS, b(2026, 12, 23, 17), 2 * H, z(2026, 12, 28, 8)),
    # year boundary: explicit Dec 31 and New Year closed -> Mon 2027-01-04 08:30
    (BUSINESS, b(2026, 12, 30, 17, 30), 1 * H, z(2027, 1, 4, 7, 30)),
    # Frauentag 2027-03-08 is a Monday in Berlin: Fri 17:00 + 2h -> Tue 09:00
    (BUSINESS, b(2027, 3, 5, 17), 2 * H, z(2027, 3, 9, 8)),
    # across spring forward: Fri 17:00 CET + 2h -> Mon 09:00 CEST = 07:00Z
    (BUSINESS, b(2026, 3, 27, 17), 2 * H, z(2026, 3, 30, 7)),
    # across fall back: Fri 17:00 CEST + 2h -> Mon 09:00 CET = 08:00Z
    (BUSINESS, b(2026, 10, 23, 17), 2 * H, z(2026, 10, 26, 8)),
    # 24h-open Berlin day of spring forward: 00:00 CET + 23h reaches the next local midnight
    (BER_24, b(2026, 3, 29), 23 * H, b(2026, 3, 30)),
    # Sunday-only calendar: the spring-forward Sunday holds 23h, so 23h ends at its end ...
    (BER_SUN, b(2026, 3, 29), 23 * H, z(2026, 3, 29, 22)),
    # ... and one more microsecond spills into the next Sunday
    (BER_SUN, b(2026, 3, 29), 23 * H + US, z(2026, 4, 4, 22) + US),
    # fall-back Sunday holds 25h: 00:00 CEST (Sat 22:00Z) + 25h -> Sun 23:00Z = Mon 00:00 CET
    (BER_SUN, b(2026, 10, 25), 25 * H, z(2026, 10, 25, 23)),
    # New York spring forward 2026-03-08: Fri 16:00 EST + 2h -> Mon 10:00 EDT = 14:00Z
    (NY_BUSINESS, datetime(2026, 3, 6, 16, tzinfo=NYC), 2 * H, z(2026, 3, 9, 14)),
    # New York fall back 2026-11-01: Fri 16:00 EDT + 2h -> Mon 10:00 EST = 15:00Z
    (NY_BUSINESS, datetime(2026, 10, 30, 16, tzinfo=NYC), 2 * H, z(2026, 11, 2, 15)),
    # Thanksgiving 2026-11-26 closed: Wed 16:00 + 2h -> Fri 10:00 EST
    (NY_BUSINESS, datetime(2026, 11, 25, 16, tzinfo=NYC), 2 * H, z(2026, 11, 27, 15)),
    # non-prime from Tue 18:00: opens 19:00, +1h -> 20:00 local
    (NON_PRIME, b(2026, 1, 13, 18), 1 * H, z(2026, 1, 13, 19)),
    # non-prime from Fri 20:00 + 60h: 59h until Mon 07:00, the last hour from Mon 19:00 -> 20:00
    (NON_PRIME, b(2026, 1, 9, 20), 60 * H, z(2026, 1, 12, 19)),
    # complement of business: Good Friday fully open, Thu 19:00 + 29h -> Sat 00:00 CEST
    (BUSINESS_OFF, b(2026, 4, 2, 19), 29 * H, z(2026, 4, 3, 22)),
]


@pytest.mark.parametrize(("cal", "start", "amount", "expected"), ADD_CASES)
def test_add_table(cal: Calendar, start: datetime, amount: timedelta, expected: datetime) -> None:
    got = cal.add(start, amount)
    assert got == expected
    assert got.utcoffset() == timedelta(0)
    assert cal.counted(start, got) == amount


# ---------------------------------------------------------------- counted: hand-computed tables

COUNTED_CASES = [
    # 24x7: plain difference, even across Berlin spring forward (same tzinfo on both ends)
    (ALWAYS, b(2026, 3, 29), b(2026, 3, 30), 23 * H),
    # end before start counts nothing
    (BUSINESS, b(2026, 1, 14), b(2026, 1, 13), timedelta(0)),
    # Friday 17:00 -> Monday 09:00: one hour each side of the weekend
    (BUSINESS, b(2026, 1, 9, 17), b(2026, 1, 12, 9), 2 * H),
    # a plain week, Monday to Monday: 5 x 10h
    (BUSINESS, b(2026, 1, 12), b(2026, 1, 19), 50 * H),
    # January 2026: 22 weekdays, New Year closed -> 21 x 10h
    (BUSINESS, b(2026, 1, 1), b(2026, 2, 1), 210 * H),
    # Easter fortnight Mar 30 - Apr 12: Good Friday and Easter Monday closed -> 8 x 10h
    (BUSINESS, b(2026, 3, 30), b(2026, 4, 13), 80 * H),
    # business hours across spring forward: Fri 17:00 CET -> Mon 09:00 CEST
    (BUSINESS, b(2026, 3, 27, 17), b(2026, 3, 30, 9), 2 * H),
    # Monday after spring forward is a full 10h (08:00+02:00 .. 18:00+02:00)
    (BUSINESS, z(2026, 3, 30, 6), z(2026, 3, 30, 16), 10 * H),
    # Monday after fall back: 08:00+01:00 = 07:00Z opens, so 06:00Z..07:00Z counts nothing
    (BUSINESS, z(2026, 10, 26, 6), z(2026, 10, 26, 7), timedelta(0)),
    # 24h-open Berlin day: spring-forward day is 23 real hours, fall-back day 25
    (BER_24, b(2026, 3, 29), b(2026, 3, 30), 23 * H),
    (BER_24, b(2026, 10, 25), b(2026, 10, 26), 25 * H),
    # Sunday-only calendar over the whole DST week: just that Sunday's 23h / 25h
    (BER_SUN, b(2026, 3, 23), b(2026, 3, 30), 23 * H),
    (BER_SUN, b(2026, 10, 19), b(2026, 10, 26), 25 * H),
    # New York Sunday-only over whole weeks: 2026-03-08 has 23h, 2026-11-01 has 25h
    (NY_SUN, datetime(2026, 3, 2, tzinfo=NYC), datetime(2026, 3, 9, tzinfo=NYC), 23 * H),
    (NY_SUN, datetime(2026, 10, 26, tzinfo=NYC), datetime(2026, 11, 2, tzinfo=NYC), 25 * H),
    # Santiago: midnight 2026-09-06 (Sun) does not exist -> the day starts 01:00 -03 (04:00Z),
    # ends 00:00 -03 (Mon 03:00Z): 23h
    (SCL_SUN, z(2026, 9, 1), z(2026, 9, 10), 23 * H),
    # Santiago falls back at Sat/Sun midnight: Sat 2026-04-04 runs 00:00 -03 .. 00:00 -04 = 25h
    (SCL_SAT, z(2026, 4, 1), z(2026, 4, 8), 25 * H),
    # ... and the Sunday after it is a plain 24h
    (SCL_SUN, z(2026, 4, 1), z(2026, 4, 8), 24 * H),
    # Santiago Sat Apr 4: 00:00-00:30 + 12:00-13:00 + 23:30 (first, -03) .. 24:00 (-04) 1.5h = 3h
    (SCL_ODD, z(2026, 4, 4, 3), z(2026, 4, 5, 4), 3 * H),
    # Santiago Sun Sep 6: 00:00-00:30 lies in the gap (empty); 12:00-13:00; 23:30-24:00 -> 1.5h
    (SCL_ODD, z(2026, 9, 6, 4), z(2026, 9, 7, 3), 90 * M),
    # Berlin Sun on spring forward: 00:00-02:30 -> Sat 23:00Z..01:00Z (02:30 lies in the gap ->
    # 03:00 CEST); 02:40 (gap -> 01:00Z) .. 04:00 CEST = 02:00Z; 23:00-24:00 -> 1h: 4h
    (BER_ODD, b(2026, 3, 29), b(2026, 3, 30), 4 * H),
    # Mon after, no DST change: 00:00-00:30, 02:15-02:45, 23:00-24:00 -> 2h
    (BER_ODD, b(2026, 3, 30), b(2026, 3, 31), 2 * H),
    # Sun on fall back: 00:00 (CEST) .. 02:30 (first, CEST) = 2.5h; 02:40 (first, CEST = 00:40Z)
    # .. 04:00 CET (03:00Z) = 2h20; 23:00-24:00 = 1h
    (BER_ODD, b(2026, 10, 25), b(2026, 10, 26), 5 * H + 50 * M),
    # both Berlin gap ranges vanish on the spring-forward day ...
    (BER_GAP, b(2026, 3, 29), b(2026, 3, 30), timedelta(0)),
    # ... and take their first occurrence on the fall-back day: 10min + 20min
    (BER_GAP, b(2026, 10, 25), b(2026, 10, 26), 30 * M),
    # non-prime over a weekday night: Tue 19:00 .. Wed 07:00 = 12h
    (NON_PRIME, b(2026, 1, 13, 12), b(2026, 1, 14, 12), 12 * H),
    # non-prime over a weekend: Fri 19:00 .. Mon 07:00 = 60h
    (NON_PRIME, b(2026, 1, 9, 12), b(2026, 1, 12, 12), 60 * H),
    # complement of business: Good Friday is fully open
    (BUSINESS_OFF, b(2026, 4, 3), b(2026, 4, 4), 24 * H),
]


@pytest.mark.parametrize(("cal", "start", "end", "expected"), COUNTED_CASES)
def test_counted_table(cal: Calendar, start: datetime, end: datetime, expected: timedelta) -> None:
    assert cal.counted(start, end) == expected
    assert sum((e - s for s, e in cal.open_intervals(start, end)), timedelta(0)) == expected


def test_business_day_values() -> None:
    assert BUSINESS.business_day == 10 * H  # 08:00-18:00
    assert ALWAYS.business_day == 24 * H  # 24x7
    assert NON_PRIME.business_day == 24 * H  # Sat/Sun fully open
    assert weekly("split", BER, {"mon": ["08:00-12:00", "13:00-17:00"]}).business_day == 8 * H
    assert ComplementCalendar("never", ALWAYS).business_day == timedelta(0)


@pytest.mark.parametrize(("cal", "instant", "expected"), [
    (BUSINESS, b(2026, 1, 13, 8), True),  # opening instant is open
    (BUSINESS, b(2026, 1, 13, 18), False),  # closing instant is closed (half-open)
    (BUSINESS, b(2026, 1, 13, 8) - US, False),  # one microsecond before opening
    (BUSINESS, b(2026, 4, 3, 12), False),  # Good Friday noon
    (BUSINESS, b(2026, 12, 24, 12), False),  # explicit holiday
    (NON_PRIME, b(2026, 1, 10, 12), True),  # Saturday noon is non-prime
    (NON_PRIME, b(2026, 1, 12, 12), False),  # Monday noon is prime
    (ALWAYS, z(2026, 1, 1), True),  # always open
])
def test_is_open(cal: Calendar, instant: datetime, expected: bool) -> None:
    assert cal.is_open(instant) is expected


def test_open_intervals_clipped_and_merged() -> None:
    # Fri 12:00 .. Tue 10:00 Berlin: Fri 12-18, Mon 08-18, Tue 08-10 (all CET)
    assert list(BUSINESS.open_intervals(b(2026, 1, 9, 12), b(2026, 1, 13, 10))) == [
        (z(2026, 1, 9, 11), z(2026, 1, 9, 17)), (z(2026, 1, 12, 7), z(2026, 1, 12, 17)),
        (z(2026, 1, 13, 7), z(2026, 1, 13, 9))]
    # a 24h-open weekly calendar yields one interval across midnights
    assert list(BER_24.open_intervals(b(2026, 1, 1, 12), b(2026, 1, 4, 12))) == [
        (z(2026, 1, 1, 11), z(2026, 1, 4, 11))]
    # non-prime over a weekend: Fri 19:00 .. Mon 07:00 in one piece
    assert list(NON_PRIME.open_intervals(b(2026, 1, 9), b(2026, 1, 12, 12))) == [
        (z(2026, 1, 8, 23), z(2026, 1, 9, 6)), (z(2026, 1, 9, 18), z(2026, 1, 12, 6))]
    assert list(BUSINESS.open_intervals(b(2026, 1, 13), b(2026, 1, 12))) == []


def test_never_open_calendars_raise() -> None:
    with pytest.raises(ValueError, match="calendar 'never' has no open hours"):
        ComplementCalendar("never", ALWAYS).add(z(2026, 1, 1), H)
    with pytest.raises(ValueError, match="calendar 'empty' has no open hours"):
        WeeklyCalendar("empty", BER, {}).add(z(2026, 1, 1), H)
    assert WeeklyCalendar("empty", BER, {}).business_day == timedelta(0)
    # complement of 24x7 hours with one explicit holiday: open on that day only, then never
    only_xmas = ComplementCalendar("xmas", weekly("full", BER, {"daily": "00:00-24:00"},
                                                  holiday_dates=frozenset({date(2026, 12, 24)})))
    assert only_xmas.add(b(2026, 12, 1), H) == b(2026, 12, 24, 1)
    with pytest.raises(ValueError, match="calendar 'xmas' has no open hours"):
        only_xmas.add(b(2026, 12, 1), 25 * H)
    # a zero amount never needs open hours
    assert ComplementCalendar("never", ALWAYS).add(z(2026, 1, 1), timedelta(0)) == z(2026, 1, 1)


def test_complement_of_complement_is_base() -> None:
    again = ComplementCalendar("again", BUSINESS_OFF)
    s, e = b(2026, 3, 1), b(2026, 5, 1)
    assert list(again.open_intervals(s, e)) == list(BUSINESS.open_intervals(s, e))


@pytest.mark.parametrize("cal", [ALWAYS, BUSINESS, NON_PRIME])
def test_naive_datetimes_rejected(cal: Calendar) -> None:
    naive, aware = datetime(2026, 1, 1), z(2026, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        cal.counted(naive, aware)
    with pytest.raises(ValueError, match="naive"):
        cal.counted(aware, naive)
    with pytest.raises(ValueError, match="naive"):
        cal.add(naive, H)
    with pytest.raises(ValueError, match="naive"):
        cal.is_open(naive)


@pytest.mark.parametrize(("kw", "message"), [
    ({"holiday_country": "XX"}, "unknown holiday country/subdivision 'XX'"),
    ({"holiday_country": "DE", "holiday_subdivision": "ZZ"}, "subdivision 'ZZ'"),
    ({"holiday_subdivision": "BE"}, "without a country"),
])
def test_unknown_holiday_region(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeeklyCalendar("x", BER, {0: [(time(8), time(18))]}, **kw)


def test_weekly_constructor_validates_hours() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berln'"):
        WeeklyCalendar("x", "Europe/Berln", {})
    assert WeeklyCalendar("x", "Europe/Berlin", {}).tz == BER  # a zone name is accepted too
    with pytest.raises(ValueError, match="weekday keys"):
        WeeklyCalendar("x", BER, {7: [(time(8), time(18))]})
    with pytest.raises(ValueError, match="overlapping"):
        WeeklyCalendar("x", BER, {0: [(time(8), time(18)), (time(12), time(20))]})
    with pytest.raises(ValueError, match="overnight"):
        WeeklyCalendar("x", BER, {0: [(time(18), time(8))]})


# ---------------------------------------------------------------- parse_weekly_hours

T8, T12, T13, T17, T18 = time(8), time(12), time(13), time(17), time(18)


@pytest.mark.parametrize(("spec", "expected"), [
    # the reference agreement's business hours
    ({"mon-fri": "08:00-18:00"}, {d: [(T8, T18)] for d in range(5)}),
    # a single day with a lunch break (list of ranges, given out of order)
    ({"sat": ["13:00-17:00", "08:00-12:00"]}, {5: [(T8, T12), (T13, T17)]}),
    # comma list, 24:00 end becomes None
    ({"mon,wed,fri": "00:00-24:00"}, {0: [(time(0), None)], 2: [(time(0), None)], 4: [(time(0), None)]}),
    # weekend range, case and blanks tolerated
    ({" Sat - SUN ": "10:00-12:00"}, {5: [(time(10), T12)], 6: [(time(10), T12)]}),
    # daily = all seven days; seconds allowed
    ({"daily": "08:00:30-08:00:45"}, {d: [(time(8, 0, 30), time(8, 0, 45))] for d in range(7)}),
    # separate keys for the same day combine when they do not overlap (touching is fine)
    ({"mon": "08:00-12:00", "mon,tue": "12:00-13:00"}, {0: [(T8, T12), (T12, T13)], 1: [(T12, T13)]}),
    # an empty list closes nothing and opens nothing
    ({"sun": []}, {}),
])
def test_parse_weekly_hours(spec: dict, expected: dict) -> None:
    assert parse_weekly_hours(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ({"mun-fri": "08:00-18:00"}, "unknown weekday 'mun' in 'mun-fri'"),  # typo in a day
    ({"mon-fri": "18:00-08:00"}, "range '18:00-08:00' ends before it starts; overnight ranges are not supported"),
    ({"mon-fri": "08:00-18:00", "mon": "12:00-20:00"}, "overlapping ranges on mon: '08:00-18:00' and '12:00-20:00'"),
    ({"mon": ["08:00-12:00", "11:00-13:00"]}, "overlapping ranges on mon"),  # within one value
    ({"mon": "08:00-08:00"}, "range '08:00-08:00' is empty"),
    ({"mon": "25:00-26:00"}, "bad time '25:00' in '25:00-26:00'"),
    ({"mon": "08:60-09:00"}, "bad time '08:60'"),
    ({"mon": "24:30-24:45"}, "bad time '24:30'"),
    ({"mon": "8am-5pm"}, "bad time '8am'"),
    ({"mon": "08:00"}, "bad time range '08:00'"),  # no end
    ({"mon": "24:00-24:00"}, "starts at 24:00"),
    ({"fri-mon": "08:00-18:00"}, "wraps past Sunday"),
    ({"mon--fri": "08:00-18:00"}, "bad weekday spec 'mon--fri'"),
    ({"mon": 8}, "hours for 'mon' must be"),  # not a string
    ({"mon": ["08:00-12:00", 13]}, "hours for 'mon' must be"),
    (["mon"], "weekly hours must be a mapping"),
])
def test_parse_weekly_hours_errors(spec, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_weekly_hours(spec)
    assert message in str(err.value)


# ---------------------------------------------------------------- hypothesis properties

CALENDARS = [ALWAYS, BUSINESS, NON_PRIME, BER_24, BER_SUN, NY_BUSINESS, NY_SUN, SCL_SAT, SCL_SUN,
             BER_ODD, BER_GAP, SCL_ODD, LORD_HOWE, BUSINESS_OFF, ComplementCalendar("odd_off", BER_ODD)]
ZONES = [UTC, BER, NYC, SCL, ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3, minutes=-30))]
_LO, _HI = z(2025, 1, 1), z(2028, 1, 1)
# Instants near which things go wrong: DST changes, year ends, holidays.
SPECIAL = [b(2026, 3, 29, 2), b(2026, 10, 25, 2), b(2025, 3, 30, 2), b(2027, 10, 31, 2),
           datetime(2026, 3, 8, 2, tzinfo=NYC), datetime(2026, 11, 1, 1, tzinfo=NYC),
           z(2026, 9, 6, 4), z(2026, 4, 5, 3), b(2025, 12, 31, 23), b(2026, 12, 31, 23),
           datetime(2026, 12, 31, 23, tzinfo=NYC), b(2026, 4, 3, 12), b(2026, 12, 24, 8)]
DAY_US = 86_400_000_000


@st.composite
def instants(draw) -> datetime:
    if draw(st.booleans()):
        base = draw(st.sampled_from(SPECIAL))
        u = base.astimezone(UTC) + timedelta(microseconds=draw(st.integers(-2 * DAY_US, 2 * DAY_US)))
    else:
        u = _LO + timedelta(microseconds=draw(st.integers(0, (_HI - _LO) // US)))
    return u.astimezone(draw(st.sampled_from(ZONES)))  # callers may use any zone


def _u(t: datetime) -> datetime:
    """As UTC: comparisons of ambiguous/imaginary local times across zones are never equal (PEP 495)."""
    return t.astimezone(UTC)


amounts = st.one_of(
    st.integers(0, 20 * DAY_US).map(lambda n: timedelta(microseconds=n)),
    st.sampled_from([timedelta(0), US, 30 * M, H, 10 * H, 23 * H, 25 * H, 50 * H, timedelta(days=7)]),
)
calendars = st.sampled_from(CALENDARS)
PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(calendars, instants(), amounts)
def test_add_is_exact_and_earliest(cal: Calendar, s: datetime, d: timedelta) -> None:
    t = cal.add(s, d)
    assert t.utcoffset() == timedelta(0) and t >= _u(s)
    assert cal.counted(s, t) == d
    if d > timedelta(0):
        assert cal.counted(s, t - US) < d  # earliest: one microsecond earlier is too early
        assert cal.is_open(t - US)  # so the last microsecond before t is open time
    else:
        assert t == _u(s)


@PROPS
@given(calendars, instants(), amounts, amounts)
def test_add_is_monotone(cal: Calendar, s: datetime, d1: timedelta, d2: timedelta) -> None:
    lo, hi = sorted((d1, d2))
    assert cal.add(s, lo) <= cal.add(s, hi)


def _later(a: datetime, x: timedelta) -> datetime:
    """``a + x`` in real time, expressed in a's zone (aware + timedelta would add wall time)."""
    return (a.astimezone(UTC) + x).astimezone(a.tzinfo)


def _span(a: datetime, c: datetime) -> timedelta:
    return c.astimezone(UTC) - a.astimezone(UTC)


@PROPS
@given(calendars, instants(), amounts, amounts)
def test_counted_is_additive_and_bounded(cal: Calendar, a: datetime, x: timedelta, y: timedelta) -> None:
    m, c = _later(a, x), _later(a, x + y)
    assert cal.counted(a, m) + cal.counted(m, c) == cal.counted(a, c)
    assert timedelta(0) <= cal.counted(a, c) <= _span(a, c)
    assert cal.counted(c, a) == timedelta(0)


@PROPS
@given(calendars, instants(), amounts)
def test_open_intervals_agree_with_counted(cal: Calendar, a: datetime, x: timedelta) -> None:
    c = _later(a, x)
    spans = list(cal.open_intervals(a, c))
    assert sum((e - s for s, e in spans), timedelta(0)) == cal.counted(a, c)
    for (s1, e1), (s2, _) in zip(spans, spans[1:]):
        assert s1 < e1 < s2  # sorted, disjoint, touching pieces merged
    for s, e in spans:
        assert _u(a) <= s < e <= _u(c) and cal.is_open(s) and cal.is_open(e - US)
        assert e == _u(c) or not cal.is_open(e)  # maximal: closed right after unless clipped


@PROPS
@given(st.sampled_from([c for c in CALENDARS if isinstance(c, (WeeklyCalendar, ComplementCalendar))]),
       instants(), amounts)
def test_complement_partitions_time(cal: Calendar, a: datetime, x: timedelta) -> None:
    other = ComplementCalendar("other", cal)
    c = _later(a, x)
    assert cal.counted(a, c) + other.counted(a, c) == _span(a, c)
    assert cal.is_open(a) != other.is_open(a)


def _wall_oracle(tz, hours: dict, closed: set[date], a: datetime, c: datetime) -> timedelta:
    """Minute-by-minute count by local wall time (valid when no boundary falls in a DST change)."""
    n, u = 0, a
    while u < c:
        local = u.astimezone(tz)
        t = local.time()
        if local.date() not in closed and any(s <= t and (e is None or t < e) for s, e in hours.get(local.weekday(), [])):
            n += 1
        u += M
    return n * M


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([BUSINESS, NY_BUSINESS, BER_24]), instants(), st.integers(0, 5 * 24 * 60))
def test_counted_matches_wall_clock_oracle(cal: WeeklyCalendar, a: datetime, minutes: int) -> None:
    a = a.astimezone(UTC).replace(second=0, microsecond=0)
    c = a + minutes * M
    days = [a.date() + timedelta(days=i) for i in range(-1, 8)]
    closed = {d for d in days if d in cal.holiday_dates
              or cal.holiday_country and d in holidays.country_holidays(cal.holiday_country, years=d.year)}
    assert cal.counted(a, c) == _wall_oracle(cal.tz, cal.hours, closed, a, c)
