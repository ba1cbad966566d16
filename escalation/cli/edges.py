"""``escalation send`` and ``escalation tail`` (DESIGN.md §14; ``sli prometheus`` is :mod:`escalation.cli.sli`).

Broker settings as ``escalation run`` takes them (flags > ``ESCALATION_*`` > settings file); with
no broker configured, the embedded broker ``escalation run`` started in this directory
(``.escalation/broker``). Messages for people go to stderr as ``escalation: ...``; stdout carries
only data (tail's records), so it can be piped.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta, timezone

import click

from escalation.cli.common import (
    broker_options,
    client_settings,
    print_status,
    run_async,
    stop_on_signals,
)
from escalation.live.topics import ensure_public_topics


@click.command("send")
@click.argument("source", type=click.File("rb"))
@broker_options
def send_command(source, broker, topic_prefix, profile, settings_file) -> None:
    """Validate JSONL events (FILE, or - for stdin) and produce the good ones to tickets/metrics.

    Rejected lines are reported on stderr as FILE:LINE: reason and not sent; exit 0 when the run
    completed (even with rejected lines)."""
    settings = client_settings(broker, topic_prefix, profile, settings_file)
    run_async(_send(settings, source))


async def _send(settings, source) -> None:
    from aiokafka import AIOKafkaProducer

    from escalation.edges.send import Tally, send_lines

    name = "<stdin>" if source.name in ("<stdin>", "-") else source.name
    await ensure_public_topics(settings)
    tuning = settings.client_tuning()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all",
                                max_batch_size=tuning.get("producer_max_batch_size", 16384),
                                **settings.aiokafka_security())
    await producer.start()
    tally = Tally()
    topics = {t: f"{settings.topic_prefix}{t}" for t in ("tickets", "metrics")}
    skew = settings.max_future_skew

    def clock():  # what the worker will allow when the event arrives: refused here, not dead-lettered there
        return datetime.now(timezone.utc) + timedelta(seconds=skew), skew

    try:
        await send_lines(source, producer, topics, lambda r: click.echo(f"{name}:{r.line}: {r.reason}", err=True),
                         tally, clock=clock)
    finally:
        await producer.stop()
    print_status(tally.summary(name))


@click.command("tail")
@click.argument("which", type=click.Choice(["notifications", "remedies", "timeline", "deadletter", "all"]),
                default="all")
@broker_options
@click.option("--from-beginning", is_flag=True, help="start at the beginning of the topics, not at their end")
@click.option("--format", "fmt", type=click.Choice(["auto", "line", "jsonl"]), default="auto", show_default=True,
              help="auto: one short line per output on a terminal, JSONL otherwise")
@click.option("--limit", type=int, help="exit after this many records")
def tail_command(which, broker, topic_prefix, profile, settings_file, from_beginning, fmt, limit) -> None:
    """Print outputs as they arrive: time, type, subject, summary on a terminal; JSONL otherwise."""
    settings = client_settings(broker, topic_prefix, profile, settings_file)
    from escalation.edges.tail import TOPICS

    names = TOPICS if which == "all" else (which,)
    line_mode = fmt == "line" or (fmt == "auto" and sys.stdout.isatty())
    run_async(_tail(settings, {f"{settings.topic_prefix}{n}": n for n in names}, from_beginning, line_mode, limit))


async def _tail(settings, topics, from_beginning, line_mode, limit) -> None:
    from aiokafka import AIOKafkaConsumer

    from escalation.edges.tail import short_line, tail

    out = sys.stdout

    def write(topic: str, value: bytes) -> None:
        out.write((short_line(topic, value) if line_mode else value.decode("utf-8", "replace").rstrip("\n")) + "\n")
        out.flush()

    def ready(partitions: int) -> None:
        start = "the beginning" if from_beginning else "now"
        print_status(f"tailing {', '.join(topics)} ({partitions} partitions) from {start}; Ctrl-C stops")

    await ensure_public_topics(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), enable_auto_commit=False,
                                **settings.aiokafka_security())
    await consumer.start()
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        await tail(consumer, topics, from_beginning, write, ready, stop, limit)
    except BrokenPipeError:   # `escalation tail | head`: the reader is gone, so are we
        pass
    finally:
        await consumer.stop()

