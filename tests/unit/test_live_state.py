"""The live engine's state machinery without Kafka: per-partition Engines and the desk.

The records travel as they would on the broker (inputs split by key over partitions, desk records
keyed by agreement, marks broadcast to every desk partition), the partitions and the desk run in
an arbitrary interleaving, and state goes through a store between batches (Faust's table
encoding over plain dicts, or the memory store).
Whatever the interleaving, the outputs must be exactly replay's: same ids, same contents. This is
the pure half of "live == replay"; the integration tier proves the Kafka half.
"""

from __future__ import annotations

import random
import zlib
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.cli.common import load_registry
from escalation.core.engine import Engine
from escalation.core.events import Rejected, Tick, decode_event
from escalation.live.desk_book import DeskBook
from escalation.live.partitions import Partitions
from escalation.live.records import desk_record, mark_record
from escalation.live.store import DESK_TABLES, INPUT_TABLES, MemoryStore, TableStore
from escalation.paths import ROOT
from escalation.replay import replay
from tests.helpers import example_tickets_and_metrics
from tests.unit.test_properties import REG, histories
from tests.unit.test_properties import UNTIL as P_UNTIL

AGREEMENTS = ROOT / "examples" / "agreements"
UNTIL = datetime.fromisoformat("2026-05-01T00:10:00+02:00")  # past April's end + the live grace
GRACE = timedelta(minutes=5)


def _part(key: str, n: int) -> int:
    return zlib.crc32(key.encode()) % n


def _replay(registry, lines, until: datetime = UNTIL) -> list[dict]:
    """Replay with its default grace of 0: the live side's grace must not change any output."""
    outs: list[dict] = []
    replay(registry, lines, outs.append, lambda r: None, until, Engine(registry))
    return outs


def _stores(memory: bool):
    """(input store, desk store): the memory store, or the table store over plain dicts."""
    if memory:
        return MemoryStore(), MemoryStore()
    return TableStore({name: {} for name in INPUT_TABLES}), TableStore({name: {} for name in DESK_TABLES})


def _write(writes: list) -> None:
    """Make a batch's writes as the app does (a memory store's puts are made already)."""
    for table, _p, key, value in writes:
        if not isinstance(table, str):
            table[key] = value  # partition-prefixed JSON bytes


def _live(registry, lines, partitions: int, seed: int, reload_every_batch: bool, until: datetime = UNTIL,
          memory: bool = False) -> list[dict]:
    rnd = random.Random(seed)
    in_store, desk_store = _stores(memory)
    parts = Partitions(registry, in_store, partitions, GRACE)
    book = DeskBook(registry, parts.sources, desk_store, GRACE)
    # one queue per topic partition: tickets and metrics of partition p are ordered each, but
    # consumed in any interleaving (Kafka orders per topic partition only); the closing tick
    # comes once both are drained (as the tests produce it after everything was consumed)
    inputs: dict[tuple[int, str], list] = {(p, t): [] for p in range(partitions) for t in ("tickets", "metrics", "ticks")}
    for line in lines:
        try:
            ev = decode_event(line)
        except Rejected:
            continue  # dead letters: not outputs
        ticket = getattr(ev, "ticket", None)
        inputs[(_part(ticket or ev.service, partitions), "tickets" if ticket else "metrics")].append(("event", ev))
    for p in range(partitions):
        inputs[(p, "ticks")].append(("tick", Tick(until)))
    desk_queues: dict[int, list[bytes]] = {q: [] for q in range(partitions)}
    outputs: list[dict] = []

    def input_batch(key: tuple[int, str], n: int) -> None:
        p = key[0]
        batch, inputs[key][:n] = inputs[key][:n], []
        for _kind, x in batch:
            stepped = parts.step(p, x)
            outputs.extend(stepped.outputs)
            for src, item in stepped.settlements:
                desk_queues[_part(item.agreement, partitions)].append(desk_record(item, src))
        writes, moved = parts.end()
        _write(writes)
        # between batches every open incident is kept as its stored value (live/frozen.py)
        assert parts.frozen() == parts.sizes()[0]
        for src, (at, inclusive) in moved.items():
            for q in range(partitions):
                desk_queues[q].append(mark_record(src, at, inclusive))
        if reload_every_batch:
            parts.discard()

    def desk_batch(q: int, n: int) -> None:
        batch, desk_queues[q][:n] = desk_queues[q][:n], []
        for value in batch:
            book.take(q, value)
        outputs.extend(book.release())
        _write(book.end())
        if reload_every_batch:
            book.discard()

    while any(inputs.values()) or any(desk_queues.values()):
        ready = [("in", k) for k, q in inputs.items()
                 if q and (k[1] != "ticks" or not (inputs[(k[0], "tickets")] or inputs[(k[0], "metrics")]))]
        ready += [("desk", q) for q, d in desk_queues.items() if d]
        side, k = rnd.choice(ready)
        n = rnd.randint(1, 50)
        (input_batch if side == "in" else desk_batch)(k, n)
    return outputs


@pytest.fixture(scope="module")
def expected():
    registry = load_registry([str(AGREEMENTS)])
    lines = example_tickets_and_metrics()
    outs = _replay(registry, lines)
    assert {o.type for o in outs} >= {"penalty.assessed", "credit.issued", "report.published", "slo.attainment",
                                         "slo.burn_rate", "sla.breached"}
    return lines, {o.id: o for o in outs}


