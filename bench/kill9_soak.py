"""kill -9 soak on a real broker (issue #15): tickets produced in real time, the worker killed mid-stream
and restarted 2 s later while production goes on, then every input id looked up in the incidents
changelog and the group's committed offsets compared with the log end.

    python -m escalation.live.broker start --pidfile /tmp/b.pid --portfile /tmp/b.port
    python bench/kill9_soak.py --broker 127.0.0.1:$(cat /tmp/b.port) --kill-at 22 --seed 2
    python -m escalation.live.broker stop --pidfile /tmp/b.pid

Prints ``missing N`` (input ids that never reached the state) and the committed offsets against
the log end per tickets partition. Uses the bundled reference agreement and the worker's own ticker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from escalation.core.events import id_hash
from escalation.live.readback import state_input_ids

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT = ROOT / "examples" / "agreements" / "acme-erp.yaml"
PARTITIONS = 4


def schedule(seed: int, tickets: int, duration: float) -> list[tuple[float, dict]]:
    rnd = random.Random(seed)
    events = []
    for i in range(tickets):
        at, ticket = rnd.uniform(0, duration - 8), f"T{i}"
        events.append((at, {"id": f"{ticket}-o", "type": "ticket.opened", "ticket": ticket, "agreement": "acme-erp",
                            "service": "erp-prod", "priority": rnd.choice(["P1", "P2", "P3"])}))
        acked = at + rnd.uniform(0.5, 4)
        events.append((acked, {"id": f"{ticket}-a", "type": "ticket.acknowledged", "ticket": ticket}))
        events.append((acked + rnd.uniform(0.5, 4), {"id": f"{ticket}-r", "type": "ticket.resolved", "ticket": ticket}))
    return sorted(events, key=lambda e: e[0])


class Run:
    def __init__(self, broker: str, workdir: Path) -> None:
        tag = uuid.uuid4().hex[:8]
        self.broker, self.workdir = broker, workdir
        self.prefix, self.app_id = f"soak-{tag}.", f"soak-{tag}"

    def worker(self, name: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        return subprocess.Popen(
            [sys.executable, "-m", "escalation.cli", "run", "--broker", f"kafka://{self.broker}", "--app-id", self.app_id,
             "--topic-prefix", self.prefix, "--agreements", str(AGREEMENT), "--partitions", str(PARTITIONS),
             "--profile", "test", "--metrics-port", "0"],
            stdout=subprocess.DEVNULL, stderr=log, cwd=self.workdir, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while b"escalation: ready" not in (self.workdir / f"{name}.log").read_bytes():
            if time.time() > deadline:
                raise SystemExit(f"{name} not ready; see {self.workdir}")
            time.sleep(0.1)

    async def produce(self, events, kill_at: float, restart_after: float) -> subprocess.Popen:
        first = self.worker("w1")
        self.wait_ready("w1")
        producer = AIOKafkaProducer(bootstrap_servers=self.broker)
        await producer.start()
        start, killed, second = time.monotonic(), None, None
        try:
            for at, event in events:
                await asyncio.sleep(max(0.0, start + at - time.monotonic()))
                now = time.monotonic()
                if killed is None and now - start >= kill_at:
                    os.killpg(first.pid, signal.SIGKILL)
                    first.wait()
                    killed = now
                    print(f"killed at +{now - start:.1f}s", flush=True)
                if killed is not None and second is None and now - killed >= restart_after:
                    second = self.worker("w2")
                line = json.dumps({**event, "time": datetime.now(timezone.utc).isoformat()}).encode()
                await producer.send_and_wait(f"{self.prefix}tickets", line, key=event["ticket"].encode())
        finally:
            await producer.stop()
        return second or self.worker("w2")

    async def state_ids(self) -> set[int]:  # digests of the input ids (events.id_hash)
        return await state_input_ids(self.broker, self.app_id)

    async def committed(self) -> tuple[dict, dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.broker, group_id=self.app_id, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(f"{self.prefix}tickets", p) for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(tps)
            return ({tp.partition: await consumer.committed(tp) for tp in tps},
                    {tp.partition: end for tp, end in ends.items()})
        finally:
            await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", required=True, help="host:port of a running broker")
    parser.add_argument("--kill-at", type=float, default=22.0, help="seconds after the first event")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--duration", type=float, default=40.0)
    args = parser.parse_args()
    run = Run(args.broker, Path(tempfile.mkdtemp(prefix="kill9-soak-")))
    events = schedule(args.seed, args.tickets, args.duration)
    second = asyncio.run(run.produce(events, args.kill_at, 2.0))
    try:
        run.wait_ready("w2")
        deadline, missing = time.time() + 60, set()
        while time.time() < deadline:
            committed, ends = asyncio.run(run.committed())
            held = asyncio.run(run.state_ids())
            missing = {e["id"] for _, e in events if id_hash(e["id"]) not in held}
            if committed == ends and not missing:
                break
            time.sleep(2)
        print(f"missing {len(missing)} {sorted(missing)[:20]}")
        print(f"committed {committed} ends {ends}")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(20)
    print(f"logs in {run.workdir}")


if __name__ == "__main__":
    main()
