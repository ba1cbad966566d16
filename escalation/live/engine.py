"""The live engine's per-partition state machinery, apart from Faust wiring (see ``app.py``).

``TicketEngine`` runs the pure core over one partition's incidents (a Faust Table or a dict in
tests) with a due index, ``LedgerBook`` owns the remedies stage's cap ledgers, and the small
helpers here shape dead-letter records, ticks and penalty records. Nothing here talks to Kafka.
"""

from __future__ import annotations

import base64
import heapq
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from escalation.core.events import MetricObserved, Rejected, TicketOpened
from escalation.core.incident import PenaltyDue, advance, apply_event, next_due, open_incident
from escalation.core.ledger import Ledger, assess_penalty
from escalation.core.outputs import output_id
from escalation.core.registry import Registry
from escalation.core.state import Incident

log = logging.getLogger(__name__)


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
    Outside a batch every change is written to the table at once. Between :meth:`begin` and
    :meth:`end` changes stay in memory and :meth:`end` returns the changed incidents
    ``(partition, key, value)`` for the caller to write (once each per batch). Open incidents stay
    decoded across batches (no re-decoding of the table value); closed ones are dropped at the end
    of their batch. :meth:`reset_index` (rebalance) and :meth:`discard` (failed batch) forget the
    decoded copies and the due index.
    """

    def __init__(self, registry: Registry, table: Any) -> None:
        self.registry = registry
        self.table = table
        self._heaps: dict[int, list] = {}
        self._scheduled: dict[int, dict[str, datetime]] = {}
        self._open: dict[int, set[str]] = {}
        # decoded open incidents of the indexed partitions, kept across batches (the table is only
        # written by this engine; rebalances reset it): key -> [partition, Incident, dirty]
        self._cache: dict[str, list] = {}
        self._dirty: dict[str, None] = {}  # keys changed in this batch, in first-change order
        self._batching = False
        self.fired: list[datetime] = []  # due instants fired since the caller last cleared it

    # -- batches
    def begin(self) -> None:
        self._batching = True

    def end(self) -> list[tuple[int, str, dict]]:
        """Close the batch: ``(partition, key, table value)`` of every incident it changed."""
        self._batching = False
        writes = []
        for key in self._dirty:
            entry = self._cache[key]
            entry[2] = False
            p, incident = entry[0], entry[1]
            writes.append((p, key, {"p": p, "incident": incident.to_dict()}))
            if incident.lifecycle == "closed":
                del self._cache[key]  # ended: rarely touched again, read from the table if it is
        self._dirty.clear()
        return writes

    def discard(self) -> None:
        """Drop a failed batch: its unwritten changes, the decoded incidents and the due index."""
        self._batching = False
        self.reset_index()

    def _load(self, key: str) -> Incident | None:
        hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        stored = self.table.get(key)
        if not stored:
            return None
        incident = Incident.from_dict(stored["incident"])
        if self._batching:
            self._cache[key] = [stored["p"], incident, False]
        return incident

    def _store(self, p: int, key: str, incident: Incident) -> None:
        if not self._batching:
            self.table[key] = {"p": p, "incident": incident.to_dict()}
            self._cache.pop(key, None)
        else:
            self._cache[key] = [p, incident, True]
            self._dirty[key] = None

    def _forget(self, key: str) -> None:
        """An incident whose decoded copy may be wrong: re-read it from the table (only if unchanged)."""
        entry = self._cache.get(key)
        if entry is not None and not entry[2]:
            del self._cache[key]

    # -- due index
    def reset_index(self) -> None:
        """Forget every partition's index (after a rebalance); each is rebuilt on its next record."""
        self._heaps.clear()
        self._scheduled.clear()
        self._open.clear()
        self._cache.clear()
        self._dirty.clear()

    def _index(self, p: int) -> tuple[list, dict]:
        if p not in self._heaps:
            self._heaps[p], self._scheduled[p], self._open[p] = [], {}, set()
            cache = self._cache
            for key, value in list(self.table.items()):
                if value and value.get("p") == p and key not in cache:
                    incident = Incident.from_dict(value["incident"])
                    self._schedule(p, self.registry.get(incident.agreement, incident.revision), incident)
            for key, (q, incident, _dirty) in list(cache.items()):  # this batch's unwritten state wins
                if q == p:
                    self._schedule(p, self.registry.get(incident.agreement, incident.revision), incident)
            heapq.heapify(self._heaps[p])
        return self._heaps[p], self._scheduled[p]

    def _schedule(self, p: int, compiled, incident: Incident) -> None:
        heap, scheduled = self._heaps[p], self._scheduled[p]
        if incident.lifecycle == "closed":
            self._open[p].discard(incident.ticket)
        else:
            self._open[p].add(incident.ticket)
        due = next_due(compiled, incident)
        if due is None:
            scheduled.pop(incident.ticket, None)
        elif scheduled.get(incident.ticket) != due:
            scheduled[incident.ticket] = due
            heapq.heappush(heap, (due, incident.ticket))

    def pending(self, p: int) -> int:
        return len(self._index(p)[1])

    def sizes(self) -> tuple[int, int]:
        """(open incidents, entries in the due indexes) over the indexed partitions."""
        return sum(map(len, self._open.values())), sum(map(len, self._heaps.values()))

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
            incident = self._load(key)
            compiled = self.registry.get(incident.agreement, incident.revision)
            outputs += advance(compiled, incident, due, inclusive=True)
            self._store(p, key, incident)
            self._schedule(p, compiled, incident)
            self.fired.append(due)
        return outputs

    # -- events
    def apply(self, p: int, event) -> list:
        """Apply one decoded ticket event (Rejected, with the incident unchanged, if it does not fit)."""
        if isinstance(event, MetricObserved):
            raise Rejected("metric events belong on the metrics topic, not on tickets")
        self._index(p)
        incident = self._load(event.ticket)
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
            last_time, n_seen = incident.last_time, len(incident.seen)
            try:
                outputs = apply_event(compiled, incident, event)
            except Rejected:
                # the core may have stamped last_time/seen before refusing: undo (the decoded
                # incident outlives this call, unlike a fresh table read); an unchanged one is
                # simply read again from the table
                incident.last_time = last_time
                del incident.seen[n_seen:]
                self._forget(event.ticket)
                raise
        self._store(p, event.ticket, incident)
        self._schedule(p, compiled, incident)
        return outputs


