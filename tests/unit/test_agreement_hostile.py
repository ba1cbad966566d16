"""Hostile agreement files (DESIGN.md §10): a message with file, line and path, never a traceback,
never minutes or gigabytes; and whatever the loader accepts, replay runs."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from escalation import loader
from escalation.core.contract.registry import Registry
from escalation.loader import AgreementError, check_agreements, parse_agreement
from escalation.paths import EXAMPLE_AGREEMENT, EXAMPLE_EVENTS
from escalation.replay import replay_to_lists

# Line numbers below count from this base: the extra text of a case starts at line 11.
BASE = """\
apiVersion: escalation/v1
kind: Agreement
id: hostile
revision: 1
timezone: UTC
priorities: [P1, P2]
clocks:
  response: {starts: opened, stops: acknowledged}
calendars:
  always: {kind: 24x7}
"""
TARGET = "targets:\n  - {clock: response, priority: P1, within: %s, calendar: %s}\n"
LEVEL = ("notification_targets: {boss: {kind: email, address: b@x.example}}\n"
         "targets:\n  - {clock: response, priority: P1, within: 1h, calendar: always}\n"
         "escalation:\n  - id: ladder\n    levels:\n      - {level: 1, at: {clock: response, %s}, notify: [boss]%s}\n")
WINDOW = ("slos: [{id: avail, service: erp, sli: availability, objective: 99.9}]\n"
          "maintenance_windows:\n  - {id: w, rrule: \"%s\", duration: 2h, excluded_from: [avail]}\n")
REMEDY = ("fees: {monthly: \"1000.00\"}\nslos: [{id: avail, service: erp, sli: availability, objective: 99.9}]\n"
          "remedies:\n  - id: credit\n    kind: tiered_credit\n    slo: avail\n    basis: fees.monthly\n    tiers:\n%s")
BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9 if p else ['lol'] * 9)}]\n"
               for p, c in zip(["", *"abcdefgh"], "abcdefghi"))


def _with(extra: str, base: str = BASE) -> str:
    return base + extra


CASES = [
    # Bytes that are not UTF-8: the byte offset and its line.
    (BASE.encode() + b"title: caf\xe9\n", 11, "invalid UTF-8 at byte offset 203"),
    # NUL and other control characters: the line and column.
    (_with("title: a\x00b\n"), 11, "control character U+0000 at column 9 is not allowed"),
    (_with("title: \x1b[31mred\n"), 11, "control character U+001B at column 8"),
    # A UTF-8 byte-order mark is fine, but an unknown key after it is still found (line kept).
    ("\ufeff" + _with("colour: red\n"), 11, "colour: Extra inputs are not permitted"),
    # Nesting deeper than 64 levels (composing it would recurse; refused on the event stream).
    (_with("title: " + "[" * 65 + "]" * 65 + "\n"), 11, "nesting deeper than 64 levels"),
    # An alias bomb: 9^9 expanded nodes from 9 short lines.
    (BOMB, 5, "more than 10000 nodes with aliases expanded"),
    # Merge keys are refused, at the line of the '<<'.
    (_with("parties:\n  provider: &p {id: a}\n  customer: {<<: *p, name: c}\n"), 13, "merge keys (<<) are not supported"),
    # Two documents in one file.
    (_with("---\nid: other\n"), 11, "invalid YAML: expected a single document in the stream, but found another document"),
    # Scalars YAML cannot build: an impossible date, an integer past Python's digit limit.
    (_with("validity: {start: 2026-02-30}\n"), 11, "invalid YAML: day is out of range for month"),
    (_with("title: " + "9" * 5000 + "\n"), 11, "invalid YAML: Exceeds the limit (4300 digits)"),
    # Holiday countries: only the holidays library's codes (not its module attributes).
    (_with("  biz: {hours: {mon-fri: '08:00-18:00'}, holidays: {country: utils}}\n"), 11,
     "calendars.biz.holidays: unknown holiday country 'utils'"),
    (_with("  biz: {hours: {mon-fri: '08:00-18:00'}, holidays: {country: DE, subdivision: XX}}\n"), 11,
     "calendars.biz.holidays: unknown subdivision 'XX' of DE"),
    # Time zones: a directory of the zone database, a path.
    (BASE.replace("timezone: UTC", "timezone: Europe"), 5, "timezone: unknown IANA time zone 'Europe'"),
    (BASE.replace("timezone: UTC", "timezone: ../../etc/passwd"), 5, "timezone: unknown IANA time zone"),
    # Durations beyond 10 years, zero, or so large they overflow timedelta.
    (_with(TARGET % ("3654d", "always")), 12, "targets[0].within: duration '3654d' is longer than 10 years"),
    (_with(TARGET % ("99999999999999999999d", "always")), 12, "targets[0].within: duration '99999999999999999999d' is longer"),
    (_with(TARGET % ("P99999Y", "always")), 12, "targets[0].within: duration 'P99999Y' is longer than 10 years"),
    (_with(TARGET % ("P1Y2X", "always")), 12, "targets[0].within: invalid ISO 8601 duration 'P1Y2X'"),
    (_with(TARGET % ("4000bd", "always")), 12, "targets[0].within: duration '4000bd' is longer than 10 years"),
    (_with(TARGET % ("0m", "always")), 12, "targets[0].within: duration '0m' must be longer than zero"),
    (_with(TARGET % ("-5m", "always")), 12, "targets[0].within: invalid duration '-5m'"),
    # Fractions outside (0, 1].
    (_with(LEVEL % ("fraction: .inf", "")), 17, "escalation[0].levels[0].at.fraction: Input should be a finite number"),
    (_with(LEVEL % ("fraction: 1.5", "")), 17, "escalation[0].levels[0].at.fraction: Input should be less than or equal to 1"),
    (_with(LEVEL % ("fraction: .nan", "")), 17, "escalation[0].levels[0].at.fraction: Input should be a finite number"),
    (_with(LEVEL % ("fraction: 0", "")), 17, "escalation[0].levels[0].at.fraction: Input should be greater than 0"),
    # Repeat intervals of zero, absurd repeat counts.
    (_with(LEVEL % ("fraction: 1.0", ", repeat: {every: 0s, times: 3}")), 17,
     "escalation[0].levels[0].repeat.every: duration '0s' must be longer than zero"),
    (_with(LEVEL % ("fraction: 1.0", ", repeat: {every: 1m, times: 1000000000}")), 17,
     "escalation[0].levels[0].repeat.times: Input should be less than or equal to 1000"),
    # Dates outside [1970-01-01, 2200-01-01).
    (_with("validity: {start: 2026-01-01, end: 9999-12-31}\n"), 11,
     "validity.end: date 9999-12-31 is outside the plausible range [1970-01-01, 2200-01-01)"),
    (_with("validity: {start: 1969-12-31}\n"), 11, "validity.start: date 1969-12-31 is outside the plausible range"),
    (_with("  biz: {hours: {mon-fri: '08:00-18:00'}, holidays: {dates: [2200-01-01]}}\n"), 11,
     "calendars.biz.holidays.dates[0]: date 2200-01-01 is outside"),
    # Fees and caps: zero, negative, not finite, absurdly large, absurdly precise.
    (_with("fees: {monthly: \"0\"}\n"), 11, "fees.monthly: Input should be greater than 0"),
    (_with("fees: {monthly: \"-40000\"}\n"), 11, "fees.monthly: Input should be greater than 0"),
    (_with("fees: {monthly: NaN}\n"), 11, "fees.monthly: Input should be a finite number"),
    (_with("fees: {monthly: \"1e15\"}\n"), 11, "fees.monthly: Input should be less than 1000000000000"),
    (_with("fees: {monthly: \"1e-999999\"}\n"), 11, "fees.monthly: Decimal input should have no more than 6 decimal places"),
    (_with("caps: [{max_amount: \"-1\"}]\n"), 11, "caps[0].max_amount: Input should be greater than 0"),
    (_with("fees: {monthly: \"1.00\"}\ncaps: [{max_percent_of: fees.monthly, percent: 0}]\n"), 12,
     "caps[0].percent: Input should be greater than 0"),
    # Duplicate priorities and tiers.
    (BASE.replace("[P1, P2]", "[P1, P2, P1]"), 6, "priorities[2]: duplicate priority 'P1' (first at priorities[0])"),
    (_with(REMEDY % "      - {below: 99.9, credit_percent: 10}\n      - {below: 99.9, credit_percent: 25}\n"), 20,
     "remedies[0].tiers[1]: duplicate tier below 99.9 (first at tiers[0])"),
    # Cyclic complement_of (would recurse without end when compiled).
    (_with("  a: {complement_of: b}\n  b: {complement_of: c}\n  c: {complement_of: a}\n"), 11,
     "calendars.a.complement_of: cyclic complement_of: a -> b -> c -> a"),
    # Calendars with no open hours: empty hours, the complement of a 24x7 calendar.
    (_with("  never: {hours: {}}\n"), 11, "calendars.never: no open hours in any week"),
    (_with("  never: {complement_of: always}\n"), 11, "calendars.never: no open hours in any week"),
    # A target that needs more than 10 years of wall time on a calendar open one minute a week.
    (_with("  sparse: {hours: {mon: '08:00-08:01'}}\n" + TARGET % ("100h", "sparse")), 13,
     "targets[0].within: the last threshold (PT100H of counted time) needs more than 10 years on calendar 'sparse'"),
    # Maintenance rrules: INTERVAL < 1, unparsable, never occurring, too frequent, out of range.
    (_with(WINDOW % "FREQ=WEEKLY;INTERVAL=0"), 13, "maintenance_windows[0].rrule: INTERVAL=0: must be 1 or more"),
    (_with(WINDOW % "FREQ=WEEKLY;INTERVAL=-3"), 13, "maintenance_windows[0].rrule: INTERVAL=-3: must be 1 or more"),
    (_with(WINDOW % "FREQ=FOO"), 13, "maintenance_windows[0].rrule: invalid RFC 5545 rrule 'FREQ=FOO'"),
    (_with(WINDOW % "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"), 13, "maintenance_windows[0].rrule: the rule never occurs"),
    (_with(WINDOW % "FREQ=SECONDLY"), 13, "maintenance_windows[0].rrule: FREQ=SECONDLY: maintenance windows recur at most daily"),
    (_with(WINDOW % "FREQ=DAILY;BYHOUR=1,2;BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"), 13,
     "maintenance_windows[0].rrule: more than 10000 occurrences a year"),
    (_with(WINDOW % "DTSTART:00010101T000000\\nRRULE:FREQ=YEARLY"), 13,
     "maintenance_windows[0].rrule: date 0001-01-01T00:00:00 is outside the plausible range"),
    # An EXRULE runs too (it is subtracted), so it obeys the same shape; UNTIL is a date like the others.
    (_with(WINDOW % "RRULE:FREQ=WEEKLY;BYDAY=SU;BYHOUR=2\\nEXRULE:FREQ=WEEKLY;INTERVAL=0"), 13,
     "maintenance_windows[0].rrule: INTERVAL=0: must be 1 or more"),
    (_with(WINDOW % "FREQ=DAILY;UNTIL=19000101T000000"), 13,
     "maintenance_windows[0].rrule: date 1900-01-01T00:00:00 is outside the plausible range"),
    (_with(WINDOW % "FREQ=DAILY;UNTIL=99991231T000000"), 13,
     "maintenance_windows[0].rrule: date 9999-12-31T00:00:00 is outside the plausible range"),
    # Absurd revision numbers.
    (BASE.replace("revision: 1", "revision: 99999999999999"), 4, "revision: Input should be less than 2147483648"),
]


@pytest.mark.parametrize("text, line, fragment", CASES, ids=[c[2][:40] for c in CASES])
def test_hostile_agreement_gives_file_line_path_message(tmp_path, text, line, fragment):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    agreements, problems = check_agreements([path])
    assert agreements == []
    found = [str(p) for p in problems if p.line == line and fragment in str(p)]
    assert found, [str(p) for p in problems]
    assert found[0].startswith(f"{path}:{line}: ")


def test_alias_bomb_is_refused_in_milliseconds_and_little_memory():
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(AgreementError) as err:
        parse_agreement(BOMB.encode(), "bomb.yaml")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "alias bomb" in str(err.value)
    assert elapsed < 0.5 and peak < 5_000_000, (elapsed, peak)


def test_oversized_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(BASE.encode() + b"#" * (2 << 20))
    _, [problem] = check_agreements([path])
    assert str(problem) == f"{path}:1: (document): file is larger than 1048576 bytes"


def test_directory_with_one_broken_file_reports_every_other_file(tmp_path):
    (tmp_path / "a-broken.yaml").write_bytes(b"title: caf\xe9\n")
    (tmp_path / "b-acme.yaml").write_bytes(EXAMPLE_AGREEMENT.read_bytes())
    (tmp_path / "c-bomb.yaml").write_text(BOMB)
    (tmp_path / "d-hostile.yaml").write_text(BASE)
    run = subprocess.run([sys.executable, "-m", "escalation.cli", "validate", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr == ""
    assert run.stdout.splitlines() == [
        f"{tmp_path / 'a-broken.yaml'}:1: (document): invalid UTF-8 at byte offset 10: invalid continuation byte",
        f"{tmp_path / 'c-bomb.yaml'}:5: (document): more than 10000 nodes with aliases expanded (an alias bomb?)",
        "ok: acme-erp revision 3",
        "ok: hostile revision 1",
    ]


def test_unexpected_error_in_one_file_is_an_internal_error_line(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE.replace("id: hostile", "id: other"))
    real = loader.parse_agreement

    def flaky(text, file):
        if file.endswith("a.yaml"):
            raise RuntimeError("boom")
        return real(text, file)

    monkeypatch.setattr(loader, "parse_agreement", flaky)
    agreements, [problem] = check_agreements([tmp_path])
    assert str(problem) == f"{tmp_path / 'a.yaml'}: internal error: RuntimeError: boom"
    assert [a.id for a in agreements] == ["other"]


# ---------------------------------------------------------------- fuzz: accepted means runnable

_YAML = YAML(typ="safe")  # plain data: copying and dumping it is twice as fast as round-trip
_REFERENCE = _YAML.load(EXAMPLE_AGREEMENT.read_text())
_EVENTS = EXAMPLE_EVENTS.read_text().splitlines()
_UNTIL = datetime(2026, 3, 10, tzinfo=timezone.utc)


def _leaves(node, path=()):
    """Paths of every scalar of the reference document."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else None
    if items is None:
        yield path
        return
    for key, child in items:
        yield from _leaves(child, (*path, key))


