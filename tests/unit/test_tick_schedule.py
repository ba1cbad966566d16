"""The ticker's schedule (escalation.live.ticker.TickSchedule): a heartbeat every interval, plus an
early tick as soon as the tick instant reaches what a partition has due, at most once per due
instant and never closer than the minimum gap; a held attempt waits for the next heartbeat."""

from datetime import datetime, timedelta, timezone

from escalation.core.engine import Engine
from escalation.core.events import Tick, decode_event
from escalation.live.ticker import TickSchedule
from tests.helpers import registry

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_partition_never_ticked_is_ticked_at_once():
    assert TickSchedule(0.25).wants(0, now=100.0, instant=at(0), next_due=None)


def test_without_anything_due_the_heartbeat_sets_the_pace():
    s = TickSchedule(0.25, min_gap=0.05)
    s.ticked(0, 100.0, at(0))
    assert not s.wants(0, 100.1, at(0.1), None)
    assert not s.wants(0, 100.24, at(0.24), at(5))  # due later than the tick instant: no early tick
    assert s.wants(0, 100.25, at(0.25), None)


def test_a_due_instant_reached_by_the_tick_instant_gets_an_early_tick():
    s = TickSchedule(0.25, min_gap=0.05)
    s.ticked(0, 100.0, at(0))
    assert s.wants(0, 100.06, at(0.06), next_due=at(0.03))


def test_never_closer_than_the_minimum_gap():
    s = TickSchedule(0.25, min_gap=0.125)  # binary fractions: the boundary is exact
    s.ticked(0, 100.0, at(0))
    assert not s.wants(0, 100.0625, at(0.0625), next_due=at(0.01))
    assert s.wants(0, 100.125, at(0.125), next_due=at(0.01))


def test_one_early_tick_per_due_instant():
    s = TickSchedule(0.25, min_gap=0.05)
    s.ticked(0, 100.0, at(0))
    s.ticked(0, 100.06, at(0.06))  # the early tick for a deadline due at 0.03, not applied yet
    assert not s.wants(0, 100.12, at(0.12), next_due=at(0.03))  # that tick fires it: no second one
    assert s.wants(0, 100.12, at(0.12), next_due=at(0.10))     # a later due instant: one more


def test_a_held_attempt_waits_for_the_next_heartbeat():
    s = TickSchedule(0.25, min_gap=0.05)
    s.held(0, 100.0)
    assert not s.wants(0, 100.1, at(0.1), next_due=at(0.0))
    assert s.wants(0, 100.25, at(0.25), next_due=at(0.0))
    s.ticked(0, 100.25, at(0.25))
    assert s.wants(0, 100.31, at(0.31), next_due=at(0.3))  # ticked again: early ticks are back


def test_partitions_are_scheduled_independently():
    s = TickSchedule(0.25, min_gap=0.05)
    s.ticked(0, 100.0, at(0))
    s.held(1, 100.0)
    assert s.wants(0, 100.1, at(0.1), next_due=at(0.05))
    assert not s.wants(1, 100.1, at(0.1), next_due=at(0.05))
    assert s.wants(2, 100.1, at(0.1), next_due=None)


OPENED = (b'{"id":"o-1","type":"ticket.opened","time":"2026-03-02T09:00:00Z","ticket":"INC-1",'
          b'"agreement":"acme-erp","priority":"P1","service":"erp-prod"}')


def test_the_engine_says_when_its_next_deadline_is():
    """``Engine.next_due`` is the instant a tick must reach to fire something: a tick just before
    it fires nothing, a tick at it fires."""
    engine = Engine(registry(), forget_closed=True)
    engine.step(decode_event(OPENED))
    due = engine.next_due()
    assert due is not None and due > T0
    assert engine.step(Tick(due - timedelta(microseconds=1), inclusive=True)).outputs == []
    assert engine.step(Tick(due, inclusive=True)).outputs
    assert engine.next_due() > due


def test_the_ticker_task_survives_a_failed_beat_and_ticks_early_for_what_is_due():
    """The installed task with a fake app: the first send fails (broker away), the ticker goes on;
    a partition with a deadline due is ticked at the next beat, not at the next heartbeat."""
    import asyncio
    from types import SimpleNamespace

    from escalation.live.ticker import install_ticker

    sent, beats = [], []

    class Topic:
        def get_topic_name(self):
            return "a-ticks"

        async def send(self, key, value, partition):
            if not sent and not beats:
                beats.append("failed")
                raise ConnectionError("broker away")
            sent.append((partition, value))

    class App:
        should_stop = False
        consumer = SimpleNamespace(assignment=lambda: [SimpleNamespace(topic="a-ticks", partition=0)])

        def task(self, fun):
            self.fun = fun
            return fun

        async def sleep(self, seconds):
            await asyncio.sleep(0.01)
            if len(sent) >= 2:
                self.should_stop = True

    app = App()
    settings = SimpleNamespace(tick_grace=0.0, tick_interval=3600.0)  # no heartbeat within the test
    # something always falls due just before now: after the first tick, only early ticks can follow
    install_ticker(app, Topic(), settings, next_due=lambda p: datetime.now(timezone.utc) - timedelta(milliseconds=1))
    asyncio.run(asyncio.wait_for(app.fun(), timeout=10))
    assert beats == ["failed"]
    assert [p for p, _ in sent] == [0, 0]  # the beat after the failure, then an early tick (no heartbeat in an hour)
