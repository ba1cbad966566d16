"""``escalation replay`` (recorded events through the core with a simulated clock, outputs as
JSONL) and ``escalation demo`` (the bundled example, readably)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click
import orjson

from escalation.cli.common import load_registry, parse_instant
from escalation.core.outputs import Output
from escalation.paths import EXAMPLE_AGREEMENT, EXAMPLE_EVENTS


@click.command("replay")
@click.option("--agreements", "agreements", multiple=True, type=click.Path(), help="agreement file or directory")
@click.option("--events", type=click.Path(exists=True, dir_okay=False), help="JSONL events")
@click.option("--until", help="advance the clock to this RFC 3339 instant at the end")
@click.option("--out", type=click.Path(dir_okay=False), help="output JSONL (default stdout)")
@click.option("--dead-letter", "dead_letter", type=click.Path(dir_okay=False), help="rejected lines (default stderr)")
@click.option("--pretty", is_flag=True, help="one readable line per output instead of JSON")
@click.option("--period-grace", type=float, default=0.0, show_default=True,
              help="SLO and report periods close this many seconds after their end, so slices that come "
                   "late in the file still count (their outputs keep the period's end as their time)")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="split the incidents over this many processes (by ticket, by service); the output is "
                   "byte-identical to one worker's")
def replay_command(agreements, events, until, out, dead_letter, pretty, period_grace, workers=1) -> None:
    """Run recorded events through the core with a simulated clock."""
    from datetime import timedelta

    from escalation.replay import replay as run_replay
    from escalation.replay import replay_engine

    registry = load_registry(agreements or [EXAMPLE_AGREEMENT])
    if next(iter(registry), None) is None:  # every line would be dead-lettered: unusable agreements (§8)
        click.echo(f"{', '.join(agreements)}: no agreement files (*.yaml) found", err=True)
        raise SystemExit(1)
    until_at = parse_instant(until)
    # Incident records are long-lived and acyclic: frequent cycle collections cost ~20 % of a
    # large replay for nothing (bench/bench_replay.py --gc-threshold), so collect less often.
    gc.set_threshold(50_000, 10, 10)
    events_path = Path(events) if events else EXAMPLE_EVENTS
    sink = _open_for_writing(out, "--out") if out else sys.stdout.buffer
    dead = _open_for_writing(dead_letter, "--dead-letter") if dead_letter else sys.stderr.buffer
    encode = (lambda o: _pretty(o).encode() + b"\n") if pretty else (lambda o: orjson.dumps(o.cloudevent()) + b"\n")
    reject = lambda r: dead.write(orjson.dumps(r) + b"\n")
    grace = timedelta(seconds=period_grace)
    try:
        stats = None
        if workers > 1:
            from escalation.replay_parallel import replay_parallel

            stats = replay_parallel(registry, events_path, workers, sink.write, reject, encode, until_at, grace)
        if stats is None:  # one worker, or a parallel run that could have differed from one engine's
            with events_path.open("rb") as lines:
                stats = run_replay(registry, lines, lambda o: sink.write(encode(o)), reject, until_at,
                                   replay_engine(registry, metric_grace=grace))
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


def _open_for_writing(path: str, option: str):
    """``path`` opened for writing, or a usage error naming the option and why (no traceback)."""
    try:
        return open(path, "wb")  # noqa: SIM115 - closed by the command's finally
    except OSError as err:
        raise click.BadParameter(f"cannot write {path!r}: {err.strerror or err}", param_hint=option) from None


def _pretty(out: Output) -> str:
    """One readable line of an output."""
    data = out.data
    summary = data.get("summary")
    text = summary if isinstance(summary, str) else data.get("headline", "")
    return f"{out.time.isoformat()[:19]}Z  {out.type.value:<23} {out.subject:<10} {text}"


@click.command("demo")
@click.option("--until", default="2026-03-03T12:00:00Z", show_default=True, help="advance the clock to this instant at the end")
@click.pass_context
def demo_command(ctx, until) -> None:
    """Replay the bundled example events against the bundled agreement, readably."""
    ctx.invoke(replay_command, agreements=(), events=None, until=until, out=None, dead_letter=None, pretty=True)