_PATHS = list(_leaves(_REFERENCE))
_NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, 10**19, 0.0, -0.0, 1e-300]),
)
_STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from([
        "", "0", "-1", "NaN", "Infinity", "1e999", "99999999999d", "0s", "3653d", "9999bd", "P9999Y", "PT0S",
        "Europe", "utils", "always", "prime", "non_prime", "business", "P1", "resolution", "fees.monthly",
        "FREQ=SECONDLY", "FREQ=WEEKLY;INTERVAL=0", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "24:00-00:00",
        "00:00-24:00", "mon-sun", "9999-12-31", "1969-12-31", "<<", "\x00", "\u202e", "a" * 300,
    ]),
)
_SCALARS = st.one_of(_NUMBERS, _STRINGS, st.booleans(), st.none(),
                     st.dates().filter(lambda d: d.year > 1), st.sampled_from(["24x7", "keep_elapsed", "new_cycle"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["kind", "hours", "id", "x", "complement_of"]), inner, max_size=3)),
    max_leaves=8)


def _mutated(changes) -> str:
    doc = copy.deepcopy(_REFERENCE)
    for index, value in changes:
        *parents, last = _PATHS[index % len(_PATHS)]
        node = doc
        for part in parents:
            node = node[part]
        node[last] = value
    out = io.StringIO()
    _YAML.dump(doc, out)
    return out.getvalue()


