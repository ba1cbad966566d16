"""``escalation report`` (compliance report per agreement and month: Markdown, HTML or JSON) and
``escalation compare-made-sla`` (the engine's resolution verdict against ServiceNow's
``made_sla``). The figures come from :mod:`escalation.reports`; here are the options, the files
and the terminal output. Progress bars (rich) are shown on stderr when it is a terminal."""

from __future__ import annotations

import time

import click
import orjson

from escalation.cli.common import (
    json_objects,
    load_registry,
    parse_instant,
    progress,
    read_lines,
    read_outputs,
    write_dead_letter,
    write_text,
)

_PERIOD_FORMAT = "YYYY-MM"


def _replay(registry, lines: list[bytes], until_at):
    from escalation.backtest import replay_side

    with progress("replaying", len(lines)) as wrap:
        return replay_side("report", registry, wrap(lines), until_at)


def _is_servicenow(lines: list[bytes]) -> bool:
    return any(b'"servicenow"' in line for line in lines[:2000])


@click.command("report")
@click.option("--events", type=click.Path(exists=True, dir_okay=False),
              help="JSONL ticket events to replay (and, with --compare-made-sla, ServiceNow's made_sla)")
@click.option("--outputs", type=click.Path(exists=True, dir_okay=False),
              help="build from a previous replay's outputs JSONL instead of replaying")
@click.option("--agreements", "agreements", multiple=True, type=click.Path(exists=True),
              help="agreement file or directory (required with --events; with --outputs it adds time zones, "
                   "currencies and caps)")
@click.option("--until", help="with --events: advance the clock to this RFC 3339 instant at the end")
@click.option("--period", help=f"only this calendar month ({_PERIOD_FORMAT}, agreement time zone)")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default=None,
              help="output format [default: from --out's suffix, else md]")
@click.option("--out", type=click.Path(dir_okay=False), help="write the report here (default stdout)")
@click.option("--compare-made-sla", "made_sla", is_flag=True,
              help="add the comparison of the resolution verdict with ServiceNow's made_sla (needs --events)")
@click.option("--title", help="report title")
@click.option("--dead-letter", "dead_letter", type=click.Path(dir_okay=False), help="rejected event lines (JSONL)")
def report_command(events, outputs, agreements, until, period, fmt, out, made_sla, title, dead_letter) -> None:
    """Compliance report per agreement and calendar month: met/breached per priority and clock,
    counted-time percentiles, breaches timeline, escalations by level, penalties and credits with
    caps, and the tickets that drove them. Markdown, or one self-contained HTML page with charts."""
    from escalation.reports import agreement_infos, build_report, compare_made_sla

    _check_report_options(events, outputs, agreements, made_sla, period)
    fmt = fmt or ("html" if out and out.lower().endswith((".html", ".htm")) else
                  "json" if out and out.lower().endswith(".json") else "md")
    started = time.perf_counter()
    registry = load_registry(agreements) if agreements else None
    lines = read_lines(events) if events else []
    source: dict = {"agreements": [str(p) for p in agreements]}
    output_list, clock_times, tickets = _report_outputs(registry, lines, outputs, until, dead_letter, source)
    if events:
        source["events"] = str(events)
        if _is_servicenow(lines):
            from escalation.reports import SERVICENOW_ATTRIBUTION

            source["attribution"] = SERVICENOW_ATTRIBUTION

    infos = agreement_infos(registry) if registry is not None else {}
    report = build_report(output_list, infos, period=period, clock_times=clock_times, tickets=tickets,
                          title=title, source=source)
    if made_sla:
        report["made_sla"] = compare_made_sla(json_objects(lines), output_list, registry)
    write_text(_rendered(report, fmt), out)
    periods = sum(len(a["periods"]) for a in report["agreements"])
    click.echo(f"report: {report['tickets_total']} tickets, {len(report['agreements'])} agreements, {periods} periods"
               + (f" -> {out}" if out else "") + f" ({fmt}, {time.perf_counter() - started:.2f}s)", err=True)


def _check_report_options(events, outputs, agreements, made_sla, period) -> None:
    if not events and not outputs:
        raise click.UsageError("give --events FILE (replayed here) or --outputs FILE (a previous replay's outputs)")
    if events and not outputs and not agreements:
        raise click.UsageError("--events needs --agreements PATH")
    if made_sla and not events:
        raise click.UsageError("--compare-made-sla needs --events (made_sla is in the events' attributes)")
    if period and not _valid_period(period):
        raise click.BadParameter(f"{period!r} is not a month like 2016-03", param_hint="--period")


