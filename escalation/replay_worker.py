"""One worker of ``escalation replay --workers N`` (``replay_parallel.py`` runs N of them and merges).

Worker ``w`` of ``n`` reads every line, but decodes and applies only the lines it owns: a ticket
event by its ticket key, a metric slice by its service, a termination by its agreement
(``crc32(key) % n``; a line with no readable key belongs to worker 0). Every line that carries a
readable time moves every worker's clock (``Tick(start)`` before the line, ``Tick(end)`` after a
slice), so all workers fire deadlines and period closes at the same lines, and each output gets a
*merge key* ``(line, phase, instant, class, key, sub)`` that orders the N streams as one engine
orders its outputs: by line; before the line (phase 0) or its own outputs (phase 1); in an advance
by instant, deadlines (class 0, by ticket) before period closes (class 1, by the scheduler's close
key: SLO closes by agreement and clause order, then report figures). The owner's step result keeps
the event's outputs (phase 1, in its order). A clock move that fires nothing waits
(``_behind``) until a step needs the clock, and before a line the worker owns it is left to the
line's own step, which advances as far: ticks are stepped only where something is due.

The engines have no desk of their own: a :class:`Recorder` takes the desk records the core settles
(penalties, credits, report figures, terminations) and leaves a :class:`Marker` where one engine's
desk would have put its outputs; the parent books them on one desk in merged order.

What one engine would do differently (a rejected line does not move its clock) is checked by the
parent from each owner's line statuses; when the check fails the run is redone with one worker.
"""

from __future__ import annotations

import re
import time
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from escalation.core.events import (
    MetricObserved,
    Rejected,
    Tick,
    decode_event,
    plausible,
)
from escalation.core.money.assessment import CreditDue
from escalation.core.outputs import OutputType
from escalation.core.reporting.figures import PartialReport
from escalation.core.services.slo_compiled import SloBook
from escalation.core.tickets.incident import PenaltyDue

_DATE_FIRST = re.compile(r"\d{4}-\d{2}-\d{2}")
#: the instant of outputs that are not in an advance (an event's own outputs)
NO_INSTANT = datetime.min.replace(tzinfo=UTC)
_SLO_CLOSES = (OutputType.SLO_ATTAINMENT, OutputType.SLO_NO_DATA)
_DEADLINE, _CLOSE, _BURN = 0, 1, 9
ACCEPTED, REJECTED = 1, 0
_UNKNOWN = object()  # a cached value not known yet


class Marker:
    """Where one engine's desk would have put the outputs of a settlement: its records and instant."""

    __slots__ = ("at", "items", "src")

    def __init__(self, items: list, at: datetime, src: int) -> None:
        self.items, self.at, self.src = items, at, src


class Recorder:
    """The desk protocol the Engine uses (submit, mark, release, next_close), recording instead of booking."""

    def __init__(self, src: int) -> None:
        self.src, self.items, self.at = src, [], None

    def submit(self, item, src: int = 0) -> None:
        self.items.append(item)

    def mark(self, src: int, at: datetime, inclusive: bool) -> None:
        self.at = at

    def release(self) -> list:
        marker = Marker(self.items, self.at, self.src)
        self.items = []
        return [marker]

    def next_close(self) -> None:
        return None  # the parent's desk closes its periods


def _instant(value) -> datetime | None:
    """An RFC 3339 time as the decoder reads it, in UTC as the decoder gives it (comparing aware
    datetimes with different ``tzinfo`` is many times slower, and ticks compare often), or None
    (then the line moves no clock)."""
    if not isinstance(value, str) or not _DATE_FIRST.match(value):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    # judged before the conversion, which overflows for year 1 or 9999 with an offset
    if at.tzinfo is None or not plausible(at):
        return None
    return at.astimezone(UTC)


def peek(line: bytes | str) -> tuple[str, datetime, datetime | None] | None:
    """(owner key, start, end or None) read cheaply from a raw line, or None."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    kind, end = raw.get("type"), None
    if kind == "metric.observed":
        key, start, end = raw.get("service"), _instant(raw.get("start")), _instant(raw.get("end"))
        if end is None:
            return None
    else:
        key, start = raw.get("agreement" if kind == "agreement.terminated" else "ticket"), _instant(raw.get("time"))
    if not isinstance(key, str) or start is None:
        return None
    return key, start, end


def owner_of(peeked, workers: int) -> int:
    return 0 if peeked is None else zlib.crc32(peeked[0].encode()) % workers


def _matches(event, peeked) -> bool:
    """Whether the decoded event's times are the ones the other workers moved their clocks to."""
    if peeked is None:
        return False
    if isinstance(event, MetricObserved):
        return event.start == peeked[1] and event.end == peeked[2]
    return peeked[2] is None and event.time == peeked[1]


