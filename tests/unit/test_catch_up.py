"""CatchUp: when the ticker may tick a partition, and with which ``after`` (escalation/live/catch_up.py).

The rules on a fake clock (each case says what it shows); the last case pins the ticker's async
wrapper in escalation/live/app.py (it only reads the position and hands it over). The real-broker
proof of the stalled-tail branch is tests/integration/test_restart.py."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from escalation.live import app as live_app
from escalation.live import ticker
from escalation.live.catch_up import CATCH_UP_LIMIT, STALL_LIMIT, CatchUp

T, M = "p.tickets", "p.metrics"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, start: float, seconds: float) -> Clock:
        self.now = start + seconds
        return self


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catch_up(clock: Clock) -> CatchUp:
    return CatchUp(clock)


def test_defaults_are_the_module_limits_and_the_monotonic_clock():
    c = CatchUp()
    assert (c.clock, c.catch_up_limit, c.stall_limit) == (time.monotonic, 30.0, 2.0)
    assert (CATCH_UP_LIMIT, STALL_LIMIT) == (30.0, 2.0)


def test_caught_up_returns_the_offsets_applied():
    applied = {T: 5, M: 3}
    assert CatchUp(Clock()).decide(0, applied, {T: 5, M: 2}) is applied


def test_no_ends_known_counts_as_caught_up():
    applied = {T: 5}
    assert CatchUp(Clock()).decide(0, applied, {}) is applied


def test_caught_up_forgets_the_partition_so_the_next_lag_starts_fresh(catch_up, clock):
    t0 = clock.now
    assert catch_up.decide(0, {T: 5}, {T: 9}) is None  # behind since t0
    assert 0 in catch_up.waiting
    clock.at(t0, 1.5)
    assert catch_up.decide(0, {T: 9}, {T: 9}) == {T: 9}
    assert 0 not in catch_up.waiting
    # behind again with the applied of t0 (had t0 been kept, this would be a stall at t0+2)
    assert catch_up.decide(0, {T: 5}, {T: 9}) is None
    clock.at(t0, STALL_LIMIT)
    assert catch_up.decide(0, {T: 5}, {T: 9}) is None
    assert catch_up.waiting[0] == ({T: 5}, t0 + 1.5, t0 + 1.5)


def test_held_while_the_input_is_being_applied(catch_up, clock):
    t0 = clock.now
    for second in range(int(CATCH_UP_LIMIT)):  # 0 .. 29 s: progress every second
        clock.at(t0, second)
        assert catch_up.decide(0, {T: second}, {T: 1000}) is None
    assert catch_up.waiting[0] == ({T: 29}, t0 + 29, t0)


def test_stall_returns_the_log_ends_after_the_stall_limit(catch_up, clock):
    t0 = clock.now
    ends = {T: 9, M: 4}
    assert catch_up.decide(0, {T: 5, M: 4}, ends) is None
    clock.at(t0, STALL_LIMIT - 0.001)
    assert catch_up.decide(0, {T: 5, M: 4}, ends) is None
    clock.at(t0, STALL_LIMIT)  # the limit itself releases (>=)
    assert catch_up.decide(0, {T: 5, M: 4}, ends) is ends
    assert 0 not in catch_up.waiting


def test_progress_resets_the_stall_timer(catch_up, clock):
    t0 = clock.now
    assert catch_up.decide(0, {T: 5}, {T: 9}) is None
    clock.at(t0, 1.5)
    assert catch_up.decide(0, {T: 6}, {T: 9}) is None  # moved on: unchanged since t0+1.5
    clock.at(t0, STALL_LIMIT + 0.5)  # past STALL_LIMIT since t0, not since t0+1.5
    assert catch_up.decide(0, {T: 6}, {T: 9}) is None
    clock.at(t0, 1.5 + STALL_LIMIT)
    assert catch_up.decide(0, {T: 6}, {T: 9}) == {T: 9}


def test_progress_does_not_reset_the_catch_up_timer(catch_up, clock):
    t0 = clock.now
    assert catch_up.decide(0, {T: 0}, {T: 1000}) is None
    clock.at(t0, CATCH_UP_LIMIT - 1)
    assert catch_up.decide(0, {T: 500}, {T: 1000}) is None
    assert catch_up.waiting[0][2] == t0  # behind since the first sight, progress or not
    clock.at(t0, CATCH_UP_LIMIT)
    assert catch_up.decide(0, {T: 501}, {T: 1000}) == {T: 501}


def _progress_for_the_catch_up_limit(catch_up: CatchUp, clock: Clock) -> float:
    """Partition 0 behind, one more record applied every second (never stalled, always held),
    until the clock reaches the catch-up limit; returns when it started."""
    t0 = clock.now
    for second in range(int(CATCH_UP_LIMIT)):
        clock.at(t0, second)
        assert catch_up.decide(0, {T: second}, {T: 1000}) is None
    clock.at(t0, CATCH_UP_LIMIT)
    return t0


def test_catch_up_limit_returns_the_offsets_applied_not_the_ends(catch_up, clock):
    _progress_for_the_catch_up_limit(catch_up, clock)
    applied = {T: 30}
    assert catch_up.decide(0, applied, {T: 1000}) is applied
    assert 0 not in catch_up.waiting


def test_a_stall_past_the_catch_up_limit_returns_the_ends(clock):
    """Both limits passed at once: the stall wins (the ends bring the undelivered tail in first)."""
    c = CatchUp(clock, catch_up_limit=1.0, stall_limit=2.0)
    t0 = clock.now
    assert c.decide(0, {T: 5}, {T: 9}) is None
    clock.at(t0, 2.0)
    assert c.decide(0, {T: 5}, {T: 9}) == {T: 9}


def test_the_limits_come_from_the_constructor(clock):
    c = CatchUp(clock, catch_up_limit=5.0, stall_limit=0.5)
    t0 = clock.now
    assert c.decide(0, {T: 5}, {T: 9}) is None
    clock.at(t0, 0.5)
    assert c.decide(0, {T: 5}, {T: 9}) == {T: 9}  # stalled after 0.5 s, not STALL_LIMIT
    t1 = clock.now
    for step in range(12):  # progress every 0.4 s: never 0.5 s unchanged
        clock.at(t1, 0.4 * step)
        assert c.decide(0, {T: 10 + step}, {T: 99}) is None
    clock.at(t1, 5.0)
    assert c.decide(0, {T: 30}, {T: 99}) == {T: 30}  # behind 5 s, not CATCH_UP_LIMIT


def test_state_is_forgotten_after_a_stall_release(catch_up, clock):
    t0 = clock.now
    assert catch_up.decide(0, {T: 5}, {T: 9}) is None
    clock.at(t0, STALL_LIMIT)
    assert catch_up.decide(0, {T: 5}, {T: 9}) == {T: 9}
    # the very next call, same position, same instant: first sight again, held
    assert catch_up.decide(0, {T: 5}, {T: 9}) is None
    assert catch_up.waiting[0] == ({T: 5}, t0 + STALL_LIMIT, t0 + STALL_LIMIT)
    clock.at(t0, 2 * STALL_LIMIT)
    assert catch_up.decide(0, {T: 5}, {T: 9}) == {T: 9}


def test_state_is_forgotten_after_a_catch_up_release(catch_up, clock):
    t0 = _progress_for_the_catch_up_limit(catch_up, clock)
    assert catch_up.decide(0, {T: 30}, {T: 1000}) == {T: 30}  # released by the catch-up limit
    # still behind, still progressing: held again, behind since now, not since t0
    assert catch_up.decide(0, {T: 31}, {T: 1000}) is None
    assert catch_up.waiting[0] == ({T: 31}, t0 + CATCH_UP_LIMIT, t0 + CATCH_UP_LIMIT)
    clock.at(t0, CATCH_UP_LIMIT + 1.0)
    assert catch_up.decide(0, {T: 32}, {T: 1000}) is None


def test_partitions_are_independent(catch_up, clock):
    t0 = clock.now
    assert catch_up.decide(0, {T: 5}, {T: 9}) is None  # p0 behind since t0
    clock.at(t0, 1.5)
    assert catch_up.decide(1, {T: 5}, {T: 9}) is None  # p1 behind since t0+1.5, same offsets
    clock.at(t0, STALL_LIMIT)
    assert catch_up.decide(0, {T: 5}, {T: 9}) == {T: 9}  # p0 stalled
    assert catch_up.decide(1, {T: 5}, {T: 9}) is None  # p1 not yet
    assert 0 not in catch_up.waiting and catch_up.waiting[1] == ({T: 5}, t0 + 1.5, t0 + 1.5)
    assert catch_up.decide(2, {T: 9}, {T: 9}) == {T: 9}  # p2 caught up: p1 untouched
    assert catch_up.waiting[1] == ({T: 5}, t0 + 1.5, t0 + 1.5)
    clock.at(t0, 1.5 + STALL_LIMIT)
    assert catch_up.decide(1, {T: 5}, {T: 9}) == {T: 9}


def test_a_topic_missing_from_applied_counts_as_offset_0(catch_up, clock):
    assert catch_up.decide(0, {T: 9}, {T: 9, M: 0}) == {T: 9}  # nothing on the metrics log: caught up
    assert 0 not in catch_up.waiting
    assert catch_up.decide(0, {T: 9}, {T: 9, M: 1}) is None  # one metric, none applied: behind
    assert catch_up.waiting[0][0] == {T: 9}
    clock.at(clock.now, STALL_LIMIT)
    assert catch_up.decide(0, {T: 9}, {T: 9, M: 1}) == {T: 9, M: 1}


def test_a_partition_that_waits_while_the_consumer_is_saturated_is_held_not_stalled(catch_up, clock):
    # A backlog: the consumer delivers other partitions' records at the backlog rate; partition 0
    # does not move for longer than the stall limit. It is queued, not stalled: no read-back of its tail.
    t0 = clock.now
    assert catch_up.decide(0, {T: 5}, {T: 900}, saturated_at=t0) is None
    clock.at(t0, STALL_LIMIT + 1)
    assert catch_up.decide(0, {T: 5}, {T: 900}, saturated_at=t0 + STALL_LIMIT + 0.5) is None
    # the backlog ends (last saturated at t0+3): a stall is declared STALL_LIMIT after it
    clock.at(t0, 3 + STALL_LIMIT - 0.001)
    assert catch_up.decide(0, {T: 5}, {T: 900}, saturated_at=t0 + 3) is None
    clock.at(t0, 3 + STALL_LIMIT)
    assert catch_up.decide(0, {T: 5}, {T: 900}, saturated_at=t0 + 3) == {T: 900}


def test_saturation_does_not_lift_the_catch_up_limit(catch_up, clock):
    t0 = clock.now
    assert catch_up.decide(0, {T: 5}, {T: 900}, saturated_at=t0) is None
    clock.at(t0, CATCH_UP_LIMIT)
    assert catch_up.decide(0, {T: 5}, {T: 900}, saturated_at=t0 + CATCH_UP_LIMIT) == {T: 5}


# --- the ticker's wrapper in escalation.live.app --------------------------------------------


class Guard:
    """``position`` as InputGuard answers it, or raising like an unreachable broker."""

    saturated_at = None  # never saturated

    def __init__(self, answers: list[tuple[dict[str, int], dict[str, int]] | Exception]) -> None:
        self.answers, self.asked = answers, []

    async def position(self, p: int) -> tuple[dict[str, int], dict[str, int]]:
        self.asked.append(p)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_ticker_wrapper_reads_the_position_and_applies_the_rules(monkeypatch):
    installed = {}
    monkeypatch.setattr(ticker, "install_ticker",
                        lambda app, topic, settings, caught_up, next_due: installed.update(caught_up=caught_up,
                                                                                           next_due=next_due))
    app = SimpleNamespace(topic=lambda name, **raw: name)
    guard = Guard([({T: 9}, {T: 9}), ConnectionError("broker away"), ({T: 5}, {T: 9})])
    parts = SimpleNamespace(next_due=lambda p: None)
    live_app._ticker(app, SimpleNamespace(ticks="a-ticks"), SimpleNamespace(raw={}), None, guard, parts)
    assert installed["next_due"] is parts.next_due  # early ticks ask the partitions' engines

    caught_up = installed["caught_up"]
    assert asyncio.run(caught_up(3)) == {T: 9}  # caught up: the offsets applied
    assert asyncio.run(caught_up(3)) == {}  # broker unreachable: tick as before, no after
    assert asyncio.run(caught_up(3)) is None  # behind, just seen: held
    assert guard.asked == [3, 3, 3]
