"""``escalation backtest --agreements A --against B --events FILE``: the same history under two
agreement sets, and what changes (flips, pages, money). The logic is :mod:`escalation.backtest`;
here are the options, the files and the tables (rich) on the terminal."""

from __future__ import annotations

import time

import click
import orjson

from escalation.cli.common import (
    load_registry,
    parse_instant,
    progress,
    read_lines,
    write_dead_letter,
)


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
    from escalation.backtest import backtest, side_facts

    registry_a, registry_b = load_registry(paths_a), load_registry(paths_b)
    agreement_map = _agreement_map(mappings, registry_a, registry_b)
    until_at = parse_instant(until)
    lines = read_lines(events)
    started = time.perf_counter()
    with progress("replaying", len(lines)) as wrap:
        result, run_a, run_b = backtest(registry_a, registry_b, lines, until_at, agreement_map, ("A", "B"),
                                        progress=wrap)
    elapsed = time.perf_counter() - started
    result.sides = {"a": side_facts(run_a, paths_a), "b": side_facts(run_b, paths_b, agreement_map)}
    if dead_letter:
        write_dead_letter([{"side": "A", **r} for r in run_a.rejects] + [{"side": "B", **r} for r in run_b.rejects],
                          dead_letter)
    if as_json:
        click.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_backtest(result, limit)
    click.echo(f"backtest: {len(lines)} lines replayed twice in {elapsed:.2f}s; "
               f"{len(result.flips)} flips, pages {result.escalations['pages_a']} -> {result.escalations['pages_b']}",
               err=True)


def _agreement_map(mappings, registry_a, registry_b) -> dict[str, str]:
    """``--map-agreement OLD=NEW`` options, or the default map (said on stderr); every target
    must be an agreement side B loads."""
    from escalation.backtest import default_agreement_map, parse_agreement_map

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
    return agreement_map


# --- the tables ------------------------------------------------------------------------------


def _print_backtest(result, limit: int) -> None:
    """The comparison as tables: sides, clock verdicts, flips, escalations, money."""
    from rich.console import Console

    console = Console(width=max(100, Console().width))
    data = result.to_dict()
    console.print(_sides_table(data))
    console.print(_verdicts_table(data))
    _print_flips(console, result, limit)
    _print_escalations(console, data["escalations"], limit)
    console.print(_money_table(data["money"]))
    if result.penalty_changes:
        console.print("[bold]penalty changes per ticket[/bold]: "
                      + _first(result.penalty_changes, limit, lambda c: f"{c['ticket']} {c['a']}→{c['b']}"))


def _first(rows: list, limit: int, text) -> str:
    """The first ``limit`` rows as ``text(row)``, comma-separated, with ``… (+n)`` for the rest."""
    more = f" … (+{len(rows) - limit})" if len(rows) > limit else ""
    return ", ".join(text(r) for r in rows[:limit]) + more


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...], **column_options):
    """A rich table whose ``left`` columns are left-aligned and the others right-aligned."""
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c in left else "right", **column_options)
    return table


def _sides_table(data: dict):
    t = _table("Sides", ("side", "agreements", "paths", "events", "rejected", "outputs"),
               left=("side", "agreements", "paths"))
    for key in ("a", "b"):
        s = data["sides"].get(key, {})
        mapped = ", ".join(f"{k}→{v}" for k, v in (s.get("agreement_map") or {}).items())
        t.add_row(key.upper(), ", ".join(s.get("agreements", [])) + (f" (mapped {mapped})" if mapped else ""),
                  ", ".join(s.get("paths", [])), str(s.get("events", "")), str(s.get("rejected", "")),
                  str(sum((s.get("outputs") or {}).values())))
    return t


def _verdicts_table(data: dict):
    t = _table("Clock verdicts", ("clock", "A met", "A breached", "B met", "B breached", "met→breached",
                                  "breached→met"), left=("clock",))
    verdicts, flips = data["verdicts"], data["flip_counts"]
    for clock in sorted(set(verdicts["a"]) | set(verdicts["b"])):
        a, b, f = verdicts["a"].get(clock, {}), verdicts["b"].get(clock, {}), flips.get(clock, {})
        t.add_row(clock, str(a.get("met", 0)), str(a.get("breached", 0)), str(b.get("met", 0)),
                  str(b.get("breached", 0)), str(f.get("met->breached", 0)), str(f.get("breached->met", 0)))
    return t


def _print_flips(console, result, limit: int) -> None:
    if result.flips:
        title = f"Flips ({len(result.flips)}" + (f", first {limit}" if len(result.flips) > limit else "") + ")"
        t = _table(title, ("ticket", "clock", "priority", "A", "B", "A at", "B at"),
                   left=("ticket", "clock", "priority", "A", "B", "A at", "B at"))
        for f in result.flips[:limit]:
            prio = f["priority_a"] if f["priority_a"] == f["priority_b"] else f"{f['priority_a']}→{f['priority_b']}"
            t.add_row(f["ticket"], f["clock"], prio or "", f["a"], f["b"], (f["time_a"] or "")[:16],
                      (f["time_b"] or "")[:16])
        console.print(t)
    if result.appeared:
        console.print(f"{len(result.appeared)} clock verdicts exist on one side only (see --json).")


def _print_escalations(console, e: dict, limit: int) -> None:
    t = _table(f"Escalations: pages {e['pages_a']} → {e['pages_b']} ({e['pages_delta']:+d}); "
               f"{len(e['added'])} added, {len(e['removed'])} removed, {len(e['retimed'])} moved in time",
               ("policy", "level", "A triggered", "A repeated", "B triggered", "B repeated", "delta"), left=("policy",))
    for r in e["by_level"]:
        t.add_row(r["policy"], str(r["level"]), str(r["triggered_a"]), str(r["repeated_a"]), str(r["triggered_b"]),
                  str(r["repeated_b"]), f"{r['delta']:+d}")
    console.print(t)
    for label, rows in (("added on B", e["added"]), ("removed on B", e["removed"])):
        if rows:
            shown = _first(rows, limit, lambda r: f"{r['ticket']} L{r['level']}" + (f" r{r['repeat']}" if r["repeat"] else ""))
            console.print(f"[bold]{label}[/bold]: {shown}")


def _money_table(money: dict):
    t = _table("Penalties and credits per period",
               ("kind", "period", "cur", "A", "B", "delta", "count A→B", "capped A→B"),
               left=("kind", "period", "cur"), no_wrap=True)
    for r in money["periods"]:
        t.add_row(r["kind"], r["period"], r["currency"], r["a"], r["b"], _signed(r["delta"]),
                  f"{r['count_a']}→{r['count_b']}", f"{r['capped_a']}→{r['capped_b']}")
    for r in money["totals"]:
        t.add_row(f"[bold]{r['kind']}[/bold]", "[bold]total[/bold]", r["currency"], r["a"], r["b"],
                  _signed(r["delta"]), f"{r['count_a']}→{r['count_b']}", "")
    if not money["periods"]:
        t.add_row("(none)", "", "", "0.00", "0.00", "+0.00", "0→0", "0→0")
    return t


def _signed(value: str) -> str:
    return value if value.startswith("-") else f"+{value}"
