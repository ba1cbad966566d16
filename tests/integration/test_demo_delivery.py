"""The README's first command, delivering: `escalation run --demo --deliver` from an empty
directory (no broker configured: the embedded Tansu broker, no agreements: the bundled example).

The demo's own webhook receiver (escalation/live/demo_hook.py) checks each X-Escalation-Signature
with its own HMAC code and prints one line per request; this test reads those lines and the
`deliveries` topic of the run's broker (found through .escalation/broker, as `tail` finds it):
INC-1's response alert is triggered, acknowledged and resolved at the webhook, in that order,
each signed, and no output reaches it twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.servers import stop_group

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DK = "acme-erp/INC-1/response"
LIFECYCLE = ["escalation.triggered", "escalation.acknowledged", "escalation.resolved"]


def _wait(predicate, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.time() + timeout
    while not (result := predicate()):
        assert proc.poll() is None, log.read_text()
        assert time.time() < deadline, "timed out:\n" + log.read_text()[-3000:]
        time.sleep(0.3)
    return result


async def _deliveries(bootstrap: str) -> list[dict]:
    """Every record of the run's `deliveries` topic (default prefix), read to each partition's end."""
    topic = "escalation.deliveries"
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        await c.topics()                                  # fetches the metadata partitions_for_topic reads
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
        c.assign(tps)
        ends = await c.end_offsets(tps)
        for tp, first in (await c.beginning_offsets(tps)).items():
            c.seek(tp, first)
        got = []
        while any([await c.position(tp) < ends[tp] for tp in tps]):
            for msgs in (await c.getmany(timeout_ms=200)).values():
                got += [json.loads(m.value) for m in msgs]
        return got
    finally:
        await c.stop()


def test_the_demo_delivers_trigger_acknowledge_resolve_signed_to_its_local_webhook_once_each(tmp_path):
    out, err = tmp_path / "demo.stdout", tmp_path / "demo.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCALATION_")}   # nothing configured
    proc = subprocess.Popen(
        [sys.executable, "-m", "escalation.cli", "run", "--demo", "--deliver", "--metrics-port", "0",
         "--log-format", "text"],
        stdout=open(out, "wb"), stderr=open(err, "wb"), cwd=tmp_path, start_new_session=True,
        env={**env, "PYTHONPATH": str(ROOT)})
    try:
        def resolved():
            return "webhook <- escalation.resolved INC-1" in out.read_text()

        _wait(resolved, 120, proc, err)
        bootstrap = (tmp_path / ".escalation" / "broker").read_text().strip()
        records = asyncio.run(_deliveries(bootstrap))
    finally:
        stop_group(proc, 20)
    lines = [line.strip() for line in out.read_text().splitlines() if line.strip().startswith("webhook")]
    mine = [line for line in lines if f"(dedup {DK})" in line]
    assert [line.split()[2] for line in mine] == LIFECYCLE, lines
    assert all(line.endswith("signature ok") for line in mine), lines
    assert not [line for line in lines if "AGAIN" in line or "refused" in line], lines
    assert re.search(r"webhook <- escalation.acknowledged INC-1 by alice at level 1 ", mine[1])
    # the delivery log agrees: one succeeded record per (output, target), only the demo's webhook
    assert records and {r["type"] for r in records} == {"delivery.succeeded"}
    assert len({r["key"] for r in records}) == len(records) and {r["target"] for r in records} == {"demo-webhook"}
    # (log records of one dedup_key sit on different partitions: their order is the webhook's, above)
    assert sorted(r["output_type"] for r in records if r["dedup_key"] == DK) == sorted(LIFECYCLE)
    assert b"embedded broker stopped" in err.read_bytes() and not (tmp_path / ".escalation" / "broker").exists()
