"""``escalation deliver`` and ``escalation receive`` (DESIGN.md §12); ``escalation run --deliver``
builds the same :class:`~escalation.delivery.worker.DeliverConfig` with :func:`deliver_config`.

Settings as ``escalation run`` takes them (flags > ``ESCALATION_*`` > settings file); the
deliverers form the consumer group ``<app_id>-deliver``. Vendor endpoints and the mail server come
from the environment names of DESIGN.md §12 (``ESCALATION_PAGERDUTY_URL``,
``ESCALATION_OPSGENIE_URL``, ``ESCALATION_SMTP_URL``, ``ESCALATION_SMTP_FROM``).
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta

import click

from escalation.live.logs import say, setup_logging
from escalation.secrets import redact, remember

_COMMON = [
    click.option("--broker", help="kafka://host:port[,host:port] (env ESCALATION_BROKER); default: the broker of "
                 "`escalation run` in this directory (.escalation/broker)"),
    click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX, default 'escalation.')"),
    click.option("--app-id", help="app id (env ESCALATION_APP_ID); deliverers use the group <app_id>-deliver"),
    click.option("--profile", type=click.Choice(["auto", "production", "test"]), help="client tuning profile"),
    click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False), help="settings file"),
    click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto", show_default=True),
]


def _common(fn):
    for option in reversed(_COMMON):
        fn = option(fn)
    return fn


def _settings(log_format: str, settings_file, **flags):
    """Live settings with a usable broker: the configured one, else the embedded broker of the
    ``escalation run`` in this directory (``.escalation/broker``, DESIGN.md §14), found as
    ``send`` and ``tail`` find it; neither is a usage error saying how to get one."""
    from escalation.edges.brokerfile import NoBroker, client_settings

    setup_logging(log_format, "WARNING")
    try:
        return client_settings(flags, settings_file=settings_file)
    except NoBroker as err:
        raise click.UsageError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - SettingsError and friends: unusable arguments
        raise click.UsageError(redact(str(err))) from None


def parse_max_age(text: str) -> float:
    from escalation.agreement.durations import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise click.BadParameter("--max-age must be a positive wall-clock duration, e.g. 1h")
    return value.total_seconds()


def deliver_config(settings, bootstrap: str, max_age: float = 3600.0, rate_limits=(), env=None):
    """The deliverer's configuration from live settings (shared by ``deliver`` and ``run --deliver``)."""
    from escalation.delivery.plan import Endpoints
    from escalation.delivery.ratelimit import parse_limit
    from escalation.delivery.retry import RetryPolicy
    from escalation.delivery.worker import DeliverConfig

    env = os.environ if env is None else env
    try:
        limits = dict(parse_limit(text) for text in rate_limits)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    tuning = settings.client_tuning()
    remember(env.get("ESCALATION_SMTP_URL"))
    return DeliverConfig(
        bootstrap=bootstrap, notifications=f"{settings.topic_prefix}notifications",
        deliveries=f"{settings.topic_prefix}deliveries", group=f"{settings.app_id}-deliver",
        client_kwargs=settings.aiokafka_security(),
        session_timeout=tuning.get("broker_session_timeout", 10.0),
        heartbeat=tuning.get("broker_heartbeat_interval", 3.0),
        max_batch_size=tuning.get("producer_max_batch_size", 16384),
        policy=RetryPolicy(max_age=max_age), limits=limits, endpoints=Endpoints.from_env(env),
        smtp_url=env.get("ESCALATION_SMTP_URL") or None)


async def run_until_signal(coro_factory) -> None:
    """Run ``coro_factory(stop)`` until SIGINT or SIGTERM sets ``stop``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await coro_factory(stop)


@click.command("deliver")
@_common
@click.option("--agreements", type=click.Path(exists=True), help="agreement file or directory (env ESCALATION_AGREEMENTS)")
@click.option("--max-age", default="1h", show_default=True, help="give up an output after retrying this long")
@click.option("--rate-limit", "rate_limits", multiple=True, metavar="KIND=COUNT/SECONDS",
              help="token bucket per target of KIND (defaults pagerduty=120/60, slack=1/1); repeatable")
@click.option("--metrics-host", help="address of /metrics and /health (default 127.0.0.1)")
@click.option("--metrics-port", type=int, help="port of /metrics and /health (default 9464; 0: free port)")
def deliver_command(broker, topic_prefix, app_id, profile, settings_file, log_format, agreements, max_age,
                    rate_limits, metrics_host, metrics_port) -> None:
    """Deliver notification outputs to PagerDuty, Opsgenie, Slack, webhooks, e-mail, Kafka, Alertmanager."""
    from escalation.cli import load_registry
    from escalation.delivery.worker import Deliverer
    from escalation.live import observability as obs
    from escalation.live.run import _ensure, _start_http

    settings = _settings(log_format, settings_file, broker=broker, topic_prefix=topic_prefix, app_id=app_id,
                         profile=profile, agreements=agreements, metrics_host=metrics_host, metrics_port=metrics_port)
    registry = load_registry([str(settings.resolve_agreements())])
    config = deliver_config(settings, settings.bootstrap_servers(), parse_max_age(max_age), rate_limits)
    _ensure(settings, config.bootstrap)
    http = _start_http(settings)
    obs.set_ready(True)
    say(f"deliver: {config.notifications} -> targets of {', '.join(registry.ids())} (group {config.group})")
    try:
        asyncio.run(run_until_signal(Deliverer(config, registry).run))
    finally:
        obs.stop_http(http)
        say("deliver stopped")


@click.command("receive")
@_common
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
    from escalation.live.run import _ensure

    _ensure(settings, settings.bootstrap_servers())   # the tickets topic must exist, partitioned as the engine wants
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


def register(group: click.Group) -> None:
    group.add_command(deliver_command)
    group.add_command(receive_command)
