"""``escalation replay``: recorded events through the core with a simulated clock (DESIGN.md §8).

The runner reads JSONL in file order and hands each decoded event to ``Engine.step``, which
checks it, jumps the simulated clock to the event's time (firing every deadline due strictly
before it) and applies it (so an event at T comes before a deadline at exactly T). ``until``
is a final ``step(Tick(until))``: the clock advances to that instant, inclusive, so pending
deadlines fire. Events older
than the clock are applied (late) as the core's rule says; their lateness is counted in ``late``.

Bad input (DESIGN.md §10): every line is applied or dead-lettered with its line number and a
reason, and the run goes on.
- A rejected line changes nothing (``step`` checks before it moves the clock).
- A UTF-8 byte-order mark at the start of the input is skipped. A line that is not UTF-8 is
  rejected; its dead letter keeps the bytes as ``input_base64`` (other dead letters: ``input``).
- A repeated id with other content is ignored like any repeat, and dead-lettered with
  ``"duplicate": true`` (counted in ``duplicates`` and ``conflicts``).
- Any other exception while processing a line dead-letters it as ``internal error: <type>:
  <message>`` (counted in ``internal_errors``; the first is logged with its traceback).

Memory (issue #11): a closed incident becomes a tombstone, and at most ``DECODED_CAP`` open
incidents stay decoded between lines; the others are kept as the compressed bytes the live store
would hold (``replay_engine``, ``escalation/live/frozen.py`` ``CappedIncidents``) and decoded again
when a line or a deadline touches them. Outputs do not depend on it (the codec's round trip).
"""

from __future__ import annotations

import base64
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from escalation.core.contract.registry import Registry
from escalation.core.engine import Engine
from escalation.core.events import Rejected, StepFailed, Tick, decode_event, internal_error_reason
from escalation.core.outputs import Output
from escalation.core.tickets.state import Incident

log = logging.getLogger(__name__)

BOM = "\ufeff"


#: open incidents a replay keeps decoded between lines (~1.6 KB each, so at most ~50 MB); beyond
#: it, the longest decoded are frozen (~0.37 KB each with key and bytes). Decoding one again costs
#: ~35 µs and freezing it ~45 µs, and a replay with most incidents frozen runs ~1.5x slower per
#: event, so the cap is above the open incidents of the bench workloads at their peak (10k tickets:
#: 2,175; 100k tickets: 21,411), which pay nothing (bench/README.md, issue #11 stop 14).
DECODED_CAP = 32768


def _frozen(incident: Incident) -> bytes:
    """An open incident as the live store would hold it (partition 0)."""
    from escalation.live.store import pack

    return pack(0, {"incident": incident.to_dict()})


def replay_engine(registry: Registry, **kw) -> Engine:
    """The Engine of a replay: closed incidents as tombstones (as live), at most ``DECODED_CAP`` open
    incidents decoded between lines (the caller calls ``engine.incidents.evict()`` between steps)."""
    from escalation.live.frozen import CappedIncidents
    from escalation.live.store import load

    return Engine(registry, forget_closed=True, incidents=CappedIncidents(load, _frozen, DECODED_CAP), **kw)


@dataclass
class ReplayStats:
    lines: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    conflicts: int = 0          # repeated ids with different content (also in ``duplicates``)
    internal_errors: int = 0    # unexpected exceptions (also in ``rejected``)
    late: int = 0
    outputs: Counter = field(default_factory=Counter)


def replay(registry: Registry, lines: Iterable[bytes | str], emit: Callable[[Output], None],
           reject: Callable[[dict], None], until: datetime | None = None,
           engine: Engine | None = None) -> ReplayStats:
    """Run ``lines`` through an Engine (``engine``, else a new one with a desk of its own that
    shrinks closed incidents to tombstones, as live does: same outputs and dead letters, less
    memory); ``emit`` gets the typed outputs (``Output.cloudevent`` makes the published form),
    ``reject`` dead-letter records."""
    engine = engine or replay_engine(registry)
    evict = getattr(engine.incidents, "evict", None)  # between lines (see ``replay_engine``)
    stats = ReplayStats()

    def send(outputs: list) -> None:
        for out in outputs:
            stats.outputs[out.type._value_] += 1  # by type name (``.value``, without the property's cost): JSON-ready
            emit(out)

    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = _skip_bom(line)
        if not line or line.isspace():  # a blank line (what ``not line.strip()`` says, without a copy)
            continue
        stats.lines += 1
        if evict is not None:
            evict()
        try:
            applied = engine.step(decode_event(line))
        except Exception as err:  # noqa: BLE001 - Rejected, and the safety net: one record never stops the run
            if isinstance(err, StepFailed):  # the clock had moved: what fired then is published
                send(err.outputs)
                err = err.cause
            stats.rejected += 1
            if isinstance(err, Rejected):
                reject(_dead_letter(number, line, err.reason))
            else:
                stats.internal_errors += 1
                reject(_dead_letter(number, line, _internal(err, number, stats.internal_errors == 1)))
            continue
        stats.events += 1  # the counts are kept here, not in a function: this runs once per line
        if applied.duplicate:
            stats.duplicates += 1
        if applied.conflict is not None:
            stats.conflicts += 1
            reject({**_dead_letter(number, line, applied.conflict), "duplicate": True})
        if applied.late_by is not None:
            stats.late += 1
        if applied.outputs:
            send(applied.outputs)
    if until is not None:
        send(engine.step(Tick(until)).outputs)
    return stats


def _dead_letter(number: int, line: bytes | str, reason: str) -> dict:
    """The dead-letter record of a line: its text, or its bytes as base64 when they are not UTF-8
    (then that is the reason: the decoder refuses such a line before reading any field). The text
    is made only here, for the lines that need it."""
    try:
        return {"line": number, "reason": reason, "input": _text(line)}
    except UnicodeDecodeError as err:
        # the record's own bytes, without the line break (as ``input`` is without it)
        return {"line": number, "reason": f"invalid UTF-8 at byte {err.start}",
                "input_base64": base64.b64encode(line.rstrip(b"\r\n")).decode()}


def _internal(err: Exception, number: int, first: bool) -> str:
    """The dead-letter reason of an unexpected exception; the first one's traceback is logged."""
    if first:
        log.error("internal error on line %d (later ones are dead-lettered without a traceback)", number,
                  exc_info=err)
    return internal_error_reason(err)


def _skip_bom(line: bytes | str) -> bytes | str:
    """The first line without a UTF-8 byte-order mark (Windows tools write one)."""
    if isinstance(line, bytes):
        return line.removeprefix(BOM.encode())
    return line.removeprefix(BOM)


def _text(line: bytes | str) -> str:
    """The line as text without its line break; UnicodeDecodeError if it is not UTF-8."""
    return (line.decode("utf-8") if isinstance(line, bytes) else line).rstrip("\r\n")


def replay_to_lists(registry: Registry, lines: Iterable[bytes | str], until: datetime | None = None):
    """Convenience for tests and backtests: (typed outputs, rejects, stats)."""
    outputs: list[Output] = []
    rejects: list[dict] = []
    stats = replay(registry, lines, outputs.append, rejects.append, until)
    return outputs, rejects, stats
