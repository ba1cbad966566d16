"""Memory upkeep in a live worker: no full collection at a random moment under load, and free
heap pages given back to the system.

Why: a worker holds state for every open incident. Decoded, that is about ten objects the
collector tracks per incident, and CPython's full (generation 2) collection walks all of them
(measured: 340 ms with 100k open incidents) whenever enough objects have survived since the last
one, that is at arbitrary moments under load; those pauses set the p99 of the deadline latency.
Open incidents are now kept as their stored bytes between batches (``live/frozen.py``), which the
collector does not track, so a full collection walks far less; the policy still keeps it off the
hot path (what a batch decodes, report figures, SLO states, the due index are still tracked).

Policy (``install``):
- automatic full collections are turned off (``threshold2`` out of reach); the young generations
  keep Python's defaults, so short-lived cycles are still collected as usual;
- every ``interval`` seconds a timer collects, then ``gc.freeze()``s the survivors: the next
  collection walks only what was created since, so its cost follows the churn, not the state;
- every ``FULL_EVERY``-th time it unfreezes first, so garbage cycles formed among frozen objects
  are reclaimed too (an occasional full pause, about once an hour by default, instead of many).

Reference counting, which frees almost everything (replaced incident states are acyclic), is not
affected. ``interval`` 0 leaves Python's defaults alone.

Heap trim: every batch decodes the incidents it touches and drops them again, and values over
512 bytes (an incident's stored bytes) come from the C allocator, whose freed pages stay in the
process until trimmed. Each maintenance run ends with glibc's ``malloc_trim(0)``, which returns
them (measured with 40k open incidents after a collection: resident memory 165 -> 137 MiB in
2.8 ms). Where the C library has no ``malloc_trim`` (not glibc) nothing is done.

The shipped interval is 30 s (``LiveSettings.gc_interval``): with open incidents frozen, a run
walks only what survived since the last one, and the full run every ``FULL_EVERY``-th time (every
6 minutes) took 38 ms with 100k open incidents in process (340 ms when they were kept decoded).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from typing import Any

__all__ = ["install", "maintain", "trim", "FULL_EVERY"]

FULL_EVERY = 12
_NO_AUTO_FULL = 1 << 30


class _State:
    runs = 0


def maintain() -> float:
    """One maintenance step; returns the seconds it took."""
    start = time.perf_counter()
    _State.runs += 1
    if _State.runs % FULL_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    trim()
    return time.perf_counter() - start


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None)
    except OSError:
        return None


_TRIM = _malloc_trim()


def trim() -> bool:
    """Give the C heap's free pages back to the system; False where that is not possible."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def install(app: Any, interval: float) -> bool:
    """Apply the policy to this process and add its timer to ``app``; False when ``interval`` is 0."""
    if interval <= 0:
        return False
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NO_AUTO_FULL)

    @app.timer(interval, name="escalation-gc")
    async def _gc() -> None:
        maintain()

    return True
