"""``escalation run --demo``: the bundled example events re-timed to now, outputs printed.

Event i is stamped ``now + (t_i − t_0) / speed`` and produced when that instant arrives (never
future-dated), so with the default ``--speed 60`` the three-hour example plays in about three
minutes. The agreements' durations (targets, ``after_breach``, repeat intervals) are compressed by
the same factor (``compress_registry``), so a 15-minute response target becomes 15 seconds and the
warnings, breaches and escalations of the example show up live within seconds. Calendars are not
compressed (business hours stay hours of the day).
A printer consumes the output topics (and the dead-letter topic) and prints one line per record.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from escalation.agreement.durations import BusinessDays, parse_duration
from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry
from escalation.live.demo_hook import say
from escalation.paths import EXAMPLE_EVENTS

__all__ = ["compress_registry", "install_demo", "retime", "still_valid"]


def _compressed(text: str, speed: float) -> str:
    value = parse_duration(text)
    if isinstance(value, BusinessDays):
        return f"{float(value.days) / speed:.6f}bd"
    return f"{value.total_seconds() / speed:.3f}".rstrip("0").rstrip(".") + "s"


def compress_registry(registry: Registry, speed: float) -> Registry:
    """The same agreements with every duration divided by ``speed`` (demo only)."""
    compressed = []
    for c in registry:
        data = c.agreement.model_dump(mode="json", exclude_none=True)
        for target in data.get("targets", []):
            target["within"] = _compressed(target["within"], speed)
        for policy in data.get("escalation", []):
            for level in policy["levels"]:
                if "after_breach" in level["at"]:
                    level["at"]["after_breach"] = _compressed(level["at"]["after_breach"], speed)
                if "repeat" in level:
                    level["repeat"]["every"] = _compressed(level["repeat"]["every"], speed)
        compressed.append(Agreement.model_validate(data))
    return Registry(compressed)


def still_valid(registry: Registry, today: date) -> Registry:
    """The same agreements, each still valid ``today`` (demo only).

    Why: the demo re-times the bundled 2026 events to now, but the bundled agreement's validity
    ends on 2026-12-31; after that every re-timed ticket would be rejected as outside any valid
    revision. An agreement whose validity ended before ``today`` gets an open end; one not yet
    started is left alone (its start is a decision of its author, not a matter of the demo's clock).
    """
    out = []
    for c in registry:
        validity = c.agreement.validity
        if validity is not None and validity.end is not None and validity.end < today:
            out.append(c.agreement.model_copy(update={"validity": validity.model_copy(update={"end": None})}))
        else:
            out.append(c.agreement)
    return Registry(out)


def retime(lines: list[bytes], now: datetime, speed: float = 1.0) -> list[tuple[datetime, dict]]:
    """Parse JSONL events and shift/compress their times to start at ``now``; unparsable lines kept as-is."""
    events: list[tuple[datetime | None, Any]] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            ev = orjson.loads(line)
            t = datetime.fromisoformat(str(ev["time"]).replace("Z", "+00:00"))
        except Exception:  # noqa: BLE001 - bad lines are fed as they are (they show the dead-letter path)
            events.append((None, line))
            continue
        events.append((t, ev))
    times = [t for t, _ in events if t is not None and t.tzinfo is not None]
    if not times:
        return [(now, ev) for _, ev in events]
    t0 = times[0]
    out = []
    last = now
    for t, ev in events:
        if t is None or t.tzinfo is None or not isinstance(ev, dict):
            out.append((last, ev))
            continue
        at = now + (t - t0) / speed
        ev = {**ev, "time": at.astimezone(timezone.utc).isoformat()}
        out.append((at, ev))
        last = at
    return out


def install_demo(app: Any, bootstrap: str, names: Any, speed: float, partitions: int,
                 events_path: Path = EXAMPLE_EVENTS) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    watched = [names.notifications, names.remedies, names.timeline, names.deadletter]

    @app.task
    async def _demo() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await consumer.start()
        await producer.start()
        try:
            tps = [TopicPartition(t, p) for t in watched for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            printer = asyncio.ensure_future(_print(consumer))
            start = datetime.now(timezone.utc)
            for at, ev in retime(events_path.read_bytes().splitlines(), start, speed):
                delay = (at - datetime.now(timezone.utc)).total_seconds()
                if delay > 0:
                    await asyncio.sleep(delay)
                if isinstance(ev, dict):
                    key = str(ev.get("ticket") or ev.get("service") or "").encode() or None
                    value = orjson.dumps(ev)
                    say(f"  in   {ev.get('time', '')[:19]}Z  {ev.get('type', ''):<23} {ev.get('ticket', '')}", sys.stderr)
                else:
                    key, value = None, ev if isinstance(ev, bytes) else str(ev).encode()
                await producer.send_and_wait(names.tickets, value, key=key)
            await printer
        finally:
            if "printer" in locals():
                printer.cancel()
            await producer.stop()
            await consumer.stop()


async def _print(consumer: Any) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=500)
        for tp, records in batches.items():
            for r in records:
                try:
                    out = orjson.loads(r.value)
                except Exception:  # noqa: BLE001
                    continue
                if tp.topic.endswith("deadletter"):
                    say(f"  dead letter: {out.get('reason')}")
                    continue
                data = out.get("data", {})
                say(f"  out  {out.get('time', '')[:19]}Z  {out.get('type', ''):<23} {out.get('subject', ''):<8} "
                    f"{data.get('summary', '')}")
