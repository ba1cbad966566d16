"""``escalation run`` (the live engine; :mod:`escalation.live.run` runs it) and ``escalation
topics`` (create or check the topic catalogue on a cluster), DESIGN.md §8, §9.

``run`` takes its settings from flags > ``ESCALATION_*`` env > settings file > defaults; its
lifecycle lines go to stderr as ``escalation: ...`` (plain text on a terminal, JSON lines
otherwise, ``--log-format``); it exits 0 on SIGINT/SIGTERM.
"""

from __future__ import annotations

import click

from escalation.cli.common import (
    broker_settings,
    ensure_topics_or_exit,
    exit_on_topic_mismatch,
    load_registry,
)
from escalation.live.logs import say
from escalation.secrets import redact


@click.command("run")
@click.option("--broker", help="kafka://host:port[,host:port] (env ESCALATION_BROKER); none: embedded broker")
@click.option("--agreements", type=click.Path(exists=True), help="agreement file or directory (env ESCALATION_AGREEMENTS)")
@click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX, default 'escalation.')")
@click.option("--app-id", help="Faust app id = consumer group (env ESCALATION_APP_ID)")
@click.option("--partitions", type=int, help="partitions of created topics")
@click.option("--tick-interval", type=float, help="seconds between heartbeat ticks (a partition with a deadline due is ticked early)")
@click.option("--tick-grace", type=float, help="ticks lag the wall clock by this many seconds")
@click.option("--period-grace", type=float, help="SLO and report periods close this many seconds after their end (default 300)")
@click.option("--profile", type=click.Choice(["auto", "production", "test"]), help="client tuning profile")
@click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False), help="settings file (TOML/YAML)")
@click.option("--manual-ticks", is_flag=True, help="no ticker: time moves only by ticks produced externally (tests)")
@click.option("--demo", is_flag=True, help="feed the bundled example events re-timed to now, print the outputs, and "
              "deliver them to a local webhook it runs on 127.0.0.1 (implies --deliver, to that webhook only)")
@click.option("--speed", type=float, default=60.0, show_default=True, help="--demo time compression (event spacing / speed)")
@click.option("--metrics-host", help="address of the /metrics and /health endpoint (default 127.0.0.1)")
@click.option("--metrics-port", type=int, help="port of the /metrics and /health endpoint (default 9464; 0: free port)")
@click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto", show_default=True,
              help="stderr log lines: JSON objects or text; auto = text on a terminal, else json")
@click.option("--loglevel", default="WARNING", show_default=True, help="level of library logs (Faust, Kafka client)")
@click.option("--deliver", is_flag=True, help="also deliver notifications to their targets in this process "
              "(as `escalation deliver` does)")
def run_command(broker, agreements, topic_prefix, app_id, partitions, tick_interval, tick_grace, period_grace, profile,
                settings_file, manual_ticks, demo, speed, metrics_host, metrics_port, log_format, loglevel,
                deliver) -> None:
    """The live engine: one Kafka worker (embedded broker when none is configured)."""
    from escalation.live.logs import setup_logging
    from escalation.live.run import RunOptions, hold_sighup, run_worker
    from escalation.live.settings import load_settings
    from escalation.live.topics import TopicMismatchError

    hold_sighup()
    try:
        setup_logging(log_format, loglevel)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    flags = dict(broker=broker, agreements=agreements, topic_prefix=topic_prefix, app_id=app_id, partitions=partitions,
                 tick_interval=tick_interval, tick_grace=tick_grace, period_grace=period_grace, profile=profile,
                 metrics_host=metrics_host, metrics_port=metrics_port)
    try:
        settings = load_settings(flags, settings_file=settings_file)
    except Exception as err:  # SettingsError is already redacted; anything else may not be
        raise click.UsageError(redact(str(err))) from None
    if speed <= 0:
        raise click.BadParameter("--speed must be > 0")
    agreements_path = settings.resolve_agreements()
    registry = _agreements(agreements_path, demo, speed)
    options = RunOptions(manual_ticks=manual_ticks, demo=demo, speed=speed, deliver=deliver, loglevel=loglevel)
    try:
        run_worker(settings, registry, agreements_path, options)
    except TopicMismatchError as err:
        exit_on_topic_mismatch(err)


def _agreements(path, demo: bool, speed: float):
    """The agreements the worker runs; for the demo with every duration ``speed`` times shorter."""
    registry = load_registry([str(path)])
    say(f"agreements {path}: {', '.join(registry.ids())}", agreements=registry.ids())
    if demo:
        from escalation.live.demo import compress_registry

        registry = compress_registry(registry, speed)
        say(f"demo: agreement durations compressed x{speed:g} (15m response target -> {900 / speed:g}s)")
    return registry


@click.command("topics")
@click.option("--broker", help="kafka://host:port[,...] (env ESCALATION_BROKER)")
@click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX)")
@click.option("--app-id", help="app id for internal topic names")
@click.option("--partitions", type=int, help="partitions of created topics")
@click.option("--check", is_flag=True, help="only check; exit 1 if a topic is missing or differs")
def topics_command(broker, topic_prefix, app_id, partitions, check) -> None:
    """Create (or with --check, check) the topics of topics/topics.yaml on a cluster."""
    # no broker configured: the one `escalation run` started here (.escalation/broker)
    settings = broker_settings(dict(broker=broker, topic_prefix=topic_prefix, app_id=app_id, partitions=partitions))
    report = ensure_topics_or_exit(settings, settings.bootstrap_servers(), create=not check)
    for t in report.topics:
        click.echo(f"{t.action:8} {t.name} ({t.partitions} partitions){' ' + '; '.join(t.notes) if t.notes else ''}")
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
