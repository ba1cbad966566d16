"""Compliance reports: per agreement and period, what the outputs of a replay add up to.

Pure functions over output lists (DESIGN.md §4); rendering lives in :mod:`.render`.

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
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

ZERO = Decimal("0.00")
PERCENTILES = (50, 90, 95)
_ISO = re.compile(r"^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def iso_seconds(text: str | None) -> float | None:
    """``PT26H7M30S`` -> 94050.0 (days as 24 h); None for None or an unparseable value."""
    if not text:
        return None
    m = _ISO.match(text)
    if not m:
        return None
    sign, d, h, mi, s = m.groups()
    total = int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)
    return -total if sign else total


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


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
    from escalation.core.money.ledger import cap_limit

    out: dict[str, AgreementInfo] = {}
    for agreement_id in registry.ids():
        latest = registry.latest(agreement_id)
        revisions = tuple(sorted(c.revision for c in registry if c.id == agreement_id))
        limit = cap_limit(latest)
        out[agreement_id] = AgreementInfo(agreement_id, latest.agreement.title or "", latest.agreement.timezone,
                                          latest.agreement.currency or "", None if limit is None else str(limit),
                                          revisions)
    return out


def engine_state(processor, registry) -> tuple[dict, dict]:
    """(clock_times, tickets) from a Processor after a replay.

    ``clock_times``: (ticket, clock, cycle) -> final counted seconds of the clock's current cycle
    at the engine's clock; ``tickets``: ticket -> {agreement, revision, priority, opened_at,
    lifecycle}. Read-only: the engine is not changed.
    """
    from escalation.core.contract.compiled import ALWAYS
    from escalation.core.tickets.clocks import elapsed_at

    times: dict[tuple[str, str, int], float] = {}
    tickets: dict[str, dict] = {}
    now = processor.now
    for key, incident in processor.incidents.items():
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


def _agreement_of(o: dict) -> tuple[str | None, int | None]:
    d = o.get("data") or {}
    if d.get("agreement"):
        return d["agreement"], d.get("revision")
    source = o.get("source", "")
    m = re.match(r"^escalation/(.+)@(\d+)$", source)
    return (m.group(1), int(m.group(2))) if m else (None, None)


def _period_of(instant: str, tz: ZoneInfo) -> str:
    local = datetime.fromisoformat(instant).astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def _zone(info: AgreementInfo | None) -> ZoneInfo:
    try:
        return ZoneInfo(info.timezone if info else "UTC")
    except Exception:  # noqa: BLE001
        return ZoneInfo("UTC")


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


_PRIORITY_ORDER = re.compile(r"(\d+)")


def _prio_key(p: str | None) -> tuple:
    p = p or ""
    m = _PRIORITY_ORDER.search(p)
    return (int(m.group(1)) if m else 10**6, p)


def _cycle_verdicts(outputs: list[dict]) -> dict[tuple[str, str, int], dict]:
    """(ticket, clock, cycle) -> deciding output info (breach wins; else the last met)."""
    out: dict[tuple[str, str, int], dict] = {}
    biggest: dict[tuple[str, str, int], float] = defaultdict(float)
    for o in outputs:
        d = o.get("data") or {}
        if "clock" not in d or "ticket" not in d:
            continue
        key = (d["ticket"], d["clock"], d.get("cycle", 1))
        elapsed = iso_seconds(d.get("elapsed"))
        if elapsed is not None:
            biggest[key] = max(biggest[key], elapsed)
        if o["type"] not in ("sla.met", "sla.breached"):
            continue
        verdict = "breached" if o["type"] == "sla.breached" else "met"
        old = out.get(key)
        if old is not None and old["verdict"] == "breached":
            continue
        out[key] = {"verdict": verdict, "time": o["time"], "priority": d.get("priority"),
                    "target": iso_seconds(d.get("target")), "elapsed": elapsed, "output": o}
    for key, row in out.items():
        row["max_elapsed"] = biggest[key]
    return out


def build_report(outputs: Iterable[dict], agreements: Mapping[str, AgreementInfo] | None = None, *,
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
    agreements = dict(agreements or {})
    clock_times = clock_times or {}
    tickets = tickets or {}

    # ---- bucket everything by (agreement, period)
    buckets: dict[tuple[str, str], dict] = defaultdict(lambda: {
        "verdicts": [], "escalations": [], "penalties": [], "credits": [], "tickets": set()})
    ticket_prio: dict[str, str] = {}
    ticket_agreement: dict[str, str] = {}

    verdicts = _cycle_verdicts(outputs)
    for (ticket, clock, cycle), v in verdicts.items():
        agreement, _ = _agreement_of(v["output"])
        p = _period_of(v["time"], _zone(agreements.get(agreement)))
        exact = True
        if v["verdict"] == "met":
            seconds = v["elapsed"]
        elif (ticket, clock, cycle) in clock_times:
            seconds = clock_times[(ticket, clock, cycle)]
        else:
            seconds, exact = v["max_elapsed"], False
        row = {"ticket": ticket, "clock": clock, "cycle": cycle, "priority": v["priority"], "verdict": v["verdict"],
               "time": v["time"], "target": v["target"], "counted": seconds, "exact": exact,
               "due": (v["output"]["data"] or {}).get("due")}
        b = buckets[(agreement, p)]
        b["verdicts"].append(row)
        b["tickets"].add(ticket)
        ticket_prio.setdefault(ticket, v["priority"])
        ticket_agreement.setdefault(ticket, agreement)

    for o in outputs:
        t, d = o["type"], o.get("data") or {}
        agreement, _ = _agreement_of(o)
        if t in ("escalation.triggered", "escalation.repeated"):
            p = _period_of(o["time"], _zone(agreements.get(agreement)))
            b = buckets[(agreement, p)]
            b["escalations"].append(o)
            b["tickets"].add(d["ticket"])
        elif t == "penalty.assessed":
            b = buckets[(agreement, d["period"])]
            b["penalties"].append(o)
            b["tickets"].add(d["ticket"])
        elif t == "credit.issued":
            buckets[(agreement, d["period"])]["credits"].append(o)
        elif t in ("objective.attainment", "objective.no_verdict"):
            buckets[(agreement, d["period"])].setdefault("objectives", []).append(o)
        elif t == "credit.earned_back":  # shown in the period it was earned back in (its end)
            p = _period_of(o["time"], _zone(agreements.get(agreement)))
            buckets[(agreement, p)].setdefault("earned_back", []).append(o)
        if d.get("ticket") and d.get("priority"):
            ticket_prio.setdefault(d["ticket"], d["priority"])
            ticket_agreement.setdefault(d["ticket"], agreement)

    # tickets without any output still appear, in the period they were opened
    seen = {t for b in buckets.values() for t in b["tickets"]}
    for ticket, info in tickets.items():
        ticket_prio.setdefault(ticket, info.get("priority"))
        ticket_agreement.setdefault(ticket, info.get("agreement"))
        if ticket not in seen:
            agreement = info.get("agreement")
            p = _period_of(info["opened_at"], _zone(agreements.get(agreement)))
            buckets[(agreement, p)]["tickets"].add(ticket)

    # ---- assemble
    report_agreements = []
    for agreement in sorted({a for a, _ in buckets}, key=lambda a: a or ""):
        info = agreements.get(agreement) or AgreementInfo(agreement or "(unknown)")
        periods = sorted(p for a, p in buckets if a == agreement)
        overview, sections = [], []
        for p in periods:
            b = buckets[(agreement, p)]
            section = _period_section(p, b, info, ticket_prio, tickets, top)
            overview.append(section["overview"])
            if period is None or p == period:
                sections.append(section)
        if period is not None and not sections:
            continue
        report_agreements.append({
            "agreement": agreement, "title": info.title, "timezone": info.timezone, "currency": info.currency,
            "cap_limit": info.cap_limit, "revisions": list(info.revisions),
            "overview": [o for o in overview if period is None or o["period"] == period],
            "periods": sections,
        })
    exact = all(r["exact"] for b in buckets.values() for r in b["verdicts"])
    return {
        "title": title or "SLA compliance report",
        "period": period,
        "source": source or {},
        "counted_time_exact": exact,
        "tickets_total": len({t for (a, p), b in buckets.items() if period is None or p == period for t in b["tickets"]}),
        "agreements": report_agreements,
    }


def _period_section(period: str, b: dict, info: AgreementInfo, ticket_prio: Mapping[str, str],
                    tickets: Mapping[str, dict], top: int) -> dict:
    rows = b["verdicts"]
    # met / breached per clock and priority
    tally: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in rows:
        tally[(r["clock"], r["priority"])][r["verdict"]] += 1
    verdict_rows = []
    clocks = sorted({c for c, _ in tally}, key=_clock_key)
    for clock in clocks:
        total = Counter()
        for prio in sorted({p for c, p in tally if c == clock}, key=_prio_key):
            c = tally[(clock, prio)]
            total.update(c)
            verdict_rows.append(_verdict_row(clock, prio, c))
        verdict_rows.append(_verdict_row(clock, "all", total))

    # counted time percentiles per clock and priority
    times: dict[tuple[str, str], list] = defaultdict(list)
    targets: dict[tuple[str, str], set] = defaultdict(set)
    for r in rows:
        if r["counted"] is not None:
            for key in ((r["clock"], r["priority"]), (r["clock"], "all")):
                times[key].append(r)
                if r["target"] is not None:
                    targets[key].add(r["target"])
    counted = []
    for (clock, prio) in sorted(times, key=lambda k: (_clock_key(k[0]), k[1] == "all", _prio_key(k[1]))):
        rs = times[(clock, prio)]
        values = [r["counted"] for r in rs]
        breached = [r["counted"] - r["target"] for r in rs if r["verdict"] == "breached" and r["target"] is not None]
        counted.append({
            "clock": clock, "priority": prio, "n": len(values), "targets": sorted(targets[(clock, prio)]),
            **{f"p{q}": percentile(values, q) for q in PERCENTILES},
            "max": max(values), "breached": len(breached),
            "over_target_p50": percentile(breached, 50), "over_target_max": max(breached) if breached else None,
            "exact": all(r["exact"] for r in rs),
        })

    # breaches timeline
    breaches = sorted((r for r in rows if r["verdict"] == "breached"), key=lambda r: (r["time"], r["ticket"], r["clock"]))
    tz = _zone(info)
    by_day: dict[str, Counter] = defaultdict(Counter)
    for r in breaches:
        day = datetime.fromisoformat(r["time"]).astimezone(tz).date().isoformat()
        by_day[day][r["clock"]] += 1
    breach_rows = [{"time": r["time"], "ticket": r["ticket"], "priority": r["priority"], "clock": r["clock"],
                    "cycle": r["cycle"], "target": r["target"], "counted": r["counted"], "exact": r["exact"]}
                   for r in breaches]

    # escalations by level
    levels: dict[tuple, dict] = {}
    pages: Counter = Counter()
    max_level: dict[str, int] = {}
    for o in b["escalations"]:
        d = o["data"]
        key = (d.get("policy") or "", d.get("level") or 0)
        row = levels.setdefault(key, {"policy": key[0], "level": key[1], "severity": d.get("severity"),
                                      "clock": d.get("clock"), "triggered": 0, "repeated": 0, "tickets": set()})
        row["triggered" if o["type"] == "escalation.triggered" else "repeated"] += 1
        row["tickets"].add(d["ticket"])
        pages[d["ticket"]] += 1
        max_level[d["ticket"]] = max(max_level.get(d["ticket"], 0), d.get("level") or 0)
    escalation_rows = [{**r, "tickets": len(r["tickets"])} for _, r in sorted(levels.items())]

    # money
    remedies: dict[str, dict] = {}
    ticket_money: dict[str, Decimal] = defaultdict(lambda: ZERO)
    flow: list[tuple[str, Decimal, str]] = []
    currency = info.currency
    cap_limit = info.cap_limit
    for o in sorted(b["penalties"], key=lambda o: o["time"]):
        d = o["data"]
        amount = Decimal(d["amount"])
        requested = Decimal((d.get("explain") or {}).get("requested") or d["amount"])
        r = remedies.setdefault(d["remedy"], {"remedy": d["remedy"], "kind": "penalty", "clock": d.get("clock"),
                                              "count": 0, "requested": ZERO, "granted": ZERO, "capped": 0})
        r["count"] += 1
        r["requested"] += requested
        r["granted"] += amount
        r["capped"] += bool(d.get("capped"))
        ticket_money[d["ticket"]] += amount
        flow.append((o["time"], amount, d["ticket"]))
        currency = currency or d.get("currency", "")
        cap_limit = cap_limit or (d.get("explain") or {}).get("cap_limit")
    credits = []
    for o in sorted(b["credits"], key=lambda o: o["time"]):
        d = o["data"]
        amount = Decimal(d["amount"])
        credits.append({"remedy": d.get("remedy"), "slo": d.get("slo"), "attainment": d.get("attainment"),
                        "credit_percent": d.get("credit_percent"), "amount": _money(amount),
                        "capped": bool(d.get("capped")), **({"objective": d["objective"]} if "objective" in d else {})})
        flow.append((o["time"], amount, d.get("slo") or d.get("objective") or d.get("remedy") or "credit"))
    flow.sort(key=lambda f: f[0])
    running, cumulative = ZERO, []
    for time, amount, what in flow:
        running += amount
        cumulative.append({"time": time, "total": _money(running), "what": what})
    penalty_total = sum((r["granted"] for r in remedies.values()), ZERO)
    requested_total = sum((r["requested"] for r in remedies.values()), ZERO)
    credit_total = sum((Decimal(c["amount"]) for c in credits), ZERO)
    money = {
        "currency": currency, "cap_limit": cap_limit,
        "penalties": [{**r, "requested": _money(r["requested"]), "granted": _money(r["granted"])}
                      for _, r in sorted(remedies.items())],
        "credits": credits,
        "penalty_requested": _money(requested_total), "penalty_total": _money(penalty_total),
        "credit_total": _money(credit_total), "total": _money(penalty_total + credit_total),
        "cap_used_percent": (float((penalty_total + credit_total) / Decimal(cap_limit) * 100)
                             if cap_limit and Decimal(cap_limit) > 0 else None),
        "cumulative": cumulative,
    }

    # per ticket
    by_ticket: dict[str, dict] = {}
    for t in sorted(b["tickets"]):
        by_ticket[t] = {"ticket": t, "priority": ticket_prio.get(t), "verdicts": {}, "pages": pages.get(t, 0),
                        "max_level": max_level.get(t), "penalty": _money(ticket_money.get(t, ZERO))}
    for r in rows:
        cell = by_ticket[r["ticket"]]["verdicts"]
        label = r["clock"] if r["cycle"] == 1 else f"{r['clock']}#{r['cycle']}"
        cell[label] = r["verdict"]
    for t, row in by_ticket.items():
        if not row["verdicts"] and t in tickets:
            row["note"] = f"no verdict ({tickets[t].get('lifecycle', 'open')})"
    drivers = sorted((r for r in by_ticket.values() if r["pages"] or Decimal(r["penalty"]) > 0),
                     key=lambda r: (-Decimal(r["penalty"]), -r["pages"], r["ticket"]))
    for r in drivers:
        r["breaches"] = sorted(k for k, v in r["verdicts"].items() if v == "breached")

    total_verdicts = Counter(r["verdict"] for r in rows)
    overview = {
        "period": period, "tickets": len(by_ticket),
        **{f"{clock}_{v}": sum(1 for r in rows if r["clock"] == clock and r["verdict"] == v)
           for clock in clocks for v in ("met", "breached")},
        "met": total_verdicts["met"], "breached": total_verdicts["breached"],
        "compliance": _ratio(total_verdicts["met"], total_verdicts["met"] + total_verdicts["breached"]),
        "escalations": sum(r["triggered"] for r in escalation_rows),
        "repeats": sum(r["repeated"] for r in escalation_rows),
        "penalties": money["penalty_total"], "credits": money["credit_total"],
        "capped": sum(r["capped"] for r in remedies.values()) + sum(c["capped"] for c in credits),
    }
    return {
        "period": period, "overview": overview, "clocks": clocks, "verdicts": verdict_rows,
        "counted_time": counted, "breaches": breach_rows,
        "breaches_by_day": {day: dict(c) for day, c in sorted(by_day.items())},
        "escalations": escalation_rows, "money": money,
        "drivers": drivers[:top], "drivers_total": len(drivers),
        "tickets": list(by_ticket.values()), **_contract_terms(b),
    }


def _contract_terms(b: dict) -> dict:
    """Ticket objectives and earn-backs of a period (DESIGN.md §13), only where there are any."""
    out: dict = {}
    if b.get("objectives"):
        out["objectives"] = [{k: o["data"].get(k) for k in ("objective", "met", "missed", "attainment", "at_least")}
                             | {"verdict": o["type"] == "objective.attainment",
                                "achieved": o["data"].get("achieved")} for o in b["objectives"]]
    if b.get("earned_back"):
        out["earned_back"] = [{k: o["data"].get(k) for k in ("remedy", "slo", "objective", "period", "amount")}
                              for o in b["earned_back"]]
    return out


def _ratio(a: int, n: int) -> float | None:
    return a / n if n else None


def _verdict_row(clock: str, prio: str, c: Counter) -> dict:
    n = c["met"] + c["breached"]
    return {"clock": clock, "priority": prio, "met": c["met"], "breached": c["breached"], "total": n,
            "compliance": _ratio(c["met"], n)}


_CLOCK_ORDER = {"response": 0, "update": 1, "resolution": 2}


def _clock_key(clock: str) -> tuple:
    return (_CLOCK_ORDER.get(clock, 9), clock)


def seconds_text(seconds: float | None) -> str:
    """94050 -> ``26h 07m``; 600 -> ``10m``; 45 -> ``45s``. Hours are the largest unit: counted
    time is exact hours, a day of it is not a calendar day."""
    if seconds is None:
        return "–"
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(seconds)))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m" + (f" {secs:02d}s" if secs else "")
    return f"{sign}{secs}s"
