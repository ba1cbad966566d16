"""``escalation replay --workers N``: the incidents split over N processes, merged as one engine's run.

Each worker (:mod:`escalation.replay_worker`) reads the whole file, applies the lines it owns
(tickets by ticket key, metric slices by service, terminations by agreement) and moves its clock
at every line, so every output carries a merge key that puts the N streams back in the order one
engine produces them. This parent merges the streams and runs the one desk (money with its shared
caps, report figures merged from every worker's partial, report closes, agreement terms) as one
engine runs its own: the same ``submit``/``mark``/``release`` calls at the same places, a desk
close between the outputs of the instant before and after it. The output file and the dead
letters are byte-identical to ``--workers 1``.

One engine does not move its clock for a rejected (or repeated) line; the workers do, because
none of them knows in advance what the line's owner decides. That is harmless when the next
applied line moves the clock at least as far (what fired early would have fired there, in the same
order) and no rejected slice was judged at a clock one engine had not reached; the owners report
every line's fate and :func:`check` verifies exactly that (also: decoder and quick reader agree on
every time, no internal error, merge keys in order). Otherwise :func:`replay_parallel` returns
None and the caller replays with one worker: the result is always one engine's.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import multiprocessing
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from operator import itemgetter
from pathlib import Path

from escalation.core.contract.registry import Registry
from escalation.core.money.desk import Desk
from escalation.core.reporting.figures import PartialReport
from escalation.replay import ReplayStats
from escalation.replay_worker import _CLOSE, _UNKNOWN, ACCEPTED, Marker, Worker

log = logging.getLogger(__name__)
#: how the last parallel run went (for benchmarks and tests): ``problem`` (None, or why it was redone
#: with one worker), ``worker_cpu`` (each worker's CPU seconds)
LAST_RUN: dict = {}


def replay_parallel(registry: Registry, path: Path, workers: int, write: Callable[[bytes], None],
                    reject: Callable[[dict], None], encode: Callable, until: datetime | None = None,
                    grace: timedelta = timedelta(0)) -> ReplayStats | None:
    """Replay ``path`` over ``workers`` processes; ``write`` gets each encoded output (``encode(output)``),
    ``reject`` the dead letters, in one engine's order. None (nothing written) when the run could
    differ from one engine's: the caller then replays with one."""
    results = run_workers(registry, path, workers, until, grace, encode)
    problem = check(results, until)
    LAST_RUN.clear()
    LAST_RUN.update(problem=problem, worker_cpu=[r["cpu"] for r in results])
    if problem is not None:
        log.info("parallel replay redone with one worker: %s", problem)
        return None
    stats = ReplayStats()
    for r in results:
        for name, value in r["stats"].items():
            setattr(stats, name, getattr(stats, name) + value)
        stats.outputs.update(r["counts"])
    Merge(registry, grace, encode, write, stats.outputs).run(results, until)
    for _, record in sorted(itertools.chain.from_iterable(r["dead"] for r in results), key=itemgetter(0)):
        reject(record)
    return stats


# -- the workers --------------------------------------------------------------------------------

def _child(conn, registry, path, w, n, until, grace, encode) -> None:
    try:
        with open(path, "rb") as lines:
            conn.send(Worker(registry, w, n, grace, encode).run(lines, until).result())
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


def run_workers(registry: Registry, path: Path, n: int, until, grace, encode) -> list[dict]:
    """Every worker's result (``Worker.result``); forked, so the registry and ``encode`` are inherited."""
    ctx = multiprocessing.get_context("fork")
    procs, conns = [], []
    for w in range(n):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(send, registry, path, w, n, until, grace, encode), daemon=True)
        proc.start()
        send.close()
        procs.append(proc)
        conns.append(recv)
    results = [conn.recv() for conn in conns]
    for proc in procs:
        proc.join()
    for r in results:
        if "error" in r:
            raise RuntimeError(f"replay worker failed:\n{r['error']}")
    return results


def check(results: list[dict], until: datetime | None) -> str | None:
    """None when the workers' clocks moved exactly as one engine's would have mattered, else why not.

    ``ahead`` is how far the workers' clocks have gone beyond one engine's since the last applied
    line (rejected lines with a time). An applied line (and a rejected slice, whose verdict depends
    on the clock) must start at or after it; at the end, ``--until`` must reach it, or nothing may
    have fired there."""
    for r in results:
        if r["problem"] is not None:
            return r["problem"]
    ahead, last_applied = None, 0
    for line, fate, start, end in sorted(itertools.chain.from_iterable(r["status"] for r in results)):
        if start is None:
            continue
        if (fate == ACCEPTED or end is not None) and ahead is not None and ahead > start:
            return f"line {line}: the workers' clocks were ahead of one engine's ({ahead.isoformat()})"
        if fate == ACCEPTED:
            ahead, last_applied = None, line
        else:
            ahead = max(ahead or start, end or start)
    if ahead is not None and until is not None and ahead > until:
        return "the last lines moved the workers' clocks beyond --until"
    if ahead is not None and until is None and any(r["elements"] and r["elements"][-1][0][0] > last_applied
                                                   for r in results):
        return "rejected lines at the end fired what one engine would not have"
    return None


