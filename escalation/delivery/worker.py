"""``escalation deliver``: consume ``notifications``, deliver each output to its recipients.

Why a plain aiokafka consumer group rather than a Faust agent: delivery needs per-record control
that Faust's agents hide: many records in flight at once (retries of one target must not stall the
others), commits of exactly the offsets whose delivery records are written (Faust acknowledges a
record when the agent moves past it), and pausing the consumer while too much is in flight. It
needs no tables, no co-partitioning and no repartitioning, which is what Faust is for.

Invariants (DESIGN.md §12):
- a (output id, target name) already in the delivery log is never sent again;
- a record's input offset is committed only after every delivery of it has its record in the
  ``deliveries`` topic (:class:`~escalation.delivery.offsets.OffsetTracker`): a crash re-reads it,
  and the log absorbs what was finished;
- jobs of one (agreement, target, dedup_key) run in order (:class:`~escalation.delivery.lanes.Lanes`);
- over a target's rate limit a job waits (:mod:`escalation.delivery.ratelimit`), never dropped;
- on a rebalance, the jobs of revoked partitions are cancelled (their records were not written, so
  the new owner delivers them) and the log is caught up before new partitions are consumed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from escalation.delivery import metrics
from escalation.delivery.lanes import Lanes
from escalation.delivery.log import (
    DeliveryLog,
    Result,
    delivery_record,
    encode,
    latency,
    log_key,
)
from escalation.delivery.logreader import LogReader
from escalation.delivery.offsets import OffsetTracker
from escalation.delivery.plan import Endpoints, NotDeliverable, plan
from escalation.delivery.ratelimit import Limits
from escalation.delivery.requests import MissingSecret
from escalation.delivery.resend import Resender
from escalation.delivery.retry import RetryPolicy
from escalation.delivery.targets import Job, resolve
from escalation.delivery.transport import Transport
from escalation.live.logs import say

log = logging.getLogger("escalation.delivery")


@dataclass(frozen=True)
class DeliverConfig:
    bootstrap: str
    notifications: str                  # full topic names
    deliveries: str
    group: str                          # consumer group of the deliverers
    client_kwargs: dict = field(default_factory=dict)
    session_timeout: float = 10.0
    heartbeat: float = 3.0
    max_batch_size: int = 16384
    policy: RetryPolicy = RetryPolicy()
    limits: dict = field(default_factory=dict)
    endpoints: Endpoints = Endpoints()
    smtp_url: str | None = None
    http_timeout: float = 10.0
    max_in_flight: int = 10_000
    # Deliver to these target names only (None: every target). The demo of `escalation run` sets
    # its local webhook here, so the bundled agreement's e-mail and Kafka targets stay untouched.
    only: frozenset[str] | None = None


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, deliverer: "Deliverer", consumer) -> None:
        self.deliverer, self.consumer = deliverer, consumer

    async def on_partitions_revoked(self, revoked) -> None:
        await self.deliverer.revoke(self.consumer, list(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        await self.deliverer.reader.catch_up()
        say(f"deliver ready: {len(assigned)} partitions of {self.deliverer.config.notifications}",
            partitions_assigned=len(assigned))


class Deliverer:
    def __init__(self, config: DeliverConfig, registry, env=None, rng: random.Random | None = None) -> None:
        self.config, self.registry = config, registry
        self.env = os.environ if env is None else env
        self.log, self.lanes, self.tracker = DeliveryLog(), Lanes(), OffsetTracker()
        self.limits = Limits(config.limits)
        self.rng = rng or random.Random()
        self.reader = LogReader(config.bootstrap, config.deliveries, self.log, config.client_kwargs)
        self._tasks_by_tp: dict = {}
        self.transport: Transport | None = None
        self.producer: AIOKafkaProducer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then finish what is in flight (a few seconds at most)."""
        c = self.config
        self.producer = AIOKafkaProducer(bootstrap_servers=c.bootstrap, max_batch_size=c.max_batch_size,
                                         linger_ms=0, **c.client_kwargs)
        await self.producer.start()
        await self.reader.start()
        try:
            async with aiohttp.ClientSession() as session:
                self.transport = Transport(session, self.producer, c.smtp_url, c.http_timeout)
                await self.reader.catch_up()
                say(f"deliver: log {c.deliveries} read ({self.reader.applied} records)")
                await self._consume(stop)
        finally:
            await self.reader.stop()
            await self.producer.stop()

    def _consumer(self) -> AIOKafkaConsumer:
        c = self.config
        return AIOKafkaConsumer(bootstrap_servers=c.bootstrap, group_id=c.group, enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=int(c.session_timeout * 1000),
                                heartbeat_interval_ms=int(c.heartbeat * 1000), **c.client_kwargs)

    async def _consume(self, stop: asyncio.Event) -> None:
        consumer = self._consumer()
        await consumer.start()
        consumer.subscribe([self.config.notifications], listener=_Rebalance(self, consumer))
        resender = asyncio.create_task(Resender(self).run())
        try:
            while not stop.is_set():
                self._flow(consumer)
                batches = await consumer.getmany(timeout_ms=100, max_records=500)
                for tp, msgs in batches.items():
                    for msg in msgs:
                        self._take(tp, msg)
                await self._commit(consumer)
            await asyncio.wait_for(asyncio.shield(self._drain()), 5.0)
        except asyncio.TimeoutError:
            pass
        finally:
            resender.cancel()
            await self.lanes.cancel()
            await self._commit(consumer)
            await consumer.stop()

    async def _drain(self) -> None:
        while self.lanes.pending():
            await asyncio.sleep(0.05)

    def _flow(self, consumer) -> None:
        """Pause fetching while too many records are in flight (memory stays bounded)."""
        if self.tracker.in_flight() >= self.config.max_in_flight:
            consumer.pause(*consumer.assignment())
        else:
            consumer.resume(*consumer.assignment())

    def _take(self, tp, msg) -> None:
        """Start a job per recipient target not yet in the log; track the record's offset."""
        jobs = []
        try:
            output = orjson.loads(msg.value)
            names = dict.fromkeys(r.get("name") for r in output["data"].get("recipients") or [])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            log.warning("notifications %s@%s: not an output record, skipped", tp, msg.offset)
            names, output = {}, None
        for name in names:
            job = None if self._excluded(name) else resolve(self.registry, output, msg.key, name, self.env)
            if job is None:
                metrics.finished("none", "skipped")
            elif log_key(output["id"], name) in self.log:
                metrics.finished(job.kind, "duplicate")
            else:
                jobs.append(job)
        self.tracker.add(tp, msg.offset, len(jobs))
        for job in jobs:
            task = self.lanes.submit(job.lane, job.name, lambda j=job: self._deliver(j, tp, msg.offset))
            self._tasks_by_tp.setdefault(tp, set()).add(task)
            task.add_done_callback(self._tasks_by_tp[tp].discard)

    def _excluded(self, name) -> bool:
        """A recipient outside ``config.only``: skipped like a name that is no target."""
        return self.config.only is not None and name not in self.config.only

    async def _deliver(self, job: Job, tp, offset: int) -> None:
        """Send (with retries), write the record, then let the offset go. The log is asked again
        here: a repeated output record (an engine's redelivery) may have been taken while its
        first copy was still in flight; both wait in the same lane, so by now the first is logged."""
        if log_key(job.output["id"], job.name) in self.log:
            metrics.finished(job.kind, "duplicate")
            self.tracker.done(tp, offset)
            return
        try:
            result = await self._attempt_all(job)
        except (MissingSecret, NotDeliverable) as err:
            result = Result(False, 0, None, str(err), datetime.now(timezone.utc))
        except Exception as err:  # noqa: BLE001 - one output never stops delivery (DESIGN.md §10)
            log.exception("delivery of %s to %s failed unexpectedly", job.output["id"], job.name)
            result = Result(False, 0, None, f"internal error: {type(err).__name__}", datetime.now(timezone.utc))
        if result is not None:
            record = delivery_record(job.output, job.agreement, job.name, job.kind, result)
            await self._write(record)
            self.log.apply(record)
            metrics.finished(job.kind, "succeeded" if result.ok else "failed")
            if result.ok:
                metrics.accepted(job.kind, latency(job.output, result.accepted_at))
        else:
            metrics.finished(job.kind, "skipped")
        self.tracker.done(tp, offset)

    async def _attempt_all(self, job: Job) -> Result | None:
        """None: nothing to send for this output at this target (e.g. an info-only type)."""
        p = plan(job.output, job.key, job.name, job.target, self.env, self.config.endpoints,
                 self.log.open_alerts(job.agreement, job.name, job.dedup_key))
        if not p.requests:
            return None
        loop, attempts = asyncio.get_running_loop(), 0
        started, outcome = loop.time(), None
        bucket = self.limits.bucket(job.kind, job.limit_identity)
        for request in p.requests:
            while True:
                if bucket is not None:
                    await bucket.acquire()
                attempts += 1
                outcome = await self.transport.send(request)
                metrics.attempt(job.kind, outcome.status)
                wait = self.config.policy.next_wait(outcome, attempts, loop.time() - started, self.rng)
                if wait is None:
                    break
                await asyncio.sleep(wait)
            if not outcome.ok:
                break
        return Result(outcome.ok, attempts, outcome.status, outcome.error, datetime.now(timezone.utc),
                      p.alerts if outcome.ok else None)

    async def _write(self, record: dict) -> None:
        """Write a delivery record; retried until it is stored (the offset waits for it)."""
        key, value = encode(record)
        wait = 0.5
        while True:
            try:
                await self.producer.send_and_wait(self.config.deliveries, value, key=key)
                return
            except KafkaError as err:
                log.warning("deliveries: write failed (%s), retrying in %.1fs", type(err).__name__, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 30.0)

    async def _commit(self, consumer) -> None:
        offsets = self.tracker.committable()
        if not offsets:
            return
        try:
            await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        except KafkaError as err:   # e.g. during a rebalance: the next commit covers it
            log.warning("commit failed (%s); retried with the next batch", type(err).__name__)
            return
        self.tracker.committed(offsets)

    async def revoke(self, consumer, revoked) -> None:
        """Partitions leave: commit what is written, cancel their unfinished jobs, forget them."""
        await self._commit(consumer)
        tasks = set().union(*(self._tasks_by_tp.pop(tp, set()) for tp in revoked)) if revoked else set()
        await self.lanes.cancel(tasks)
        self.tracker.forget(revoked)
