"""The one duration parser (escalation.agreement.durations) and the parsers built on it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from escalation.agreement.durations import BusinessDays, parse_duration, parse_wall_clock
from escalation.live.topics import load_topics, parse_retention


@pytest.mark.parametrize(("text", "value"), [
    ("15m", timedelta(minutes=15)), ("4h", timedelta(hours=4)), ("2d", timedelta(days=2)),
    ("PT4H", timedelta(hours=4)), ("P1DT2H", timedelta(hours=26)), ("1.5h", timedelta(minutes=90)),
])
def test_wall_clock_durations(text, value):
    assert parse_wall_clock(text) == parse_duration(text) == value


def test_business_days_are_not_wall_clock_time():
    assert parse_duration("5bd") == BusinessDays(5)
    with pytest.raises(ValueError, match="'5bd' is wall-clock time"):
        parse_wall_clock("5bd")


@pytest.mark.parametrize(("text", "ms"), [
    ("7d", 604_800_000), ("12h", 43_200_000), ("P30D", 2_592_000_000), ("forever", -1), (" 7d ", 604_800_000),
])
def test_retention(text, ms):
    assert parse_retention(text) == ms


@pytest.mark.parametrize("text", ["0s", "P0D", "5bd", "x", "-1d", "P4000D"])
def test_bad_retention(text):
    with pytest.raises(ValueError, match="bad retention"):
        parse_retention(text)


def test_every_retention_of_the_catalogue_parses():
    assert all(t.retention_ms == -1 or t.retention_ms > 0 for t in load_topics().topics)
