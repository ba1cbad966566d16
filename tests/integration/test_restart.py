"""Crash, restart and poison on the real broker (DESIGN.md §6, §10; issues #9 and #15).

(a) kill -9 of a worker running on its own ticker while events are produced in real time, the
    restart 1.5 s later while production goes on (records produced during the gap), at several
    kill moments: every input id reaches the state (read back from the incidents changelog), the
    committed offsets of every tickets partition reach the log end (no commit gap), and the
    outputs are replay's, id for id and dict for dict;
(b) a record that makes the core raise is dead-lettered with ``internal error: ...`` and the
    worker goes on (later records applied, offsets committed past it: no crash, no loop); an event
    dated an hour ahead is dead-lettered as from the future and fires nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaProducer

from escalation.core.events import id_hash
from escalation.live.readback import state_input_ids
from tests.integration.test_live_engine import (
    Worker, _committed, _opened, assert_same_outputs, collect, produce, replay_outputs, topics,
)

pytestmark = pytest.mark.integration


def _workload(seed: int, tickets: int, span: float) -> list[tuple[float, dict]]:
    """(seconds after the start, event without its time): each ticket opened, acknowledged and
    resolved within ``span`` seconds, so no 15-minute target of the reference agreement passes."""
    rnd = random.Random(seed)
    events = []
    for i in range(tickets):
        ticket, opened = f"K{seed}-{i}", rnd.uniform(0, span - 3)
        acked = opened + rnd.uniform(0.2, 1.5)
        events += [(opened, {"id": f"{ticket}-o", "type": "ticket.opened", "ticket": ticket, "agreement": "acme-erp",
                             "service": "erp-prod", "priority": rnd.choice(["P1", "P2", "P3"])}),
                   (acked, {"id": f"{ticket}-a", "type": "ticket.acknowledged", "ticket": ticket}),
                   (acked + rnd.uniform(0.2, 1.5), {"id": f"{ticket}-r", "type": "ticket.resolved", "ticket": ticket})]
    return sorted(events, key=lambda e: e[0])


async def _produce_live(bootstrap: str, topic: str, events, on_time) -> list[bytes]:
    """Produce ``events`` at their moments, stamped with the wall clock; ``on_time(elapsed)`` runs
    before each send (the test kills and restarts the worker from it). The produced lines."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    lines, start = [], time.monotonic()
    try:
        for at, event in events:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            on_time(time.monotonic() - start)
            line = json.dumps({**event, "time": datetime.now(timezone.utc).isoformat()}).encode()
            await producer.send_and_wait(topic, line, key=event["ticket"].encode())
            lines.append(line)
    finally:
        await producer.stop()
    return lines


def _wait_committed(broker, group: str, topic: str, timeout: float) -> tuple[dict, dict]:
    deadline = time.time() + timeout
    while True:
        committed, ends = asyncio.run(_committed(broker.bootstrap, group, topic))
        if all(committed[tp] == ends[tp] for tp in ends) or time.time() > deadline:
            return committed, ends
        time.sleep(0.5)


