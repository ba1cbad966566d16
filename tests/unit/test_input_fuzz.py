"""Fuzzing the input path (DESIGN.md §10): hostile records through replay never raise, are
dead-lettered with a reason naming the field, and leave the outputs of the good records as they
were. Kept fast for CI: a modest number of examples per test (the ``FUZZ`` settings)."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.core.events import decode_event
from escalation.replay import replay
from tests.unit.test_properties import REG, UNTIL, histories

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OPENED = {"id": "f", "type": "ticket.opened", "time": "2026-03-02T08:00:00Z", "ticket": "F-1",
          "agreement": "acme-erp", "service": "erp-prod", "priority": "P1", "customer": "acme"}
UPDATED = {"id": "f", "type": "ticket.updated", "time": "2026-03-02T08:00:00Z", "ticket": "F-1", "public": True}
SLICE = {"id": "f", "type": "metric.observed", "service": "erp-prod", "sli": "availability",
         "start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:01:00Z", "good": 1, "total": 2}
TEMPLATES = {"opened": OPENED, "updated": UPDATED, "slice": SLICE}


class Raw(str):
    """JSON text put into a record as it is (NaN, 1e400, a huge integer, deep nesting)."""


NOT_JSON_VALUES = [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("9" * 400)]
DEEP = Raw("[" * 3000 + "]" * 3000)
NOT_TEXT = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.sampled_from(NOT_JSON_VALUES),
                     st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
BAD_TIMES = st.one_of(NOT_TEXT, st.sampled_from([
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "2200-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z", "1772438400", "2026-03-02T08:00:00", "2026-02-30T00:00:00Z", "", "now"]),
    st.text(max_size=20).filter(lambda s: not s[:4].isdigit()))
BAD_COUNTS = st.one_of(st.floats(), st.booleans(), st.text(max_size=5), st.integers(max_value=-1),
                       st.integers(min_value=2**53 + 1), st.sampled_from(NOT_JSON_VALUES[:4]), st.none())
NOT_BOOL = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.sampled_from(NOT_JSON_VALUES))
#: per template, each field the contract names and values no decoder may accept for it
BAD = {
    "opened": {"id": st.one_of(NOT_TEXT, st.none(), st.just("")), "time": BAD_TIMES, "ticket": st.one_of(NOT_TEXT, st.just("")),
               "service": NOT_TEXT, "priority": NOT_TEXT, "agreement": NOT_TEXT, "customer": NOT_TEXT,
               "summary": NOT_TEXT, "attributes": st.one_of(st.integers(), st.text(max_size=3), st.lists(st.none()))},
    "updated": {"public": NOT_BOOL, "time": BAD_TIMES, "ticket": NOT_TEXT},
    "slice": {"good": BAD_COUNTS, "total": BAD_COUNTS, "start": BAD_TIMES, "end": BAD_TIMES, "service": NOT_TEXT,
              "sli": st.one_of(NOT_TEXT, st.just(""))},
}
REQUIRED = {"opened": ["id", "time", "ticket", "service", "priority"], "updated": ["id", "time", "ticket"],
            "slice": ["id", "service", "sli", "start", "end", "good", "total"]}


def dump(record: dict) -> bytes:
    """JSON text of ``record``, with ``Raw`` values spliced in verbatim."""
    raws: list[str] = []

    def mark(value):
        if isinstance(value, Raw):
            raws.append(value)
            return f"\x00raw{len(raws) - 1}\x00"
        return value

    text = json.dumps({k: mark(v) for k, v in record.items()}, allow_nan=True)
    for n, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{n}\x00"), raw)
    return text.encode()


@st.composite
def bad_records(draw, n: int = 0):
    """(line, field the reason must name): one field made hostile, or one required field missing."""
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    record = {**TEMPLATES[name], "id": f"bad-{n}"}
    if draw(st.integers(0, 5)) == 0:
        field = draw(st.sampled_from(REQUIRED[name]))
        del record[field]
    else:
        field = draw(st.sampled_from(sorted(BAD[name])))
        record[field] = draw(BAD[name][field])
    return dump(record), field


@st.composite
def hostile_lines(draw):
    """Anything at all: random JSON values and objects, unknown types, huge strings, deep nesting, bytes."""
    json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                               lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                               max_leaves=12)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=60)).replace(b"\n", b" ")
    if kind == 1:
        return dump({**draw(st.dictionaries(st.text(max_size=8), json_values, max_size=6)), "type": draw(st.text(max_size=30))})
    if kind == 2:
        return dump({**OPENED, "summary": "x" * 200_000, "attributes": {"k": "\u2603" * 1000}, "time": "2199-12-31T23:59:59Z"})
    if kind == 3:
        return dump({**UPDATED, "public": DEEP})
    if kind == 4:
        return dump({**SLICE, draw(st.sampled_from(sorted(SLICE))): draw(json_values)})
    if draw(st.booleans()):
        return json.dumps(draw(json_values), allow_nan=True).encode()
    return draw(st.text(max_size=40)).replace("\n", " ").encode("utf-8", "surrogatepass")


def _replay(lines: list[bytes]):
    outputs, rejects = [], []
    stats = replay(REG, lines, lambda o: outputs.append(orjson.dumps(o.cloudevent())), rejects.append, UNTIL)
    return outputs, rejects, stats


@FUZZ
@given(st.lists(hostile_lines(), min_size=1, max_size=8))
def test_no_record_raises_and_every_line_is_applied_or_dead_lettered(lines):
    _, rejects, stats = _replay(lines)  # raises nothing
    assert stats.internal_errors == 0, rejects
    counted = sum(1 for n, line in enumerate(lines) if line.strip() if n or line.removeprefix(b"\xef\xbb\xbf").strip())
    assert stats.lines == counted and stats.events + stats.rejected == stats.lines
    assert all(r["reason"] for r in rejects)


@FUZZ
@given(st.data())
def test_a_hostile_field_is_dead_lettered_with_a_reason_naming_it(data):
    line, field = data.draw(bad_records())
    _, rejects, stats = _replay([line])
    assert stats.internal_errors == 0 and stats.events == 0 and len(rejects) == 1, rejects
    reason = rejects[0]["reason"]
    assert f"'{field}'" in reason or (field in ("good", "total") and "exceeds total" in reason) \
        or reason.startswith("malformed JSON"), (field, reason)


@st.composite
def state_rejects(draw, n: int):
    """Records that decode but every state refuses, dated anywhere in the window (the records that
    used to move the clock: unknown tickets, unknown streams, unknown priorities)."""
    t = draw(st.sampled_from(["2026-03-09T00:00:00Z", "2026-12-31T23:59:59Z", "2199-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return dump({"id": f"bad-{n}", "type": "ticket.acknowledged", "time": t, "ticket": "NEVER-OPENED"})
    if kind == 1:
        return dump({**SLICE, "id": f"bad-{n}", "service": "no-slo", "start": "2026-12-31T23:00:00Z", "end": t}
                    if t > "2027" or t.startswith("2026-12") else {**SLICE, "id": f"bad-{n}", "service": "no-slo"})
    return dump({"id": f"bad-{n}", "type": "ticket.priority_changed", "time": t, "ticket": draw(st.sampled_from(["T0", "T1"])),
                 "priority": "P9"})


def _undecodable(line: bytes) -> bool:
    """A hostile line that is not an event at all (a mutated slice can still be a valid one)."""
    try:
        decode_event(line)
    except Exception:  # noqa: BLE001 - any refusal counts
        return True
    return False


@FUZZ
@given(histories(), st.data())
def test_bad_lines_interleaved_among_good_ones_change_no_output(good, data):
    bad = [data.draw(st.one_of(bad_records(n).map(lambda r: r[0]), state_rejects(n), hostile_lines()
                               .filter(lambda b: b"bad-" not in b and b'"T' not in b).filter(_undecodable)))
           for n in range(data.draw(st.integers(1, 8)))]
    mixed = list(good)
    for line in bad:
        mixed.insert(data.draw(st.integers(0, len(mixed))), line)
    alone, alone_rejects, _ = _replay(good)
    together, rejects, stats = _replay(mixed)
    assert together == alone
    assert stats.internal_errors == 0
    assert len(rejects) == len(alone_rejects) + len(bad) - sum(1 for line in bad if not line.strip())
