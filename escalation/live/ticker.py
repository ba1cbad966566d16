"""Ticks: how wall-clock time enters the live engine (DESIGN.md §6). The only wall-clock read
(``CatchUp`` reads a monotonic clock for how long a partition has been held, never an instant).

Every ``tick_interval`` seconds each worker produces one tick per partition of ``<app_id>-ticks``
that it currently owns (so N workers never tick a partition twice, and after a rebalance or a
kill the new owner ticks), value ``{"tick": <now − tick_grace, RFC 3339 UTC>}``. The tickets agent
consumes ticks in the same stream as ticket events; a tick at T fires every deadline due ≤ T.

A partition gets no tick while its input is behind (``await caught_up(p)`` None: its tickets or
metrics partition holds records on the broker that are not applied yet, as after a restart or
while the consumer has stalled on it): those records move its clock first, so none of them is made
late by a tick that overtook it in the merged stream (a deadline its acknowledgement would have
stopped must not fire first). Under steady load the events' own times move the clock meanwhile.
A tick also carries offsets of its tickets and metrics partitions (``"after": {topic: offset}``,
what ``caught_up`` returns: those applied when it was made, or the log ends when that input had
stalled; the hold/stall/catch-up rules live in :class:`~escalation.live.catch_up.CatchUp`): the inputs agent applies every record below them before the tick, also when a restarted
worker is delivered an old tick before the records the killed one had applied before making it
(:class:`~escalation.live.offsets.InputGuard` reads back what was not delivered).

Tests run the engine with ``manual_ticks`` and move time with :func:`send_tick`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import orjson

__all__ = ["install_ticker", "tick_value", "send_tick", "wall_instant"]


def wall_instant(grace: float) -> datetime:
    """The instant a tick carries now: wall clock minus ``grace`` seconds (UTC)."""
    return datetime.now(timezone.utc) - timedelta(seconds=grace)


def tick_value(instant: datetime, after: dict[str, int] | None = None) -> bytes:
    """A tick record; ``after``: the input offsets (``{topic: next offset}``) applied before it."""
    if instant.tzinfo is None:
        raise ValueError("tick instants need an offset")
    value: dict[str, Any] = {"tick": instant.astimezone(timezone.utc).isoformat()}
    if after:
        value["after"] = after
    return orjson.dumps(value)


def install_ticker(app: Any, ticks_topic: Any, settings: Any,
                   caught_up: Callable[[int], Awaitable[dict[str, int] | None]] | None = None) -> None:
    """Add the ticker timer to ``app``; it ticks the partitions of ``ticks_topic`` this worker owns
    whose input is caught up (``caught_up(p)``: the tick's ``after`` offsets, None to hold it)."""
    name = ticks_topic.get_topic_name()
    grace = settings.tick_grace

    @app.timer(settings.tick_interval, name="escalation-ticker")
    async def _tick() -> None:
        try:
            owned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == name)
        except Exception:  # noqa: BLE001 - consumer not started / rebalancing: skip this beat
            return
        if not owned:
            return
        instant = wall_instant(grace)
        for partition in owned:
            after = {} if caught_up is None else await caught_up(partition)
            if after is not None:
                await ticks_topic.send(key=None, value=tick_value(instant, after), partition=partition)


async def send_tick(bootstrap: str, topic: str, instant: datetime, partitions: list[int] | int,
                    **client_kwargs: Any) -> None:
    """Produce a tick at ``instant`` to the given partition(s) (a count means all of 0..n-1)."""
    from aiokafka import AIOKafkaProducer

    parts = list(range(partitions)) if isinstance(partitions, int) else partitions
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_kwargs)
    await producer.start()
    try:
        for p in parts:
            await producer.send_and_wait(topic, tick_value(instant), partition=p)
    finally:
        await producer.stop()
