"""Render a compliance report (:func:`.compliance.build_report`) as Markdown or one HTML page.

Both formats come from one list of blocks (headings, paragraphs, tables, charts, collapsible
parts), so they always say the same thing. The HTML page is self-contained: inline CSS, charts
as inline SVG (:mod:`.charts`), no scripts, no external URL. Markdown has the same tables and
no pictures. Charts are drawn only for HTML, so Markdown does not need matplotlib.
"""

from __future__ import annotations

import html
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

    for a in report["agreements"]:
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

    if report.get("made_sla"):
        out += made_sla_blocks(report["made_sla"])
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
    name = f"{aid}-{p['period']}"
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

    out.append(Heading(4, "Breaches"))
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

    out.append(Heading(4, "Escalations by level"))
    if p["escalations"]:
        esc = p["escalations"]
        out.append(Table(["policy", "level", "clock", "severity", "triggered", "repeated", "tickets"],
                         [[r["policy"], r["level"], r["clock"], r["severity"], r["triggered"], r["repeated"], r["tickets"]]
                          for r in esc], numeric={1, 4, 5, 6}))
        out.append(Chart(lambda: _charts().escalation_levels(esc, f"{name}-levels")))
    else:
        out.append(Para("No escalations."))

    out.append(Heading(4, "Penalties and credits"))
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
    out += _contract_blocks(p)

    out.append(Heading(4, "Tickets that drove them"))
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


# --------------------------------------------------------------------------------------------
# Markdown


def _md_cell(value) -> str:
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    lines: list[str] = []

    def walk(items: list) -> None:
        for b in items:
            if isinstance(b, Heading):
                lines.extend([f"{'#' * b.level} {b.text}", ""])
            elif isinstance(b, Para):
                lines.extend([f"_{b.text}_" if b.muted else b.text, ""])
            elif isinstance(b, Table):
                if not b.rows:
                    lines.extend(["(none)", ""])
                    continue
                lines.append("| " + " | ".join(_md_cell(c) for c in b.columns) + " |")
                lines.append("|" + "|".join("---:" if i in b.numeric else "---" for i in range(len(b.columns))) + "|")
                lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows)
                lines.append("")
                if b.note:
                    lines.extend([f"_{b.note}_", ""])
            elif isinstance(b, Details):
                lines.extend([f"**{b.summary}**", ""])
                walk(b.blocks)
            # charts: pictures only in HTML

    walk(blocks(report))
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #333;padding-bottom:.2em}
h2{font-size:1.35em;margin-top:2em;border-bottom:1px solid #bbb}
h3{font-size:1.15em;margin-top:1.6em}
h4{font-size:1em;margin:1.2em 0 .4em}
p.muted{color:#666;font-size:.92em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.92em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafa}
figure.chart{margin:.5em 0 1em}
figure.chart svg{max-width:100%;height:auto}
details{margin:.5em 0 1.5em}
summary{cursor:pointer;font-weight:600}
nav ul{columns:3;font-size:.92em}
.note{color:#666;font-size:.88em;margin-top:-.6em}
""".strip()


def render_html(report: dict) -> str:
    esc = html.escape
    body: list[str] = []
    toc: list[str] = []

    def walk(items: list) -> None:
        for b in items:
            if isinstance(b, Heading):
                anchor = f' id="{esc(b.anchor)}"' if b.anchor else ""
                body.append(f"<h{b.level}{anchor}>{esc(b.text)}</h{b.level}>")
                if b.anchor and b.level <= 3:
                    toc.append(f'<li><a href="#{esc(b.anchor)}">{esc(b.text)}</a></li>')
            elif isinstance(b, Para):
                body.append(f'<p class="muted">{esc(b.text)}</p>' if b.muted else f"<p>{esc(b.text)}</p>")
            elif isinstance(b, Table):
                if not b.rows:
                    body.append("<p>(none)</p>")
                    continue
                head = "".join(f"<th>{esc(str(c))}</th>" for c in b.columns)
                rows = "".join(
                    "<tr>" + "".join(f'<td class="num">{esc(_s(v))}</td>' if i in b.numeric else f"<td>{esc(_s(v))}</td>"
                                     for i, v in enumerate(row)) + "</tr>"
                    for row in b.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
                if b.note:
                    body.append(f'<p class="note">{esc(b.note)}</p>')
            elif isinstance(b, Chart):
                svg = b.draw()
                if svg:
                    body.append(svg)
            elif isinstance(b, Details):
                body.append(f"<details><summary>{esc(b.summary)}</summary>")
                walk(b.blocks)
                body.append("</details>")

    walk(blocks(report))
    nav = f'<nav><ul>{"".join(toc)}</ul></nav>' if len(toc) > 1 else ""
    title = esc(report["title"])
    first = body.index(next(x for x in body if x.startswith("<h1")))
    parts = body[:first + 1] + [nav] + body[first + 1:]
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _s(v) -> str:
    return "" if v is None else str(v)
