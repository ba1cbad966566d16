"""SLOs compiled per agreement revision, and the index a metric event uses to find them.

Invariants:
- A ``metric.observed`` for (service, sli) is received by every SLO with that service and sli, in
  every loaded agreement (several agreements may share a service), under the agreement's highest
  revision that is valid at the slice start (validity dates in the agreement time zone). A
  revision that drops the SLO stops it; older revisions are not consulted then.
- ``window: calendar_month`` has no rolling window; ``rolling_28d``/``rolling_30d``/ISO durations
  set ``window_us``, used for the error budget next to burn rates. Attainment, credits and reports
  are per calendar month in every case (the contract's periods are calendar months).
- Compiled objects are immutable apart from the maintenance occurrence cache (pure memo).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from escalation.agreement.durations import BusinessDays, parse_duration
from escalation.agreement.models import Slo
from escalation.agreement.remedies import TieredCredit
from escalation.core.contract.compiled import CompiledAgreement
from escalation.core.contract.registry import Registry
from escalation.core.events import Rejected
from escalation.core.services.burn_rate import BurnSpec, compile_burn
from escalation.core.time.calendar import AlwaysCalendar, Calendar
from escalation.core.time.calendar_days import wall_to_utc_us
from escalation.core.time.maintenance import Maintenance
from escalation.core.time.periods import to_dt

_ROLLING = {"rolling_28d": timedelta(days=28), "rolling_30d": timedelta(days=30)}
_FOREVER = (-(2**62), 2**62)


@dataclass(frozen=True, eq=False)
class CompiledSlo:
    compiled: CompiledAgreement
    index: int                                   # position in ``slos`` (clause ``slos[i]``)
    slo: Slo
    calendar: Calendar | None                    # counted time; None = 24x7 (fast path)
    maintenance: Maintenance
    burn: BurnSpec | None
    credits: tuple[tuple[int, TieredCredit], ...]  # (remedy index, remedy)
    window_us: int | None                        # rolling window; None for calendar_month

    @property
    def id(self) -> str:
        return self.slo.id

    @property
    def clause(self) -> str:
        return f"slos[{self.index}]"


def _window_us(slo: Slo) -> int | None:
    if slo.window == "calendar_month":
        return None
    span = _ROLLING.get(slo.window) or parse_duration(slo.window)
    if isinstance(span, BusinessDays):
        span = span.resolve(timedelta(hours=24))  # a rolling window is elapsed time: "5bd" = 5 days
    return span // timedelta(microseconds=1)


def compile_slos(compiled: CompiledAgreement) -> tuple[CompiledSlo, ...]:
    a = compiled.agreement
    maintenance = Maintenance(a)
    out = []
    for i, slo in enumerate(a.slos):
        cal = compiled.calendars[slo.counted_time]
        credits = tuple((j, r) for j, r in enumerate(a.remedies) if isinstance(r, TieredCredit) and r.slo == slo.id)
        window = _window_us(slo)
        out.append(CompiledSlo(compiled, i, slo, None if isinstance(cal, AlwaysCalendar) else cal, maintenance,
                               compile_burn(slo, f"slos[{i}]", window), credits, window))
    return tuple(out)


def validity_us(compiled: CompiledAgreement, renews: bool = False) -> tuple[int, int]:
    """``[from, to)`` in UTC microseconds: local midnight of the start to that after the end
    (open-ended when ``renews``, see ``Registry.renews``; a termination is the desk's to apply)."""
    v = compiled.agreement.validity
    if v is None:
        return _FOREVER
    open_end = v.end is None or (renews and v.renewal is not None)
    end = _FOREVER[1] if open_end else wall_to_utc_us(v.end + timedelta(days=1), 0, compiled.tz)
    return wall_to_utc_us(v.start, 0, compiled.tz), end


@dataclass(frozen=True, eq=False)
class _Revision:
    compiled: CompiledAgreement
    valid: tuple[int, int]
    slos: dict[str, CompiledSlo]                          # by SLO id
    streams: dict[tuple[str, str], tuple[CompiledSlo, ...]]


class SloBook:
    """Every SLO of every loaded revision, indexed by (service, sli)."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._revisions: dict[str, list[_Revision]] = {}
        self._streams: dict[tuple[str, str], list[str]] = {}
        for compiled in sorted(registry, key=lambda c: (c.id, -c.revision)):
            slos = compile_slos(compiled)
            streams: dict[tuple[str, str], list[CompiledSlo]] = {}
            for cslo in slos:
                streams.setdefault((cslo.slo.service, cslo.slo.sli), []).append(cslo)
                ids = self._streams.setdefault((cslo.slo.service, cslo.slo.sli), [])
                if compiled.id not in ids:
                    ids.append(compiled.id)
            self._revisions.setdefault(compiled.id, []).append(_Revision(
                compiled, validity_us(compiled, registry.renews(compiled)), {c.id: c for c in slos}, {k: tuple(v) for k, v in streams.items()}))
        for ids in self._streams.values():
            ids.sort()

    def revision_at(self, agreement: str, at_us: int) -> _Revision | None:
        """The highest revision of ``agreement`` valid at ``at_us``."""
        for rev in self._revisions.get(agreement, ()):
            if rev.valid[0] <= at_us < rev.valid[1]:
                return rev
        return None

    def covering(self, service: str, sli: str, at_us: int) -> list[CompiledSlo]:
        """The SLOs receiving a slice that starts at ``at_us``; Rejected when there are none."""
        agreements = self._streams.get((service, sli))
        if not agreements:
            raise Rejected(f"no SLO covers service {service!r} sli {sli!r}")
        out: list[CompiledSlo] = []
        for agreement in agreements:
            rev = self.revision_at(agreement, at_us)
            if rev is not None:
                out += rev.streams.get((service, sli), ())
        if not out:
            raise Rejected(f"no SLO covers service {service!r} sli {sli!r} at {to_dt(at_us).isoformat()} "
                           f"(outside the validity of {', '.join(agreements)})")
        return out

    def get(self, agreement: str, slo_id: str, revision: int) -> CompiledSlo:
        for rev in self._revisions.get(agreement, ()):
            if rev.compiled.revision == revision:
                return rev.slos[slo_id]
        raise KeyError((agreement, slo_id, revision))