def penalty_output_id(due: PenaltyDue) -> str:
    """The id :func:`assess_penalty` gives the ``penalty.assessed`` of ``due`` (checked on use)."""
    return output_id(due.source, "penalty.assessed", due.ticket, due.ticket, due.clock, due.cycle, due.remedy)


class LedgerBook:
    """The remedies agent's state: ``ledgers`` (agreement -> ledger) and ``assessed`` (output id -> output).

    Same batch protocol as :class:`TicketEngine`: :meth:`begin`, :meth:`assess` per record,
    :meth:`end` returns the table writes ``(table, partition, key, value)``.
    """

    def __init__(self, registry: Registry, ledgers: Any, assessed: Any) -> None:
        self.registry, self.ledgers, self.assessed = registry, ledgers, assessed
        self._ledgers: dict[str, list] = {}  # agreement -> [partition, Ledger, dirty]
        self._new: dict[str, tuple[int, dict]] = {}  # output id -> (partition, output) to write

    def begin(self) -> None:
        self._ledgers, self._new = {}, {}

    def discard(self) -> None:
        self.begin()

    def _ledger(self, agreement: str, p: int) -> list:
        entry = self._ledgers.get(agreement)
        if entry is None:
            state = self.ledgers.get(agreement)
            ledger = Ledger.from_dict(state["ledger"]) if state else Ledger()
            entry = self._ledgers[agreement] = [p, ledger, False]
            if state and state.get("done"):  # legacy value: move its outputs to ``assessed``
                for out_id, out in state["done"].items():
                    self._new.setdefault(out_id, (p, out))
                entry[2] = True
        return entry

    def assess(self, due: PenaltyDue, p: int) -> dict:
        """Book one PenaltyDue against its agreement's ledger (idempotent per output id)."""
        compiled = self.registry.get(due.agreement, due.revision)
        entry = self._ledger(due.agreement, p)
        out_id = penalty_output_id(due)
        done = self._new.get(out_id)
        if done is not None:
            return done[1]
        old = self.assessed.get(out_id)
        if old is not None:
            return old  # redelivered: same output, budget not charged twice
        out = assess_penalty(compiled, entry[1], due)
        if out["id"] != out_id:
            raise RuntimeError(f"penalty output id mismatch: {out['id']} != {out_id}")
        entry[2] = True
        self._new[out_id] = (p, out)
        return out

    def end(self) -> list[tuple[Any, int, Any, Any]]:
        writes = [(self.ledgers, p, agreement, {"ledger": ledger.to_dict()})
                  for agreement, (p, ledger, dirty) in self._ledgers.items() if dirty]
        writes += [(self.assessed, p, out_id, out) for out_id, (p, out) in self._new.items()]
        self.begin()
        return writes


def assess(registry: Registry, ledgers: Any, due: PenaltyDue, assessed: Any | None = None) -> dict:
    """Book one PenaltyDue outside a batch (writes the tables at once); see :class:`LedgerBook`."""
    book = LedgerBook(registry, ledgers, {} if assessed is None else assessed)
    book.begin()
    out = book.assess(due, 0)
    for table, _p, key, value in book.end():
        table[key] = value
    return out


def parse_tick(value: bytes) -> datetime:
    data = orjson.loads(value)
    instant = datetime.fromisoformat(str(data["tick"]).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError("naive tick instant")
    return instant


