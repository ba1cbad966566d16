"""A compliance report (:func:`.compliance.build_report`) as a list of blocks: headings,
paragraphs, tables, charts and collapsible parts. Both renderers (:mod:`.render`) draw the same
blocks, so Markdown and HTML always say the same thing. Charts are drawn lazily (a ``Chart``
holds a function), so Markdown never needs matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from escalation.reports.numbers import seconds_text

MAX_ROWS = 100


@dataclass
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass
class Para:
    text: str
    muted: bool = False


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    numeric: set[int] = field(default_factory=set)   # right-aligned column indexes
    note: str | None = None


@dataclass
class Chart:
    draw: Callable[[], str]


@dataclass
class Details:
    summary: str
    blocks: list


def _charts():
    """The chart module, imported on first use: Markdown never needs matplotlib. (Imported by its
    own name, not from the package, whose ``__init__`` imports this module.)"""
    import escalation.reports.charts as charts

    return charts


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def _hours(seconds: float | None, exact: bool = True) -> str:
    text = seconds_text(seconds)
    return text if exact or seconds is None else f"≥ {text}"


def _limit(rows: list, n: int = MAX_ROWS) -> tuple[list, str | None]:
    if len(rows) <= n:
        return rows, None
    return rows[:n], f"first {n} of {len(rows)} rows; every ticket is listed under “All tickets”"


def blocks(report: dict) -> list:
    """The report as a list of blocks (what both renderers draw)."""
    out = _intro_blocks(report)
    for a in report["agreements"]:
        out += _agreement_blocks(a)
    if report.get("made_sla"):
        out += made_sla_blocks(report["made_sla"])
    return out


def _intro_blocks(report: dict) -> list:
    """Title, what was replayed, and how periods and counted time are counted."""
    out: list = [Heading(1, report["title"])]
    src = report.get("source") or {}
    facts = []
    for key, label in (("events", "events"), ("outputs", "outputs"), ("agreements", "agreements"),
                       ("until", "until")):
        if src.get(key):
            value = src[key]
            facts.append(f"{label}: {', '.join(value) if isinstance(value, list) else value}")
    if src.get("replay"):
        r = src["replay"]
        facts.append(f"replayed {r.get('events', 0)} events ({r.get('rejected', 0)} rejected) -> "
                     f"{r.get('outputs', 0)} outputs")
    if report.get("period"):
        facts.append(f"period: {report['period']}")
    facts.append(f"tickets: {report['tickets_total']}")
    out.append(Para(" · ".join(facts)))
    if src.get("attribution"):
        out.append(Para(src["attribution"], muted=True))
    out.append(Para(
        "Periods are calendar months in the agreement's time zone; a clock counts in the period of its "
        "verdict (met: when it stopped; breached: when it passed its target). Counted time is the time "
        "a clock ran inside its calendar, pauses excluded"
        + ("." if report.get("counted_time_exact", True) else
           "; values marked ≥ are lower bounds (built from outputs only: a breached clock's final "
           "counted time is not in the outputs).") , muted=True))
    return out


def _agreement_blocks(a: dict) -> list:
    """One agreement: its facts, the overview of its periods, then each period."""
    out: list = []
    aid = a["agreement"] or "(unknown)"
    out.append(Heading(2, f"{aid}" + (f" — {a['title']}" if a.get("title") else ""), f"a-{aid}"))
    meta = [f"time zone {a['timezone']}"]
    if a.get("currency"):
        meta.append(f"currency {a['currency']}")
    if a.get("cap_limit"):
        meta.append(f"cap per period {a['cap_limit']} {a.get('currency', '')}".rstrip())
    if a.get("revisions"):
        meta.append("revisions " + ", ".join(str(r) for r in a["revisions"]))
    out.append(Para(" · ".join(meta), muted=True))
    clocks = sorted({c for p in a["periods"] for c in p["clocks"]},
                    key=lambda c: {"response": 0, "update": 1, "resolution": 2}.get(c, 9))
    ov = a["overview"]
    out.append(Heading(3, "Overview"))
    cols = ["period", "tickets"] + [f"{c} {v}" for c in clocks for v in ("met", "breached")] + [
        "compliance", "escalations", "repeats", "penalties", "credits", "capped"]
    out.append(Table(cols, [[o["period"], o["tickets"], *[o.get(f"{c}_{v}", 0) for c in clocks for v in ("met", "breached")],
                             pct(o["compliance"]), o["escalations"], o["repeats"], o["penalties"], o["credits"],
                             o["capped"]] for o in ov], numeric=set(range(1, len(cols)))))
    if len(ov) > 1:
        out.append(Chart(lambda ov=ov, clocks=clocks, aid=aid: _charts().verdicts_by_period(ov, clocks, f"{aid}-overview")))
    for p in a["periods"]:
        out += _period_blocks(aid, a, p)
    return out


def _contract_blocks(p: dict) -> list:
    """Ticket objectives and earn-backs (DESIGN.md §13), for periods that have them."""
    out: list = []
    if p.get("objectives"):
        out.append(Heading(4, "Ticket objectives"))
        out.append(Table(["objective", "met", "missed", "attainment", "at least", "verdict"],
                         [[o["objective"], o["met"], o["missed"], "–" if o["attainment"] is None else f"{o['attainment']:g} %",
                           f"{o['at_least']:g} %", ("achieved" if o["achieved"] else "missed") if o["verdict"]
                           else "no verdict (too few cycles)"] for o in p["objectives"]], numeric={1, 2, 3, 4}))
    if p.get("earned_back"):
        out.append(Heading(4, "Credits earned back"))
        out.append(Table(["remedy", "slo / objective", "credited period", "amount"],
                         [[e["remedy"], e["slo"] or e["objective"], e["period"], e["amount"]] for e in p["earned_back"]],
                         numeric={3}))
    return out


def _period_blocks(aid: str, a: dict, p: dict) -> list:
    """One period of an agreement: summary, verdicts and counted time, breaches, escalations,
    money, contract terms, the tickets that drove them and all tickets."""
    name = f"{aid}-{p['period']}"
    return (_period_summary_blocks(aid, a, p, name) + _breach_blocks(p, name) + _escalation_blocks(p, name)
            + _money_blocks(p, name) + _contract_blocks(p) + _ticket_blocks(p))


def _period_summary_blocks(aid: str, a: dict, p: dict, name: str) -> list:
    out: list = [Heading(3, f"{aid} · {p['period']}", f"p-{name}")]
    o = p["overview"]
    out.append(Para(f"{o['tickets']} tickets · {o['met']} clocks met, {o['breached']} breached "
                    f"({pct(o['compliance'])} compliance) · {o['escalations']} escalations, {o['repeats']} repeats · "
                    f"penalties {o['penalties']}, credits {o['credits']} {a.get('currency', '')}".rstrip()))

    out.append(Heading(4, "Met and breached per clock and priority"))
    out.append(Table(["clock", "priority", "met", "breached", "total", "compliance"],
                     [[r["clock"], r["priority"], r["met"], r["breached"], r["total"], pct(r["compliance"])]
                      for r in p["verdicts"]], numeric={2, 3, 4, 5}))

    out.append(Heading(4, "Counted time (p50 / p90 / p95)"))
    out.append(Table(["clock", "priority", "n", "target", "p50", "p90", "p95", "max", "breached", "over target p50"],
                     [[r["clock"], r["priority"], r["n"], ", ".join(seconds_text(t) for t in r["targets"]),
                       _hours(r["p50"], r["exact"]), _hours(r["p90"], r["exact"]), _hours(r["p95"], r["exact"]),
                       _hours(r["max"], r["exact"]), r["breached"], _hours(r["over_target_p50"], r["exact"])]
                      for r in p["counted_time"]], numeric={2, 4, 5, 6, 7, 8, 9}))
    rows = p["counted_time"]
    out.append(Chart(lambda rows=rows, name=name: _charts().counted_time(rows, f"{name}-time")))
    return out


def _breach_blocks(p: dict, name: str) -> list:
    out: list = [Heading(4, "Breaches")]
    if p["breaches"]:
        by_day, period, clocks = p["breaches_by_day"], p["period"], p["clocks"]
        out.append(Chart(lambda: _charts().breach_timeline(by_day, period, clocks, f"{name}-timeline")))
        shown, note = _limit(p["breaches"])
        out.append(Table(["time (UTC)", "ticket", "priority", "clock", "target", "counted"],
                         [[b["time"][:16].replace("T", " "), b["ticket"], b["priority"],
                           b["clock"] if b["cycle"] == 1 else f"{b['clock']} #{b['cycle']}",
                           seconds_text(b["target"]), _hours(b["counted"], b["exact"])] for b in shown],
                         numeric={5}, note=note))
    else:
        out.append(Para("No breaches."))
    return out


def _escalation_blocks(p: dict, name: str) -> list:
    out: list = [Heading(4, "Escalations by level")]
    if p["escalations"]:
        esc = p["escalations"]
        out.append(Table(["policy", "level", "clock", "severity", "triggered", "repeated", "tickets"],
                         [[r["policy"], r["level"], r["clock"], r["severity"], r["triggered"], r["repeated"], r["tickets"]]
                          for r in esc], numeric={1, 4, 5, 6}))
        out.append(Chart(lambda: _charts().escalation_levels(esc, f"{name}-levels")))
    else:
        out.append(Para("No escalations."))
    return out


def _money_blocks(p: dict, name: str) -> list:
    out: list = [Heading(4, "Penalties and credits")]
    m = p["money"]
    cur = m.get("currency") or ""
    if m["penalties"] or m["credits"]:
        cap = (f" · cap {m['cap_limit']} {cur}, {m['cap_used_percent']:.1f} % used"
               if m.get("cap_limit") and m.get("cap_used_percent") is not None else " · no cap")
        out.append(Para(f"Assessed {m['total']} {cur} (penalties {m['penalty_total']} of {m['penalty_requested']} "
                        f"requested, credits {m['credit_total']}){cap}."))
        if m["penalties"]:
            out.append(Table(["remedy", "clock", "breaches", "requested", "granted", "capped"],
                             [[r["remedy"], r["clock"], r["count"], r["requested"], r["granted"], r["capped"]]
                              for r in m["penalties"]], numeric={2, 3, 4, 5}))
        if m["credits"]:
            out.append(Table(["remedy", "slo", "attainment", "credit %", "amount", "capped"],
                             [[c["remedy"], c["slo"] or c.get("objective"), c["attainment"], c["credit_percent"], c["amount"],
                               "yes" if c["capped"] else "no"] for c in m["credits"]], numeric={2, 3, 4}))
        cumulative, cap_limit = m["cumulative"], m.get("cap_limit")
        out.append(Chart(lambda: _charts().money_flow(cumulative, cap_limit, cur, p["period"], f"{name}-money")))
    else:
        out.append(Para("No penalties or credits."))
    return out


def _ticket_blocks(p: dict) -> list:
    out: list = [Heading(4, "Tickets that drove them")]
    if p["drivers"]:
        note = (f"top {len(p['drivers'])} of {p['drivers_total']} tickets with a penalty or an escalation"
                if p["drivers_total"] > len(p["drivers"]) else None)
        out.append(Table(["ticket", "priority", "breached", "pages", "highest level", "penalty"],
                         [[d["ticket"], d["priority"], ", ".join(d["breaches"]) or "–", d["pages"],
                           d["max_level"] or "–", d["penalty"]] for d in p["drivers"]], numeric={3, 4, 5}, note=note))
    else:
        out.append(Para("No ticket caused a penalty or an escalation."))

    clocks = p["clocks"]
    ticket_rows = [[t["ticket"], t["priority"], *[t["verdicts"].get(c, "–") for c in clocks],
                    ", ".join(f"{k}: {v}" for k, v in t["verdicts"].items() if k not in clocks) or t.get("note", ""),
                    t["pages"], t["penalty"]] for t in p["tickets"]]
    out.append(Details(f"All tickets ({len(ticket_rows)})", [
        Table(["ticket", "priority", *clocks, "other", "pages", "penalty"], ticket_rows,
              numeric={len(clocks) + 3, len(clocks) + 4})]))
    return out


def made_sla_blocks(cmp: dict) -> list:
    out: list = [Heading(2, "Engine verdict vs ServiceNow made_sla", "made-sla")]
    rate = cmp["agreement_rate"]
    out.append(Para(f"Resolution verdict of the engine against ServiceNow's own made_sla for {cmp['compared']} of "
                    f"{cmp['tickets']} tickets: they agree on {cmp['agreeing']} ({pct(rate)})."))
    c = cmp["confusion"]
    out.append(Table(["engine \\ made_sla", "true (made)", "false (missed)", "unknown"],
                     [[f"engine {k}", c[k]["made"], c[k]["missed"], c[k]["unknown"]] for k in ("met", "breached", "none")],
                     numeric={1, 2, 3}))
    out.append(Chart(lambda: _charts().confusion_matrix(c, "made-sla-confusion")))
    out.append(Heading(3, "Agreement by (final) priority"))
    out.append(Table(["priority", "agree", "disagree", "rate", "ServiceNow missed"],
                     [[p, r["agree"], r["disagree"], pct(r["rate"]), pct(r["servicenow_missed_share"])]
                      for p, r in cmp["by_priority"].items()], numeric={1, 2, 3, 4}))
    out.append(Heading(3, "Reasons for disagreement"))
    for kind, label in (("met_missed", "Engine met, ServiceNow missed"), ("breached_made", "Engine breached, ServiceNow made it")):
        rows = cmp["reasons"].get(kind) or []
        total = sum(r["count"] for r in rows)
        out.append(Heading(4, f"{label} ({total})"))
        if rows:
            out.append(Table(["reason", "tickets", "meaning", "examples"],
                             [[r["reason"], r["count"], r["text"], ", ".join(e["ticket"] for e in r["examples"])]
                              for r in rows], numeric={1}))
    out.append(Chart(lambda: _charts().reasons(cmp["reasons"], "made-sla-reasons")))
    fits = cmp.get("wall_clock_fit") or {}
    if fits:
        out.append(Heading(3, "Does a wall-clock limit explain made_sla?"))
        out.append(Para("Per priority, the single limit on wall-clock resolution time (opened → last resolution, "
                        "24x7, pauses included) that best separates made from missed tickets, and how many "
                        "tickets it classifies correctly."))
        out.append(Table(["priority", "tickets", "made", "missed", "best limit", "cut between", "accuracy"],
                         [[p, f["n"], f["made"], f["missed"],
                           "all missed" if f["limit_hours"] is None and f["n"] else seconds_text(
                               None if f["limit_hours"] is None else f["limit_hours"] * 3600),
                           " – ".join(seconds_text(None if x is None else x * 3600) for x in f.get("cut_between_hours") or []),
                           pct(f["accuracy"])] for p, f in fits.items()], numeric={1, 2, 3, 6}))
    if cmp.get("targets"):
        out.append(Para("Agreement resolution targets: " + "; ".join(
            f"{t['priority']} {t['within']} ({t['calendar']}, {t['counted_hours']:g} counted h)" for t in cmp["targets"])
            + ".", muted=True))
    return out
