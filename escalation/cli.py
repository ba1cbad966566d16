"""The ``escalation`` command (DESIGN.md §8). Each subcommand prepares inputs for the core or
carries out its outputs; no SLA logic lives here."""

from __future__ import annotations

import gc
import sys
from datetime import datetime
from pathlib import Path

import click
import orjson

from escalation.core.contract.registry import Registry
from escalation.loader import AgreementError, check_agreements, load_agreements
from escalation.paths import EXAMPLE_AGREEMENT, EXAMPLE_EVENTS


def load_registry(paths) -> Registry:
    try:
        return Registry(load_agreements(paths))
    except AgreementError as err:
        for problem in err.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time") from None
    if instant.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no offset; give one, e.g. {value}Z")
    from escalation.core.events import (  # the plausible window of DESIGN.md §10
        EARLIEST,
        LATEST,
    )

    if not EARLIEST <= instant < LATEST:
        raise click.BadParameter(f"{value!r} is outside the plausible range [{EARLIEST.date()}, {LATEST.date()})")
    return instant


@click.group()
@click.version_option(package_name="escalation")
def main() -> None:
    """Event-driven SLA escalation engine."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate(paths) -> None:
    """Check agreement files: one line per file that loads, file:line: path: message per error
    of the others; exit 1 when any file has a problem."""
    agreements, problems = check_agreements(paths)
    for problem in problems:
        click.echo(str(problem))
    for a in agreements:
        click.echo(f"ok: {a.id} revision {a.revision}")
    if problems:
        raise SystemExit(1)


@main.command()
@click.option("--agreements", "agreements", multiple=True, type=click.Path(), help="agreement file or directory")
@click.option("--events", type=click.Path(exists=True, dir_okay=False), help="JSONL events")
@click.option("--until", help="advance the clock to this RFC 3339 instant at the end")
@click.option("--out", type=click.Path(dir_okay=False), help="output JSONL (default stdout)")
@click.option("--dead-letter", "dead_letter", type=click.Path(dir_okay=False), help="rejected lines (default stderr)")
@click.option("--pretty", is_flag=True, help="one readable line per output instead of JSON")
@click.option("--period-grace", type=float, default=0.0, show_default=True,
              help="SLO and report periods close this many seconds after their end, so slices that come "
                   "late in the file still count (their outputs keep the period's end as their time)")
def replay(agreements, events, until, out, dead_letter, pretty, period_grace) -> None:
    """Run recorded events through the core with a simulated clock."""
    from datetime import timedelta

    from escalation.core.engine import Processor
    from escalation.replay import replay as run_replay

    registry = load_registry(agreements or [EXAMPLE_AGREEMENT])
    until_at = _instant(until)
    # Incident records are long-lived and acyclic: frequent cycle collections cost ~20 % of a
    # large replay for nothing (bench/bench_replay.py --gc-threshold), so collect less often.
    gc.set_threshold(50_000, 10, 10)
    events_path = Path(events) if events else EXAMPLE_EVENTS
    sink = open(out, "wb") if out else sys.stdout.buffer
    dead = open(dead_letter, "wb") if dead_letter else sys.stderr.buffer
    emit = (lambda o: sink.write(_pretty(o).encode() + b"\n")) if pretty else (lambda o: sink.write(orjson.dumps(o) + b"\n"))
    try:
        with events_path.open("rb") as lines:
            stats = run_replay(registry, lines, emit, lambda r: dead.write(orjson.dumps(r) + b"\n"), until_at,
                               Processor(registry, metric_grace=timedelta(seconds=period_grace)))
    finally:
        sink.flush()
        dead.flush()
        if out:
            sink.close()
        if dead_letter:
            dead.close()
    # stderr carries the dead letters (JSONL) by default: keep it machine-readable unless a person watches
    if dead_letter or sys.stderr.isatty():
        click.echo(f"replayed {stats.events} events ({stats.rejected} rejected, {stats.duplicates} duplicate, "
                   f"{stats.late} late) -> {sum(stats.outputs.values())} outputs", err=True)


def _pretty(out: dict) -> str:
    data = out["data"]
    summary = data.get("summary")
    text = summary if isinstance(summary, str) else data.get("headline", "")
    return f"{out['time'][:19]}Z  {out['type']:<23} {out['subject']:<10} {text}"


@main.command()
@click.option("--until", default="2026-03-03T12:00:00Z", show_default=True, help="advance the clock to this instant at the end")
@click.pass_context
def demo(ctx, until) -> None:
    """Replay the bundled example events against the bundled agreement, readably."""
    ctx.invoke(replay, agreements=(), events=None, until=until, out=None, dead_letter=None, pretty=True)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def machine(paths) -> None:
    """Print each agreement revision's compiled state machine and thresholds as JSON."""
    from escalation.core.contract.compiled import describe

    registry = load_registry(paths)
    described = [describe(c) for c in sorted(registry, key=lambda c: (c.id, c.revision))]
    click.echo(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())


@main.command()
def schema() -> None:
    """Print the JSON Schema of the agreement format."""
    from escalation.agreement.schema import agreement_schema

    click.echo(orjson.dumps(agreement_schema(), option=orjson.OPT_INDENT_2).decode())


# History commands: import servicenow, backtest, report, compare-made-sla (escalation/cli_history.py).
from escalation.cli_history import register as _register_history  # noqa: E402

_register_history(main)

# Disputed bills: timeline TICKET, diff OLD NEW (escalation/cli_disputes.py).
from escalation.cli_disputes import register as _register_disputes  # noqa: E402

_register_disputes(main)


# Live engine: run, topics (escalation/live/run.py).
from escalation.live.run import register as _register_live  # noqa: E402

_register_live(main)


# Delivery to on-call tools: deliver, receive (escalation/delivery/cli.py).
from escalation.delivery.cli import register as _register_delivery  # noqa: E402

_register_delivery(main)


# Edges users already run: send, tail, sli prometheus (escalation/edges/cli.py).
from escalation.edges.cli import register as _register_edges  # noqa: E402

_register_edges(main)


if __name__ == "__main__":
    main()