# Each example costs ~0.2 s (pure-Python YAML parse and dump); 30 keep the test at a few seconds.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), _VALUES), min_size=1, max_size=3))
def test_fuzzed_reference_agreement_either_fails_cleanly_or_replays(changes):
    text = _mutated(changes)
    try:
        agreement = parse_agreement(text.encode(), "fuzz.yaml")
    except AgreementError as err:
        assert all(p.message for p in err.problems)
        return
    replay_to_lists(Registry([agreement]), _EVENTS, _UNTIL)


@pytest.mark.parametrize("extra", [
    # YAML's duplicate-key error quotes both values
    'notification_targets:\n  hook:\n    kind: webhook\n    url: "https://user:s3cr3tpass@hook.example/x"\n'
    '    url: "https://user:s3cr3tpass@hook.example/y"\n',
    # an unknown target is named as written
    'escalation:\n  - id: p\n    levels:\n      - {level: 1, at: {clock: response, fraction: 1.0},'
    ' notify: ["https://user:s3cr3tpass@hook.example/z"]}\n',
])
def test_credentials_in_urls_never_appear_in_agreement_errors(extra):
    # DESIGN.md §10: secrets (credentials in URLs) never appear in errors
    with pytest.raises(AgreementError) as err:
        parse_agreement(_with(extra).encode(), "f.yaml")
    text = str(err.value)
    assert "s3cr3tpass" not in text and "***@hook.example" in text, text
