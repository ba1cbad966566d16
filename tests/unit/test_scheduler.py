"""The one scheduler (core/scheduler.py), marks (core/marks.py) and the live state stores."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from escalation.core.marks import Marks
from escalation.core.scheduler import Scheduler
from escalation.live.store import DESKS, MemoryStore, TableStore


def test_keys_come_out_in_due_then_key_order_and_a_reschedule_replaces():
    s = Scheduler()
    s.schedule("b", 5)
    s.schedule("a", 5)
    s.schedule("c", 3)
    s.schedule("c", 9)      # replaces 3: the old entry is stale
    s.schedule("d", 1)
    s.schedule("d", None)   # unscheduled
    assert len(s) == 3 and s.next_due() == 5
    assert list(s.pop_due(9)) == [(5, "a"), (5, "b")]  # 9 is not before 9
    assert list(s.pop_due(9, inclusive=True)) == [(9, "c")]
    assert s.next_due() is None and len(s) == 0


def test_what_firing_makes_due_fires_in_the_same_call():
    s = Scheduler()
    s.schedule("x", 1)
    fired = []
    for due, key in s.pop_due(10):
        fired.append((due, key))
        if due < 8:
            s.schedule(key, due + 3)
    assert fired == [(1, "x"), (4, "x"), (7, "x")] and s.due_of("x") == 10


def test_an_entry_its_owner_no_longer_backs_is_stale():
    open_ = {"p1", "p2"}
    s = Scheduler(lambda key, due: key in open_)
    s.schedule("p1", 1)
    s.schedule("p2", 2)
    open_.discard("p1")
    assert s.next_due() == 2 and len(s) == 1
    assert list(s.pop_due(2, inclusive=True)) == [(2, "p2")]


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.one_of(st.none(), st.integers(0, 20)))))
def test_pop_due_gives_the_last_schedule_of_every_key_in_order(ops):
    s, want = Scheduler(), {}
    for key, due in ops:
        s.schedule(key, due)
        if due is None:
            want.pop(key, None)
        else:
            want[key] = due
    assert list(s.pop_due(100)) == sorted((due, key) for key, due in want.items())


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.one_of(st.none(), st.integers(0, 20)))),
       st.integers(0, 21), st.booleans())
def test_may_be_due_is_false_only_when_nothing_is_due(ops, until, inclusive):
    """The engine skips ``pop_due`` when ``may_be_due`` says False: nothing may be lost then."""
    s = Scheduler()
    for key, due in ops:
        s.schedule(key, due)
    maybe = s.may_be_due(until, inclusive)
    assert maybe or not list(s.pop_due(until, inclusive))


def test_marks_only_move_forward_and_pass_once_every_source_has():
    m = Marks()
    assert m.advance(0, 10, False) and not m.advance(0, 9, True) and m.advance(0, 10, True)
    assert not m.passed(10, closing=False, sources=2)  # source 1 has not marked
    m.advance(1, 10, False)
    assert m.passed(10, closing=False, sources=2) and not m.passed(10, closing=True, sources=2)
    m.advance(1, 10, True)
    assert m.passed(10, closing=True, sources=2) and m.items() == [(0, (10, True)), (1, (10, True))]


def test_both_stores_hand_back_what_was_put_once_by_partition():
    for store in (MemoryStore(), TableStore({DESKS: {}})):
        store.put(DESKS, 0, "a", {"n": 1})
        store.put(DESKS, 1, "b", {"n": 2})
        store.put(DESKS, 0, "a", {"n": 3})  # the last value counts
        writes = store.changes()
        assert [(p, key) for _t, p, key, _v in writes] == [(0, "a"), (1, "b")] and store.changes() == []
        for table, _p, key, value in writes:
            if not isinstance(table, str):
                table[key] = value  # the app makes a table store's writes
        assert store.get(DESKS, "a") == {"n": 3} and list(store.items(DESKS, 1)) == [("b", {"n": 2})]
