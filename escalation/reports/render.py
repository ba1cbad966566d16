"""Render a compliance report (:func:`.compliance.build_report`) as Markdown or one HTML page.

Both formats draw one list of blocks (:mod:`.blocks`), so they always say the same thing. The
HTML page is self-contained: inline CSS, charts as inline SVG (:mod:`.charts`), no scripts, no
external URL. Markdown has the same tables and no pictures. Charts are drawn only for HTML, so
Markdown does not need matplotlib.
"""

from __future__ import annotations

import html

from escalation.reports.blocks import Chart, Details, Heading, Para, Table, blocks

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
