"""Commands over recorded history (DESIGN.md §8, "escalation replay" and friends).

- ``escalation import servicenow FILE.csv``: ServiceNow incident log -> ticket events (the
  importer's own command, registered under an ``import`` group);
- ``escalation backtest --agreements A --against B --events FILE``: the same history under two
  agreement sets, and what changes (flips, pages, money); logic in :mod:`escalation.backtest`;
- ``escalation report --events FILE --agreements PATH`` (or ``--outputs FILE``): compliance
  report per agreement and period, Markdown, HTML or JSON; logic in :mod:`escalation.reports`;
- ``escalation compare-made-sla --events FILE --agreements PATH``: the engine's resolution
  verdict against ServiceNow's ``made_sla``.

Only argument handling, files and terminal output live here. Progress bars (rich) are shown on
stderr when it is a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import orjson

from escalation.importers.servicenow_cli import servicenow_command

_PERIOD_FORMAT = "YYYY-MM"


def register(main: click.Group) -> None:
    """Add the history commands to the ``escalation`` group."""
    main.add_command(import_group)
    main.add_command(backtest_command)
    main.add_command(report_command)
    main.add_command(compare_made_sla_command)


@click.group("import")
def import_group() -> None:
    """Convert other tools' ticket history into escalation events."""


import_group.add_command(servicenow_command)


# --------------------------------------------------------------------------------------------
# helpers


def _load_registry(paths):
    from escalation.cli import load_registry

    return load_registry(paths)


def _instant(value):
    from escalation.cli import _instant as parse

    return parse(value)


def _read_lines(path: str | Path) -> list[bytes]:
    with open(path, "rb") as handle:
        return handle.readlines()


def _read_jsonl(path: str | Path, what: str) -> list[dict]:
    out = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError as err:
                raise click.BadParameter(f"{path}:{number}: not JSON ({err})", param_hint=what) from None
    return out


def _events(lines: Iterable[bytes]) -> Iterator[dict]:
    for line in lines:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            yield event


def _is_servicenow(lines: list[bytes]) -> bool:
    return any(b'"servicenow"' in line for line in lines[:2000])


@contextmanager
def _progress(label: str, total: int):
    """Yield ``wrap(iterable)``: counts items into a rich progress bar on a terminal's stderr."""
    if not total or not sys.stderr.isatty():
        yield lambda iterable: iterable
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        def wrap(iterable: Iterable, description: str = label) -> Iterator:
            task = progress.add_task(description, total=total)
            n = 0
            for item in iterable:
                yield item
                n += 1
                if n % 250 == 0:
                    progress.update(task, completed=n)
            progress.update(task, completed=n)
        yield wrap