# Intermittent failure of stop 9 (2 of 5 clean CI runs: some sla.met contents differed from replay's,
# ids all equal: late_event notes). Two causes found and fixed in stop 10: (1) a tick made by the
# killed worker after it had applied records it never committed could reach its successor before
# those records; (2) Faust stopped delivering partition tails after the restart, the ticker held
# the ticks back 30 s and then ticked past them. Ticks now carry the offsets they follow (applied,
# or the log ends when the input stalls) and the InputGuard reads those records back first
# (tests/unit/test_input_guard.py). The one rerun stays until clean CI runs show none.
@pytest.mark.flaky(reruns=1)
@pytest.mark.parametrize("kill_at,seed", [(2.5, 1), (4.5, 2), (6.0, 3)])
def test_kill9_mid_stream_with_real_ticks_applies_every_record_once(broker, namespace, tmp_path, kill_at, seed):
    names = topics(namespace)
    events = _workload(seed, tickets=80, span=9.0)
    workers = [Worker(broker, namespace, tmp_path, name="w1")]
    workers[0].wait_ready()
    state = {"killed_at": None}

    def on_time(elapsed: float) -> None:
        if state["killed_at"] is None and elapsed >= kill_at:
            workers[0].kill()
            state["killed_at"] = time.monotonic()
        elif state["killed_at"] is not None and len(workers) == 1 and time.monotonic() - state["killed_at"] >= 1.5:
            workers.append(Worker(broker, namespace, tmp_path, name="w2"))  # records keep coming meanwhile

    try:
        lines = asyncio.run(_produce_live(broker.bootstrap, names["tickets"], events, on_time))
        assert len(workers) == 2, "the restart did not happen during production"
        workers[1].wait_ready(timeout=60)
        committed, ends = _wait_committed(broker, namespace.app_id, names["tickets"], timeout=45)
        held = asyncio.run(state_input_ids(broker.bootstrap, namespace.app_id))
        feed = tmp_path / "produced.jsonl"
        feed.write_bytes(b"\n".join(lines) + b"\n")
        until = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
        expected = {o["id"]: o for o in replay_outputs(feed, until)}
        outs = collect(broker, [names["notifications"], names["remedies"], names["timeline"]], timeout=30, quiet=2.0,
                       until=lambda got: set(expected) <= {o["id"] for _, _, o in got})
    finally:
        for w in workers:
            w.stop()
    missing = {e["id"] for _, e in events if id_hash(e["id"]) not in held}
    assert committed == ends, (f"committed offsets stuck below the log end: {committed} vs {ends}; "
                               f"{len(missing)} records not in the state; see {workers[1].log_path}")
    assert not missing, f"{len(missing)} input records never reached the state: {sorted(missing)[:10]}; see {workers[1].log_path}"
    assert expected and all(o["type"] == "sla.met" for o in expected.values())
    assert_same_outputs(expected, outs, f"kill -9 at +{kill_at}s; see {workers[1].log_path}")


def test_a_poison_record_is_dead_lettered_and_the_worker_goes_on(broker, namespace, tmp_path):
    names = topics(namespace)
    w = Worker(broker, namespace, tmp_path, "--manual-ticks", module="tests.integration.poison_worker")
    now = datetime.now(timezone.utc)
    poison = {"id": "poison-1", "type": "ticket.acknowledged", "time": now.isoformat(), "ticket": "INC-P"}
    future = {"id": "future-1", "type": "ticket.opened", "time": (now + timedelta(hours=1)).isoformat(),
              "ticket": "INC-F", "agreement": "acme-erp", "service": "erp-prod", "priority": "P1"}
    try:
        w.wait_ready()
        produce(broker, names["tickets"], [
            _opened("INC-P", now), (b"INC-P", json.dumps(poison).encode()), (b"INC-F", json.dumps(future).encode()),
            _opened("INC-OK", now), (b"INC-OK", json.dumps({"id": "ack-ok", "type": "ticket.acknowledged",
                                                              "time": now.isoformat(), "ticket": "INC-OK"}).encode()),
        ])
        dead = collect(broker, [names["deadletter"]], until=lambda got: len(got) >= 2, timeout=30, quiet=1.0)
        met = collect(broker, [names["timeline"]], timeout=30, quiet=0,
                      until=lambda got: any(o["type"] == "sla.met" and o["subject"] == "INC-OK" for _, _, o in got))
        committed, ends = _wait_committed(broker, namespace.app_id, names["tickets"], timeout=30)
        assert w.proc.poll() is None, f"the worker died; see {w.log_path}"
    finally:
        w.stop()
    reasons = {json.loads(rec["value"])["id"]: rec["reason"] for _, _, rec in dead}
    assert reasons["poison-1"].startswith("internal error: ZeroDivisionError: injected fault"), reasons
    assert reasons["future-1"].startswith("from the future"), reasons
    assert len(dead) == 2, dead
    assert any(o["subject"] == "INC-OK" for _, _, o in met), "the partition stopped after the poison record"
    assert committed == ends, f"offsets not committed past the poison record: {committed} vs {ends}"
    log = w.log_path.read_text()
    assert log.count("Traceback") == 1 and "internal error in the inputs agent" in log  # the first one, logged once
