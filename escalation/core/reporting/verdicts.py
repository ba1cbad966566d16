"""Clock verdicts from outputs: "breach wins, else met" (the one place that rule is written).

A clock cycle (or, coarser, a ticket's clock over all its cycles) is ``breached`` when any of its
outputs is ``sla.breached``, else ``met`` when one is ``sla.met``, else it has no verdict yet.
Reports (compliance, made_sla) and backtests fold over typed outputs with :func:`deciding`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from escalation.core.outputs import VERDICT_TYPES, Output, OutputType


def cycle_key(data: dict) -> tuple[str, str, int]:
    """(ticket, clock, cycle): one verdict per clock cycle."""
    return data["ticket"], data["clock"], data.get("cycle", 1)


def clock_key(data: dict) -> tuple[str, str]:
    """(ticket, clock): one verdict per ticket clock, over all its cycles."""
    return data["ticket"], data["clock"]


def deciding(outputs: Iterable[Output], key: Callable[[dict], Hashable] = cycle_key) -> dict[Hashable, Output]:
    """``key(data)`` -> the output that decides its verdict: the first ``sla.breached``, else the
    last ``sla.met`` (outputs in time order)."""
    out: dict[Hashable, Output] = {}
    for o in outputs:
        if o.type not in VERDICT_TYPES:
            continue
        k = key(o.data)
        old = out.get(k)
        if old is None or old.type is not OutputType.SLA_BREACHED:
            out[k] = o
    return out


def verdict_of(out: Output) -> str:
    """``breached`` or ``met`` for a deciding output."""
    return "breached" if out.type is OutputType.SLA_BREACHED else "met"
