"""Charts for the HTML report, as inline SVG text.

Library choice: **matplotlib** (``matplotlib>=3.8``).

- Well kept: the reference plotting library of scientific Python (NumFOCUS-sponsored, several
  releases a year, wheels for every platform we run on, BSD-compatible licence).
- Offline and self-contained: it renders on the machine, with no JavaScript and no network; its
  SVG backend writes plain SVG text that we inline into the page, so the report is one file
  that opens anywhere, including in mail clients and air-gapped networks, and contains no
  external URL. (plotly, bokeh and altair/vega draw in the browser: they need a JavaScript bundle
  of several MB inlined into every report, or a CDN URL; pygal's interactive SVG loads its
  script from a CDN by default.)
- Deterministic: with ``svg.hashsalt`` fixed and no date metadata the same report data gives the
  same bytes, which suits a product whose outputs are reproducible (DESIGN.md §2). Text stays text
  (``svg.fonttype: none``), so charts are small, searchable and scale cleanly.

We use the object-oriented API (``matplotlib.figure.Figure``) and never ``pyplot``: no global
figure state, no GUI backend, safe inside a long-running process. Each function takes report
data (see :mod:`.compliance`) and returns an ``<svg ...>...</svg>`` string, or ``""`` when there
is nothing to draw.
"""

from __future__ import annotations

import io
import re
from datetime import date, datetime

from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

MET, BREACHED = "#3b8b5a", "#c8553d"
CLOCK_COLOURS = ["#c8553d", "#e09f3e", "#5b7db1", "#8c6bb1", "#4d9078"]
GREY = "#555555"
_RC = {
    "svg.fonttype": "none",
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID = re.compile(r'\b(id)="([^"]+)"')
_REF = re.compile(r'((?:xlink:)?href)="#([^"]+)"')
_URL_REF = re.compile(r"url\(#([^)]+)\)")


def _svg(fig: Figure, name: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]                  # drop the XML prolog and DOCTYPE
    text = _METADATA.sub("", text)                    # RDF metadata: namespace URLs, nothing to show
    # matplotlib numbers ids per figure (axes_1, line2d_1, ...): prefix them, and the references to
    # them, so that many charts inline in one page keep every id unique
    prefix = "c-" + re.sub(r"[^A-Za-z0-9_-]", "-", name) + "-"
    text = _ID.sub(lambda m: f'{m.group(1)}="{prefix}{m.group(2)}"', text)
    text = _REF.sub(lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', text)
    text = _URL_REF.sub(lambda m: f"url(#{prefix}{m.group(1)})", text)
    return f'<figure class="chart" id="chart-{name}">{text.strip()}</figure>'


def _figure(width: float = 7.0, height: float = 2.8) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def verdicts_by_period(overview: list[dict], clocks: list[str], name: str) -> str:
    """Met and breached per period, one pair of stacked bars per clock."""
    if not overview or not clocks:
        return ""
    with rc_context({**_RC, "svg.hashsalt": name}):
        fig = _figure(max(4.0, 1.0 + 0.9 * len(overview) * max(1, len(clocks)) * 0.6), 2.8)
        ax = fig.add_subplot()
        width = 0.8 / len(clocks)
        for ci, clock in enumerate(clocks):
            xs = [i + (ci - (len(clocks) - 1) / 2) * width for i in range(len(overview))]
            met = [o.get(f"{clock}_met", 0) for o in overview]
            breached = [o.get(f"{clock}_breached", 0) for o in overview]
            ax.bar(xs, met, width * 0.92, color=MET, alpha=1.0 - 0.35 * ci, label=f"{clock} met")
            ax.bar(xs, breached, width * 0.92, bottom=met, color=BREACHED, alpha=1.0 - 0.35 * ci,
                   label=f"{clock} breached")
        ax.set_xticks(range(len(overview)), [o["period"] for o in overview], rotation=45 if len(overview) > 6 else 0)
        ax.set_ylabel("clocks")
        ax.set_title("Met and breached per period")
        ax.legend(fontsize=7, ncols=2, frameon=False)
        return _svg(fig, name)


def breach_timeline(by_day: dict[str, dict[str, int]], period: str, clocks: list[str], name: str) -> str:
    """Breaches per day of the period, stacked by clock."""
    if not by_day:
        return ""
    year, month = (int(x) for x in period.split("-"))
    first = date(year, month, 1)
    last = date(year + (month == 12), month % 12 + 1, 1)
    days = [date.fromordinal(o) for o in range(first.toordinal(), last.toordinal())]
    clocks = [c for c in clocks if any(c in v for v in by_day.values())] or sorted({c for v in by_day.values() for c in v})
    with rc_context({**_RC, "svg.hashsalt": name}):
        fig = _figure(7.0, 2.4)
        ax = fig.add_subplot()
        bottom = [0] * len(days)
        for ci, clock in enumerate(clocks):
            counts = [by_day.get(d.isoformat(), {}).get(clock, 0) for d in days]
            ax.bar([d.day for d in days], counts, 0.8, bottom=bottom, color=CLOCK_COLOURS[ci % len(CLOCK_COLOURS)],
                   label=clock)
            bottom = [b + c for b, c in zip(bottom, counts)]
        ax.set_xlim(0.3, len(days) + 0.7)
        ax.set_xticks([d.day for d in days if d.day == 1 or d.day % 5 == 0])
        ax.set_xlabel(f"day of {period}")
        ax.set_ylabel("breaches")
        ax.set_title("Breaches per day")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7, frameon=False, loc="upper right")
        return _svg(fig, name)


def escalation_levels(rows: list[dict], name: str) -> str:
    """Horizontal bars: first pages and repeats per policy level."""
    if not rows:
        return ""
    labels = [f"{r['policy']} L{r['level']}" for r in rows]
    with rc_context({**_RC, "svg.hashsalt": name}):
        fig = _figure(7.0, 0.6 + 0.32 * len(rows))
        ax = fig.add_subplot()
        ys = list(range(len(rows)))[::-1]
        trig = [r["triggered"] for r in rows]
        rep = [r["repeated"] for r in rows]
        ax.barh(ys, trig, 0.7, color="#5b7db1", label="triggered")
        ax.barh(ys, rep, 0.7, left=trig, color="#a9bfe0", label="repeated")
        ax.set_yticks(ys, labels)
        ax.set_xlabel("pages")
        ax.set_title("Escalations by level")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7, frameon=False)
        return _svg(fig, name)


