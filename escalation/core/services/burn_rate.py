"""Multiwindow burn-rate alerts over fixed-size ring buffers of time buckets.

``burn rate = (1 - good/total over the window) / (1 - objective/100)``: 1.0 spends the error
budget exactly over the SLO window. A rule fires when BOTH its long and its short window burn
faster than ``factor`` (strictly greater) and clears when either drops to ``factor`` or below.
``google-default`` is the SRE workbook set (ch. 5, "multiwindow, multi-burn-rate alerts"):

    14.4x over 1h and 5m  -> page       6x over 6h and 30m -> page
    3x over 1d and 2h     -> ticket     1x over 3d and 6h  -> ticket

Bounded state: counts go into time buckets, not a list of slices. Bucket size depends on the
window: <= 2h -> 1 minute, <= 3d -> 5 minutes, longer -> 1 hour. Windows of one bucket size share
one ring of ``ceil(longest window / bucket) + 1`` buckets; each window keeps a running (good,
total) sum of its ``m + 1`` newest buckets, updated when data lands in a bucket it covers and when
the ring's head moves past a bucket. So an SLO with google-default rules keeps 121 + 865 buckets,
whatever the traffic.

Invariants:
- A window at instant ``t`` covers every bucket that overlaps ``[t - window, t)``: for
  bucket-aligned ``t`` that is exactly ``[t - window, t)`` (``m = ceil(window / bucket)`` buckets);
  otherwise it also holds the older part (less than one bucket) of the bucket containing
  ``t - window``. So a rule never fires later, and clears at most one bucket later, than with exact
  windows; with 1-minute slices the 1-minute-bucket windows are exact.
- A slice spread over several buckets is split proportionally to its time in each.
- Data older than a ring's span is ignored for that ring (it still counts for attainment).
- "Exceeds" is strict and ignores float noise (relative 1e-9): exactly 1x does not fire a 1x rule.
- Evaluation happens at slice ends in increasing time; an out-of-order slice adds its counts but
  does not evaluate (time does not go back). No data in a window -> rate 0 (not firing).
- Everything is plain floats updated in a fixed order, so a state carried over with
  ``to_dict``/``from_dict`` continues exactly as if never interrupted.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from escalation.agreement.durations import iso_duration, parse_duration
from escalation.agreement.models import BurnRateRule, Slo
from escalation.core.codec import record

_MIN, _HOUR = 60_000_000, 3_600_000_000
_EPS = 1e-9
_REL = 1e-9          # relative tolerance of "exceeds the factor"
GOOGLE_DEFAULT = (
    BurnRateRule(long_window="1h", short_window="5m", factor=14.4, severity="page"),
    BurnRateRule(long_window="6h", short_window="30m", factor=6, severity="page"),
    BurnRateRule(long_window="1d", short_window="2h", factor=3, severity="ticket"),
    BurnRateRule(long_window="3d", short_window="6h", factor=1, severity="ticket"),
)


@dataclass(frozen=True, slots=True)
class Rule:
    key: str                  # stable id part: "PT1H/PT5M x14.4"
    clause: str               # "slos[0].burn_rate_alerts[0]"
    long_w: int               # index into BurnSpec.windows
    short_w: int
    factor: float
    severity: str             # "page" | "ticket"


@dataclass(frozen=True, slots=True)
class BurnSpec:
    rules: tuple[Rule, ...]
    rings: tuple[tuple[int, int], ...]            # (bucket_us, buckets)
    windows: tuple[tuple[int, int, int], ...]     # (window_us, ring, buckets covered)
    ring_windows: tuple[tuple[int, ...], ...]     # per ring: its window indexes
    budget: float                                 # 1 - objective/100
    slo_window: int | None = None                 # rolling SLO window (budget), if any

    def window_text(self, w: int) -> str:
        return iso_duration(timedelta(microseconds=self.windows[w][0]))


def bucket_for(window_us: int) -> int:
    return _MIN if window_us <= 2 * _HOUR else 5 * _MIN if window_us <= 72 * _HOUR else _HOUR


def _us(text: str) -> int:
    return parse_duration(text) // timedelta(microseconds=1)


def compile_burn(slo: Slo, clause: str, slo_window_us: int | None) -> BurnSpec | None:
    """The rules and ring layout of one SLO, or None when it has neither alerts nor a rolling window."""
    spec = slo.burn_rate_alerts
    rules_in = GOOGLE_DEFAULT if spec == "google-default" else tuple(spec or ())
    if not rules_in and slo_window_us is None:
        return None
    lengths = sorted({_us(x) for r in rules_in for x in (r.long_window, r.short_window)}
                     | ({slo_window_us} if slo_window_us else set()))
    sizes = sorted({bucket_for(w) for w in lengths})
    rings = tuple((b, 1 + max(-(-w // b) for w in lengths if bucket_for(w) == b)) for b in sizes)
    windows = tuple((w, sizes.index(bucket_for(w)), -(-w // bucket_for(w))) for w in lengths)
    ring_windows = tuple(tuple(i for i, w in enumerate(windows) if w[1] == r) for r in range(len(rings)))
    rules = tuple(
        Rule(f"{iso_duration(timedelta(microseconds=_us(r.long_window)))}/"
             f"{iso_duration(timedelta(microseconds=_us(r.short_window)))} x{r.factor:g}",
             f"{clause}.burn_rate_alerts" + ("" if spec == "google-default" else f"[{i}]"),
             lengths.index(_us(r.long_window)), lengths.index(_us(r.short_window)), float(r.factor), r.severity)
        for i, r in enumerate(rules_in))
    budget = float((Decimal(100) - Decimal(repr(slo.objective))) / 100)  # 99.9 -> 0.001, not 0.000999...
    return BurnSpec(rules, rings, windows, ring_windows, budget,
                    lengths.index(slo_window_us) if slo_window_us else None)


@record
@dataclass(slots=True)
class BurnState:
    heads: list                 # per ring: bucket index of the head, or None before any data
    good: list[Annotated[array, "d"]]   # per ring: bucket good counts
    total: list[Annotated[array, "d"]]
    sums: list                  # per window: [good, total]
    firing: list                # per rule: bool
    transitions: list           # per rule: firing/resolved outputs emitted so far
    evaluated_us: int | None = None


def new_state(spec: BurnSpec) -> BurnState:
    return BurnState([None] * len(spec.rings), [array("d", bytes(8 * n)) for _, n in spec.rings],
                     [array("d", bytes(8 * n)) for _, n in spec.rings], [[0.0, 0.0] for _ in spec.windows],
                     [False] * len(spec.rules), [0] * len(spec.rules))


def _advance(spec: BurnSpec, st: BurnState, r: int, k: int) -> None:
    """Move ring ``r``'s head to bucket ``k`` (> head), dropping buckets that leave each window."""
    n, head, good, total = spec.rings[r][1], st.heads[r], st.good[r], st.total[r]
    if head is None or k - head >= n:
        for i in range(n):
            good[i] = total[i] = 0.0
        for w in spec.ring_windows[r]:
            st.sums[w] = [0.0, 0.0]
    else:
        for h in range(head + 1, k + 1):
            for w in spec.ring_windows[r]:
                pos, s = (h - spec.windows[w][2] - 1) % n, st.sums[w]
                s[0] -= good[pos]
                s[1] -= total[pos]
            pos = h % n
            good[pos] = total[pos] = 0.0
    st.heads[r] = k


