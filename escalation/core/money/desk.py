"""The desk: money and reports per agreement (caps shared by penalties and credits, period reports).

Pure (no I/O, no wall clock). Sources (replay: one; live: two per input partition, its ticket and
its metric processor) submit what
they produce for an agreement, and tell the desk how far their clock has got (``mark``):

- ``PenaltyDue`` (a breach's per-breach remedy) and ``CreditDue`` (a closed SLO period below
  target) wait in ``pending`` until every source's mark has reached their instant; they are then
  booked against the agreement's period budget in (instant, rank, key) order: penalties (rank 0,
  by ticket, clock, cycle, remedy) before credits (rank 1, by SLO clause, remedy) at one instant.
  So the caps cut the same way however the sources' records interleave in transit.
- ``PartialReport`` (one source's figures of a reporting period) is merged at once, replacing an
  earlier copy from the same source (so a redelivered partial never counts twice).
- A reporting period closes at its end + grace once every source has passed that instant (a mark
  after it, or at it from an inclusive advance), after the money due at or before it. It then
  publishes ``report.published`` (its ``time`` is the period's end) with the merged figures and
  the cap budget's limit, and opens the next period (every month has a report once reporting started,
  until the agreement's validity ends).
- Expiry (DESIGN.md §13; ``term.expires_at``, known once the termination is): the period that
  contains the final term's last day is still closed and published; later periods are dropped
  at their close (no verdicts, credits, earn-backs or report). A penalty whose breach instant is
  at or after the expiry instant, and a credit for a period starting at or after it, are dropped
  when booked (no output). Each check is made once every source has passed the instant in
  question, after any termination that could expire the agreement before it, so live == replay.

Invariants:
- Every money output is booked once: a repeated ``PenaltyDue``/``CreditDue`` (same output id,
  pending or booked in one of the agreement's two latest money periods) is ignored.
- ``release`` emits outputs in the order above; for one source that advances in time order
  (replay) that is time order.
- A penalty or credit seen again after its money period dropped out of the two latest is booked
  again; redeliveries come within seconds, so two periods of memory are plenty.
- ``state_of``/``load`` carry one agreement's state (the live engine's table value keyed by
  agreement) and ``marks``; queues are rebuilt from them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from escalation.core.codec import record
from escalation.core.contract.registry import Registry
from escalation.core.contract.term import TermBook, Termination
from escalation.core.marks import Marks
from escalation.core.money import earn_back
from escalation.core.money.assessment import (
    CreditDue,
    assess_credit,
    assess_penalty,
    credit_output_id,
    penalty_output_id,
)
from escalation.core.money.caps import CapBudget
from escalation.core.reporting import objectives
from escalation.core.reporting.figures import (
    PartialReport,
    Revisions,
    fresh_money,
    merge_figures,
    report_notice,
    tally_money,
)
from escalation.core.scheduler import Scheduler
from escalation.core.services.slo_compiled import SloBook, validity_us
from escalation.core.tickets.incident import PenaltyDue
from escalation.core.time.periods import by_label, close_dt, following, to_dt, to_us
from escalation.core.time.watermark import closed_before, mark_closed

_PENALTY, _CREDIT, _REPORT = 0, 1, 2
_KEEP_ASSESSED = 2  # money periods whose booked ids are remembered per agreement


#: the desk's inputs by the ``kind`` their internal records carry (the live desk topic)
_KINDS = {"penalty": PenaltyDue, "credit": CreditDue, "partial": PartialReport, "termination": Termination}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def item_to_dict(item) -> dict:
    """A desk input as JSON-ready data with its kind (the live engine's internal record)."""
    kind = _KIND_OF.get(type(item))
    if kind is None:
        raise TypeError(f"not a desk item: {item!r}")
    return {"kind": kind, **item.to_dict()}


def item_from_dict(d: dict):
    """The desk input a record holds (keys other than its fields, e.g. ``kind``, ``src``, are ignored)."""
    cls = _KINDS.get(d.get("kind"))
    if cls is None:
        raise ValueError(f"unknown desk record kind {d.get('kind')!r}")
    return cls.from_dict(d)


DESK_ITEMS = (PenaltyDue, CreditDue, PartialReport, Termination)


@record
@dataclass(slots=True)
class DeskState:
    """One agreement at the desk."""

    budget: CapBudget = field(default_factory=CapBudget)
    periods: dict[str, dict] = field(default_factory=dict)   # label -> start_us, end_us, parts, money
    closed_until_us: int | None = None
    pending: dict[str, dict] = field(default_factory=dict)   # output id -> at_us, rank, key, item
    assessed: dict[str, list[str]] = field(default_factory=dict)  # money period -> output ids booked
    chains: list[dict] = field(default_factory=list)  # running earn-backs (``earn_back.py``)


class Desk:
    def __init__(self, registry: Registry, sources: int = 1, grace: timedelta = timedelta(0), owns=None) -> None:
        self.terms = TermBook(registry, owns)  # agreement terms and renewals (``term.py``); ``owns``: None = all
        self.registry, self.sources = registry, sources
        self.book = SloBook(registry)
        self.revisions = Revisions(registry)
        self._grace_us = grace // timedelta(microseconds=1)
        self.states: dict[str, DeskState] = {}
        self.marks = Marks()  # source -> (instant in µs, inclusive)
        # money due: (rank, agreement, key, output id) at its instant; stale once not pending
        self._queue = Scheduler(self._pending)
        # report closes: (agreement, label) at the period's end + grace; stale once not open
        self._closes = Scheduler(self._open_period)
        self.changed: set[str] = set()  # agreements changed since the caller last cleared it (to save)

    # -- input ------------------------------------------------------------------------------

    def _state(self, agreement: str) -> DeskState:
        st = self.states.get(agreement)
        if st is None:
            st = self.states[agreement] = DeskState()
        self.changed.add(agreement)
        return st

    def submit(self, item, src: int = 0) -> None:
        """Take one ``PenaltyDue``, ``CreditDue`` or ``PartialReport`` from source ``src``."""
        if isinstance(item, Termination):
            self.terms.submit(item)
            self._state(item.agreement)  # changed: its term state is saved with the agreement's
            return
        if isinstance(item, PartialReport):
            period = self._open(item.agreement, item.period, to_us(item.start))
            if period is not None:
                period["parts"][str(src)] = item.figures
            return
        if isinstance(item, PenaltyDue):
            compiled = self.registry.get(item.agreement, item.revision)
            out_id, period = penalty_output_id(item), compiled.period_of(item.at)
            rank, key = _PENALTY, [item.ticket, item.clock, item.cycle, item.remedy]
        else:
            cslo = self.book.get(item.agreement, item.slo, item.revision)
            out_id, period = credit_output_id(cslo, item), item.period
            rank, key = _CREDIT, [cslo.index, item.remedy]
        st = self._state(item.agreement)
        if out_id in st.pending or out_id in st.assessed.get(period, ()):
            return  # redelivered
        at_us = to_us(item.at)
        st.pending[out_id] = {"at_us": at_us, "rank": rank, "key": key, "item": item_to_dict(item)}
        self._queue.schedule((rank, item.agreement, tuple(key), out_id), at_us)

    def mark(self, src: int, at: datetime, inclusive: bool) -> None:
        """Source ``src`` has fired everything before ``at`` (and at it, when ``inclusive``)."""
        self.marks.advance(src, to_us(at), inclusive)

    # -- output -----------------------------------------------------------------------------

    def _passed(self, at_us: int, closing: bool) -> bool:
        """Every source is past ``at_us`` (money: at or after it; a close: after, or at inclusively)."""
        return self.marks.passed(at_us, closing, self.sources)

    def _pending(self, key: tuple, at_us: int) -> bool:
        """Whether a queued money entry is still pending (not booked since it was queued)."""
        st = self.states.get(key[1])
        return st is not None and key[3] in st.pending

    def _open_period(self, key: tuple, close_us: int) -> bool:
        """Whether a scheduled report close still has its period open (and closing then)."""
        st = self.states.get(key[0])
        period = None if st is None else st.periods.get(key[1])
        return period is not None and period["end_us"] + self._grace_us == close_us

    def next_close(self) -> datetime | None:
        """The earliest pending report close or term event (``term.py``) instant, or None."""
        close_us = self._closes.next_due()
        close = None if close_us is None else close_dt(close_us)
        term = self.terms.next_at()
        return close if term is None else term if close is None else min(close, term)

    def release(self) -> list[dict]:
        """Book and publish everything the marks allow, in (instant, rank, key) order."""
        outputs: list[dict] = []
        while True:
            money, close = self._queue.peek(), self._closes.peek()  # (instant, key) or None
            money = money if money is not None and self._passed(money[0], False) else None
            close = close if close is not None and self._passed(close[0], True) else None
            term = self.terms.due(self._passed, to_us)  # after money and closes of its instant
            if term is not None and all(x is None or term[0] < x[0] for x in (money, close)):
                self._state(term[1])
                outputs.append(self.terms.fire(term[1]))
                continue
            if money is None and close is None:
                return outputs
            if money is not None and (close is None or (money[0], money[1][0]) < (close[0], _REPORT)):
                next(self._queue.pop_due(money[0], inclusive=True))
                out = self._book(money[1][1], money[1][3])
                if out is not None:
                    outputs.append(out)
            else:
                next(self._closes.pop_due(close[0], inclusive=True))
                outputs += self._close(*close[1])

    def _expired_by(self, agreement: str, at_us: int) -> bool:
        """Whether ``agreement`` is over at ``at_us`` (a termination expires it at or before)."""
        expiry = self.terms.expiry_us(agreement, to_us)
        return expiry is not None and at_us >= expiry

    def _after_expiry(self, item) -> bool:
        """A penalty whose breach is at or after the expiry instant, or a credit for a period that
        starts at or after it (the period containing the final term's last day still counts)."""
        if isinstance(item, PenaltyDue):
            return self._expired_by(item.agreement, to_us(item.at))
        tz = self.registry.get(item.agreement, item.revision).tz
        return self._expired_by(item.agreement, by_label(tz, item.period).start_us)

    def _book(self, agreement: str, out_id: str) -> dict | None:
        """Book one pending penalty or credit; None when the agreement expired before it."""
        st = self._state(agreement)
        item = item_from_dict(st.pending.pop(out_id)["item"])
        if self._after_expiry(item):
            return None
        if isinstance(item, PenaltyDue):
            out = assess_penalty(self.registry.get(item.agreement, item.revision), st.budget, item)
        else:
            out = assess_credit(self.book.get(item.agreement, item.slo, item.revision), st.budget, item)
            earn_back.register(self.registry.get(item.agreement, item.revision), st.chains, out)
        if out.id != out_id:
            raise RuntimeError(f"desk output id mismatch: {out.id} != {out_id}")
        label = out.data["period"]
        st.assessed.setdefault(label, []).append(out_id)
        for old in sorted(st.assessed)[:-_KEEP_ASSESSED]:
            del st.assessed[old]
        period = self._open(agreement, label, to_us(item.at))
        if period is not None:
            tally_money(period["money"], out)
        return out

    def _close(self, agreement: str, label: str) -> list[dict]:
        """Close a period: objective verdicts and their credits, earn-backs, then
        ``report.published`` (with ``reporting``); all at the period's end (not the close after
        the grace)."""
        st = self._state(agreement)
        period = st.periods.pop(label)
        mark_closed(st, period["end_us"])
        if self._expired_by(agreement, period["start_us"]):
            return []  # a period after the final term: nothing is published, no next period
        compiled = self.revisions.compiled_at(agreement, period["start_us"])
        parts = [period["parts"][k] for k in sorted(period["parts"], key=int)]
        fig = merge_figures(compiled, period["start_us"], period["end_us"], parts, period["money"])
        at = to_dt(period["end_us"])
        outputs = self._period_terms(compiled, st, label, fig, at)
        if compiled.agreement.reporting is not None:
            outputs.append(report_notice(compiled, label, fig, at, st.budget))
        nxt = following(compiled.tz, by_label(compiled.tz, label))
        last_us = validity_us(compiled, self.registry.renews(compiled))[1]
        if nxt.label not in st.periods and nxt.start_us < last_us and not self._expired_by(agreement, nxt.start_us):
            self._add_period(agreement, st, nxt.label, nxt.start_us, nxt.end_us)
        return outputs

    @staticmethod
    def _period_terms(compiled, st: DeskState, label: str, fig: dict, at: datetime) -> list[dict]:
        """DESIGN.md §13 at a period close: objective verdicts, objective credits, earn-backs."""
        outputs = objectives.verdict_outputs(compiled, label, fig, at)
        values = objectives.verdicts(compiled, label, fig)
        credits = objectives.credit_outputs(compiled, st.budget, label, values, at)
        earned, st.chains = earn_back.evaluate(
            compiled, st.chains, label, {"slo": earn_back.slo_values(fig), "objective": values}, at)
        for out in credits:
            earn_back.register(compiled, st.chains, out)
        for out in credits + earned:
            tally_money(fig, out)
        return outputs + credits + earned

    # -- report periods -----------------------------------------------------------------------

    def _open(self, agreement: str, label: str, at_us: int) -> dict | None:
        """The desk's open period ``label`` of ``agreement`` (opened if needed), or None when the
        agreement is not reported on at ``at_us`` or the period is already published."""
        compiled = self.revisions.reported(agreement, at_us)
        if compiled is None:
            return None
        st = self._state(agreement)
        period = st.periods.get(label)
        if period is not None:
            return period
        p = by_label(compiled.tz, label)
        if closed_before(st, p.start_us):
            return None
        if self._expired_by(agreement, p.start_us):
            return None  # output-equivalent to opening it: ``_close`` would drop it
        return self._add_period(agreement, st, label, p.start_us, p.end_us)

    def _add_period(self, agreement: str, st: DeskState, label: str, start_us: int, end_us: int) -> dict:
        period = st.periods[label] = {"start_us": start_us, "end_us": end_us, "parts": {}, "money": fresh_money()}
        self._closes.schedule((agreement, label), end_us + self._grace_us)
        return period

    # -- state --------------------------------------------------------------------------------

    def state_of(self, agreement: str) -> dict:
        out = self.states[agreement].to_dict()
        if agreement in self.terms.states:
            out["term"] = dict(self.terms.states[agreement])
        return out

    def load(self, agreement: str, data: dict) -> None:
        """Install one agreement's saved state (and queue its pending money and closes)."""
        st = self.states[agreement] = DeskState.from_dict(copy.deepcopy(data))
        self.terms.load(agreement, data.get("term"))
        for out_id, entry in st.pending.items():
            self._queue.schedule((entry["rank"], agreement, tuple(entry["key"]), out_id), entry["at_us"])
        for label, period in st.periods.items():
            self._closes.schedule((agreement, label), period["end_us"] + self._grace_us)

    def marks_dict(self) -> dict:
        return {str(src): [us, inclusive] for src, (us, inclusive) in self.marks.items()}

    def load_marks(self, data: dict) -> None:
        for src, (us, inclusive) in data.items():
            self.marks.advance(int(src), us, inclusive)

    def to_dict(self) -> dict:
        return {"grace_us": self._grace_us, "sources": self.sources, "marks": self.marks_dict(),
                "agreements": {a: self.state_of(a) for a in sorted(self.states)}}

    @classmethod
    def from_dict(cls, registry: Registry, d: dict) -> "Desk":
        desk = cls(registry, d["sources"], timedelta(microseconds=d["grace_us"]))
        for agreement, st in d["agreements"].items():
            desk.load(agreement, st)
        desk.load_marks(d["marks"])
        desk.changed.clear()
        return desk
