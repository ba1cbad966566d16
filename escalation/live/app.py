"""The live engine: one Faust app wiring topics, tables, agents and the ticker (DESIGN.md §2, §6, §9).

``build_app(settings, registry)`` is the only place the shell is wired. What runs:

- **tickets agent** on ``<prefix>tickets`` + ``<app_id>-ticks`` as ONE stream, so a tick travels the
  same ordered, committed path as the events of its partition. Per partition it keeps a due index
  (heap of ``(due, ticket)``) rebuilt lazily from the ``incidents`` table after every rebalance, so
  a tick costs O(deadlines due), not O(open incidents).
- **remedies agent** on the internal ``<app_id>-penalties`` topic keyed by agreement id: it owns the
  ``ledgers`` table (one :class:`~escalation.core.ledger.Ledger` per agreement) and turns the core's
  ``PenaltyDue`` records into ``penalty.assessed`` with the period caps applied.
- **ticker** (:mod:`escalation.live.ticker`) unless ``manual_ticks``.

Time semantics (mirror of ``Processor`` / ``escalation replay``):

- an event at time t first fires the partition's deadlines due strictly before t, then is applied
  (an event at T comes before a deadline at exactly T);
- a tick at instant T fires every deadline due at or before T (``advance_to(T, inclusive=True)``);
  the ticker stamps ticks with wall clock − ``tick_grace``, so a deadline D fires once the wall
  clock passes D + grace (within one ``tick_interval``);
- tickets and ticks are two topics merged into one stream: Kafka orders records per topic
  partition only, so an event may be consumed after a tick with a later instant. It is then
  applied late (its own time counts for the clocks) and outputs already emitted stay (§6); the
  grace exists to make this rare. Output ids are deterministic, so redelivery never pages twice.

Records: incident table value = ``{"p": partition, "incident": Incident.to_dict()}`` (the partition
lets the index rebuild skip standby copies and other partitions); ledger table value =
``{"ledger": Ledger.to_dict(), "done": {output id: penalty.assessed}}`` (``done`` makes a
redelivered ``PenaltyDue`` re-emit the same output instead of charging the budget twice).
"""

from __future__ import annotations

import base64
import heapq
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust
import orjson

from escalation.core.events import MetricObserved, Rejected, TicketOpened, decode_event
from escalation.core.incident import PenaltyDue, advance, apply_event, next_due, open_incident
from escalation.core.ledger import Ledger, assess_penalty
from escalation.core.outputs import REMEDIES, topic_for
from escalation.core.registry import Registry
from escalation.core.state import Incident
from escalation.live.settings import LiveSettings

