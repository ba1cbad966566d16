"""Period reports, the partition side: what happened per agreement and reporting period.

Figures are fed from the outputs as they are produced (``record``): tickets opened per priority,
``sla.met``/``sla.breached`` per clock and priority, escalations, burn-rate alerts and SLO
attainment. When the period closes here, its figures leave as a :class:`PartialReport`; the desk
(``desk.py``, keyed by agreement) merges the partials of every source with the money it booked
(penalties, credits, caps) and publishes ``report.published`` once every source has passed the
close. Replay has one source; the live engine has one per input partition.

Invariants:
- A reporting period opens here with the first activity of its agreement in it (a ticket opened,
  any recorded output, a metric slice), and closes at its end + grace; figures for a period
  already closed here are dropped (corrections are made by replaying history).
- The per-period record is a JSON-ready dict, so ``to_dict``/``from_dict`` are copies.
- Only agreements with a ``reporting`` section are reported on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from escalation.core.codec import record
from escalation.core.contract.compiled import CompiledAgreement
from escalation.core.contract.registry import Registry
from escalation.core.money.amounts import money
from escalation.core.money.caps import CapBudget, cap_left, cap_limit
from escalation.core.outputs import VERDICT_TYPES, Output, OutputType, output, utc
from escalation.core.reporting import objectives
from escalation.core.services.slo_compiled import validity_us
from escalation.core.time.periods import Period, by_label, period_at, to_dt, to_us
from escalation.core.time.watermark import closed_before, mark_closed

_BY_PERIOD_FIELD = (OutputType.SLO_ATTAINMENT, OutputType.SLO_NO_DATA)
RECORDED = {OutputType.SLA_MET, OutputType.SLA_BREACHED, OutputType.ESCALATION_TRIGGERED, OutputType.SLO_BURN_RATE, *_BY_PERIOD_FIELD}


def fresh_figures(p: Period) -> dict:
    """Empty partition-side figures of period ``p``."""
    return {"start_us": p.start_us, "end_us": p.end_us, "opened": {}, "met": {}, "breached": {},
            "escalations": 0, "slos": [], "alerts": {}}


@record
@dataclass(frozen=True, slots=True)
class PartialReport:
    """One source's figures of one agreement's reporting period, sent when the source closes it."""

    agreement: str
    period: str
    start: datetime  # the period's start (which agreement revision governs it)
    figures: dict



@record
@dataclass(slots=True)
class ReportState:
    periods: dict[str, dict] = field(default_factory=dict)
    closed_until_us: int | None = None



class Revisions:
    """Which revision of an agreement governs an instant (for periods, zones and wording)."""

    def __init__(self, registry: Registry):
        self._revisions: dict[str, list[tuple[CompiledAgreement, tuple[int, int]]]] = {}
        for compiled in sorted(registry, key=lambda c: (c.id, -c.revision)):
            self._revisions.setdefault(compiled.id, []).append((compiled, validity_us(compiled, registry.renews(compiled))))

    def __contains__(self, agreement: str) -> bool:
        return agreement in self._revisions

    def compiled_at(self, agreement: str, at_us: int) -> CompiledAgreement | None:
        revisions = self._revisions.get(agreement)
        if not revisions:
            return None
        for c, (a, b) in revisions:  # a loop, not next(generator): asked for every recorded output
            if a <= at_us < b:
                return c
        return revisions[0][0]

    def reported(self, agreement: str, at_us: int) -> CompiledAgreement | None:
        """The governing revision at ``at_us`` if it has periods to close (``tracked``), else None."""
        compiled = self.compiled_at(agreement, at_us)
        return compiled if compiled is not None and tracked(compiled) else None


def tracked(compiled: CompiledAgreement) -> bool:
    """Whether an agreement's periods are followed: a ``reporting`` section, ticket objectives
    or an earn-back (``report.published`` itself only with ``reporting``)."""
    a = compiled.agreement
    return (a.reporting is not None or bool(a.objectives)
            or any(getattr(r, "earn_back", None) is not None for r in a.remedies))


class Reports:
    """Partition-side report figures of every reporting agreement; ``touch``/``record`` return periods to schedule."""

    def __init__(self, registry: Registry):
        self.revisions = Revisions(registry)
        self.states: dict[str, ReportState] = {}

    def touch(self, agreement: str, at_us: int, label: str | None = None) -> tuple[Period | None, dict | None]:
        """The open figures of the period at ``at_us`` (or ``label``), opening it if needed.

        Returns (newly opened period or None, figures or None when not reported / already closed).
        """
        st = self.states.get(agreement)
        if st is not None and label is None:
            for fig in st.periods.values():
                if fig["start_us"] <= at_us < fig["end_us"]:
                    return None, fig  # fast path: an open period
        compiled = self.revisions.reported(agreement, at_us)
        if compiled is None:
            return None, None
        p = by_label(compiled.tz, label) if label else period_at(compiled.tz, at_us)
        st = self.states.setdefault(agreement, ReportState())
        if p.label in st.periods:
            return None, st.periods[p.label]
        if closed_before(st, p.start_us):
            return None, None
        st.periods[p.label] = fresh_figures(p)
        return p, st.periods[p.label]

    def record(self, out: Output) -> Period | None:
        """Count one output into its period's figures; returns a newly opened period, if any."""
        kind, d = out.type, out.data
        if kind not in RECORDED:
            return None
        agreement = d.get("agreement")
        if agreement not in self.revisions:
            return None
        at_us = to_us(out.time)
        opened, fig = self.touch(agreement, at_us, d["period"] if kind in _BY_PERIOD_FIELD else None)
        if fig is not None:
            _tally(fig, kind, d)
            objectives.tally(self.revisions.compiled_at(agreement, at_us), fig, out)
        return opened

    def ticket_opened(self, agreement: str, at_us: int, priority: str) -> Period | None:
        opened, fig = self.touch(agreement, at_us)
        if fig is not None:
            fig["opened"][priority] = fig["opened"].get(priority, 0) + 1
        return opened

    def close(self, agreement: str, label: str) -> PartialReport:
        """Close ``label`` here: its figures, for the desk."""
        st = self.states[agreement]
        fig = st.periods.pop(label)
        mark_closed(st, fig["end_us"])
        return PartialReport(agreement, label, to_dt(fig["start_us"]), fig)


