"""``escalation run`` and ``escalation topics`` (DESIGN.md §8, §9).

``run``: settings from flags > ``ESCALATION_*`` env > settings file > defaults; with no broker it
starts the embedded Tansu broker on 127.0.0.1 (port 9092 when free, else a free port), says so and
writes its address to ``.escalation/broker`` (removed on exit; :mod:`escalation.edges.brokerfile`);
creates/checks the topics; runs one Faust worker in-process until SIGINT/SIGTERM (exit 0), then stops the broker it started.
Lifecycle lines go to stderr as ``escalation: ...`` (:mod:`escalation.live.logs`: plain text on a
terminal, JSON lines otherwise, ``--log-format``); ``escalation: ready`` is logged when the worker
got its partitions (tests wait for it). ``/metrics`` and ``/health``
(:mod:`escalation.live.observability`) are served on ``metrics_host:metrics_port`` from the start
(``starting`` until ready); SIGHUP reloads the agreements in place (:mod:`escalation.live.reload`).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from typing import Any

import click

from escalation.live.logs import say as _say
from escalation.live.logs import warn as _warn
from escalation.live.settings import load_settings
from escalation.secrets import redact, redact_url

__all__ = ["register"]


def _ensure(settings, bootstrap: str, *, create: bool = True):
    from escalation.live.topics import TopicMismatchError, ensure_topics, load_topics

    try:
        return asyncio.run(ensure_topics(bootstrap, settings.topic_prefix, load_topics(), app_id=settings.app_id,
                                         partitions=settings.partitions, create=create,
                                         client_kwargs=settings.aiokafka_security()))
    except TopicMismatchError as err:
        for problem in err.problems:
            click.echo(problem, err=True)
        raise SystemExit(1) from None


@click.command("run")
@click.option("--broker", help="kafka://host:port[,host:port] (env ESCALATION_BROKER); none: embedded broker")
@click.option("--agreements", type=click.Path(exists=True), help="agreement file or directory (env ESCALATION_AGREEMENTS)")
@click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX, default 'escalation.')")
@click.option("--app-id", help="Faust app id = consumer group (env ESCALATION_APP_ID)")
@click.option("--partitions", type=int, help="partitions of created topics")
@click.option("--tick-interval", type=float, help="seconds between ticks")
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
    import faust

    from escalation.cli import load_registry
    from escalation.live import observability as obs
    from escalation.live.app import build_app
    from escalation.edges.brokerfile import remove_broker_file, start_embedded, write_broker_file
    from escalation.live.logs import setup_logging

    signal.signal(signal.SIGHUP, lambda *_: None)  # dropped until the worker's loop takes it (_reload);
    # a handler, not SIG_IGN, so child processes (the embedded broker) keep the default disposition
    try:
        setup_logging(log_format, loglevel)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    flags = dict(broker=broker, agreements=agreements, topic_prefix=topic_prefix, app_id=app_id, partitions=partitions,
                 tick_interval=tick_interval, tick_grace=tick_grace, period_grace=period_grace, profile=profile, metrics_host=metrics_host,
                 metrics_port=metrics_port)
    try:
        settings = load_settings(flags, settings_file=settings_file)
    except Exception as err:  # SettingsError is already redacted; anything else may not be
        raise click.UsageError(redact(str(err))) from None
    if speed <= 0:
        raise click.BadParameter("--speed must be > 0")
    agreements_path = settings.resolve_agreements()
    registry = load_registry([str(agreements_path)])
    _say(f"agreements {agreements_path}: {', '.join(registry.ids())}", agreements=registry.ids())
    if demo:
        from escalation.live.demo import compress_registry

        registry = compress_registry(registry, speed)
        _say(f"demo: agreement durations compressed x{speed:g} (15m response target -> {900 / speed:g}s)")

    embedded = http = worker = scratch = hook = None
    try:
        http = _start_http(settings)
        if demo:
            hook, registry = _demo_webhook(registry)
        if settings.embedded:
            embedded = start_embedded()
            broker_url, bootstrap = embedded.url, embedded.bootstrap
            _say(f"no broker configured: started the embedded Tansu broker on {bootstrap} "
                 f"(memory storage, pid {embedded.pid}); set --broker or ESCALATION_BROKER for a real cluster")
            try:   # how send, tail, topics and sli find it
                _say(f"broker address written to {write_broker_file(bootstrap)}")
            except OSError as err:   # a read-only directory: the engine still runs
                _warn(f"could not write .escalation/broker ({err}); give clients --broker kafka://{bootstrap}")
        else:
            broker_url, bootstrap = settings.faust_broker_url(), settings.bootstrap_servers()
            _say(f"broker {redact_url(settings.broker)}")
        report = _ensure(settings, bootstrap)
        created = [t.name for t in report.topics if t.action == "created"]
        _say(f"topics ok ({len(report.topics)}; created {len(created)}) prefix {settings.topic_prefix!r}")
        datadir = None
        if settings.embedded and settings.store.startswith("memory"):
            # the embedded broker keeps nothing past this run: neither does Faust's data directory
            scratch = tempfile.TemporaryDirectory(prefix="escalation-")
            datadir = scratch.name
        app = build_app(settings, registry, broker_url=broker_url, manual_ticks=manual_ticks, datadir=datadir)
        names = app.escalation.names

        @app.on_partitions_assigned.connect
        async def _ready(sender: Any, assigned: Any, **kwargs: Any) -> None:
            obs.set_assigned(len(assigned))
            obs.set_ready(True)
            _say(f"ready: {len(assigned)} partitions assigned", partitions_assigned=len(assigned))

        if deliver or demo:
            _install_deliverer(app, settings, registry, bootstrap, hook)
        if demo:
            from escalation.live.demo import install_demo

            install_demo(app, bootstrap, names, speed, settings.partitions)
            _say(f"demo: feeding the example events to {names.tickets} (x{speed:g}); outputs follow")
        _say(f"worker {settings.app_id} starting (ticks: {'manual' if manual_ticks else f'every {settings.tick_interval:g}s, grace {settings.tick_grace:g}s'})")
        worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False, stdout=sys.stderr,
                              override_logging=False)  # logging is ours (setup_logging above)
        worker.spinner = None  # no terminal escapes inside the log lines
        worker.loop.add_signal_handler(signal.SIGHUP, _reload, registry, agreements_path, app.escalation.invalidate)
        worker.execute_from_commandline()
    finally:
        obs.stop_http(http)
        if hook is not None:
            hook.stop()
        if scratch is not None:
            scratch.cleanup()
        if worker is not None:
            _say(f"worker stopped (app {settings.app_id})")
        if embedded is not None:
            remove_broker_file(embedded.bootstrap)
            embedded.stop()
            _say("embedded broker stopped")


def _demo_webhook(registry):
    """``--demo``: start the local webhook receiver and give every escalation level of the demo's
    agreements a webhook target pointing at it (:mod:`escalation.live.demo_hook`); also keep the
    agreements valid today, since the demo's events are re-timed to now."""
    from datetime import date

    from escalation.live.demo import still_valid
    from escalation.live.demo_hook import DemoWebhook, with_demo_webhook
    from escalation.secrets import remember

    hook = DemoWebhook().start()
    remember(hook.secret)
    registry = with_demo_webhook(still_valid(registry, date.today()), hook.url)
    _say(f"demo: webhook receiver on {hook.url}; every escalation level also notifies it (signed CloudEvents)")
    return hook, registry