__all__ = ["TopicNames", "TicketEngine", "build_app", "deadletter_record"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicNames:
    """Full topic names: ``<prefix><name>`` for the contract topics, ``<app_id>-<name>`` internal."""

    tickets: str
    metrics: str
    notifications: str
    remedies: str
    timeline: str
    deadletter: str
    ticks: str
    penalties: str

    @classmethod
    def of(cls, settings: LiveSettings) -> "TopicNames":
        p, a = settings.topic_prefix, settings.app_id
        return cls(f"{p}tickets", f"{p}metrics", f"{p}notifications", f"{p}remedies", f"{p}timeline",
                   f"{p}deadletter", f"{a}-ticks", f"{a}-penalties")

    def outputs(self) -> list[str]:
        return [self.notifications, self.remedies, self.timeline]


def deadletter_record(reason: str, value: bytes | None, key: bytes | None, topic: str, partition: int,
                      offset: int) -> dict:
    """The dead-letter value: reason, where the record was, and its bytes (utf-8 text or base64)."""
    rec: dict[str, Any] = {"reason": reason, "topic": topic, "partition": partition, "offset": offset}
    for name, raw in (("key", key), ("value", value)):
        if raw is None:
            rec[name] = None
            continue
        try:
            rec[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            rec[name] = base64.b64encode(raw).decode()
            rec[f"{name}_encoding"] = "base64"
    return rec


def _penalty_to_dict(due: PenaltyDue) -> dict:
    return {"source": due.source, "agreement": due.agreement, "revision": due.revision, "remedy": due.remedy,
            "ticket": due.ticket, "clock": due.clock, "cycle": due.cycle, "priority": due.priority,
            "at": due.at.isoformat(), "amount": str(due.amount)}


def _penalty_from_dict(d: dict) -> PenaltyDue:
    return PenaltyDue(d["source"], d["agreement"], d["revision"], d["remedy"], d["ticket"], d["clock"], d["cycle"],
                      d["priority"], datetime.fromisoformat(d["at"]), Decimal(d["amount"]))


class TicketEngine:
    """Per-partition ticket processing over a mapping-like table (a Faust Table, or a dict in tests).

    Pure apart from the table: returns outputs (dicts and ``PenaltyDue``); the agent publishes them.
    """

    def __init__(self, registry: Registry, table: Any) -> None:
        self.registry = registry
        self.table = table
        self._heaps: dict[int, list] = {}
        self._scheduled: dict[int, dict[str, datetime]] = {}

    # -- due index
    def reset_index(self) -> None:
        """Forget every partition's index (after a rebalance); each is rebuilt on its next record."""
        self._heaps.clear()
        self._scheduled.clear()

    def _index(self, p: int) -> tuple[list, dict]:
        if p not in self._heaps:
            heap: list = []
            scheduled: dict[str, datetime] = {}
            self._heaps[p], self._scheduled[p] = heap, scheduled
            for key, value in list(self.table.items()):
                if value and value.get("p") == p:
                    incident = Incident.from_dict(value["incident"])
                    self._schedule(p, self.registry.get(incident.agreement, incident.revision), incident)
        return self._heaps[p], self._scheduled[p]

    def _schedule(self, p: int, compiled, incident: Incident) -> None:
        heap, scheduled = self._heaps[p], self._scheduled[p]
        due = next_due(compiled, incident)
        if due is None:
            scheduled.pop(incident.ticket, None)
        elif scheduled.get(incident.ticket) != due:
            scheduled[incident.ticket] = due
            heapq.heappush(heap, (due, incident.ticket))

    def pending(self, p: int) -> int:
        return len(self._index(p)[1])

    # -- time
    def advance(self, p: int, until: datetime, inclusive: bool) -> list:
        """Fire partition ``p``'s deadlines before ``until`` (or at it when inclusive), in (due, key) order."""
        heap, scheduled = self._index(p)
        outputs: list = []
        while heap and (heap[0][0] < until or (inclusive and heap[0][0] == until)):
            due, key = heapq.heappop(heap)
            if scheduled.get(key) != due:
                continue  # stale entry: rescheduled since
            del scheduled[key]
            incident = Incident.from_dict(self.table[key]["incident"])
            compiled = self.registry.get(incident.agreement, incident.revision)
            outputs += advance(compiled, incident, due, inclusive=True)
            self.table[key] = {"p": p, "incident": incident.to_dict()}
            self._schedule(p, compiled, incident)
        return outputs

    # -- events
    def apply(self, p: int, event) -> list:
        """Apply one decoded ticket event (Rejected before any state change if it does not fit)."""
        if isinstance(event, MetricObserved):
            raise Rejected("metric events belong on the metrics topic, not on tickets")
        self._index(p)
        stored = self.table.get(event.ticket)
        incident = Incident.from_dict(stored["incident"]) if stored else None
        if incident is not None and event.id in incident.seen:
            return []  # idempotent input
        if isinstance(event, TicketOpened):
            if incident is not None:
                raise Rejected(f"ticket {event.ticket!r} is already open (opened at {incident.opened_at.isoformat()})")
            compiled = self.registry.for_opening(event)
            incident, outputs = open_incident(compiled, event)
        else:
            if incident is None:
                raise Rejected(f"unknown ticket {event.ticket!r}: no ticket.opened seen for it")
            compiled = self.registry.get(incident.agreement, incident.revision)
            outputs = apply_event(compiled, incident, event)
        self.table[event.ticket] = {"p": p, "incident": incident.to_dict()}
        self._schedule(p, compiled, incident)
        return outputs


def assess(registry: Registry, ledgers: Any, due: PenaltyDue) -> dict:
    """Book one PenaltyDue against its agreement's ledger (idempotent per output id)."""
    compiled = registry.get(due.agreement, due.revision)
    state = ledgers.get(due.agreement) or {"ledger": {"assessed": {}}, "done": {}}
    ledger = Ledger.from_dict(state["ledger"])
    out = assess_penalty(compiled, ledger, due)
    if out["id"] in state["done"]:
        return state["done"][out["id"]]  # redelivered: same output, budget not charged twice
    ledgers[due.agreement] = {"ledger": ledger.to_dict(), "done": {**state["done"], out["id"]: out}}
    return out


def parse_tick(value: bytes) -> datetime:
    data = orjson.loads(value)
    instant = datetime.fromisoformat(str(data["tick"]).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError("naive tick instant")
    return instant


def build_app(settings: LiveSettings, registry: Registry, *, broker_url: str | None = None,
              datadir: str | Path | None = None, manual_ticks: bool = False) -> faust.App:
    """The whole live engine as one Faust app (see the module docstring).

    ``broker_url``: the embedded broker's url (required when ``settings.broker`` is None).
    ``manual_ticks``: no ticker; time moves only by ticks produced with :func:`ticker.send_tick`.
    The app carries ``app.escalation`` (names, engine, topics) for the runner and the tests.
    """
    kw = settings.faust_app_kwargs(broker_url)
    if datadir is not None:
        kw["datadir"] = str(datadir)
    app = faust.App(settings.app_id, key_serializer="json", value_serializer="json", **kw)  # tables: JSON; topics: raw
    names = TopicNames.of(settings)
    P = settings.partitions
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=P)

    inputs = app.topic(names.tickets, names.ticks, **raw)
    out_topics = {n: app.topic(getattr(names, n), **raw) for n in ("notifications", "remedies", "timeline")}
    deadletter = app.topic(names.deadletter, **raw)
    penalties = app.topic(names.penalties, internal=True, **raw)
    incidents = app.Table("incidents", partitions=P)
    ledgers = app.Table("ledgers", partitions=P)
    engine = TicketEngine(registry, incidents)

    async def publish(outputs: list) -> None:
        for out in outputs:
            if isinstance(out, PenaltyDue):
                await penalties.send(key=out.agreement.encode(), value=orjson.dumps(_penalty_to_dict(out)))
            else:
                await out_topics[topic_for(out["type"])].send(key=out["subject"].encode(), value=orjson.dumps(out))

    async def reject(reason: str, event: Any) -> None:
        m = event.message
        rec = deadletter_record(reason, event.value, event.key, m.topic, m.partition, m.offset)
        await deadletter.send(key=event.key, value=orjson.dumps(rec))

    @app.agent(inputs, name="tickets")
    async def tickets_agent(stream: Any) -> None:
        async for event in stream.events():
            p, topic = event.message.partition, event.message.topic
            if topic == names.ticks:
                try:
                    instant = parse_tick(event.value)
                except Exception as err:  # noqa: BLE001 - any bad tick is dead-lettered
                    await reject(f"bad tick: {err}", event)
                    continue
                await publish(engine.advance(p, instant, inclusive=True))
                continue
            try:
                decoded = decode_event(event.value if event.value is not None else b"")
            except Rejected as err:
                await reject(err.reason, event)
                continue
            await publish(engine.advance(p, decoded.time, inclusive=False))
            try:
                outputs = engine.apply(p, decoded)
            except Rejected as err:
                await reject(err.reason, event)
                continue
            await publish(outputs)

    @app.agent(penalties, name="remedies")
    async def remedies_agent(stream: Any) -> None:
        async for event in stream.events():
            try:
                due = _penalty_from_dict(orjson.loads(event.value))
                out = assess(registry, ledgers, due)
            except (Rejected, ValueError, KeyError) as err:
                await reject(getattr(err, "reason", None) or f"bad penalty record: {err!r}", event)
                continue
            await out_topics[REMEDIES].send(key=due.agreement.encode(), value=orjson.dumps(out))

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        engine.reset_index()

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        engine.reset_index()

    if not manual_ticks:
        from escalation.live.ticker import install_ticker

        install_ticker(app, app.topic(names.ticks, **raw), settings)

    app.escalation = _Wiring(names, engine, inputs, out_topics, deadletter, penalties, incidents, ledgers)  # type: ignore[attr-defined]
    return app


@dataclass
class _Wiring:
    names: TopicNames
    engine: TicketEngine
    inputs: Any
    outputs: dict
    deadletter: Any
    penalties: Any
    incidents: Any
    ledgers: Any
