"""One period of a compliance report: the figures of one agreement's month (``period_section``).

Pure functions over one bucket of :func:`~escalation.reports.compliance.build_report`: its verdict
rows (one per ticket, clock and cycle), its escalation and money outputs (typed ``Output``
records) and its tickets. Every money figure is written with ``amounts.money_text`` (half-up).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from escalation.core.money.amounts import ZERO, money_text
from escalation.core.outputs import OutputType
from escalation.reports.numbers import percentile

PERCENTILES = (50, 90, 95)
_PRIORITY_ORDER = re.compile(r"(\d+)")
_CLOCK_ORDER = {"response": 0, "update": 1, "resolution": 2}


def period_section(period: str, b: dict, tz: ZoneInfo, currency: str, cap_limit: str | None,
                   ticket_prio: Mapping[str, str], tickets: Mapping[str, dict], top: int) -> dict:
    """The report section of ``period`` from its bucket ``b`` (verdicts, escalations, penalties,
    credits, tickets; optionally objectives and earn-backs)."""
    rows = b["verdicts"]
    verdict_rows, clocks = _verdict_table(rows)
    breaches, by_day = _breaches(rows, tz)
    escalation_rows, pages, max_level = _escalations(b["escalations"])
    money, remedies, ticket_money = _money(b["penalties"], b["credits"], currency, cap_limit)
    by_ticket, drivers = _tickets(b["tickets"], rows, ticket_prio, tickets, pages, max_level, ticket_money)
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
        "capped": sum(r["capped"] for r in remedies.values()) + sum(c["capped"] for c in money["credits"]),
    }
    return {
        "period": period, "overview": overview, "clocks": clocks, "verdicts": verdict_rows,
        "counted_time": _counted_time(rows), "breaches": breaches, "breaches_by_day": by_day,
        "escalations": escalation_rows, "money": money,
        "drivers": drivers[:top], "drivers_total": len(drivers),
        "tickets": list(by_ticket.values()), **_contract_terms(b),
    }


def _verdict_table(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """(met / breached per clock and priority, with an ``all`` row per clock; the clocks in order)."""
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
    return verdict_rows, clocks


def _counted_time(rows: list[dict]) -> list[dict]:
    """Counted time percentiles per clock and priority (and ``all``)."""
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
    return counted


def _breaches(rows: list[dict], tz: ZoneInfo) -> tuple[list[dict], dict[str, dict]]:
    """(the breaches in time order, breaches per local day and clock)."""
    breaches = sorted((r for r in rows if r["verdict"] == "breached"), key=lambda r: (r["time"], r["ticket"], r["clock"]))
    by_day: dict[str, Counter] = defaultdict(Counter)
    for r in breaches:
        day = datetime.fromisoformat(r["time"]).astimezone(tz).date().isoformat()
        by_day[day][r["clock"]] += 1
    breach_rows = [{"time": r["time"], "ticket": r["ticket"], "priority": r["priority"], "clock": r["clock"],
                    "cycle": r["cycle"], "target": r["target"], "counted": r["counted"], "exact": r["exact"]}
                   for r in breaches]
    return breach_rows, {day: dict(c) for day, c in sorted(by_day.items())}


def _escalations(outputs: list) -> tuple[list[dict], Counter, dict[str, int]]:
    """(escalations by policy and level, pages per ticket, highest level per ticket)."""
    levels: dict[tuple, dict] = {}
    pages: Counter = Counter()
    max_level: dict[str, int] = {}
    for o in outputs:
        d = o.data
        key = (d.get("policy") or "", d.get("level") or 0)
        row = levels.setdefault(key, {"policy": key[0], "level": key[1], "severity": d.get("severity"),
                                      "clock": d.get("clock"), "triggered": 0, "repeated": 0, "tickets": set()})
        row["triggered" if o.type is OutputType.ESCALATION_TRIGGERED else "repeated"] += 1
        row["tickets"].add(d["ticket"])
        pages[d["ticket"]] += 1
        max_level[d["ticket"]] = max(max_level.get(d["ticket"], 0), d.get("level") or 0)
    return [{**r, "tickets": len(r["tickets"])} for _, r in sorted(levels.items())], pages, max_level


def _money(penalties: list, credit_outputs: list, currency: str, cap_limit: str | None) -> tuple[dict, dict, dict]:
    """(the money section, penalties per remedy, penalty amount per ticket)."""
    remedies: dict[str, dict] = {}
    ticket_money: dict[str, Decimal] = defaultdict(lambda: ZERO)
    flow: list[tuple[str, Decimal, str]] = []
    for o in sorted(penalties, key=lambda o: o.time):
        d = o.data
        amount = Decimal(d["amount"])
        requested = Decimal((d.get("explain") or {}).get("requested") or d["amount"])
        r = remedies.setdefault(d["remedy"], {"remedy": d["remedy"], "kind": "penalty", "clock": d.get("clock"),
                                              "count": 0, "requested": ZERO, "granted": ZERO, "capped": 0})
        r["count"] += 1
        r["requested"] += requested
        r["granted"] += amount
        r["capped"] += bool(d.get("capped"))
        ticket_money[d["ticket"]] += amount
        flow.append((o.time.isoformat(), amount, d["ticket"]))
        currency = currency or d.get("currency", "")
        cap_limit = cap_limit or (d.get("explain") or {}).get("cap_limit")
    credits = []
    for o in sorted(credit_outputs, key=lambda o: o.time):
        d = o.data
        amount = Decimal(d["amount"])
        credits.append({"remedy": d.get("remedy"), "slo": d.get("slo"), "attainment": d.get("attainment"),
                        "credit_percent": d.get("credit_percent"), "amount": money_text(amount),
                        "capped": bool(d.get("capped")), **({"objective": d["objective"]} if "objective" in d else {})})
        flow.append((o.time.isoformat(), amount, d.get("slo") or d.get("objective") or d.get("remedy") or "credit"))
    penalty_total = sum((r["granted"] for r in remedies.values()), ZERO)
    requested_total = sum((r["requested"] for r in remedies.values()), ZERO)
    credit_total = sum((Decimal(c["amount"]) for c in credits), ZERO)
    money = {
        "currency": currency, "cap_limit": cap_limit,
        "penalties": [{**r, "requested": money_text(r["requested"]), "granted": money_text(r["granted"])}
                      for _, r in sorted(remedies.items())],
        "credits": credits,
        "penalty_requested": money_text(requested_total), "penalty_total": money_text(penalty_total),
        "credit_total": money_text(credit_total), "total": money_text(penalty_total + credit_total),
        "cap_used_percent": (float((penalty_total + credit_total) / Decimal(cap_limit) * 100)
                             if cap_limit and Decimal(cap_limit) > 0 else None),
        "cumulative": _cumulative(flow),
    }
    return money, remedies, ticket_money


def _cumulative(flow: list[tuple[str, Decimal, str]]) -> list[dict]:
    """The running money total after each penalty or credit, in time order."""
    flow.sort(key=lambda f: f[0])
    running, cumulative = ZERO, []
    for time, amount, what in flow:
        running += amount
        cumulative.append({"time": time, "total": money_text(running), "what": what})
    return cumulative


def _tickets(ticket_ids: set, rows: list[dict], ticket_prio: Mapping[str, str], tickets: Mapping[str, dict],
             pages: Counter, max_level: dict, ticket_money: dict) -> tuple[dict[str, dict], list[dict]]:
    """(one row per ticket of the period, the tickets that drove money or pages, most first)."""
    by_ticket: dict[str, dict] = {}
    for t in sorted(ticket_ids):
        by_ticket[t] = {"ticket": t, "priority": ticket_prio.get(t), "verdicts": {}, "pages": pages.get(t, 0),
                        "max_level": max_level.get(t), "penalty": money_text(ticket_money.get(t, ZERO))}
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
    return by_ticket, drivers


def _contract_terms(b: dict) -> dict:
    """Ticket objectives and earn-backs of a period (DESIGN.md §13), only where there are any."""
    out: dict = {}
    if b.get("objectives"):
        out["objectives"] = [{k: o.data.get(k) for k in ("objective", "met", "missed", "attainment", "at_least")}
                             | {"verdict": o.type is OutputType.OBJECTIVE_ATTAINMENT,
                                "achieved": o.data.get("achieved")} for o in b["objectives"]]
    if b.get("earned_back"):
        out["earned_back"] = [{k: o.data.get(k) for k in ("remedy", "slo", "objective", "period", "amount")}
                              for o in b["earned_back"]]
    return out


def _ratio(a: int, n: int) -> float | None:
    return a / n if n else None


def _verdict_row(clock: str, prio: str, c: Counter) -> dict:
    n = c["met"] + c["breached"]
    return {"clock": clock, "priority": prio, "met": c["met"], "breached": c["breached"], "total": n,
            "compliance": _ratio(c["met"], n)}


def _prio_key(p: str | None) -> tuple:
    p = p or ""
    m = _PRIORITY_ORDER.search(p)
    return (int(m.group(1)) if m else 10**6, p)


def _clock_key(clock: str) -> tuple:
    return (_CLOCK_ORDER.get(clock, 9), clock)