def _install_deliverer(app, settings, registry, bootstrap: str, hook=None) -> None:
    """``--deliver``: the deliverer (escalation.delivery.worker) as a task of the Faust app, on its
    loop; Faust cancels it at shutdown, which stops its Kafka clients. With the demo's ``hook``
    it delivers to that local webhook only (never to the example's e-mail or Kafka targets)."""
    import dataclasses
    import os

    from escalation.delivery.cli import deliver_config
    from escalation.delivery.worker import Deliverer
    from escalation.live.demo_hook import SECRET_ENV, TARGET

    config, env = deliver_config(settings, bootstrap), None
    if hook is not None:
        config = dataclasses.replace(config, only=frozenset({TARGET}))
        env = {**os.environ, SECRET_ENV: hook.secret}   # the run's own secret, never the process environment
    deliverer = Deliverer(config, registry, env=env)

    @app.task
    async def _deliver() -> None:
        await deliverer.run(asyncio.Event())

    where = f"the demo's webhook only ({TARGET})" if hook is not None else "notification targets"
    _say(f"deliver: {deliverer.config.notifications} -> {where} (group {deliverer.config.group})")


def _start_http(settings):
    """Serve /metrics and /health; a busy port is logged and the worker runs on without them."""
    from escalation.live.observability import start_http

    try:
        server, port = start_http(settings.metrics_host, settings.metrics_port)
    except OSError as err:
        _warn(f"metrics endpoint not started on {settings.metrics_host}:{settings.metrics_port}: {err}")
        return None
    _say(f"metrics on http://{settings.metrics_host}:{port}/metrics, health on /health",
         metrics_host=settings.metrics_host, metrics_port=port)
    return server


