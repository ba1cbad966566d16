"""Compliance reports: per agreement and period, what the outputs of a replay add up to.

Pure functions over typed output lists (``core.outputs.Output``): ``build_report`` buckets them per
agreement and period, :mod:`.compliance_period` makes each period's section; rendering lives in
:mod:`.render`.

Counting rules (they are printed in every report):

- A **period** is a calendar month in the agreement's time zone. A clock verdict belongs to the
  period of its deciding instant (``sla.met``: when the clock stopped; ``sla.breached``: when it
  passed its target); penalties and credits carry their own ``period``.
- A **verdict** is per ticket, clock and cycle: ``breached`` when the cycle breached (even if it
  later stopped), else ``met``. A reopened ticket whose clock resumed and then breached counts
  once, as breached.
- **Counted time** is the clock's elapsed time in its calendar, pauses excluded: ``elapsed`` of
  ``sla.met``; for a breached cycle, its final counted time taken from the engine's state at the
  end of the replay (``clock_times``), or, when only outputs are available, the largest
  ``elapsed`` any output of that cycle reported (a lower bound, marked as such).
- **Escalations** count ``escalation.triggered`` (first page of a level) and
  ``escalation.repeated`` separately, by policy and level.
- **Tickets that drove them**: tickets with a penalty or an escalation, by amount then pages.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from escalation.core.outputs import ESCALATION_TYPES, Output, OutputType
from escalation.core.reporting.verdicts import cycle_key, deciding, verdict_of
from escalation.reports.compliance_period import period_section
from escalation.reports.numbers import iso_seconds

_OBJECTIVES = (OutputType.OBJECTIVE_ATTAINMENT, OutputType.OBJECTIVE_NO_VERDICT)


@dataclass(frozen=True, slots=True)
class AgreementInfo:
    """What a report needs from an agreement: zone for periods, currency, title, cap."""

    id: str
    title: str = ""
    timezone: str = "UTC"
    currency: str = ""
    cap_limit: str | None = None
    revisions: tuple[int, ...] = ()


def agreement_infos(registry) -> dict[str, AgreementInfo]:
    """AgreementInfo per agreement id from a Registry (latest revision's title, zone, cap)."""
    from escalation.core.money.caps import cap_limit

    out: dict[str, AgreementInfo] = {}
    for agreement_id in registry.ids():
        latest = registry.latest(agreement_id)
        revisions = tuple(sorted(c.revision for c in registry if c.id == agreement_id))
        limit = cap_limit(latest)
        out[agreement_id] = AgreementInfo(agreement_id, latest.agreement.title or "", latest.agreement.timezone,
                                          latest.agreement.currency or "", None if limit is None else str(limit),
                                          revisions)
    return out


def engine_state(engine, registry) -> tuple[dict, dict]:
    """(clock_times, tickets) from an Engine after a replay.

    ``clock_times``: (ticket, clock, cycle) -> final counted seconds of the clock's current cycle
    at the engine's clock; ``tickets``: ticket -> {agreement, revision, priority, opened_at,
    lifecycle}. Read-only: the engine is not changed.
    """
    from escalation.core.contract.compiled import ALWAYS
    from escalation.core.tickets.clocks import elapsed_at

    times: dict[tuple[str, str, int], float] = {}
    tickets: dict[str, dict] = {}
    now = engine.now
    for key, incident in engine.incidents.items():
        tickets[key] = {"agreement": incident.agreement, "revision": incident.revision,
                        "priority": incident.priority, "opened_at": incident.opened_at.astimezone(timezone.utc).isoformat(),
                        "lifecycle": incident.lifecycle}
        try:
            compiled = registry.get(incident.agreement, incident.revision)
        except Exception:  # noqa: BLE001 - a state without its agreement has no calendars to count in
            continue
        for name, clock in incident.clocks.items():
            rule = compiled.rule_of(incident, name)
            cal = rule.calendar if rule else ALWAYS
            at = max(now, clock.checkpoint) if now is not None else clock.checkpoint
            times[(key, name, clock.cycle)] = elapsed_at(clock, cal, at).total_seconds()
    return times, tickets


def _agreement_of(o: Output) -> str | None:
    if o.data.get("agreement"):
        return o.data["agreement"]
    m = re.match(r"^escalation/(.+)@(\d+)$", o.source)
    return m.group(1) if m else None


def _period_of(instant: datetime, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def _zone(info: AgreementInfo | None) -> ZoneInfo:
    try:
        return ZoneInfo(info.timezone if info else "UTC")
    except Exception:  # noqa: BLE001
        return ZoneInfo("UTC")


def _cycle_verdicts(outputs: list[Output]) -> dict[tuple[str, str, int], dict]:
    """(ticket, clock, cycle) -> deciding output info (breach wins; else the last met), with the
    largest ``elapsed`` any output of the cycle reported (``max_elapsed``)."""
    biggest: dict[tuple[str, str, int], float] = defaultdict(float)
    for o in outputs:
        d = o.data
        if "clock" in d and "ticket" in d:
            elapsed = iso_seconds(d.get("elapsed"))
            if elapsed is not None:
                key = cycle_key(d)
                biggest[key] = max(biggest[key], elapsed)
    return {key: {"verdict": verdict_of(o), "time": o.time.isoformat(), "priority": o.data.get("priority"),
                  "target": iso_seconds(o.data.get("target")), "elapsed": iso_seconds(o.data.get("elapsed")),
                  "output": o, "max_elapsed": biggest[key]}
            for key, o in deciding(outputs, cycle_key).items()}


def _new_bucket() -> dict:
    return {"verdicts": [], "escalations": [], "penalties": [], "credits": [], "tickets": set()}


class _Buckets:
    """Everything of the report by (agreement, period), and each ticket's priority and agreement."""

    def __init__(self, agreements: Mapping[str, AgreementInfo]) -> None:
        self.agreements = agreements
        self.by_key: dict[tuple[str, str], dict] = defaultdict(_new_bucket)
        self.ticket_prio: dict[str, str] = {}
        self.ticket_agreement: dict[str, str] = {}

    def at(self, agreement: str | None, instant: datetime) -> dict:
        """The bucket of ``agreement``'s period containing ``instant`` (agreement time zone)."""
        return self.by_key[(agreement, _period_of(instant, _zone(self.agreements.get(agreement))))]

    def note_ticket(self, ticket: str, priority: str | None, agreement: str | None) -> None:
        self.ticket_prio.setdefault(ticket, priority)
        self.ticket_agreement.setdefault(ticket, agreement)

    def add_verdicts(self, outputs: list[Output], clock_times: Mapping) -> None:
        for (ticket, clock, cycle), v in _cycle_verdicts(outputs).items():
            agreement = _agreement_of(v["output"])
            exact = True
            if v["verdict"] == "met":
                seconds = v["elapsed"]
            elif (ticket, clock, cycle) in clock_times:
                seconds = clock_times[(ticket, clock, cycle)]
            else:
                seconds, exact = v["max_elapsed"], False
            row = {"ticket": ticket, "clock": clock, "cycle": cycle, "priority": v["priority"],
                   "verdict": v["verdict"], "time": v["time"], "target": v["target"], "counted": seconds,
                   "exact": exact, "due": v["output"].data.get("due")}
            b = self.at(agreement, v["output"].time)
            b["verdicts"].append(row)
            b["tickets"].add(ticket)
            self.note_ticket(ticket, v["priority"], agreement)

    def add_output(self, o: Output) -> None:
        """An escalation, money, objective or earn-back output into its bucket."""
        t, d = o.type, o.data
        agreement = _agreement_of(o)
        if t in ESCALATION_TYPES:
            b = self.at(agreement, o.time)
            b["escalations"].append(o)
            b["tickets"].add(d["ticket"])
        elif t is OutputType.PENALTY_ASSESSED:
            b = self.by_key[(agreement, d["period"])]
            b["penalties"].append(o)
            b["tickets"].add(d["ticket"])
        elif t is OutputType.CREDIT_ISSUED:
            self.by_key[(agreement, d["period"])]["credits"].append(o)
        elif t in _OBJECTIVES:
            self.by_key[(agreement, d["period"])].setdefault("objectives", []).append(o)
        elif t is OutputType.CREDIT_EARNED_BACK:  # shown in the period it was earned back in (its end)
            self.at(agreement, o.time).setdefault("earned_back", []).append(o)
        if d.get("ticket") and d.get("priority"):
            self.note_ticket(d["ticket"], d["priority"], agreement)

    def add_quiet_tickets(self, tickets: Mapping[str, dict]) -> None:
        """Tickets without any output still appear, in the period they were opened."""
        seen = {t for b in self.by_key.values() for t in b["tickets"]}
        for ticket, info in tickets.items():
            self.note_ticket(ticket, info.get("priority"), info.get("agreement"))
            if ticket not in seen:
                opened = datetime.fromisoformat(info["opened_at"])
                self.at(info.get("agreement"), opened)["tickets"].add(ticket)


def build_report(outputs: Iterable[Output], agreements: Mapping[str, AgreementInfo] | None = None, *,
                 period: str | None = None, clock_times: Mapping[tuple[str, str, int], float] | None = None,
                 tickets: Mapping[str, dict] | None = None, title: str | None = None,
                 source: dict | None = None, top: int = 15) -> dict:
    """A JSON-ready compliance report of ``outputs``, per agreement and period.

    ``agreements``: AgreementInfo per id (zone, currency, cap); unknown ids report in UTC.
    ``period``: only this ``YYYY-MM``. ``clock_times``/``tickets``: from :func:`engine_state`, for
    exact counted time of breached clocks and tickets that produced no output. ``source``: facts
    about the run (files, counts), printed as given.
    """
    outputs = list(outputs)
    tickets = tickets or {}
    buckets = _Buckets(dict(agreements or {}))
    buckets.add_verdicts(outputs, clock_times or {})
    for o in outputs:
        buckets.add_output(o)
    buckets.add_quiet_tickets(tickets)
    by_key = buckets.by_key
    exact = all(r["exact"] for b in by_key.values() for r in b["verdicts"])
    return {
        "title": title or "SLA compliance report",
        "period": period,
        "source": source or {},
        "counted_time_exact": exact,
        "tickets_total": len({t for (a, p), b in by_key.items() if period is None or p == period for t in b["tickets"]}),
        "agreements": _agreement_sections(buckets, period, tickets, top),
    }


def _agreement_sections(buckets: _Buckets, period: str | None, tickets: Mapping[str, dict], top: int) -> list[dict]:
    """One section per agreement (sorted by id), each with its periods (only ``period`` if given)."""
    out = []
    for agreement in sorted({a for a, _ in buckets.by_key}, key=lambda a: a or ""):
        info = buckets.agreements.get(agreement) or AgreementInfo(agreement or "(unknown)")
        overview, sections = [], []
        for p in sorted(p for a, p in buckets.by_key if a == agreement):
            section = period_section(p, buckets.by_key[(agreement, p)], _zone(info), info.currency, info.cap_limit,
                                     buckets.ticket_prio, tickets, top)
            overview.append(section["overview"])
            if period is None or p == period:
                sections.append(section)
        if period is not None and not sections:
            continue
        out.append({
            "agreement": agreement, "title": info.title, "timezone": info.timezone, "currency": info.currency,
            "cap_limit": info.cap_limit, "revisions": list(info.revisions),
            "overview": [o for o in overview if period is None or o["period"] == period],
            "periods": sections,
        })
    return out
