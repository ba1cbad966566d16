"""Ticks: how wall-clock time enters the live engine (DESIGN.md §6). The only wall-clock read
(``CatchUp`` reads a monotonic clock for how long a partition has been held, never an instant).

Every ``tick_interval`` seconds each worker produces one tick per partition of ``<app_id>-ticks``
that it currently owns (so N workers never tick a partition twice, and after a rebalance or a
kill the new owner ticks), value ``{"tick": <now − tick_grace, RFC 3339 UTC>}``, and one more as
soon as the tick instant reaches the earliest deadline or period close that partition's state
has due (:class:`TickSchedule`, looked at every ``BEAT``): deadline latency is then the grace plus
the pipeline, not also up to a whole interval. The tickets agent consumes ticks in the same stream
as ticket events; a tick at T fires every deadline due ≤ T.

A partition gets no tick while its input is behind (``await caught_up(p)`` None: its tickets or
metrics partition holds records on the broker that are not applied yet, as after a restart or
while the consumer has stalled on it): those records move its clock first, so none of them is made
late by a tick that overtook it in the merged stream (a deadline its acknowledgement would have
stopped must not fire first). Under steady load the events' own times move the clock meanwhile.
A tick also carries offsets of its tickets and metrics partitions (``"after": {topic: offset}``,
what ``caught_up`` returns: those applied when it was made, or the log ends when that input had
stalled; the hold/stall/catch-up rules live in :class:`~escalation.live.catch_up.CatchUp`): the
inputs agent applies every record below them before the tick, also when a restarted worker is
delivered an old tick before the records the killed one had applied before making it
(:class:`~escalation.live.offsets.InputGuard` reads back what was not delivered).

Tests run the engine with ``manual_ticks`` and move time with :func:`send_tick`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import orjson

__all__ = ["BEAT", "TickSchedule", "install_ticker", "tick_value", "send_tick", "wall_instant"]

log = logging.getLogger(__name__)


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


#: how often (s) the ticker looks at the partitions it owns: a partition with something due is
#: ticked at the first beat after its due instant + grace (plus at most this), not up to a whole
#: ``tick_interval`` later
BEAT = 0.05


class TickSchedule:
    """Which owned partition gets a tick at this beat. Pure: times come in as arguments.

    Invariants:
    - every partition is ticked about every ``interval`` seconds (the heartbeat that moves time
      for everything, DESIGN.md §6: ticks are the only way wall-clock time enters);
    - a partition is also ticked as soon as the tick instant (wall − grace) reaches the earliest
      instant it has something due at (``next_due``), so a deadline waits for its grace and one
      beat, not for the next heartbeat; at most once per due instant (a tick already made at or
      after it fires it when it is applied) and never sooner than ``min_gap`` after the
      partition's previous tick (each tick is a record and a step per partition);
    - a held attempt (its input is not caught up, ``CatchUp``) counts as a tick for the timing,
      and the partition waits for its next heartbeat, early or not: a held partition does not
      ask the broker for its position at every beat.
    """

    def __init__(self, interval: float, min_gap: float = BEAT) -> None:
        self.interval, self.min_gap = interval, min_gap
        self._last: dict[int, float] = {}          # p -> monotonic time of its last tick or held attempt
        self._covered: dict[int, datetime] = {}    # p -> instant of its last tick
        self._held: set[int] = set()               # held at its last attempt

    def wants(self, p: int, now: float, instant: datetime, next_due: datetime | None) -> bool:
        """Whether to tick ``p`` at monotonic time ``now`` with tick instant ``instant``."""
        last = self._last.get(p)
        if last is None or now - last >= self.interval:
            return True
        if p in self._held or next_due is None or next_due > instant or now - last < self.min_gap:
            return False
        covered = self._covered.get(p)
        return covered is None or next_due > covered

    def ticked(self, p: int, now: float, instant: datetime) -> None:
        self._last[p], self._covered[p] = now, instant
        self._held.discard(p)

    def held(self, p: int, now: float) -> None:
        self._last[p] = now
        self._held.add(p)


def install_ticker(app: Any, ticks_topic: Any, settings: Any,
                   caught_up: Callable[[int], Awaitable[dict[str, int] | None]] | None = None,
                   next_due: Callable[[int], datetime | None] | None = None) -> None:
    """Add the ticker task to ``app``; it ticks the partitions of ``ticks_topic`` this worker owns
    whose input is caught up (``caught_up(p)``: the tick's ``after`` offsets, None to hold it),
    when :class:`TickSchedule` says so (``next_due(p)``: the earliest instant partition ``p`` has
    something due at, None when nothing or not known)."""
    name = ticks_topic.get_topic_name()
    grace = settings.tick_grace
    beat = min(BEAT, settings.tick_interval)
    schedule = TickSchedule(settings.tick_interval, beat)

    async def _beat() -> None:
        try:
            owned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == name)
        except Exception:  # noqa: BLE001 - consumer not started / rebalancing: skip this beat
            return
        instant, now = wall_instant(grace), time.monotonic()
        for partition in owned:
            if not schedule.wants(partition, now, instant, None if next_due is None else next_due(partition)):
                continue
            after = {} if caught_up is None else await caught_up(partition)
            if after is None:
                schedule.held(partition, now)
                continue
            await ticks_topic.send(key=None, value=tick_value(instant, after), partition=partition)
            schedule.ticked(partition, now, instant)

    # A plain loop, not ``app.timer``: mode's timer warns whenever a run outlasts its interval,
    # which a beat this short does whenever the broker is slow to answer.
    @app.task
    async def _ticker() -> None:
        failing = False  # log the first failed beat of a run of them, not one line per beat
        while not app.should_stop:
            await app.sleep(beat)
            try:
                await _beat()
            except Exception:  # noqa: BLE001 - a failed beat (broker away, rebalance): the next one tries again
                if not failing:
                    log.warning("ticker: a beat failed; ticking goes on", exc_info=True)
                failing = True
            else:
                failing = False


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
