"""The replay hot paths written for speed (issue #11) give exactly what their plain forms give.

Each test states the plain form (the obvious, slower expression the fast one replaces) and
compares the two on many inputs, so a fast path can never drift from its meaning.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from escalation.core import outputs
from escalation.core.outputs import Output, OutputType, output_id, utc


def _plain_output_id(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=5))


def test_output_id_is_the_uuid5_form_of_the_sha256_of_its_parts():
    rng = random.Random(11)
    for i in range(5000):
        parts = ("acme@3", OutputType.SLA_MET, f"INC-{i}", rng.choice(["response", "resolution"]),
                 rng.randint(1, 9), "x" * rng.randint(0, 40), rng.random())
        assert output_id(*parts) == _plain_output_id(*parts)


def _instants(n: int):
    rng = random.Random(7)
    zones = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)), ZoneInfo("Europe/Berlin")]
    base = datetime(2026, 3, 1, tzinfo=timezone.utc)
    for _ in range(n):
        t = base + timedelta(microseconds=rng.randrange(0, 10**13))
        if rng.random() < 0.3:
            t = t.replace(microsecond=0)
        yield t.astimezone(rng.choice(zones))


def test_utc_text_is_isoformat_of_the_utc_instant_whatever_was_formatted_before():
    outputs._ISO.clear()
    for t in _instants(20000):  # many equal instants with other offsets: the memo keys UTC only
        assert utc(t) == t.astimezone(timezone.utc).isoformat()


def test_cloudevent_time_is_isoformat_of_the_output_time():
    for t in _instants(2000):
        utc(t)  # memoise its UTC text: an output with another offset must not get it
        out = Output(OutputType.SLA_MET, t, "s", "subject", "id", {})
        assert out.cloudevent()["time"] == t.isoformat()


def _plain_digest64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def test_id_hash_and_content_digest_keep_their_saved_values():
    """Both are saved in live state: the digest is blake2b-64 of the id, and of the repr of the
    class name and field values (times as µs since EARLIEST), exactly as before."""
    from escalation.core.events import EARLIEST, _WRITTEN_IN, content_digest, decode_event, id_hash

    rng = random.Random(3)
    for i in range(3000):
        event_id = f"INC-{i}-{rng.randint(0, 10**9)}" + rng.choice(["", "é", "\ud800", "x" * 200])
        assert id_hash(event_id) == _plain_digest64(event_id.encode("utf-8", "surrogatepass"))
        offset = rng.choice(["Z", "+01:00", "-05:00"])
        event = decode_event(f'{{"id": "{i}", "type": "ticket.updated", "time": "2026-03-01T10:00:0{i % 10}{offset}", '
                             f'"ticket": "T{i}", "public": {rng.choice(["true", "false"])}}}')
        values = [(v - EARLIEST) // timedelta(microseconds=1) if isinstance(v, datetime) else v
                  for k, v in event.__dict__.items() if k != _WRITTEN_IN]
        text = repr((type(event).__name__, values)).encode("utf-8", "surrogatepass")
        assert content_digest(event) == (_plain_digest64(text) or 1)


def test_content_digest_of_every_event_class_follows_the_saved_rule():
    """The digest reads instants at positions worked out per event class; for every class, with
    and without a written offset, that is the rule above (every datetime field as µs)."""
    from escalation.core.events import EARLIEST, _WRITTEN_IN, content_digest, decode_event

    common = '"id": "e1", "ticket": "T1", '
    bodies = [
        '"type": "ticket.opened", "priority": "P1", "service": "s", "customer": "c", "attributes": {"k": [1]}',
        '"type": "ticket.acknowledged"', '"type": "ticket.updated", "public": false',
        '"type": "ticket.status_changed", "status": "pending", "vendor": "v"',
        '"type": "ticket.priority_changed", "priority": "P2"', '"type": "ticket.assigned", "assignee": "a"',
        '"type": "ticket.resolved"', '"type": "ticket.reopened"', '"type": "ticket.cancelled"',
        '"type": "notification.acknowledged", "dedup_key": "k", "by": "b"',
    ]
    for offset in ("Z", "+05:30"):
        raws = [f'{{{common}"time": "2026-03-01T10:00:00{offset}", {b}}}' for b in bodies]
        raws += [f'{{"id": "m1", "type": "metric.observed", "service": "s", "sli": "x", "start": "2026-03-01T10:00:00Z", '
                 f'"end": "2026-03-01T23:01:00{offset}", "good": 1, "total": 2}}',
                 f'{{"id": "a1", "type": "agreement.terminated", "time": "2026-03-01T10:00:00{offset}", '
                 f'"agreement": "a", "by": "customer"}}']
        for raw in raws:
            event = decode_event(raw)
            values = [(v - EARLIEST) // timedelta(microseconds=1) if isinstance(v, datetime) else v
                      for k, v in event.__dict__.items() if k != _WRITTEN_IN]
            text = repr((type(event).__name__, values)).encode("utf-8", "surrogatepass")
            assert content_digest(event) == (_plain_digest64(text) or 1), raw


def test_digests_of_a_known_event_are_pinned():
    from escalation.core.events import content_digest, decode_event, id_hash

    event = decode_event('{"id":"INC-1-1","type":"ticket.opened","time":"2026-02-28T18:03:48-05:00","ticket":"INC-1",'
                         '"agreement":"a","priority":"P2","service":"s","attributes":{"k":[1,"x"]}}')
    assert content_digest(event) == 13649360689003290271
    assert id_hash("INC-1-1") == 6521931911415454754


def test_due_of_memo_tells_instants_apart_and_equals_calendar_add():
    """``due_of`` memoises ``cal.add``: equal wall times of different instants (a fall-back fold)
    and the same instant with other offsets must each get ``add``'s own answer."""
    from escalation.core.tickets import clocks
    from escalation.core.tickets.state import ClockState
    from escalation.core.time.calendar import AlwaysCalendar, WeeklyCalendar

    berlin = ZoneInfo("Europe/Berlin")
    cals = [AlwaysCalendar(), WeeklyCalendar("business", berlin, {d: [(datetime.min.time().replace(hour=8), None)]
                                                                  for d in range(5)})]
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)            # 00:30 UTC
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=berlin)   # 01:30 UTC, equal to ``first``
    starts = [first, second, first.astimezone(timezone.utc), second.astimezone(timezone(timedelta(hours=5)))]
    offset, elapsed = timedelta(hours=3), timedelta(minutes=20)
    for _ in range(2):  # the second round answers from the memo
        for cal in cals:
            for t in starts:
                clock = ClockState("running", t, t, elapsed)
                assert clocks.due_of(clock, cal, offset) == cal.add(t, offset - elapsed)
