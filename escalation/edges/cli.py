"""``escalation send``, ``escalation tail`` and ``escalation sli prometheus`` (DESIGN.md §14).

Broker settings as ``escalation run`` takes them (flags > ``ESCALATION_*`` > settings file); with
no broker configured, the embedded broker ``escalation run`` started in this directory
(``.escalation/broker``). Messages for people go to stderr as ``escalation: ...``; stdout carries
only data (tail's records, sli's events), so it can be piped.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from escalation.secrets import redact

_COMMON = [
    click.option("--broker", help="kafka://host:port[,...] (env ESCALATION_BROKER); default: the broker of "
                 "`escalation run` in this directory (.escalation/broker)"),
    click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX, default 'escalation.')"),
    click.option("--profile", type=click.Choice(["auto", "production", "test"]), help="client tuning profile"),
    click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False), help="settings file"),
]


def common(fn):
    for option in reversed(_COMMON):
        fn = option(fn)
    return fn


def say(text: str) -> None:
    click.echo(f"escalation: {text}", err=True)


def client_settings(broker, topic_prefix, profile, settings_file):
    """Settings with a usable broker, or a usage error saying how to get one."""
    from escalation.edges.brokerfile import NoBroker
    from escalation.edges.brokerfile import client_settings as resolve

    try:
        return resolve(dict(broker=broker, topic_prefix=topic_prefix, profile=profile), settings_file=settings_file)
    except NoBroker as err:
        raise click.UsageError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - SettingsError and friends: unusable arguments
        raise click.UsageError(redact(str(err))) from None


async def ensure_public_topics(settings) -> None:
    """Create the public topics if missing, as the engine wants them (partitions, policies), so a
    producer never lets a broker auto-create an input topic with other partition counts. Internal
    topics are the engine's (they carry its app id) and are left alone."""
    from escalation.live.topics import TopicsSpec, ensure_topics, load_topics

    spec = load_topics()
    public = TopicsSpec(version=1, defaults=spec.defaults, topics=[t for t in spec.topics if not t.internal],
                        source=spec.source)
    await ensure_topics(settings.bootstrap_servers(), settings.topic_prefix, public, app_id=settings.app_id,
                        partitions=settings.partitions, client_kwargs=settings.aiokafka_security())


def stop_on_signals(stop: asyncio.Event) -> None:
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
        for problem in err.problems:
            click.echo(problem, err=True)
        raise SystemExit(1) from None
    except (KafkaError, OSError, RuntimeError) as err:
        say(f"error: {redact(str(err) or type(err).__name__)}")
        raise SystemExit(1) from None


@click.command("send")
@click.argument("source", type=click.File("rb"))
@common
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
    try:
        await send_lines(source, producer, topics, lambda r: click.echo(f"{name}:{r.line}: {r.reason}", err=True),
                         tally)
    finally:
        await producer.stop()
    say(tally.summary(name))


@click.command("tail")
@click.argument("which", type=click.Choice(["notifications", "remedies", "timeline", "deadletter", "all"]),
                default="all")
@common
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
        say(f"tailing {', '.join(topics)} ({partitions} partitions) from {start}; Ctrl-C stops")

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


def register(group: click.Group) -> None:
    group.add_command(send_command)
    group.add_command(tail_command)
    from escalation.edges.sli_cli import sli_group

    group.add_command(sli_group)
