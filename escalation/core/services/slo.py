"""The pure per-SLO step: count a metric slice, evaluate burn rates, close a period.

Entry points (no I/O, no wall clock; time is the slice's own or the close instant):
- ``late_reason(cslo, state, start_us)``        -> None, or why the slice is late
- ``open_periods(cslo, state, s, e)``            -> periods newly opened for ``[s, e)``
- ``observe(cslo, state, s, e, good, total)``    -> counts the slice (no outputs)
- ``burn_outputs(cslo, state, e)``               -> burn-rate outputs at the slice end
- ``close_period(cslo, state, label)`` -> ``slo.attainment``/``slo.no_data`` + ``CreditDue``s

Counting rule (DESIGN.md §5 "Credits"): a slice ``[s, e)`` with ``good``/``total`` is spread
evenly over its time. The part inside each period is clipped to the SLO's ``counted_time`` open
hours, then maintenance windows excluding the SLO are cut out; what remains, as a fraction of the
slice's length, scales good and total into that period (and into the burn-rate buckets). So a
slice half in February and half in March counts half in each; a slice entirely in maintenance
counts only as ``excluded``. ``attainment = 100 * good / total`` rounded to 6 decimals (float
noise of the proportional split never moves a figure across a tier bound), clamped to [0, 100].

Invariants: a slice starting before ``closed_until_us`` is late and changes nothing (the caller
rejects it with "period closed"); ``close_period`` removes the period from the state, so each
period closes, and credits, exactly once.
"""

from __future__ import annotations

from escalation.core.money.assessment import CreditDue
from escalation.core.services import burn_rate as br
from escalation.core.services.slo_compiled import CompiledSlo
from escalation.core.services.slo_outputs import (
    attainment_notice,
    burn_notice,
    no_data_notice,
)
from escalation.core.services.slo_state import PeriodAcc, SloState
from escalation.core.time.maintenance import subtract
from escalation.core.time.periods import (
    Period,
    by_label,
    following,
    period_at,
    to_dt,
    to_us,
)
from escalation.core.time.watermark import closed_before, mark_closed


def new_state(cslo: CompiledSlo) -> SloState:
    s = cslo.slo
    return SloState(cslo.compiled.id, s.id, s.service, s.sli, cslo.compiled.revision,
                    burn=None if cslo.burn is None else br.new_state(cslo.burn))


def late_reason(cslo: CompiledSlo, st: SloState | None, start_us: int, now_us: int | None, grace_us: int) -> str | None:
    """Why a slice starting at ``start_us`` is late, or None.

    Late: its period is closed in the state, or (never opened) the clock already passed the
    instant it would have closed at.
    """
    if st is not None:
        for acc in st.periods.values():
            if acc.start_us <= start_us < acc.end_us:
                return None  # fast path: an open period
    p = period_at(cslo.compiled.tz, start_us)
    if not closed_before(st, start_us):
        if now_us is None or p.end_us + grace_us >= now_us or (st is not None and p.label in st.periods):
            return None
    return (f"period closed: slice starting {to_dt(start_us).isoformat()} falls in period {p.label} "
            f"(ended {to_dt(p.end_us).isoformat()}) of SLO {cslo.id} ({cslo.compiled.id}), already closed; "
            f"corrections are made by replaying history with `escalation replay`")


def open_periods(cslo: CompiledSlo, st: SloState, s: int, e: int) -> list[PeriodAcc]:
    """Open (empty) every period ``[s, e)`` touches that is not open yet; return the new ones."""
    for acc in st.periods.values():
        if acc.start_us <= s and e <= acc.end_us:
            return []  # fast path: inside an open period
    tz, new = cslo.compiled.tz, []
    p = period_at(tz, s)
    while p.start_us < e:
        if p.label not in st.periods:
            acc = st.periods[p.label] = PeriodAcc(p.label, p.start_us, p.end_us, cslo.compiled.revision)
            new.append(acc)
        p = following(tz, p)
    st.periods = dict(sorted(st.periods.items()))
    return new


def _kept(cslo: CompiledSlo, period: Period, a: int, b: int) -> tuple[int, list[tuple[int, int]]]:
    """(counted time, counted pieces outside maintenance) of ``[a, b)`` inside ``period``."""
    if cslo.calendar is None:
        pieces = [(a, b)]
    else:
        pieces = [(to_us(x), to_us(y)) for x, y in cslo.calendar.open_intervals(to_dt(a), to_dt(b))]
    counted = sum(y - x for x, y in pieces)
    if cslo.maintenance.excludes(cslo.id):
        excluded = cslo.maintenance.excluded(cslo.id, period)
        pieces = [p for x, y in pieces for p in subtract(x, y, excluded)]
    return counted, pieces


def observe(cslo: CompiledSlo, st: SloState, s: int, e: int, good: float, total: float) -> None:
    """Count slice ``[s, e)`` into its open periods and burn buckets (``burn_outputs`` evaluates)."""
    span, tz = e - s, cslo.compiled.tz
    for acc in st.periods.values():
        a, b = max(s, acc.start_us), min(e, acc.end_us)
        if a >= b:
            continue
        counted, pieces = _kept(cslo, by_label(tz, acc.label), a, b)
        kept = sum(y - x for x, y in pieces)
        f = kept / span
        acc.good += good * f
        acc.total += total * f
        acc.excluded += total * ((counted - kept) / span)
        acc.uncounted += total * ((b - a - counted) / span)
        acc.slices += 1
        if st.burn is not None:
            for x, y in pieces:
                g = (y - x) / span
                br.add(cslo.burn, st.burn, x, y, good * g, total * g)


def burn_outputs(cslo: CompiledSlo, st: SloState, e: int) -> list[dict]:
    """Burn-rate rules that start firing or clear at ``e`` (a slice end)."""
    if st.burn is None or not cslo.burn.rules:
        return []
    return [burn_notice(cslo, st, t, to_dt(e)) for t in br.evaluate(cslo.burn, st.burn, e)]


def attainment(acc: PeriodAcc) -> float | None:
    if acc.total <= 0:
        return None
    return min(100.0, max(0.0, round(100.0 * acc.good / acc.total, 6)))


def tier_for(remedy, value: float):
    """The tier with the smallest ``below`` still greater than ``value``, or None."""
    eligible = [t for t in remedy.tiers if t.below > value]
    return min(eligible, key=lambda t: t.below) if eligible else None


def close_period(cslo: CompiledSlo, st: SloState, label: str) -> list:
    """Close ``label``: ``slo.no_data``, or ``slo.attainment`` then one ``CreditDue`` per applying remedy
    (the money side caps it into ``credit.issued``). Their ``time`` is the period's end, the instant
    the period was over (DESIGN.md §4), whatever grace delayed the close."""
    acc = st.periods.pop(label)
    at = to_dt(acc.end_us)
    mark_closed(st, acc.end_us)
    value = attainment(acc)
    if value is None:
        return [no_data_notice(cslo, acc, at)]
    outputs: list = [attainment_notice(cslo, st, acc, value, at)]
    for index, remedy in cslo.credits:
        tier = tier_for(remedy, value)
        if tier is not None:
            outputs.append(CreditDue(cslo.compiled.id, cslo.compiled.revision, cslo.id, index,
                                     list(remedy.tiers).index(tier), label, value, at))
    return outputs