def _put(spec: BurnSpec, st: BurnState, r: int, k: int, g: float, t: float) -> None:
    head = st.heads[r]
    if head is None or k > head:
        _advance(spec, st, r, k)
        head = k
    n = spec.rings[r][1]
    if k <= head - n:
        return
    pos = k % n
    st.good[r][pos] += g
    st.total[r][pos] += t
    for w in spec.ring_windows[r]:
        if k >= head - spec.windows[w][2]:
            s = st.sums[w]
            s[0] += g
            s[1] += t


def add(spec: BurnSpec, st: BurnState, a: int, b: int, g: float, t: float) -> None:
    """Count ``g`` good of ``t`` total spread evenly over ``[a, b)`` (microseconds)."""
    for r, (bucket, _) in enumerate(spec.rings):
        ka, kb = a // bucket, (b - 1) // bucket
        if ka == kb:
            _put(spec, st, r, ka, g, t)
            continue
        span = b - a
        for k in range(ka, kb + 1):
            f = (min(b, (k + 1) * bucket) - max(a, k * bucket)) / span
            _put(spec, st, r, k, g * f, t * f)


def rate(spec: BurnSpec, good: float, total: float) -> float:
    """Burn rate of (good, total); 0 without data, inf when the budget is zero and errors exist."""
    if total <= _EPS:
        return 0.0
    err = max(total - good, 0.0) / total
    if spec.budget <= 0:
        return math.inf if err > _EPS else 0.0
    return err / spec.budget


def _above(value: float, factor: float) -> bool:
    """Strictly above, ignoring float noise: 1.0000000000001x does not exceed 1x."""
    return value > factor * (1 + _REL)


@dataclass(frozen=True, slots=True)
class Transition:
    rule: Rule
    firing: bool
    long: tuple[float, float]      # (good, total) over the long window
    short: tuple[float, float]
    count: int                     # transitions of this rule including this one


def window_sum(spec: BurnSpec, st: BurnState, w: int, t_us: int) -> tuple[float, float]:
    """(good, total) of the buckets overlapping ``[t_us - window, t_us)``; heads must be at ``t_us``."""
    window_us, r, m = spec.windows[w]
    good, total = st.sums[w]
    bucket, n = spec.rings[r]
    head = st.heads[r]
    if head is not None and head - (t_us - window_us) // bucket + 1 == m:
        pos = (head - m) % n  # only m buckets overlap: the oldest of the m + 1 summed lies before
        good, total = good - st.good[r][pos], total - st.total[r][pos]
    return good, total


def evaluate(spec: BurnSpec, st: BurnState, t_us: int) -> list[Transition]:
    """Rule transitions at instant ``t_us`` (a slice end); none if time did not move forward."""
    if st.evaluated_us is not None and t_us <= st.evaluated_us:
        return []
    st.evaluated_us = t_us
    for r, (bucket, _) in enumerate(spec.rings):
        k = (t_us - 1) // bucket
        if st.heads[r] is None or k > st.heads[r]:
            _advance(spec, st, r, k)
    out = []
    for i, rule in enumerate(spec.rules):
        long, short = window_sum(spec, st, rule.long_w, t_us), window_sum(spec, st, rule.short_w, t_us)
        firing = _above(rate(spec, *long), rule.factor) and _above(rate(spec, *short), rule.factor)
        if firing != st.firing[i]:
            st.firing[i] = firing
            st.transitions[i] += 1
            out.append(Transition(rule, firing, long, short, st.transitions[i]))
    return out