def money_flow(cumulative: list[dict], cap_limit: str | None, currency: str, period: str, name: str) -> str:
    """Cumulative penalties and credits over the period, with the period cap as a line."""
    if not cumulative:
        return ""
    times = [datetime.fromisoformat(c["time"]) for c in cumulative]
    totals = [float(c["total"]) for c in cumulative]
    with rc_context({**_RC, "svg.hashsalt": name}):
        fig = _figure(7.0, 2.4)
        ax = fig.add_subplot()
        ax.step(times, totals, where="post", color=BREACHED, label="assessed (cumulative)")
        ax.plot(times, totals, "o", color=BREACHED, markersize=3)
        if cap_limit:
            ax.axhline(float(cap_limit), color=GREY, linestyle="--", linewidth=1, label=f"cap {cap_limit}")
        ax.set_ylim(bottom=0)
        ax.set_ylabel(currency or "amount")
        ax.set_title(f"Penalties and credits, {period}")
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        fig.legend(fontsize=7, frameon=False, ncols=2, loc="outside lower center")
        return _svg(fig, name)


def counted_time(rows: list[dict], name: str) -> str:
    """p50/p90/p95 counted time (hours) per clock and priority, with the target marked."""
    rows = [r for r in rows if r["priority"] != "all" and r["p50"] is not None]
    if not rows:
        return ""
    labels = [f"{r['clock']} {r['priority']}" for r in rows]
    with rc_context({**_RC, "svg.hashsalt": name}):
        fig = _figure(7.0, 0.7 + 0.36 * len(rows))
        ax = fig.add_subplot()
        ys = list(range(len(rows)))[::-1]
        for q, colour, h in (("p95", "#d9d9d9", 0.75), ("p90", "#a6a6a6", 0.55), ("p50", "#404040", 0.35)):
            ax.barh(ys, [r[q] / 3600 for r in rows], h, color=colour, label=q)
        tx = [(y, t / 3600) for y, r in zip(ys, rows) for t in r["targets"]]
        if tx:
            ax.plot([t for _, t in tx], [y for y, _ in tx], "|", color=BREACHED, markersize=14, markeredgewidth=2,
                    label="target")
        ax.set_yticks(ys, labels)
        ax.set_xlabel("counted hours (log scale)")
        ax.set_xscale("symlog", linthresh=1)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}h"))
        ax.set_title("Counted time percentiles")
        fig.legend(fontsize=7, frameon=False, ncols=4, loc="outside lower center")
        return _svg(fig, name)


def confusion_matrix(confusion: dict, name: str) -> str:
    """Engine verdict (rows) against ServiceNow made_sla (columns), as an annotated heat map."""
    rows = [r for r in ("met", "breached") if r in confusion]
    cols = ["made", "missed"]
    grid = [[confusion[r].get(c, 0) for c in cols] for r in rows]
    if not any(any(row) for row in grid):
        return ""
    with rc_context({**_RC, "svg.hashsalt": name}):
        fig = _figure(3.6, 2.6)
        ax = fig.add_subplot()
        ax.imshow(grid, cmap="Blues")
        top = max(max(row) for row in grid) or 1
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black",
                        fontsize=11, fontweight="bold")
        ax.set_xticks(range(len(cols)), [f"made_sla {'true' if c == 'made' else 'false'}" for c in cols])
        ax.set_yticks(range(len(rows)), [f"engine {r}" for r in rows])
        ax.set_title("Resolution verdict vs made_sla")
        for spine in ax.spines.values():
            spine.set_visible(False)
        return _svg(fig, name)


def reasons(reason_rows: dict[str, list[dict]], name: str) -> str:
    """Disagreement reasons, one bar each, coloured by direction."""
    bars = [(f"{'met/missed' if k == 'met_missed' else 'breached/made'}: {r['reason']}", r["count"], k)
            for k in ("met_missed", "breached_made") for r in reason_rows.get(k, [])]
    if not bars:
        return ""
    with rc_context({**_RC, "svg.hashsalt": name}):
        fig = _figure(7.0, 0.7 + 0.32 * len(bars))
        ax = fig.add_subplot()
        ys = list(range(len(bars)))[::-1]
        ax.barh(ys, [b[1] for b in bars], 0.7,
                color=[MET if b[2] == "met_missed" else BREACHED for b in bars])
        for y, b in zip(ys, bars):
            ax.text(b[1], y, f" {b[1]}", va="center", fontsize=8)
        ax.set_yticks(ys, [b[0] for b in bars])
        ax.set_xlabel("tickets")
        ax.set_title("Why the engine and made_sla disagree")
        return _svg(fig, name)
