"""SLO state: small plain records, saved and loaded by the one codec (``codec.record``, like ``state.py``).

Invariants:
- ``SloState`` is keyed by (agreement id, SLO id); ``periods`` holds the open periods only (one,
  or two while a close waits for its grace); a closed period is gone, and ``closed_until_us`` is
  the end of the latest closed one: a slice starting before it is late ("period closed").
- ``PeriodAcc`` sums what counts toward attainment: ``good``/``total`` after removing time
  outside ``counted_time`` (``uncounted``) and inside maintenance windows (``excluded``), all in
  the slice's units scaled by the fraction of the slice's time involved.
- ``Stream`` remembers the last ``DEDUP_WINDOW`` input ids of one (service, sli) stream (as 64-bit
  digests), each with a digest of its content: an id seen there is a duplicate and is ignored
  (flagged when its content differs). Bounded on purpose: redeliveries are recent; an older
  repeat of a slice in a closed period is rejected as late, not counted twice.
- ``to_dict``/``from_dict`` (the codec) round-trip exactly (floats via JSON keep their value), so
  a stream split anywhere and carried over gives the same outputs.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Annotated

from escalation.core.codec import record
from escalation.core.events import id_hash

from escalation.core.services.burn_rate import BurnState

DEDUP_WINDOW = 1024


@record
@dataclass(slots=True)
class PeriodAcc:
    label: str
    start_us: int
    end_us: int
    revision: int
    good: float = 0.0
    total: float = 0.0
    excluded: float = 0.0
    uncounted: float = 0.0
    slices: int = 0


@record
@dataclass(slots=True)
class SloState:
    agreement: str
    slo: str
    service: str
    sli: str
    revision: int = 0                      # revision whose burn-rate layout ``burn`` follows
    periods: dict[str, PeriodAcc] = field(default_factory=dict)
    closed_until_us: int | None = None
    burn: BurnState | None = None


@record
@dataclass(slots=True)
class Stream:
    """Recent input ids of one (service, sli) metric stream, as 64-bit digests.

    ``order`` is the ring of the last ``DEDUP_WINDOW`` id digests in arrival order, ``contents``
    their content digests (same order; 0 = not recorded, state saved before they existed),
    ``sorted_`` the id digests sorted for binary search: 24 bytes per remembered id, whatever the
    ids look like.
    """

    order: Annotated[array, "Q"] = field(default_factory=lambda: array("Q"))
    sorted_: Annotated[array, "Q"] = field(default_factory=lambda: array("Q"))
    contents: Annotated[array, "Q"] = field(default_factory=lambda: array("Q"))

    def digest_of(self, event_id: str) -> int | None:
        """The content digest remembered with ``event_id`` (0: not recorded), or None if not seen."""
        h = id_hash(event_id)
        i = bisect_left(self.sorted_, h)
        if i == len(self.sorted_) or self.sorted_[i] != h:
            return None
        return self.contents[self.order.index(h)]  # rare (a repeat): a scan of the ring is fine

    def remember(self, event_id: str, digest: int) -> None:
        h = id_hash(event_id)
        insort(self.sorted_, h)
        self.order.append(h)
        self.contents.append(digest)
        if len(self.order) > DEDUP_WINDOW:
            old = self.order.pop(0)
            self.contents.pop(0)
            del self.sorted_[bisect_left(self.sorted_, old)]
