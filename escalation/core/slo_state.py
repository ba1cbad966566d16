"""SLO state: small plain records, serialisable to JSON-ready dicts (like ``state.py``).

Invariants:
- ``SloState`` is keyed by (agreement id, SLO id); ``periods`` holds the open periods only (one,
  or two while a close waits for its grace); a closed period is gone, and ``closed_until_us`` is
  the end of the latest closed one: a slice starting before it is late ("period closed").
- ``PeriodAcc`` sums what counts toward attainment: ``good``/``total`` after removing time
  outside ``counted_time`` (``uncounted``) and inside maintenance windows (``excluded``), all in
  the slice's units scaled by the fraction of the slice's time involved.
- ``Stream`` remembers the last ``DEDUP_WINDOW`` input ids of one (service, sli) stream: an id
  seen there is a duplicate and is ignored. Bounded on purpose: redeliveries are recent.
- ``to_dict``/``from_dict`` round-trip exactly (floats via JSON keep their value), so a stream
  split anywhere and carried over gives the same outputs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .burn_rate import BurnState

DEDUP_WINDOW = 1024


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

    def to_dict(self) -> dict:
        return {"label": self.label, "start_us": self.start_us, "end_us": self.end_us, "revision": self.revision,
                "good": self.good, "total": self.total, "excluded": self.excluded,
                "uncounted": self.uncounted, "slices": self.slices}

    @classmethod
    def from_dict(cls, d: dict) -> "PeriodAcc":
        return cls(**d)


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

    def to_dict(self) -> dict:
        return {"agreement": self.agreement, "slo": self.slo, "service": self.service, "sli": self.sli,
                "revision": self.revision, "periods": [p.to_dict() for p in self.periods.values()], "closed_until_us": self.closed_until_us,
                "burn": None if self.burn is None else self.burn.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "SloState":
        periods = {p["label"]: PeriodAcc.from_dict(p) for p in d["periods"]}
        burn = None if d["burn"] is None else BurnState.from_dict(d["burn"])
        return cls(d["agreement"], d["slo"], d["service"], d["sli"], d["revision"], periods, d["closed_until_us"], burn)


@dataclass(slots=True)
class Stream:
    """Recent input ids of one (service, sli) metric stream."""

    order: deque = field(default_factory=deque)
    ids: set = field(default_factory=set)

    def seen(self, event_id: str) -> bool:
        return event_id in self.ids

    def remember(self, event_id: str) -> None:
        self.order.append(event_id)
        self.ids.add(event_id)
        if len(self.order) > DEDUP_WINDOW:
            self.ids.discard(self.order.popleft())

    def to_dict(self) -> list[str]:
        return list(self.order)

    @classmethod
    def from_dict(cls, ids: list[str]) -> "Stream":
        return cls(deque(ids), set(ids))