@pytest.mark.parametrize("partitions,seed,reload_every_batch,memory",
                         [(1, 1, False, False), (4, 2, False, False), (4, 3, True, False), (3, 4, True, False),
                          (3, 5, True, True)])
def test_partitions_and_desk_give_replays_outputs(expected, partitions, seed, reload_every_batch, memory):
    lines, want = expected
    registry = load_registry([str(AGREEMENTS)])
    got = _live(registry, lines, partitions, seed, reload_every_batch, memory=memory)
    ids = [o.id for o in got]
    assert len(ids) == len(set(ids)), "an output was produced twice"
    assert set(ids) == set(want)
    for o in got:
        assert o == want[o.id], o.type


def test_the_desk_waits_for_every_partition_before_booking_money(expected):
    lines, _ = expected
    registry = load_registry([str(AGREEMENTS)])
    in_store, desk_store = _stores(memory=False)
    book = DeskBook(registry, 2, desk_store, GRACE)
    parts = Partitions(registry, in_store, 1, GRACE)
    settlements = []
    for line in lines:
        try:
            ev = decode_event(line)
        except Rejected:
            continue
        if getattr(ev, "ticket", None):
            settlements += parts.step(0, ev).settlements
    settlements += parts.step(0, Tick(UNTIL)).settlements
    items = [item for src, item in settlements if src == 0]
    assert items, "the example has penalties"
    for item in items:
        book.take(0, desk_record(item, 0))
    book.take(0, mark_record(0, UNTIL, True))
    assert book.release() == [], "source 1 has not marked yet: nothing may be booked"
    book.take(0, mark_record(1, UNTIL - timedelta(days=60), True))
    assert book.release() == [], "source 1 is still before every penalty"
    book.take(0, mark_record(1, UNTIL, True))
    booked = book.release()
    assert [o.type for o in booked].count("penalty.assessed") == sum(1 for i in items if hasattr(i, "ticket"))
    book.take(0, desk_record(items[0], 0))  # a redelivered penalty is not booked twice
    assert book.release() == []


# -- property: any ticket history, any split over partitions, any interleaving --------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(1, 4), st.integers(0, 10_000), st.booleans())
def test_any_history_split_and_interleaved_equals_replay(lines, partitions, seed, reload_every_batch):
    want = _replay(REG, lines, P_UNTIL)
    got = _live(REG, lines, partitions, seed, reload_every_batch, P_UNTIL)
    assert sorted(o.id for o in got) == sorted(o.id for o in want)
    by_id = {o.id: o for o in want}
    assert all(o == by_id[o.id] for o in got)


@pytest.mark.parametrize("partitions,seed", [(4, 11), (3, 12)])
def test_a_generated_workload_with_binding_caps_gives_replays_money(tmp_path, partitions, seed):
    """Penalties from different partitions compete for one cap: the desk must book them in replay's order."""
    from tests.helpers import generated_workload

    events, agreements = generated_workload(tmp_path, tickets=300, seed=seed)
    registry = load_registry([str(agreements)])
    lines = [ln for ln in events.read_bytes().splitlines() if ln.strip()]
    until = datetime.fromisoformat("2026-06-01T00:10:00+02:00")  # after every partition's last event and May's close
    want = {o.id: o for o in _replay(registry, lines, until)}
    assert sum(1 for o in want.values() if o.type == "penalty.assessed" and o.data["capped"]) >= 5
    got = _live(registry, lines, partitions, seed, reload_every_batch=False, until=until)
    assert sorted(o.id for o in got) == sorted(want)
    assert [o for o in got if o != want[o.id]] == []


def test_the_inputs_agent_publishes_what_fired_before_a_record_failed():
    # the live twin of test_inputs' "internal error after the clock moved": the outputs of the
    # advance go out, then the record is dead-lettered (an internal error through ``process``'s
    # safety net; a rejection directly)
    from types import SimpleNamespace

    from escalation.core.events import StepFailed
    from escalation.live.agents import InputsAgent
    from escalation.live.offsets import Record

    fired = [object(), object()]

    class Parts:
        cause: Exception = ZeroDivisionError("boom")

        def step(self, p, item):
            raise StepFailed(fired, self.cause)

    class Batch:
        def __init__(self):
            self.published, self.rejected = [], []

        def publish(self, stepped):
            self.published += stepped.outputs

        def reject(self, reason, rec, conflict=False):
            self.rejected.append(reason)

    agent = object.__new__(InputsAgent)
    agent.parts = Parts()
    agent.names = SimpleNamespace(ticks="ticks", metrics="metrics", tickets="tickets")
    agent.settings = SimpleNamespace(max_future_skew=300.0)
    line = b'{"id":"e1","type":"ticket.acknowledged","time":"2026-03-02T08:20:00Z","ticket":"INC-1"}'
    rec = Record("tickets", 0, 7, b"INC-1", line)
    latest = datetime.fromisoformat("2030-01-01T00:00:00+00:00")
    batch = Batch()
    with pytest.raises(ZeroDivisionError):
        agent.record(batch, rec, latest)
    assert batch.published == fired and batch.rejected == []
    agent.parts.cause = Rejected("no")
    batch = Batch()
    agent.record(batch, rec, latest)
    assert batch.published == fired and batch.rejected == ["no"]
