"""``escalation deliver`` and ``escalation receive`` (DESIGN.md §12).

Settings as ``escalation run`` takes them (flags > ``ESCALATION_*`` > settings file); with no
broker configured, the embedded broker of the ``escalation run`` in this directory. The
deliverer's configuration is :func:`escalation.delivery.config.deliver_config` (``escalation run
--deliver`` builds the same).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import click

from escalation.cli.common import (
    broker_settings,
    ensure_topics_or_exit,
    load_registry,
    stop_on_signals,
)
from escalation.live.logs import say, setup_logging
from escalation.secrets import remember

_OPTIONS = [
    click.option("--broker", help="kafka://host:port[,host:port] (env ESCALATION_BROKER); default: the broker of "
                 "`escalation run` in this directory (.escalation/broker)"),
    click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX, default 'escalation.')"),
    click.option("--app-id", help="app id (env ESCALATION_APP_ID); deliverers use the group <app_id>-deliver"),
    click.option("--profile", type=click.Choice(["auto", "production", "test"]), help="client tuning profile"),
    click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False), help="settings file"),
    click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto", show_default=True),
]


def _options(fn):
    """The options deliver and receive share (broker, prefix, app id, profile, settings, log format)."""
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def _settings(log_format: str, settings_file, **flags):
    """Set up logging, then live settings with a usable broker (:func:`broker_settings`)."""
    setup_logging(log_format, "WARNING")
    return broker_settings(flags, settings_file)


def _max_age_seconds(text: str) -> float:
    from escalation.agreement.durations import parse_wall_clock

    try:
        value = parse_wall_clock(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if value <= timedelta(0):
        raise click.BadParameter("--max-age must be a positive wall-clock duration, e.g. 1h")
    return value.total_seconds()


def _rate_limits(options) -> dict[str, tuple[int, float]]:
    from escalation.delivery.ratelimit import parse_limit

    try:
        return dict(parse_limit(text) for text in options)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


async def run_until_signal(coro_factory) -> None:
    """Run ``coro_factory(stop)`` until SIGINT or SIGTERM sets ``stop``."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    await coro_factory(stop)


@click.command("deliver")
@_options
@click.option("--agreements", type=click.Path(exists=True), help="agreement file or directory (env ESCALATION_AGREEMENTS)")
@click.option("--max-age", default="1h", show_default=True, help="give up an output after retrying this long")
@click.option("--rate-limit", "rate_limits", multiple=True, metavar="KIND=COUNT/SECONDS",
              help="token bucket per target of KIND (defaults pagerduty=120/60, slack=1/1); repeatable")
@click.option("--metrics-host", help="address of /metrics and /health (default 127.0.0.1)")
@click.option("--metrics-port", type=int, help="port of /metrics and /health (default 9464; 0: free port)")
def deliver_command(broker, topic_prefix, app_id, profile, settings_file, log_format, agreements, max_age,
                    rate_limits, metrics_host, metrics_port) -> None:
    """Deliver notification outputs to PagerDuty, Opsgenie, Slack, webhooks, e-mail, Kafka, Alertmanager."""
    from escalation.delivery.config import deliver_config
    from escalation.delivery.worker import Deliverer
    from escalation.live import observability as obs
    from escalation.live.run import start_metrics

    settings = _settings(log_format, settings_file, broker=broker, topic_prefix=topic_prefix, app_id=app_id,
                         profile=profile, agreements=agreements, metrics_host=metrics_host, metrics_port=metrics_port)
    registry = load_registry([str(settings.resolve_agreements())])
    config = deliver_config(settings, settings.bootstrap_servers(), _max_age_seconds(max_age), _rate_limits(rate_limits))
    ensure_topics_or_exit(settings, config.bootstrap)
    http = start_metrics(settings)
    obs.set_ready(True)
    say(f"deliver: {config.notifications} -> targets of {', '.join(registry.ids())} (group {config.group})")
    try:
        asyncio.run(run_until_signal(Deliverer(config, registry).run))
    finally:
        obs.stop_http(http)
        say("deliver stopped")


@click.command("receive")
@_options
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=int, default=8787, show_default=True, help="port (0: a free port)")
@click.option("--mapping", "mappings", multiple=True, metavar="TOOL=FILE",
              help="mapping file of jira, zendesk or servicenow webhooks (default: the bundled "
                   "examples/mappings/jira.yaml, zendesk.yaml, servicenow-webhook.yaml); repeatable")
def receive_command(broker, topic_prefix, app_id, profile, settings_file, log_format, host, port, mappings) -> None:
    """Accept acknowledgements (PagerDuty, Opsgenie, POST /ack) as notification.acknowledged inputs, and
    Jira, Zendesk and ServiceNow webhooks (/hooks/TOOL) as ticket events."""
    from escalation.delivery.hook_auth import SECRET_VARS

    for name in ("ESCALATION_PAGERDUTY_WEBHOOK_SECRET", "ESCALATION_OPSGENIE_CALLBACK_TOKEN", "ESCALATION_ACK_TOKEN",
                 *SECRET_VARS):
        remember(os.environ.get(name))
    hooks = hook_mappings(mappings)          # a broken mapping file stops us before the broker is touched
    settings = _settings(log_format, settings_file, broker=broker, topic_prefix=topic_prefix, app_id=app_id,
                         profile=profile)
    ensure_topics_or_exit(settings, settings.bootstrap_servers())   # the tickets topic must exist, partitioned as the engine wants
    asyncio.run(run_until_signal(lambda stop: _receive(settings, host, port, stop, hooks)))


def hook_mappings(options) -> dict:
    """``--mapping TOOL=FILE`` options -> every tool's loaded mapping; a usage error names what is wrong."""
    from escalation.delivery.hook_mapping import (
        TOOLS,
        HookMappingError,
        load_hook_mappings,
    )

    files = {}
    for option in options:
        tool, sep, path = option.partition("=")
        if not sep or tool not in TOOLS or not path:
            raise click.BadParameter(f"{option!r}: want TOOL=FILE with TOOL one of {', '.join(TOOLS)}",
                                     param_hint="--mapping")
        files[tool] = path
    try:
        return load_hook_mappings(files)
    except HookMappingError as err:
        raise click.UsageError(str(err)) from None


async def _receive(settings, host: str, port: int, stop: asyncio.Event, hooks: dict) -> None:
    import orjson
    from aiokafka import AIOKafkaProducer

    from escalation.delivery.receive import build_app, start_server

    topic = f"{settings.topic_prefix}tickets"
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), **settings.aiokafka_security())
    await producer.start()

    async def produce(event: dict) -> None:
        await producer.send_and_wait(topic, orjson.dumps(event), key=event["ticket"].encode())

    runner, bound = await start_server(build_app(produce, os.environ, hooks=hooks), host, port)
    say(f"receive: listening on http://{host}:{bound} (/pagerduty, /opsgenie, /ack, /hooks/jira, /hooks/zendesk, "
        f"/hooks/servicenow) -> {topic}", port=bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await producer.stop()
        say("receive stopped")