def _report_outputs(registry, lines, outputs, until, dead_letter, source: dict):
    """``(outputs, clock_times, tickets)`` for the report: read from ``--outputs``, or from a
    replay of ``lines`` (then with the engine's clock times and tickets, its rejects written to
    ``--dead-letter`` and its figures added to ``source``)."""
    from escalation.reports import engine_state

    until_at = parse_instant(until)
    if outputs:
        source["outputs"] = str(outputs)
        return read_outputs(outputs, "--outputs"), None, None
    run = _replay(registry, lines, until_at)
    clock_times, tickets = engine_state(run.engine, registry)
    write_dead_letter(run.rejects, dead_letter)
    source["replay"] = {"events": run.stats.events, "rejected": run.stats.rejected,
                        "outputs": sum(run.stats.outputs.values())}
    if until:
        source["until"] = until
    return run.outputs, clock_times, tickets


def _rendered(report: dict, fmt: str) -> str:
    from escalation.reports.render import render_html, render_markdown

    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    return render_html(report) if fmt == "html" else render_markdown(report)


def _valid_period(text: str) -> bool:
    parts = text.split("-")
    return (len(parts) == 2 and len(parts[0]) == 4 and len(parts[1]) == 2 and parts[0].isdigit()
            and parts[1].isdigit() and 1 <= int(parts[1]) <= 12)


# --- compare-made-sla ------------------------------------------------------------------------


@click.command("compare-made-sla")
@click.option("--events", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL events from `escalation import servicenow` (they carry made_sla)")
@click.option("--agreements", "agreements", multiple=True, required=True, type=click.Path(exists=True),
              help="agreement file or directory (e.g. examples/agreements/servicenow-sample.yaml)")
@click.option("--outputs", type=click.Path(exists=True, dir_okay=False),
              help="use a previous replay's outputs instead of replaying")
@click.option("--until", help="advance the clock to this RFC 3339 instant at the end")
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
def compare_made_sla_command(events, agreements, outputs, until, as_json) -> None:
    """How often the engine's resolution verdict agrees with ServiceNow's made_sla, and why not."""
    from escalation.reports import compare_made_sla

    registry = load_registry(agreements)
    lines = read_lines(events)
    started = time.perf_counter()
    if outputs:
        output_list = read_outputs(outputs, "--outputs")
    else:
        output_list = _replay(registry, lines, parse_instant(until)).outputs
    result = compare_made_sla(json_objects(lines), output_list, registry)
    if as_json:
        click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_made_sla(result)
    click.echo(f"compare-made-sla: {result['compared']} tickets compared in {time.perf_counter() - started:.2f}s", err=True)


def _print_made_sla(r: dict) -> None:
    from rich.console import Console

    from escalation.reports.blocks import pct

    console = Console(width=max(100, Console().width))
    console.print(f"[bold]Agreement with made_sla:[/bold] {r['agreeing']} of {r['compared']} tickets "
                  f"({pct(r['agreement_rate'])})")
    console.print(_confusion_table(r))
    console.print(_reasons_table(r))
    console.print(_wall_clock_table(r))


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...]):
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c in left else "right")
    return table


def _confusion_table(r: dict):
    t = _table("Confusion matrix (resolution clock)", ("engine", "made_sla true", "made_sla false", "unknown"),
               left=("engine",))
    for k in ("met", "breached", "none"):
        c = r["confusion"][k]
        t.add_row(k, str(c["made"]), str(c["missed"]), str(c["unknown"]))
    return t


def _reasons_table(r: dict):
    t = _table("Reasons for disagreement", ("direction", "reason", "tickets", "examples"),
               left=("direction", "reason", "examples"))
    for kind, label in (("met_missed", "engine met, SN missed"), ("breached_made", "engine breached, SN made")):
        for row in r["reasons"].get(kind, []):
            t.add_row(label, row["reason"], str(row["count"]), ", ".join(e["ticket"] for e in row["examples"][:3]))
    return t


def _wall_clock_table(r: dict):
    from escalation.reports.numbers import seconds_text
    from escalation.reports.blocks import pct

    t = _table("Wall-clock limit that best explains made_sla",
               ("priority", "tickets", "made", "missed", "limit", "accuracy"), left=("priority",))
    for p, f in r["wall_clock_fit"].items():
        limit = "all missed" if f["limit_hours"] is None and f["n"] else seconds_text(
            None if f["limit_hours"] is None else f["limit_hours"] * 3600)
        t.add_row(p, str(f["n"]), str(f["made"]), str(f["missed"]), limit, pct(f["accuracy"]))
    return t
