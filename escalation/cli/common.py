"""What several command families of the ``escalation`` command share.

Everything here turns a library failure into the command-line's answer (a usage error, exit 1
with the problems on stderr) or reads and writes the files the commands take; no SLA logic lives
here. This module imports nothing from the other ``escalation.cli`` modules, so the families can
all use it without a cycle.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from escalation.core.contract.registry import Registry
from escalation.core.outputs import Output
from escalation.loader import AgreementError, load_agreements
from escalation.secrets import redact

# --- agreements and instants -----------------------------------------------------------------


def load_registry(paths) -> Registry:
    """The agreements of ``paths``; on any problem print each one (file:line: path: message) and
    exit 1."""
    try:
        return Registry(load_agreements(paths))
    except AgreementError as err:
        for problem in err.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None


def parse_instant(value: str | None) -> datetime | None:
    """An RFC 3339 option value (``--until``, ``--from``) -> an aware datetime inside the plausible
    window of DESIGN.md §10; ``None`` stays ``None``; anything else is a ``BadParameter``."""
    if value is None:
        return None
    from escalation.core.events import EARLIEST, LATEST, RFC3339  # what events carry, checked alike

    try:
        if not RFC3339.fullmatch(value):
            raise ValueError(value)
        instant = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time") from None
    if instant.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no offset; give one, e.g. {value}Z")

    if not EARLIEST <= instant < LATEST:
        raise click.BadParameter(f"{value!r} is outside the plausible range [{EARLIEST.date()}, {LATEST.date()})")
    return instant


# --- brokers and topics ----------------------------------------------------------------------


def broker_settings(flags: Mapping[str, Any], settings_file: str | None = None):
    """Live settings with a usable broker for a client command (send, tail, topics, sli, deliver,
    receive): the configured one, else the embedded broker of the ``escalation run`` in this
    directory (``.escalation/broker``, DESIGN.md §14); neither is a usage error saying how to get
    one. Error texts are redacted (a broker URL may carry credentials)."""
    from escalation.edges.brokerfile import NoBroker, client_settings

    try:
        return client_settings(flags, settings_file=settings_file)
    except NoBroker as err:
        raise click.UsageError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - SettingsError and friends: unusable arguments
        raise click.UsageError(redact(str(err))) from None


_BROKER_OPTIONS = [
    click.option("--broker", help="kafka://host:port[,...] (env ESCALATION_BROKER); default: the broker of "
                 "`escalation run` in this directory (.escalation/broker)"),
    click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX, default 'escalation.')"),
    click.option("--profile", type=click.Choice(["auto", "production", "test"]), help="client tuning profile"),
    click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False), help="settings file"),
]


def broker_options(fn):
    """The options of a client of the broker: --broker, --topic-prefix, --profile, --settings."""
    for option in reversed(_BROKER_OPTIONS):
        fn = option(fn)
    return fn


def client_settings(broker, topic_prefix, profile, settings_file):
    """Settings with a usable broker, or a usage error saying how to get one."""
    return broker_settings(dict(broker=broker, topic_prefix=topic_prefix, profile=profile), settings_file)


def exit_on_topic_mismatch(err) -> None:
    """Print every problem of a :class:`~escalation.live.topics.TopicMismatchError` and exit 1."""
    for problem in err.problems:
        click.echo(problem, err=True)
    raise SystemExit(1) from None


def ensure_topics_or_exit(settings, bootstrap: str, *, create: bool = True):
    """Create (or only check) the catalogue's topics; a mismatch exits 1 naming each problem."""
    from escalation.live.topics import TopicMismatchError, ensure_catalogue

    try:
        return ensure_catalogue(settings, bootstrap, create=create)
    except TopicMismatchError as err:
        exit_on_topic_mismatch(err)


def print_status(text: str) -> None:
    """A line for people on stderr, ``escalation: text`` (stdout carries only data)."""
    click.echo(f"escalation: {text}", err=True)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (call from inside the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def run_async(coro) -> None:
    """Run ``coro``; a broker or topic failure is one line and exit 1, never a traceback."""
    from aiokafka.errors import KafkaError

    from escalation.live.topics import TopicMismatchError

    try:
        asyncio.run(coro)
    except TopicMismatchError as err:
        exit_on_topic_mismatch(err)
    except (KafkaError, OSError, RuntimeError) as err:
        print_status(f"error: {redact(str(err) or type(err).__name__)}")
        raise SystemExit(1) from None


# --- files -----------------------------------------------------------------------------------


def read_lines(path: str | Path) -> list[bytes]:
    with open(path, "rb") as handle:
        return handle.readlines()


def read_outputs(path: str | Path, what: str) -> list[Output]:
    """A replay's outputs JSONL as typed outputs (``Output.from_cloudevent``, the one decoder);
    a bad line is a ``BadParameter`` of option ``what``."""
    try:
        return [Output.from_cloudevent(o) for o in read_jsonl(path, what)]
    except (KeyError, TypeError, ValueError) as err:
        raise click.BadParameter(f"{path}: not an outputs file ({err!r})", param_hint=what) from None


def read_jsonl(path: str | Path, what: str) -> list[dict]:
    """Every non-blank line of ``path`` as JSON; a bad line is a ``BadParameter`` of option ``what``."""
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


def json_objects(lines: Iterable[bytes]) -> Iterator[dict]:
    """The lines that are JSON objects, decoded; the others are skipped silently."""
    for line in lines:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            yield event


def write_text(text: str, out: str | None) -> None:
    """``text`` to the file ``out``, or to stdout when none is given."""
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def write_dead_letter(rejects: list[dict], path: str | None) -> None:
    """Rejected lines as JSONL to ``path`` (nothing when no path is given)."""
    if path:
        with open(path, "wb") as handle:
            handle.writelines(orjson.dumps(r) + b"\n" for r in rejects)


@contextmanager
def progress(label: str, total: int):
    """Yield ``wrap(iterable)``: counts items into a rich progress bar on a terminal's stderr
    (elsewhere ``wrap`` gives the iterable back untouched)."""
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
                  console=Console(stderr=True), transient=True) as bar:
        def wrap(iterable: Iterable, description: str = label) -> Iterator:
            task = bar.add_task(description, total=total)
            n = 0
            for item in iterable:
                yield item
                n += 1
                if n % 250 == 0:
                    bar.update(task, completed=n)
            bar.update(task, completed=n)
        yield wrap
