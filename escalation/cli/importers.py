"""``escalation import servicenow FILE.csv``: a ServiceNow incident audit log -> ticket events
(the ``import`` group converts other tools' ticket history; ServiceNow is its one member).

Writes JSONL ticket events (DESIGN.md §3) to stdout or ``--out``; problems and warnings to
stderr or ``--problems`` as ``line N: reason``; one summary line to stderr. Exit 0 when the
import ran (even with problems), 2 on unusable arguments or input (missing file or columns,
unknown time zone, bad mapping file), 1 when the output could not be written.

Output files are written whole or not at all: each goes to a temporary file in the same directory
that replaces the target only once it is complete (``os.replace``), so an error or an interrupt
leaves the previous file (or none), never a partial one. Stdout cannot be taken back: there a
failure says on stderr how many events were written before it, and the exit status is 1.

Made for "Incident management process enriched event log" (Amaral, Fantinato, Reijers, Peres;
UCI Machine Learning Repository, https://doi.org/10.24432/C57S4H), licensed CC BY 4.0. Event files
derived from that data set must keep this attribution.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import click
import orjson

from escalation.importers.servicenow import (
    ImportResult,
    ServiceNowImportError,
    import_incident_log,
)
from escalation.importers.servicenow_mapping import MappingError, load_mapping


@click.group("import")
def import_group() -> None:
    """Convert other tools' ticket history into escalation events."""


def _count_rows(path: Path) -> int | None:
    try:
        with open(path, "rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)
    except OSError:
        return None


def summary_line(result: ImportResult) -> str:
    s = result.stats
    by_type = ", ".join(f"{t.removeprefix('ticket.')} {n}" for t, n in s.events_by_type.items())
    return (f"servicenow import: {s.rows} rows ({s.rows_with_events} with events, "
            f"{s.rows_no_change} without change, {s.rows_with_problems} problems), "
            f"{s.incidents} incidents, {s.events} events ({by_type}), {s.warnings} warnings")


@click.command("servicenow")
@click.argument("csv_file", metavar="FILE.csv",
                type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--agreement", metavar="ID", default=None,
              help="agreement id for every ticket.opened [default: the mapping's, servicenow-sample]")
@click.option("--mapping", "mapping_file", metavar="FILE", default=None,
              type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
              help="mapping YAML (columns, states, priorities, service, customer); "
                   "see examples/mappings/servicenow-default.yaml")
@click.option("--timezone", metavar="TZ", default="UTC", show_default=True,
              help="IANA zone of the log's local times (the UCI data set does not state one)")
@click.option("--out", "out_file", metavar="FILE", default="-", type=click.Path(dir_okay=False, path_type=Path),
              help="write events here instead of stdout")
@click.option("--problems", "problems_file", metavar="FILE", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="write 'line N: reason' here instead of stderr")
def servicenow_command(csv_file: Path, agreement: str | None, mapping_file: Path | None, timezone: str,
                       out_file: Path, problems_file: Path | None) -> None:
    """Convert a ServiceNow incident audit log (CSV) into escalation ticket events (JSONL)."""
    try:
        mapping = load_mapping(mapping_file)
    except MappingError as exc:
        raise click.BadParameter(str(exc), param_hint="--mapping") from None

    stderr = click.get_text_stream("stderr")
    with ExitStack() as stack:
        progress_cb = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            progress = stack.enter_context(Progress(
                TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True))
            task = progress.add_task("rows", total=_count_rows(csv_file))

            def progress_cb(rows: int) -> None:
                progress.update(task, completed=rows)

        try:
            result = import_incident_log(csv_file, agreement=agreement, mapping=mapping,
                                         timezone=timezone, on_progress=progress_cb)
        except ServiceNowImportError as exc:
            hint = "--timezone" if "time zone" in str(exc) else "FILE.csv"
            raise click.BadParameter(str(exc), param_hint=hint) from None

    s = result.stats
    if s.rows != s.rows_used + s.rows_with_problems:   # the importer's invariant; never write a lie
        raise click.ClickException(f"internal error: {s.rows} rows but {s.rows_used} used + "
                                   f"{s.rows_with_problems} problems; nothing written")
    lines = [text for *_, text in sorted(
        [(p.line, 0, i, f"{p}\n") for i, p in enumerate(result.problems)]
        + [(w.line, 1, i, f"line {w.line}: warning: {w.reason}\n") for i, w in enumerate(result.warnings)])]
    _write(out_file, (orjson.dumps(event) + b"\n" for event in result.events), "events")
    if problems_file is not None:
        _write(problems_file, (line.encode("utf-8") for line in lines), "problem lines")
    else:
        stderr.writelines(lines)
    stderr.write(summary_line(result) + "\n")
    stderr.flush()


import_group.add_command(servicenow_command)


def _write(target: Path, chunks: Iterable[bytes], what: str) -> None:
    """Write ``chunks`` to ``target`` (``-``: stdout) whole or not at all; see the module docstring.
    Raises ClickException (exit 1) saying what happened to the output."""
    if str(target) == "-":
        _write_stdout(chunks, what)
        return
    # Same directory, so the rename is atomic; created with "x" (not tempfile) so the file gets
    # the usual permissions (0666 minus umask) rather than tempfile's 0600.
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with open(part, "xb") as handle:
            handle.writelines(chunks)
        os.replace(part, target)
    except BaseException as exc:   # also KeyboardInterrupt: the temporary file must go
        part.unlink(missing_ok=True)
        if isinstance(exc, Exception):
            raise click.ClickException(f"{target}: {type(exc).__name__}: {exc}; nothing written "
                                       f"(the previous file, if any, is unchanged)") from None
        raise


def _write_stdout(chunks: Iterable[bytes], what: str) -> None:
    out = click.get_binary_stream("stdout")
    written = 0
    try:
        for chunk in chunks:
            out.write(chunk)
            written += 1
        out.flush()
    except Exception as exc:
        raise click.ClickException(f"stdout: {type(exc).__name__}: {exc}; output INCOMPLETE: "
                                   f"only the first {written} {what} were written") from None