# -- the merge ----------------------------------------------------------------------------------

def advances(results: list[dict], until: datetime | None) -> list[tuple]:
    """Every (line, phase, target, inclusive) where the clocks advanced (desk closes may fall there)."""
    out = []
    status = sorted(itertools.chain.from_iterable(r["status"] for r in results))
    last = max(r["last_line"] for r in results)
    if until is None:  # rejected lines after the last applied one: one engine never advanced there
        applied = [s[0] for s in status if s[1] == ACCEPTED]
        status = [s for s in status if applied and s[0] <= applied[-1]]
    for line, _, start, end in status:
        if start is not None:
            out.append((line, 0, start, False))
            if end is not None:
                out.append((line, 1, end, False))
    if until is not None:
        out.append((last + 1, 0, until, True))
    return out


class Merge:
    """The N workers' streams in one engine's order, with the one desk (money, reports, terms)."""

    def __init__(self, registry: Registry, grace: timedelta, encode, write, counts: Counter) -> None:
        self.desk = Desk(registry, 1, grace)
        self.encode, self.write, self.counts = encode, write, counts
        # the desk's next close, asked before every output of an advance: it changes only when
        # the desk books something (``_booked`` forgets it), so it is asked again only then
        self._close: object = _UNKNOWN

    def _next_close(self) -> datetime | None:
        if self._close is _UNKNOWN:
            self._close = self.desk.next_close()
        return self._close  # type: ignore[return-value]

    def _booked(self, outputs: list) -> None:
        """The desk booked (submit, mark, release): its next close may have moved."""
        self._close = _UNKNOWN
        self.emit(outputs)

    def run(self, results: list[dict], until: datetime | None) -> None:
        merged = heapq.merge(*(r["elements"] for r in results), key=itemgetter(0))
        todo = iter(advances(results, until))
        adv = next(todo, None)
        for where, items in itertools.groupby(merged, key=lambda e: e[0][:2]):
            while adv is not None and adv[:2] < where:
                self.close_desk(adv[2], adv[3])
                adv = next(todo, None)
            if adv is not None and adv[:2] == where:
                self.advance(list(items), adv[2], adv[3])
                adv = next(todo, None)
            else:
                for _, payload in items:
                    self.one(payload)
        while adv is not None:
            self.close_desk(adv[2], adv[3])
            adv = next(todo, None)

    def emit(self, outputs: list) -> None:
        for out in outputs:
            self.counts[out.type.value] += 1
            self.write(self.encode(out))

    def close_desk(self, until: datetime, inclusive: bool) -> None:
        """One engine's desk closes before ``until`` (at it too when ``inclusive``)."""
        while True:
            close = self._next_close()
            if close is None or not (close < until or (inclusive and close == until)):
                return
            self.desk.mark(0, close, inclusive=True)
            self._booked(self.desk.release())

    def advance(self, items: list, until: datetime, inclusive: bool) -> None:
        """One advance's outputs: a desk close goes before the first output of a later instant; the
        period closes of one instant settle together, as one engine closes them in one call."""
        i = 0
        while i < len(items):
            key, payload = items[i]
            self.close_desk(key[2], False)
            if key[3] != _CLOSE:
                self.one(payload)
                i += 1
                continue
            j = i + 1
            while j < len(items) and items[j][0][2] == key[2] and items[j][0][3] == _CLOSE:
                j += 1
            self.closes([p for _, p in items[i:j]])
            i = j
        self.close_desk(until, inclusive)

    def one(self, payload) -> None:
        if not isinstance(payload, Marker):
            self.write(payload)
            return
        for item in payload.items:
            self.desk.submit(item)
        self.desk.mark(0, payload.at, inclusive=False)
        self._booked(self.desk.release())

    def closes(self, payloads: list) -> None:
        """The period closes of one instant from every worker: their desk records booked together,
        the desk's outputs where the first record was."""
        written, markers, first = [], [], None
        for payload in payloads:
            if isinstance(payload, Marker):
                markers.append(payload)
                if first is None:
                    first = len(written)
            else:
                written.append(payload)
        if markers:
            for marker in markers:
                for item in marker.items:
                    self.desk.submit(item, marker.src if isinstance(item, PartialReport) else 0)
            self.desk.mark(0, markers[0].at, inclusive=False)
            before, after = written[:first], written[first:]
            for payload in before:
                self.write(payload)
            self._booked(self.desk.release())
            written = after
        for payload in written:
            self.write(payload)
