"""From Prometheus query results to ``metric.observed`` slices (DESIGN.md §14). Pure: no I/O, no
clock (times are arguments), so the backfill and the live loop share every decision.

Invariants:
- slices are ``[start, start + size)`` with ``start`` a multiple of ``size`` seconds since the
  epoch (with ``size`` dividing a day: 1m slices start on the minute, 5m slices on multiples of
  five minutes); an expression is evaluated at the slice's *end*, so ``[1m]`` ranges are the slice;
- the id of a slice is a function of (service, sli, slice start) only, so a restart or a backfill
  over the same time produces the same ids and the engine ignores the repeats (DESIGN.md §3);
- counts are the query's values rounded half-up to integers; a slice is emitted only with two
  finite counts ``0 <= good <= total``; everything else is a :class:`Skip` with the reason
  (no data, not a number, negative, good above total, more than one series): never clamped,
  never guessed;
- every emitted event has passed :func:`escalation.core.events.decode_event`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from escalation.core.events import Rejected, decode_event
from escalation.edges.sli_config import SliQuery


@dataclass(frozen=True)
class Skip:
    """A slice not emitted, and why (reported as a warning)."""

    sli: SliQuery
    start: int
    end: int
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.sli.service}/{self.sli.sli} {iso(self.start)}..{iso(self.end)}: {self.reason}"


class NotACount(ValueError):
    pass


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_to(epoch: float, size: int) -> int:
    return int(epoch // size) * size


def slice_ends(start: int, end: int, size: int) -> list[int]:
    """Ends of the slices lying in ``[floor(start), end]`` (``start`` rounded down to a slice)."""
    first = floor_to(start, size) + size
    return list(range(first, floor_to(end, size) + 1, size))


def count(value: str | None) -> int:
    """A Prometheus sample value as a count, rounded half-up; ``NotACount`` names the problem."""
    if value is None:
        raise NotACount("no data")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise NotACount(f"value {value!r} is not a number") from None
    if not number.is_finite():
        raise NotACount(f"value {value} is not a finite number")
    rounded = int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if rounded < 0:
        raise NotACount(f"value {value} is negative")
    return rounded


def sample_of(result: list[dict], key: str) -> str | None:
    """The one series' value of an instant-vector result (``key`` = "value"), None when empty;
    ``NotACount`` when the expression returned several series (it must be aggregated)."""
    if not result:
        return None
    if len(result) > 1:
        raise NotACount(f"the expression returned {len(result)} series; aggregate it to one, e.g. sum(...)")
    return result[0][key][1]


def slice_id(sli: SliQuery, start: int) -> str:
    return f"prometheus:{sli.service}:{sli.sli}:{iso(start)}"


def metric_event(sli: SliQuery, start: int, end: int, good_value: str | None,
                 total_value: str | None) -> dict | Skip:
    """The ``metric.observed`` event of one slice, or why there is none."""
    try:
        good, total = count(good_value), count(total_value)
    except NotACount as err:
        which = "good" if _bad(good_value) else "total"
        return Skip(sli, start, end, f"{which}: {err}")
    if good > total:
        return Skip(sli, start, end, f"good ({good}) exceeds total ({total}); not clamped, check the expressions")
    event = {"id": slice_id(sli, start), "type": "metric.observed", "service": sli.service, "sli": sli.sli,
             "start": iso(start), "end": iso(end), "good": good, "total": total}
    try:
        decode_event(event)
    except Rejected as err:
        return Skip(sli, start, end, f"rejected by the decoder: {err.reason}")
    return event


def _bad(value: str | None) -> bool:
    try:
        count(value)
        return False
    except NotACount:
        return True
