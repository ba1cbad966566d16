"""Commands for a disputed bill: ``escalation timeline TICKET`` (everything that happened to one
incident, in order, from a replay) and ``escalation diff OLD NEW`` (what a revision changes).

"""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from escalation.cli.common import load_registry, parse_instant
from escalation.core.outputs import Output


def _related(out: Output, ticket: str) -> bool:
    return out.subject == ticket or out.data.get("ticket") == ticket


def _entries(lines: list[bytes], outputs: list[Output], rejects: list[dict], ticket: str) -> list[dict]:
    """Inputs (applied or rejected) and outputs of ``ticket`` in time order; at one instant an
    input comes before the outputs (events apply before deadlines at their instant)."""
    from escalation.core.events import Rejected, decode_event

    rejected = {r["line"]: r["reason"] for r in rejects}
    entries = []
    for number, raw in enumerate(lines, 1):
        try:
            event = decode_event(raw)
        except Rejected:
            continue
        if getattr(event, "ticket", None) != ticket:
            continue
        entry = {"kind": "input", "time": event.time.isoformat(), "type": event.type, "line": number,
                 "input": orjson.loads(raw)}
        if number in rejected:
            entry["rejected"] = rejected[number]
        entries.append((event.time, 0, number, entry))
    for i, out in enumerate(o for o in outputs if _related(o, ticket)):
        entry = {"kind": "output", "time": out.time.isoformat(), "type": out.type.value, "source": out.source,
                 "clause": out.data.get("explain", {}).get("clause"), "output": out.cloudevent()}
        entries.append((out.time, 1, i, entry))
    return [e for *_, e in sorted(entries, key=lambda e: e[:3])]


def _line(entry: dict) -> str:
    if entry["kind"] == "input":
        fields = {k: v for k, v in entry["input"].items() if k not in ("id", "type", "time", "ticket")}
        extra = f"  REJECTED: {entry['rejected']}" if "rejected" in entry else ""
        return f"{entry['time']}  in   {entry['type']:<24} line {entry['line']} {orjson.dumps(fields).decode()}{extra}"
    data = entry["output"]["data"]
    what = data.get("summary") or ""
    money = f" [{data['amount']} {data.get('currency', '')}{' ' + data['direction'] if 'direction' in data else ''}]" \
        if "amount" in data else ""
    excused = " [excused]" if data.get("excused") else ""
    return (f"{entry['time']}  out  {entry['type']:<24} {entry['source']:<26} {entry['clause'] or '-':<28} "
            f"{what}{money}{excused}")


@click.command("timeline")
@click.argument("ticket")
@click.option("--agreements", "agreements", multiple=True, required=True, type=click.Path(exists=True),
              help="agreement file or directory")
@click.option("--events", required=True, type=click.Path(exists=True, dir_okay=False), help="JSONL events")
@click.option("--until", help="advance the clock to this RFC 3339 instant at the end")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per entry (inputs and outputs)")
def timeline_command(ticket, agreements, events, until, as_json) -> None:
    """Everything that happened to TICKET, in order: its inputs (rejected ones marked) and every
    output of every agreement that ran on it, with the clause applied, from a replay."""
    from escalation.replay import replay_to_lists

    registry = load_registry(agreements)
    lines = [line for line in Path(events).read_bytes().splitlines() if line.strip()]
    outputs, rejects, _ = replay_to_lists(registry, lines, parse_instant(until))
    entries = _entries(lines, outputs, rejects, ticket)
    if not entries:
        raise click.ClickException(f"no input or output for ticket {ticket!r} in {events}")
    for entry in entries:
        click.echo(orjson.dumps(entry).decode() if as_json else _line(entry))


@click.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per change")
def diff_command(old, new, as_json) -> None:
    """What NEW changes against OLD: targets, escalation levels, recipients, money, caps, term and
    parties (``-`` removed, ``+`` added, ``~`` changed). Exit 0 either way."""
    from escalation.agreement.diff import changes, field_changes

    a, b = (next(iter(load_registry([p]))).agreement for p in (old, new))
    rows = changes(a, b)
    if not rows:
        click.echo(f"no changes between {a.id}@{a.revision} and {b.id}@{b.revision}")
        return
    click.echo(f"{a.id}@{a.revision} -> {b.id}@{b.revision}: {len(rows)} change{'s' if len(rows) != 1 else ''}")
    for sign, key, before, after in rows:
        if as_json:
            click.echo(orjson.dumps({"change": sign, "clause": key, "old": before, "new": after}).decode())
        elif sign == "~":
            click.echo(f"~ {key}: " + "; ".join(field_changes(before, after)))
        else:
            click.echo(f"{sign} {key}: {orjson.dumps(after if sign == '+' else before).decode()}")