def _reload(registry, path, invalidate=None) -> None:
    """SIGHUP: merge new agreement revisions in place (the engine's per-partition state is then
    reloaded at its next batch, with the new revisions); on any problem log each one and keep the
    old set."""
    from escalation.live.observability import reload_done
    from escalation.live.reload import ReloadPlan, reload_registry

    try:
        plan = reload_registry(registry, [str(path)])
    except Exception as err:  # noqa: BLE001 - a reload never stops the worker
        plan = ReloadPlan(problems=(f"reload failed: {err!r}",))
    reload_done(plan.ok)
    if plan.ok and plan.added and invalidate is not None:
        invalidate()
    if plan.ok:
        _say(f"agreements reloaded from {path}: {plan.summary()}", reload="ok",
             added=[f"{a.id} r{a.revision}" for a in plan.added])
        return
    n = len(plan.problems)
    for problem in plan.problems:
        _warn(f"reload: {problem}", reload="rejected")
    _warn(f"agreements reload from {path} refused ({n} problem{'s' if n != 1 else ''}); the loaded agreements "
          f"stay in force", reload="rejected")


@click.command("topics")
@click.option("--broker", help="kafka://host:port[,...] (env ESCALATION_BROKER)")
@click.option("--topic-prefix", help="topic prefix (env ESCALATION_TOPIC_PREFIX)")
@click.option("--app-id", help="app id for internal topic names")
@click.option("--partitions", type=int, help="partitions of created topics")
@click.option("--check", is_flag=True, help="only check; exit 1 if a topic is missing or differs")
def topics_command(broker, topic_prefix, app_id, partitions, check) -> None:
    """Create (or with --check, check) the topics of topics/topics.yaml on a cluster."""
    from escalation.edges.brokerfile import NoBroker, client_settings

    try:   # no broker configured: the one `escalation run` started here (.escalation/broker)
        settings = client_settings(dict(broker=broker, topic_prefix=topic_prefix, app_id=app_id, partitions=partitions))
    except NoBroker as err:
        raise click.UsageError(str(err)) from None
    except Exception as err:  # SettingsError / ValueError: unusable arguments
        raise click.UsageError(redact(str(err))) from None
    report = _ensure(settings, settings.bootstrap_servers(), create=not check)
    for t in report.topics:
        click.echo(f"{t.action:8} {t.name} ({t.partitions} partitions){' ' + '; '.join(t.notes) if t.notes else ''}")
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)


def register(group: click.Group) -> None:
    group.add_command(run_command)
    group.add_command(topics_command)
