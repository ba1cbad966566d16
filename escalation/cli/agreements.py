"""Commands over agreement files: ``validate``, ``machine`` (the compiled state machines) and
``schema`` (the JSON Schema of the format)."""

from __future__ import annotations

import click
import orjson

from escalation.cli.common import load_registry
from escalation.loader import check_agreements


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate_command(paths) -> None:
    """Check agreement files: one line per file that loads, file:line: path: message per error
    of the others; exit 1 when any file has a problem."""
    agreements, problems = check_agreements(paths)
    for problem in problems:
        click.echo(str(problem))
    for a in agreements:
        click.echo(f"ok: {a.id} revision {a.revision}")
    if not agreements and not problems:  # a directory without agreement files: nothing was checked
        click.echo(f"{', '.join(paths)}: no agreement files (*.yaml) found")
        raise SystemExit(1)
    if problems:
        raise SystemExit(1)


@click.command("machine")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def machine_command(paths) -> None:
    """Print each agreement revision's compiled state machine and thresholds as JSON."""
    from escalation.core.contract.compiled import describe

    registry = load_registry(paths)
    described = [describe(c) for c in sorted(registry, key=lambda c: (c.id, c.revision))]
    click.echo(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())


@click.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the agreement format."""
    from escalation.agreement.schema import agreement_schema

    click.echo(orjson.dumps(agreement_schema(), option=orjson.OPT_INDENT_2).decode())