def _write(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _write_dead_letter(rejects: list[dict], path: str | None) -> None:
    if path:
        with open(path, "wb") as handle:
            handle.writelines(orjson.dumps(r) + b"\n" for r in rejects)


# --------------------------------------------------------------------------------------------
# backtest


@click.command("backtest")
@click.option("--agreements", "paths_a", multiple=True, required=True, type=click.Path(exists=True),
              help="baseline agreement file or directory (side A); repeatable")
@click.option("--against", "paths_b", multiple=True, required=True, type=click.Path(exists=True),
              help="candidate agreement file or directory (side B); repeatable")
@click.option("--events", required=True, type=click.Path(exists=True, dir_okay=False), help="JSONL ticket events")
@click.option("--until", help="advance both clocks to this RFC 3339 instant at the end")
@click.option("--map-agreement", "mappings", multiple=True, metavar="OLD=NEW",
              help="on side B, open tickets of agreement OLD under NEW (default: when each side loads one "
                   "agreement id and they differ, A's id maps to B's)")
@click.option("--json", "as_json", is_flag=True, help="print the full comparison as JSON")
@click.option("--limit", default=25, show_default=True, help="rows per list in the table output")
@click.option("--dead-letter", "dead_letter", type=click.Path(dir_okay=False),
              help="write both sides' rejected lines here (JSONL with a 'side' field)")
def backtest_command(paths_a, paths_b, events, until, mappings, as_json, limit, dead_letter) -> None:
    """Replay one history under two agreement sets and show what changes.

    Each side is replayed with only its own agreement files, so two revisions of the same
    agreement id can be compared: tickets of agreement X open under the revision that side loaded.
    Reports met<->breached flips per ticket and clock, escalations (pages) added or removed, and
    penalty and credit totals per period with the delta.
    """
    from escalation.backtest import (
        backtest,
        default_agreement_map,
        parse_agreement_map,
        side_facts,
    )

    registry_a, registry_b = _load_registry(paths_a), _load_registry(paths_b)
    try:
        agreement_map = parse_agreement_map(mappings)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--map-agreement") from None
    if not mappings:
        agreement_map = default_agreement_map(registry_a, registry_b)
        if agreement_map:
            click.echo("side B: " + ", ".join(f"tickets of {k} open under {v}" for k, v in agreement_map.items())
                       + " (use --map-agreement to choose)", err=True)
    unknown = sorted(set(agreement_map.values()) - set(registry_b.ids()))
    if unknown:
        raise click.BadParameter(f"side B loads no agreement {', '.join(unknown)} (loaded: {', '.join(registry_b.ids())})",
                                 param_hint="--map-agreement")
    until_at = _instant(until)
    lines = _read_lines(events)
    started = time.perf_counter()
    with _progress("replaying", len(lines)) as wrap:
        result, run_a, run_b = backtest(registry_a, registry_b, lines, until_at, agreement_map, ("A", "B"),
                                        progress=wrap)
    elapsed = time.perf_counter() - started
    result.sides = {"a": side_facts(run_a, paths_a), "b": side_facts(run_b, paths_b, agreement_map)}
    if dead_letter:
        _write_dead_letter([{"side": "A", **r} for r in run_a.rejects] + [{"side": "B", **r} for r in run_b.rejects],
                           dead_letter)
    if as_json:
        click.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_backtest(result, limit)
    click.echo(f"backtest: {len(lines)} lines replayed twice in {elapsed:.2f}s; "
               f"{len(result.flips)} flips, pages {result.escalations['pages_a']} -> {result.escalations['pages_b']}",
               err=True)


def _print_backtest(result, limit: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(100, Console().width))
    data = result.to_dict()

    t = Table(title="Sides")
    for c in ("side", "agreements", "paths", "events", "rejected", "outputs"):
        t.add_column(c, justify="right" if c in ("events", "rejected", "outputs") else "left")
    for key in ("a", "b"):
        s = data["sides"].get(key, {})
        mapped = ", ".join(f"{k}→{v}" for k, v in (s.get("agreement_map") or {}).items())
        t.add_row(key.upper(), ", ".join(s.get("agreements", [])) + (f" (mapped {mapped})" if mapped else ""),
                  ", ".join(s.get("paths", [])), str(s.get("events", "")), str(s.get("rejected", "")),
                  str(sum((s.get("outputs") or {}).values())))
    console.print(t)

    t = Table(title="Clock verdicts")
    for c in ("clock", "A met", "A breached", "B met", "B breached", "met→breached", "breached→met"):
        t.add_column(c, justify="left" if c == "clock" else "right")
    flips = data["flip_counts"]
    for clock in sorted(set(data["verdicts"]["a"]) | set(data["verdicts"]["b"])):
        a = data["verdicts"]["a"].get(clock, {})
        b = data["verdicts"]["b"].get(clock, {})
        f = flips.get(clock, {})
        t.add_row(clock, str(a.get("met", 0)), str(a.get("breached", 0)), str(b.get("met", 0)),
                  str(b.get("breached", 0)), str(f.get("met->breached", 0)), str(f.get("breached->met", 0)))
    console.print(t)

    if result.flips:
        t = Table(title=f"Flips ({len(result.flips)}" + (f", first {limit}" if len(result.flips) > limit else "") + ")")
        for c in ("ticket", "clock", "priority", "A", "B", "A at", "B at"):
            t.add_column(c)
        for f in result.flips[:limit]:
            prio = f["priority_a"] if f["priority_a"] == f["priority_b"] else f"{f['priority_a']}→{f['priority_b']}"
            t.add_row(f["ticket"], f["clock"], prio or "", f["a"], f["b"], (f["time_a"] or "")[:16],
                      (f["time_b"] or "")[:16])
        console.print(t)
    if result.appeared:
        console.print(f"{len(result.appeared)} clock verdicts exist on one side only (see --json).")

    e = data["escalations"]
    t = Table(title=f"Escalations: pages {e['pages_a']} → {e['pages_b']} ({e['pages_delta']:+d}); "
                    f"{len(e['added'])} added, {len(e['removed'])} removed, {len(e['retimed'])} moved in time")
    for c in ("policy", "level", "A triggered", "A repeated", "B triggered", "B repeated", "delta"):
        t.add_column(c, justify="left" if c == "policy" else "right")
    for r in e["by_level"]:
        t.add_row(r["policy"], str(r["level"]), str(r["triggered_a"]), str(r["repeated_a"]), str(r["triggered_b"]),
                  str(r["repeated_b"]), f"{r['delta']:+d}")
    console.print(t)
    for label, rows in (("added on B", e["added"]), ("removed on B", e["removed"])):
        if rows:
            shown = ", ".join(f"{r['ticket']} L{r['level']}" + (f" r{r['repeat']}" if r["repeat"] else "")
                              for r in rows[:limit])
            more = f" … (+{len(rows) - limit})" if len(rows) > limit else ""
            console.print(f"[bold]{label}[/bold]: {shown}{more}")

    t = Table(title="Penalties and credits per period")
    for c in ("kind", "period", "cur", "A", "B", "delta", "count A→B", "capped A→B"):
        t.add_column(c, justify="left" if c in ("kind", "period", "cur") else "right", no_wrap=True)
    for r in data["money"]["periods"]:
        t.add_row(r["kind"], r["period"], r["currency"], r["a"], r["b"], _signed(r["delta"]),
                  f"{r['count_a']}→{r['count_b']}", f"{r['capped_a']}→{r['capped_b']}")
    for r in data["money"]["totals"]:
        t.add_row(f"[bold]{r['kind']}[/bold]", "[bold]total[/bold]", r["currency"], r["a"], r["b"],
                  _signed(r["delta"]), f"{r['count_a']}→{r['count_b']}", "")
    if not data["money"]["periods"]:
        t.add_row("(none)", "", "", "0.00", "0.00", "+0.00", "0→0", "0→0")
    console.print(t)
    if result.penalty_changes:
        shown = ", ".join(f"{c['ticket']} {c['a']}→{c['b']}" for c in result.penalty_changes[:limit])
        more = f" … (+{len(result.penalty_changes) - limit})" if len(result.penalty_changes) > limit else ""
        console.print(f"[bold]penalty changes per ticket[/bold]: {shown}{more}")


def _signed(value: str) -> str:
    return value if value.startswith("-") else f"+{value}"


# --------------------------------------------------------------------------------------------
# report


def _replay_for_report(registry, lines: list[bytes], until_at):
    from escalation.backtest import replay_side

    with _progress("replaying", len(lines)) as wrap:
        return replay_side("report", registry, wrap(lines), until_at)


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
    from escalation.reports import (
        SERVICENOW_ATTRIBUTION,
        agreement_infos,
        build_report,
        compare_made_sla,
        engine_state,
    )
    from escalation.reports.render import render_html, render_markdown

    if not events and not outputs:
        raise click.UsageError("give --events FILE (replayed here) or --outputs FILE (a previous replay's outputs)")
    if events and not outputs and not agreements:
        raise click.UsageError("--events needs --agreements PATH")
    if made_sla and not events:
        raise click.UsageError("--compare-made-sla needs --events (made_sla is in the events' attributes)")
    if period and not _valid_period(period):
        raise click.BadParameter(f"{period!r} is not a month like 2016-03", param_hint="--period")
    fmt = fmt or ("html" if out and out.lower().endswith((".html", ".htm")) else
                  "json" if out and out.lower().endswith(".json") else "md")
    started = time.perf_counter()
    registry = _load_registry(agreements) if agreements else None
    until_at = _instant(until)

    lines = _read_lines(events) if events else []
    source: dict = {"agreements": [str(p) for p in agreements]}
    clock_times, tickets = None, None
    if outputs:
        output_list = _read_jsonl(outputs, "--outputs")
        source["outputs"] = str(outputs)
    else:
        run = _replay_for_report(registry, lines, until_at)
        output_list = run.outputs
        clock_times, tickets = engine_state(run.processor, registry)
        _write_dead_letter(run.rejects, dead_letter)
        source["replay"] = {"events": run.stats.events, "rejected": run.stats.rejected,
                            "outputs": sum(run.stats.outputs.values())}
        if until:
            source["until"] = until
    if events:
        source["events"] = str(events)
        if _is_servicenow(lines):
            source["attribution"] = SERVICENOW_ATTRIBUTION

    infos = agreement_infos(registry) if registry is not None else {}
    report = build_report(output_list, infos, period=period, clock_times=clock_times, tickets=tickets,
                          title=title, source=source)
    if made_sla:
        report["made_sla"] = compare_made_sla(_events(lines), output_list, registry)
    if fmt == "json":
        text = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    elif fmt == "html":
        text = render_html(report)
    else:
        text = render_markdown(report)
    _write(text, out)
    periods = sum(len(a["periods"]) for a in report["agreements"])
    click.echo(f"report: {report['tickets_total']} tickets, {len(report['agreements'])} agreements, {periods} periods"
               + (f" -> {out}" if out else "") + f" ({fmt}, {time.perf_counter() - started:.2f}s)", err=True)


def _valid_period(text: str) -> bool:
    parts = text.split("-")
    return (len(parts) == 2 and len(parts[0]) == 4 and len(parts[1]) == 2 and parts[0].isdigit()
            and parts[1].isdigit() and 1 <= int(parts[1]) <= 12)


# --------------------------------------------------------------------------------------------
# compare-made-sla


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

    registry = _load_registry(agreements)
    lines = _read_lines(events)
    started = time.perf_counter()
    if outputs:
        output_list = _read_jsonl(outputs, "--outputs")
    else:
        output_list = _replay_for_report(registry, lines, _instant(until)).outputs
    result = compare_made_sla(_events(lines), output_list, registry)
    if as_json:
        click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_made_sla(result)
    click.echo(f"compare-made-sla: {result['compared']} tickets compared in {time.perf_counter() - started:.2f}s", err=True)


def _print_made_sla(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from escalation.reports.compliance import seconds_text
    from escalation.reports.render import pct

    console = Console(width=max(100, Console().width))
    console.print(f"[bold]Agreement with made_sla:[/bold] {r['agreeing']} of {r['compared']} tickets "
                  f"({pct(r['agreement_rate'])})")
    t = Table(title="Confusion matrix (resolution clock)")
    for c in ("engine", "made_sla true", "made_sla false", "unknown"):
        t.add_column(c, justify="left" if c == "engine" else "right")
    for k in ("met", "breached", "none"):
        c = r["confusion"][k]
        t.add_row(k, str(c["made"]), str(c["missed"]), str(c["unknown"]))
    console.print(t)
    t = Table(title="Reasons for disagreement")
    for c in ("direction", "reason", "tickets", "examples"):
        t.add_column(c, justify="right" if c == "tickets" else "left")
    for kind, label in (("met_missed", "engine met, SN missed"), ("breached_made", "engine breached, SN made")):
        for row in r["reasons"].get(kind, []):
            t.add_row(label, row["reason"], str(row["count"]), ", ".join(e["ticket"] for e in row["examples"][:3]))
    console.print(t)
    t = Table(title="Wall-clock limit that best explains made_sla")
    for c in ("priority", "tickets", "made", "missed", "limit", "accuracy"):
        t.add_column(c, justify="left" if c == "priority" else "right")
    for p, f in r["wall_clock_fit"].items():
        limit = "all missed" if f["limit_hours"] is None and f["n"] else seconds_text(
            None if f["limit_hours"] is None else f["limit_hours"] * 3600)
        t.add_row(p, str(f["n"]), str(f["made"]), str(f["missed"]), limit, pct(f["accuracy"]))
    console.print(t)