def _tally(fig: dict, kind: OutputType, d: dict) -> None:
    if kind in VERDICT_TYPES:
        key = f"{d['clock']}/{d['priority']}"
        bucket = fig["met" if kind is OutputType.SLA_MET else "breached"]
        bucket[key] = bucket.get(key, 0) + 1
    elif kind is OutputType.ESCALATION_TRIGGERED:
        fig["escalations"] += 1
    elif kind is OutputType.SLO_ATTAINMENT:
        fig["slos"].append({k: d[k] for k in ("slo", "service", "attainment", "objective", "met", "good", "total", "excluded")})
    elif kind is OutputType.SLO_NO_DATA:
        fig["slos"].append({"slo": d["slo"], "service": d["service"], "no_data": True, "objective": d["objective"]})
    elif kind is OutputType.SLO_BURN_RATE and d["state"] == "firing":
        fig["alerts"][d["severity"]] = fig["alerts"].get(d["severity"], 0) + 1


# -- the desk side: merged figures and wording --------------------------------------------------

def fresh_money() -> dict:
    return {"penalties": {"count": 0, "amount": "0.00", "capped": 0}, "credits": []}


def tally_money(money_fig: dict, out: Output) -> None:
    """Count one money output (penalty, credit, earn-back) into a period's money figures."""
    kind, d = out.type, out.data
    if kind is OutputType.PENALTY_ASSESSED:
        pen = money_fig["penalties"]
        pen["count"] += 1
        pen["amount"] = str(money(Decimal(pen["amount"]) + Decimal(d["amount"])))
        pen["capped"] += bool(d["capped"])
    elif kind is OutputType.CREDIT_ISSUED:
        measure = "slo" if "slo" in d else "objective"
        money_fig["credits"].append({k: d[k] for k in ("remedy", measure, "attainment", "credit_percent", "amount", "capped")})
    elif kind is OutputType.CREDIT_EARNED_BACK:
        measure = "slo" if "slo" in d else "objective"
        money_fig.setdefault("earned_back", []).append({k: d[k] for k in ("remedy", measure, "period", "amount")})


