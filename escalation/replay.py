"""``escalation replay``: recorded events through the core with a simulated clock (DESIGN.md §8).

The runner reads JSONL in file order. Before each event the simulated clock jumps to the event's
time, firing every deadline due strictly before it; then the event is applied (so an event at T
comes before a deadline at exactly T). ``until`` finally advances the clock to that instant,
inclusive, so pending deadlines fire. Rejected lines go to the dead-letter sink with their line
number and reason, and the run continues. Events older than the clock are applied (late) as the
core's rule says; their lateness is noted in the dead-letter-free ``late`` counter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .core.events import Rejected, decode_event
from .core.processor import Processor
from .core.registry import Registry


@dataclass
class ReplayStats:
    lines: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    late: int = 0
    outputs: Counter = field(default_factory=Counter)


def replay(registry: Registry, lines: Iterable[bytes | str], emit: Callable[[dict], None],
           reject: Callable[[dict], None], until: datetime | None = None,
           processor: Processor | None = None) -> ReplayStats:
    """Run ``lines`` through a Processor; ``emit`` gets outputs, ``reject`` dead-letter records."""
    engine = processor or Processor(registry)
    stats = ReplayStats()

    def send(outputs: list) -> None:
        for out in outputs:
            stats.outputs[out["type"]] += 1
            emit(out)

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        stats.lines += 1
        try:
            event = decode_event(line)
            # A metric slice [start, end) is applied once the clock reaches its start; the core
            # then advances to its end itself, so a slice straddling a period end is split.
            send(engine.advance_to(getattr(event, "start", event.time)))
            applied = engine.apply(event)
        except Rejected as err:
            stats.rejected += 1
            reject({"line": number, "reason": err.reason, "input": _text(line)})
            continue
        stats.events += 1
        stats.duplicates += applied.duplicate
        stats.late += applied.late_by is not None
        send(applied.outputs)
    if until is not None:
        send(engine.advance_to(until, inclusive=True))
    return stats


def _text(line: bytes | str) -> str:
    return (line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line).rstrip("\r\n")


def replay_to_lists(registry: Registry, lines: Iterable[bytes | str], until: datetime | None = None):
    """Convenience for tests and backtests: (outputs, rejects, stats)."""
    outputs: list[dict] = []
    rejects: list[dict] = []
    stats = replay(registry, lines, outputs.append, rejects.append, until)
    return outputs, rejects, stats
