"""InputGuard: what reaches the engine when the consumer skips records (escalation/live/offsets.py).

The real-broker proof is tests/integration/test_restart.py; these cases pin the rules on a plain
dict table and a reader that serves a list of records (each case says what it shows)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from escalation.live.store import pack
from escalation.live import offsets as offsets_module
from escalation.live.offsets import AppliedOffsets, InputGuard, Record

T, M, K = "p.tickets", "p.metrics", "a-ticks"


class Log:
    """The broker's copy of the topics: ``read`` serves [start, end) of what it holds."""

    def __init__(self, held: dict[tuple[str, int], list[int]]) -> None:
        self.held, self.reads = held, []

    async def ends(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: max(self.held.get(tp, [-1])) + 1 for tp in tps}

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        self.reads.append((topic, partition, start, end))
        return [rec(topic, o, partition) for o in self.held.get((topic, partition), []) if start <= o < end]


def rec(topic: str, offset: int, partition: int = 0) -> Record:
    return Record(topic, partition, offset, None, b"%d" % offset)


def run(guard: InputGuard, offsets: list[tuple[str, int]]) -> list[tuple[str, int]]:
    out = asyncio.run(guard.records([rec(t, o) for t, o in offsets]))
    return [(r.topic, r.offset) for r in out]


def guard_over(table: dict, log: Log, committed=None, tails=()) -> InputGuard:
    return InputGuard(AppliedOffsets(table), log, {T, M}, lambda t, p: (committed or {}).get(t), tails=tails,
                      tail_wait=0.0)


@pytest.mark.parametrize("saved,committed,delivered,want,reads", [
    # contiguous delivery: nothing is read back
    ({T: 5}, {}, [(T, 5), (T, 6)], [(T, 5), (T, 6)], []),
    # a hole in the middle: 7 and 8 are read back and applied before 9, in order
    ({T: 5}, {}, [(T, 5), (T, 6), (T, 9)], [(T, 5), (T, 6), (T, 7), (T, 8), (T, 9)], [(T, 0, 7, 9)]),
    # the first record after a restart is past the saved offset: the gap comes first
    ({T: 3}, {}, [(T, 6)], [(T, 3), (T, 4), (T, 5), (T, 6)], [(T, 0, 3, 6)]),
    # no saved offset: the group's committed offset is where the partition starts
    ({}, {T: 2}, [(T, 4)], [(T, 2), (T, 3), (T, 4)], [(T, 0, 2, 4)]),
    # nothing known: the first delivered record is trusted
    ({}, {}, [(T, 4), (T, 5)], [(T, 4), (T, 5)], []),
    # a record delivered again (below the saved offset) is passed on (ids absorb it), no read
    ({T: 8}, {}, [(T, 6), (T, 8)], [(T, 6), (T, 8)], []),
    # ticks are not guarded: their offsets are only recorded
    ({}, {}, [(K, 3), (K, 9)], [(K, 3), (K, 9)], []),
])
def test_holes_are_read_back_in_order(saved, committed, delivered, want, reads):
    table = {f"{t}#0": pack(0, o) for t, o in saved.items()}
    log = Log({(T, 0): list(range(0, 20))})
    assert run(guard_over(table, log, committed), delivered) == want
    assert log.reads == reads


def test_offsets_the_broker_no_longer_holds_are_skipped():
    log = Log({(T, 0): [0, 1, 4]})  # 2 and 3 compacted away
    assert run(guard_over({f"{T}#0": pack(0, 1)}, log), [(T, 5)]) == [(T, 1), (T, 4), (T, 5)]


def test_the_applied_offsets_are_written_once_per_batch_and_committable():
    offsets = AppliedOffsets({})
    guard = InputGuard(offsets, Log({}), {T}, lambda t, p: None)
    asyncio.run(guard.records([rec(T, 4), rec(T, 5), rec(K, 7)]))
    assert [(key, value) for _, _, key, value in offsets.writes()] == [(f"{K}#0", pack(0, 8)), (f"{T}#0", pack(0, 6))]
    assert offsets.writes() == []  # forgotten once written
    assert offsets.committable([T]) == {(T, 0): 6}


def test_a_tick_reads_back_a_tail_the_consumer_never_delivered():
    # tickets ends at 9 but only 0..6 were applied: the tick for partition 0 brings 7 and 8 first
    log = Log({(T, 0): list(range(9))})
    guard = guard_over({f"{T}#0": pack(0, 7)}, log, tails=(T, M))
    assert asyncio.run(guard.position(0)) == ({T: 7}, {T: 9, M: 0})  # input waits: the ticker holds ticks back
    assert run(guard, [(K, 0)]) == [(K, 0)]  # the first sighting only starts the wait (tail_wait 0: next tick acts)
    assert run(guard, [(K, 1)]) == [(T, 7), (T, 8), (K, 1)]
    assert run(guard, [(K, 2)]) == [(K, 2)]  # caught up: nothing more to read
    assert asyncio.run(guard.position(0)) == ({T: 9}, {T: 9, M: 0})


def test_a_tail_is_not_read_back_while_the_consumer_works_off_a_backlog(monkeypatch):
    # A backlog: partition 1's records arrive at the backlog rate (here 1 record/s over the 2 s
    # window) and keep the agent busy while partition 0's tickets wait on the broker. They are
    # queued behind, not lost: no read-back until the consumer has not been saturated for tail_wait.
    now = [0.0]
    monkeypatch.setattr(offsets_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    log = Log({(T, 0): list(range(9)), (T, 1): list(range(4))})
    guard = InputGuard(AppliedOffsets({f"{T}#0": pack(0, 7)}), log, {T, M}, lambda t, p: None, tails=(T, M),
                       tail_wait=5.0, backlog_rate=1.0)
    guard._lagging[(T, 0)] = (7, -1e9)  # partition 0 has been lagging since long ago
    out = asyncio.run(guard.records([rec(T, 0, 1), rec(T, 1, 1), rec(T, 2, 1)]))
    assert [(r.partition, r.offset) for r in out] == [(1, 0), (1, 1), (1, 2)]
    assert guard.saturated_at == 0.0
    now[0] = 1.0
    assert run(guard, [(K, 0)]) == [(K, 0)] and log.reads == []  # an old lag, but the consumer is busy
    now[0] = 10.0  # nothing delivered for 9 s (> tail_wait): the lag is a lost tail
    assert run(guard, [(K, 1)]) == [(T, 7), (T, 8), (K, 1)]
    assert log.reads == [(T, 0, 7, 9)] and guard.saturated_at == 1.0


def test_a_tick_comes_after_the_records_applied_before_it_was_made():
    # A worker applied tickets 0..6 of partition 0 and made a tick (after: 7), then was killed
    # before committing them. Its successor resumes at 3 and is delivered the tick first: 3..6
    # are read back and applied before it, so none of them is late against it.
    log = Log({(T, 0): list(range(9))})
    after = {(K, 0): {T: 7}, (K, 1): {T: 7, M: 0}}
    guard = InputGuard(AppliedOffsets({f"{T}#0": pack(0, 3)}), log, {T, M}, lambda t, p: None,
                       after=lambda r: after.get((r.topic, r.offset), {}))
    assert run(guard, [(K, 0), (T, 3), (T, 7)]) == [(T, 3), (T, 4), (T, 5), (T, 6), (K, 0), (T, 3), (T, 7)]
    assert log.reads == [(T, 0, 3, 7)]
    assert run(guard, [(K, 1), (T, 8)]) == [(K, 1), (T, 8)]  # already applied: nothing read
    assert log.reads == [(T, 0, 3, 7)]