class Worker:
    """Worker ``w`` of ``n``: its share of the incidents through one Engine, every clock move, merge keys."""

    def __init__(self, registry, w: int, n: int, grace: timedelta, encode) -> None:
        from escalation.replay import replay_engine

        self.engine = replay_engine(registry, metric_grace=grace, desk=Recorder(w))
        self.w, self.n, self.grace, self.encode = w, n, grace, encode
        self.slos, self._slo_keys = SloBook(registry), {}
        self.elements: list = []   # (merge key, encoded output | Marker), in merge-key order
        self.status: list = []     # (line, ACCEPTED | REJECTED, start, end) of the lines it owns
        self.dead: list = []       # (line, dead-letter record)
        self.counts: Counter = Counter()  # outputs by type
        self.stats = dict.fromkeys(("lines", "events", "rejected", "duplicates", "conflicts", "late"), 0)
        self.problem: str | None = None  # why one engine could differ: the parent redoes the run
        self.last_line = 0
        self._last: tuple = ()
        self._behind: datetime | None = None  # a clock move skipped (nothing was due before it)
        self._due: object = _UNKNOWN  # the engine's next due instant, while no step has changed it

    def run(self, lines, until: datetime | None) -> Worker:
        from escalation.replay import _skip_bom

        number = 0
        for number, line in enumerate(lines, start=1):
            if number == 1:
                line = _skip_bom(line)
            if line.strip():
                self.line(number, line)
                if self.problem is not None:
                    return self
        self.last_line = number
        self._catch_up()
        if until is not None:
            self._advance(number + 1, 0, Tick(until))
        return self

    def line(self, number: int, line: bytes | str) -> None:
        self.engine.incidents.evict()  # between steps (escalation.replay.replay_engine)
        peeked = peek(line)
        if owner_of(peeked, self.n) == self.w:
            if peeked is not None and not self._covered_by_step(peeked):
                self._advance(number, 0, Tick(peeked[1], inclusive=False))
            self._own(number, line, peeked)
        elif peeked is not None:
            self._advance(number, 0, Tick(peeked[1], inclusive=False), skippable=True)
            if peeked[2] is not None:
                self._advance(number, 1, Tick(peeked[2], inclusive=False), skippable=True)

    def _own(self, number: int, line, peeked) -> None:
        from escalation.replay import _dead_letter

        stats = self.stats
        stats["lines"] += 1
        if peeked is None or self._behind is None or self._behind != peeked[1]:  # else the step moves the clock there
            self._catch_up()
        try:
            event = decode_event(line)
            if not _matches(event, peeked):
                self.problem = f"line {number}: its times read differently by the decoder"
                return
            result = self._step(event)
        except Rejected as err:
            stats["rejected"] += 1
            self.dead.append((number, _dead_letter(number, line, err.reason)))
            return self._not_applied(number, peeked)
        except Exception as err:  # noqa: BLE001 - one engine would dead-letter it; redo the run with one
            self.problem = f"line {number}: internal error {type(err).__name__}"
            return None
        stats["events"] += 1
        stats["duplicates"] += result.duplicate
        stats["conflicts"] += result.conflict is not None
        stats["late"] += result.late_by is not None
        if result.conflict is not None:
            self.dead.append((number, {**_dead_letter(number, line, result.conflict), "duplicate": True}))
        if result.duplicate:
            return self._not_applied(number, peeked)
        if self._behind is not None and not self._behind > self.engine.now:
            self._behind = None  # the step moved the clock as far as the waiting move would have
        self.status.append((number, ACCEPTED, peeked[1], peeked[2]))
        self._emit(number, 1, result.outputs, peeked[2])
        return None

    def _not_applied(self, number: int, peeked) -> None:
        """A rejected or repeated line: one engine's clock stays; the workers' clocks move (checked later)."""
        if peeked is None:
            self.status.append((number, REJECTED, None, None))
            return
        self.status.append((number, REJECTED, peeked[1], peeked[2]))
        if peeked[2] is not None:
            self._advance(number, 1, Tick(peeked[2], inclusive=False))

    def _advance(self, number: int, phase: int, tick: Tick, skippable: bool = False) -> None:
        """Step ``tick``; another's line (``skippable``) only moves the clock when something is due
        before it: otherwise the move waits (``_behind``) for the next step that needs the clock."""
        if skippable and self._quiet_before(tick.at):
            if self._behind is None or tick.at > self._behind:
                self._behind = tick.at
            return
        self._catch_up()
        outputs = self._step(tick).outputs
        if outputs:
            self._emit(number, phase, outputs, None, advancing=True)

    def _catch_up(self) -> None:
        """The clock moves that waited: nothing was due before them, and nothing changed since."""
        if self._behind is not None:
            behind, self._behind = self._behind, None
            if self._step(Tick(behind, inclusive=False)).outputs:
                self.problem = "a skipped clock move fired outputs"

    def _covered_by_step(self, peeked) -> bool:
        """Whether the clock move before an owned ticket line can be left to the line's own step:
        nothing is due before the line, so the move fires nothing (no phase-0 outputs) and the
        step's own advance goes as far. The move is noted as waiting (``_behind``), so a rejected
        or repeated line still moves this worker's clock, as every worker's moves at every line;
        and a waiting move no later than the line is folded into it (the clock ends where it
        would have, and an event older than the clock is late by the same amount either way)."""
        at = peeked[1]
        if peeked[2] is not None or (self._behind is not None and self._behind > at) or not self._quiet_before(at):
            return False
        self._behind = at
        return True

    def _step(self, item):
        """``engine.step``; what is due next is asked again after it (only a step changes it)."""
        self._due = _UNKNOWN
        return self.engine.step(item)

    def _quiet_before(self, at: datetime) -> bool:
        """Whether nothing (deadline or period close) is due before ``at`` in this worker's engine."""
        due = self._due
        if due is _UNKNOWN:
            due = self._due = self.engine.next_due()
        return due is None or due >= at

    def _emit(self, number: int, phase: int, outputs: list, burn_at, advancing: bool = False) -> None:
        """Append ``outputs`` with their merge keys (``burn_at``: a slice's end, its owner's step)."""
        advancing = advancing or burn_at is not None
        for out in outputs:
            if not advancing:
                key = (number, phase, NO_INSTANT, 0, (), 0)
            elif isinstance(out, Marker):
                key = (number, phase) + self._marker_key(out)
            elif out.type is OutputType.SLO_BURN_RATE and burn_at is not None:
                key = (number, phase, burn_at, _BURN, (), 0)
            elif out.type in _SLO_CLOSES:
                d = out.data
                key = (number, phase, out.time + self.grace, _CLOSE,
                       self._slo_key(d["agreement"], d["revision"], d["slo"], d["period"]), 0)
            else:
                key = (number, phase, out.time, _DEADLINE, (out.subject,), 0)
            if key < self._last:
                self.problem = f"line {number}: outputs out of merge order"
            self._last = key
            if isinstance(out, Marker):
                self.elements.append((key, out))
            else:
                self.counts[out.type.value] += 1
                self.elements.append((key, self.encode(out)))

    def _marker_key(self, marker: Marker) -> tuple:
        first = marker.items[0]
        if isinstance(first, PenaltyDue):
            return marker.at, _DEADLINE, (first.ticket,), 0
        if isinstance(first, CreditDue):
            return marker.at, _CLOSE, self._slo_key(first.agreement, first.revision, first.slo, first.period), 1
        if isinstance(first, PartialReport):
            return marker.at, _CLOSE, (1, first.agreement, 0, "", first.period), 1
        self.problem = f"unexpected desk record in an advance: {type(first).__name__}"
        return marker.at, _BURN, (), 0

    def _slo_key(self, agreement: str, revision: int, slo: str, label: str) -> tuple:
        """The metric side's close key of an SLO period: (0, agreement, clause order, SLO, period)."""
        index = self._slo_keys.get((agreement, revision, slo))
        if index is None:
            index = self._slo_keys[(agreement, revision, slo)] = self.slos.get(agreement, slo, revision).index
        return 0, agreement, index, slo, label

    def result(self) -> dict:
        return {"elements": self.elements, "status": self.status, "dead": self.dead, "counts": self.counts,
                "stats": self.stats, "problem": self.problem, "last_line": self.last_line,
                "cpu": time.process_time()}  # the worker process's CPU seconds (bench)