def merge_figures(compiled: CompiledAgreement, start_us: int, end_us: int, parts: list[dict], money_fig: dict) -> dict:
    """One period's figures from every source's partial plus the desk's money (SLOs in clause order)."""
    fig = {"start_us": start_us, "end_us": end_us, "opened": {}, "met": {}, "breached": {}, "escalations": 0,
           "slos": [], "alerts": {}, **copy.deepcopy(money_fig)}
    for part in parts:
        for name in ("opened", "met", "breached", "alerts"):
            for k, v in part[name].items():
                fig[name][k] = fig[name].get(k, 0) + v
        fig["escalations"] += part["escalations"]
        fig["slos"] += part["slos"]
    order = {s.id: i for i, s in enumerate(compiled.agreement.slos)}
    fig["slos"].sort(key=lambda e: (order.get(e["slo"], len(order)), e["slo"], e["service"]))
    fig["objectives"] = objectives.merge(parts)
    return fig


def _clocks(compiled: CompiledAgreement, fig: dict) -> dict:
    out: dict = {}
    for clock, priority in compiled.targets:
        key = f"{clock}/{priority}"
        out.setdefault(clock, {})[priority] = {"met": fig["met"].get(key, 0), "breached": fig["breached"].get(key, 0)}
    return out


def summary(compiled: CompiledAgreement, label: str, fig: dict, budget: CapBudget) -> dict:
    a = compiled.agreement
    penalties = Decimal(fig["penalties"]["amount"])
    credits = money(sum((Decimal(c["amount"]) for c in fig["credits"]), Decimal("0")))
    limit, left = cap_limit(compiled), cap_left(compiled, budget, label)
    return {
        "tickets": {"opened": {p: fig["opened"].get(p, 0) for p in a.priorities},
                    "opened_total": sum(fig["opened"].values())},
        "clocks": _clocks(compiled, fig), "escalations": fig["escalations"],
        "slos": fig["slos"], "burn_rate_alerts": dict(sorted(fig["alerts"].items())),
        "penalties": dict(fig["penalties"]), "credits": fig["credits"],
        "totals": {"penalties": str(penalties), "credits": str(credits), "total": str(money(penalties + credits)),
                   "currency": a.currency, "cap_limit": None if limit is None else str(limit),
                   "cap_left": None if left is None else str(left)},
        **_contract_terms(compiled, label, fig),
    }


def _contract_terms(compiled: CompiledAgreement, label: str, fig: dict) -> dict:
    """Objectives and earn-backs of the period, only for agreements that have them (DESIGN.md §13)."""
    out: dict = {}
    if compiled.agreement.objectives:
        values = objectives.verdicts(compiled, label, fig)
        out["objectives"] = [
            {"objective": o.id, "met": fig["objectives"].get(o.id, [0, 0])[0],
             "missed": fig["objectives"].get(o.id, [0, 0])[1], "attainment": values[o.id],
             "at_least": o.at_least, "verdict": values[o.id] is not None}
            for o in compiled.agreement.objectives]
    if "earned_back" in fig:
        out["earned_back"] = fig["earned_back"]
    return out


def report_notice(compiled: CompiledAgreement, label: str, fig: dict, at: datetime, budget: CapBudget) -> Output:
    a = compiled.agreement
    body = summary(compiled, label, fig, budget)
    deliver = [{"name": n, **a.notification_targets[n].model_dump()} for n in a.reporting.deliver_to
               if n in a.notification_targets]
    t = body["totals"]
    data = {
        "agreement": a.id, "revision": a.revision, "period": label, "period_start": utc(to_dt(fig["start_us"])),
        "period_end": utc(to_dt(fig["end_us"])), "currency": a.currency, "summary": body, "deliver_to": deliver,
        "headline": (f"{a.id} {label}: {body['tickets']['opened_total']} tickets, penalties {t['penalties']}, "
                     f"credits {t['credits']} {a.currency}"),
        "explain": {"reason": "reporting period closed", "clause": "reporting"},
    }
    return output(compiled.source, OutputType.REPORT_PUBLISHED, a.id, at, (label,), data)
