"""The metric side of the Engine: SLO states, period closes and period reports.

Pure (no I/O, no wall clock): time enters as the slices' own times and the instants the
Engine advances to. The Engine calls:
- ``check(event, now)``      for ``metric.observed``: (covering SLOs, digest remembered with a
  repeated id or None), or Rejected; reads only;
- ``count(event, covering, digest)`` then counts the slice -> the SLOs to evaluate; then
  ``burn(pending, event)`` -> burn-rate outputs at the slice end. Between the two the Engine
  advances to the slice end, so a slice straddling a period end is counted (split) before that
  period closes, and outputs stay in time order.
- ``next_close()`` / ``close_at(instant)`` while it advances, interleaved in time order
  with ticket deadlines (deadlines due at a close instant fire first); closes give
  ``slo.attainment``/``slo.no_data``, ``CreditDue`` and ``PartialReport`` records for the desk
- ``record(output)`` / ``ticket_opened(...)`` so reports see the ticket side.

Invariants:
- ``check`` raises Rejected ("no SLO covers ...", "period closed ...") or reports a repeated id
  without changing any state; ``count`` applies a checked slice to every covering SLO in full.
- A period ``[start, end)`` closes at ``end + grace`` (grace 0 by default), when the clock passes
  it (or reaches it, for an inclusive advance). The grace lets a slice that straddles ``end``
  arrive before the close; with grace 0, such a slice arriving after the clock passed ``end`` is
  late. Outputs of a close carry the period's ``end`` as ``time`` (the instant the period was
  over), so the grace changes when they are emitted, never what they say.
- At one close instant: SLO closes (by agreement id, then SLO order) before report closes, so a
  report includes the credits of its period; credits see the penalties booked during the period.
- Once an SLO has data, every following period closes too (``slo.no_data`` when empty) until
  its agreement's validity ends or a revision drops the SLO.
- ``changed`` collects the ``(table, key)`` entries changed (``("services", service)``,
  ``("figures", agreement)``) until the Engine takes them into its step's result.
- Closes are one :class:`~escalation.core.scheduler.Scheduler` keyed by
  ``(rank, agreement, SLO order, SLO, period label)``, so at one instant they come out in that
  order; an entry whose period is no longer open (or ends elsewhere) is stale.
- ``to_dict``/``from_dict`` carry the whole state (grouped by service, as the live engine keys its
  table) and the close schedule is rebuilt from it, so a stream split anywhere continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from escalation.core.changes import FIGURES, SERVICES
from escalation.core.contract.registry import Registry
from escalation.core.events import MetricObserved, Rejected
from escalation.core.outputs import Output
from escalation.core.reporting.figures import Reports, ReportState
from escalation.core.scheduler import Scheduler
from escalation.core.services import burn_rate as br
from escalation.core.services.slo import (
    burn_outputs,
    close_period,
    late_reason,
    new_state,
    observe,
    open_periods,
)
from escalation.core.services.slo_compiled import CompiledSlo, SloBook
from escalation.core.services.slo_state import PeriodAcc, SloState, Stream
from escalation.core.time.periods import by_label, close_dt, following, to_us

_SLO, _REPORT = 0, 1


@dataclass
class MetricEngine:
    registry: Registry
    grace: timedelta = timedelta(0)
    slos: dict[tuple[str, str], SloState] = field(default_factory=dict)
    streams: dict[tuple[str, str], Stream] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.book = SloBook(self.registry)
        self.reports = Reports(self.registry)
        self._grace_us = self.grace // timedelta(microseconds=1)
        self._closes = Scheduler(self._live)
        # (table, key) changed since the Engine last took them (services: streams and SLO
        # states; figures: this side's report figures of an agreement)
        self.changed: set[tuple[str, str]] = set()

    # -- input ----------------------------------------------------------------------------

    def check(self, event: MetricObserved, now: datetime | None) -> tuple[list, int | None]:
        """(SLOs the slice counts into, content digest remembered with its id if it is a repeat);
        Rejected if it cannot be counted. Reads only: this is every reason to refuse a slice."""
        s = to_us(event.start)
        covering = self.book.covering(event.service, event.sli, s)
        stream = self.streams.get((event.service, event.sli))
        repeat = None if stream is None else stream.digest_of(event.id)
        if repeat is not None:
            return covering, repeat
        now_us = None if now is None else to_us(now)
        for cslo in covering:
            reason = late_reason(cslo, self.slos.get((cslo.compiled.id, cslo.id)), s, now_us, self._grace_us)
            if reason is not None:
                raise Rejected(reason)
        return covering, None

    def count(self, event: MetricObserved, covering: list, digest: int) -> list:
        """Count a slice ``check`` accepted into every covering SLO; returns the SLOs to evaluate."""
        s, e = to_us(event.start), to_us(event.end)
        self.changed.add((SERVICES, event.service))
        self.streams.setdefault((event.service, event.sli), Stream()).remember(event.id, digest)
        for cslo in covering:
            st = self._state(cslo)
            for acc in open_periods(cslo, st, s, e):
                self._push(acc.end_us, _SLO, cslo.compiled.id, cslo.index, cslo.id, acc.label)
            observe(cslo, st, s, e, event.good, event.total)
        for agreement in sorted({c.compiled.id for c in covering}):
            self._touched(self.reports.touch(agreement, s)[0], agreement)
        return covering

    def burn(self, covering: list, event: MetricObserved) -> list:
        """Burn-rate outputs at the slice end for the SLOs ``apply`` counted it into."""
        e, outputs = to_us(event.end), []
        for cslo in covering:
            outputs += burn_outputs(cslo, self._state(cslo), e)
        for out in outputs:
            self.record(out)
        return outputs

    def _state(self, cslo: CompiledSlo) -> SloState:
        key = (cslo.compiled.id, cslo.id)
        st = self.slos.get(key)
        if st is None:
            st = self.slos[key] = new_state(cslo)
        elif st.revision != cslo.compiled.revision:
            old = self.book.get(cslo.compiled.id, cslo.id, st.revision).burn
            if _layout(old) != _layout(cslo.burn):
                st.burn = None if cslo.burn is None else br.new_state(cslo.burn)
            st.revision = cslo.compiled.revision
        return st

    def record(self, out: Output) -> None:
        """Feed one output to the period reports."""
        if isinstance(out, Output):
            self._touched(self.reports.record(out), out.data.get("agreement"))

    def ticket_opened(self, agreement: str, at: datetime, priority: str) -> None:
        self._touched(self.reports.ticket_opened(agreement, to_us(at), priority), agreement)

    def _touched(self, opened, agreement: str | None) -> None:
        if agreement in self.reports.states:
            self.changed.add((FIGURES, agreement))
        if opened is not None:
            self._push(opened.end_us, _REPORT, agreement, 0, "", opened.label)

    # -- period closes --------------------------------------------------------------------

    def _push(self, end_us: int, rank: int, agreement: str, order: int, slo: str, label: str) -> None:
        self._closes.schedule((rank, agreement, order, slo, label), end_us + self._grace_us)

    def _live(self, key: tuple, due: int) -> bool:
        """Whether a scheduled close still has its period open (and ending there)."""
        rank, agreement, _, slo, label = key
        if rank == _REPORT:
            st = self.reports.states.get(agreement)
            return st is not None and label in st.periods
        st = self.slos.get((agreement, slo))
        return st is not None and label in st.periods and st.periods[label].end_us + self._grace_us == due

    def next_close(self) -> datetime | None:
        """The earliest pending close instant, or None (asked once per input)."""
        due = self._closes.next_due()
        return None if due is None else close_dt(due)

    def close_at(self, at: datetime) -> list:
        """Close every period due exactly at ``at``: SLOs first, then this side's report figures."""
        outputs = []
        for _, (rank, agreement, _, slo, label) in self._closes.pop_due(to_us(at), inclusive=True):
            if rank == _SLO:
                outs = self._close_slo(agreement, slo, label)
            else:
                outs = [self.reports.close(agreement, label)]
                self.changed.add((FIGURES, agreement))
            for out in outs:
                self.record(out)
            outputs += outs
        return outputs

    def _close_slo(self, agreement: str, slo: str, label: str) -> list:
        st = self.slos[(agreement, slo)]
        self.changed.add((SERVICES, st.service))
        cslo = self.book.get(agreement, slo, st.periods[label].revision)
        outputs = close_period(cslo, st, label)
        tz = cslo.compiled.tz
        nxt = following(tz, by_label(tz, label))
        if any(open_label > label for open_label in st.periods):
            return outputs
        rev = self.book.revision_at(agreement, nxt.start_us)
        if rev is not None and slo in rev.slos:
            st.periods[nxt.label] = PeriodAcc(nxt.label, nxt.start_us, nxt.end_us, rev.compiled.revision)
            self._push(nxt.end_us, _SLO, agreement, rev.slos[slo].index, slo, nxt.label)
        return outputs

    # -- state ----------------------------------------------------------------------------

    def service_state(self, service: str) -> dict:
        """One service's streams and SLO states (the live ``services`` table value)."""
        entry: dict = {"streams": {}, "slos": {}}
        for (svc, sli), stream in self.streams.items():
            if svc == service:
                entry["streams"][sli] = stream.to_dict()
        for (agreement, slo), st in sorted(self.slos.items()):
            if st.service == service:
                entry["slos"].setdefault(agreement, {})[slo] = st.to_dict()
        return entry

    def load_service(self, service: str, entry: dict) -> None:
        for sli, ids in entry["streams"].items():
            self.streams[(service, sli)] = Stream.from_dict(ids)
        for agreement, slos in entry["slos"].items():
            for slo, st in slos.items():
                self.slos[(agreement, slo)] = SloState.from_dict(st)

    def report_state(self, agreement: str) -> dict | None:
        st = self.reports.states.get(agreement)
        return None if st is None else st.to_dict()

    def load_report(self, agreement: str, data: dict) -> None:
        self.reports.states[agreement] = ReportState.from_dict(data)

    def reschedule(self) -> None:
        """Rebuild the close schedule after ``load_service``/``load_report``."""
        self._closes.clear()
        self._reschedule()

    def to_dict(self) -> dict:
        services: dict = {}
        for (service, sli), stream in sorted(self.streams.items()):
            services.setdefault(service, {"streams": {}, "slos": {}})["streams"][sli] = stream.to_dict()
        for (agreement, slo), st in sorted(self.slos.items()):
            entry = services.setdefault(st.service, {"streams": {}, "slos": {}})
            entry["slos"].setdefault(agreement, {})[slo] = st.to_dict()
        return {"grace_us": self._grace_us, "services": services,
                "reports": {a: r.to_dict() for a, r in sorted(self.reports.states.items())}}

    @classmethod
    def from_dict(cls, registry: Registry, d: dict) -> "MetricEngine":
        engine = cls(registry, timedelta(microseconds=d["grace_us"]))
        for service, entry in d["services"].items():
            engine.load_service(service, entry)
        for agreement, r in d["reports"].items():
            engine.load_report(agreement, r)
        engine._reschedule()
        return engine

    def _reschedule(self) -> None:
        for (agreement, slo), st in self.slos.items():
            for acc in st.periods.values():
                index = self.book.get(agreement, slo, acc.revision).index
                self._push(acc.end_us, _SLO, agreement, index, slo, acc.label)
        for agreement, r in self.reports.states.items():
            for label, fig in r.periods.items():
                self._push(fig["end_us"], _REPORT, agreement, 0, "", label)


def _layout(spec: br.BurnSpec | None) -> tuple | None:
    """What a burn state's shape depends on: a revision changing it starts the buckets afresh."""
    return None if spec is None else (spec.rings, spec.windows, tuple(r.key for r in spec.rules))
