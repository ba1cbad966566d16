"""Running the live engine (DESIGN.md §8, §9): what ``escalation run`` does once its settings and
agreements are loaded (the command's options are :mod:`escalation.cli.live`).

:func:`run_worker`: with no broker configured it starts the embedded Tansu broker on 127.0.0.1
(port 9092 when free, else a free port), says so and writes its address to
``.escalation/broker`` (removed on exit; :mod:`escalation.edges.brokerfile`); creates/checks the
topics; runs one Faust worker in-process until SIGINT/SIGTERM, then stops the broker it started.
Lifecycle lines go to stderr as ``escalation: ...`` (:mod:`escalation.live.logs`);
``escalation: ready`` is logged when the worker got its partitions (tests wait for it).
``/metrics`` and ``/health`` (:mod:`escalation.live.observability`) are served on
``metrics_host:metrics_port`` from the start (``starting`` until ready); SIGHUP reloads the
agreements in place (:mod:`escalation.live.reload`).

Invariant: whatever :func:`run_worker` started (broker, HTTP endpoint, demo webhook, scratch
directory) is stopped when it returns or raises, in the reverse order of starting.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escalation.core.contract.registry import Registry
from escalation.live.logs import say as _say
from escalation.live.logs import warn as _warn
from escalation.secrets import redact_url

__all__ = ["RunOptions", "hold_sighup", "run_worker", "start_metrics"]


@dataclass(frozen=True)
class RunOptions:
    """How ``escalation run`` runs beyond its settings: ticks produced externally (tests), the
    demo (example events re-timed to now, ``speed`` times faster), delivery in-process, and the
    level of library logs given to Faust."""

    manual_ticks: bool = False
    demo: bool = False
    speed: float = 60.0
    deliver: bool = False
    loglevel: str = "WARNING"


def hold_sighup() -> None:
    """Drop SIGHUP until the worker's loop takes it (:func:`_reload`); call first thing. A
    handler, not SIG_IGN, so child processes (the embedded broker) keep the default disposition."""
    signal.signal(signal.SIGHUP, lambda *_: None)


def run_worker(settings, registry: Registry, agreements_path: Path, options: RunOptions) -> None:
    """Run one live worker until SIGINT/SIGTERM (see the module docstring). Raises
    :class:`~escalation.live.topics.TopicMismatchError` when the cluster's topics differ from
    the catalogue."""
    run = _Resources()
    try:
        run.http = start_metrics(settings)
        if options.demo:
            run.hook, registry = _demo_webhook(registry)
        broker_url, bootstrap = _connect(settings, run)
        app = _build_app(settings, registry, broker_url, bootstrap, options, run)
        _say(f"worker {settings.app_id} starting (ticks: "
             f"{'manual' if options.manual_ticks else f'every {settings.tick_interval:g}s, grace {settings.tick_grace:g}s'})")
        run.worker = _worker(app, registry, agreements_path, options.loglevel)
        run.worker.execute_from_commandline()
    finally:
        run.close(settings)


@dataclass
class _Resources:
    """What :func:`run_worker` started, to stop on the way out."""

    embedded: Any = None
    http: Any = None
    worker: Any = None
    scratch: tempfile.TemporaryDirectory | None = None
    hook: Any = None

    def close(self, settings) -> None:
        from escalation.edges.brokerfile import remove_broker_file
        from escalation.live import observability as obs

        obs.stop_http(self.http)
        if self.hook is not None:
            self.hook.stop()
        if self.scratch is not None:
            self.scratch.cleanup()
        if self.worker is not None:
            _say(f"worker stopped (app {settings.app_id})")
        if self.embedded is not None:
            remove_broker_file(self.embedded.bootstrap)
            self.embedded.stop()
            _say("embedded broker stopped")


def _connect(settings, run: _Resources) -> tuple[str, str]:
    """``(faust broker url, bootstrap servers)``: the configured broker, or the embedded one
    started here (kept in ``run``), whose address goes to ``.escalation/broker``."""
    from escalation.edges.brokerfile import start_embedded, write_broker_file

    if not settings.embedded:
        _say(f"broker {redact_url(settings.broker)}")
        return settings.faust_broker_url(), settings.bootstrap_servers()
    run.embedded = embedded = start_embedded()
    _say(f"no broker configured: started the embedded Tansu broker on {embedded.bootstrap} "
         f"(memory storage, pid {embedded.pid}); set --broker or ESCALATION_BROKER for a real cluster")
    try:   # how send, tail, topics and sli find it
        _say(f"broker address written to {write_broker_file(embedded.bootstrap)}")
    except OSError as err:   # a read-only directory: the engine still runs
        _warn(f"could not write .escalation/broker ({err}); give clients --broker kafka://{embedded.bootstrap}")
    return embedded.url, embedded.bootstrap


def _build_app(settings, registry: Registry, broker_url: str, bootstrap: str, options: RunOptions,
               run: _Resources):
    """Topics ensured, then the Faust app with its readiness signal, the deliverer (``--deliver``,
    ``--demo``) and the demo feed."""
    from escalation.live import observability as obs
    from escalation.live.app import build_app
    from escalation.live.topics import ensure_catalogue

    report = ensure_catalogue(settings, bootstrap)
    created = [t.name for t in report.topics if t.action == "created"]
    _say(f"topics ok ({len(report.topics)}; created {len(created)}) prefix {settings.topic_prefix!r}")
    datadir = None
    if settings.embedded and settings.store.startswith("memory"):
        # the embedded broker keeps nothing past this run: neither does Faust's data directory
        run.scratch = tempfile.TemporaryDirectory(prefix="escalation-")
        datadir = run.scratch.name
    app = build_app(settings, registry, broker_url=broker_url, manual_ticks=options.manual_ticks, datadir=datadir)

    @app.on_partitions_assigned.connect
    async def _ready(sender: Any, assigned: Any, **kwargs: Any) -> None:
        obs.set_assigned(len(assigned))
        obs.set_ready(True)
        _say(f"ready: {len(assigned)} partitions assigned", partitions_assigned=len(assigned))

    if options.deliver or options.demo:
        _install_deliverer(app, settings, registry, bootstrap, run.hook)
    if options.demo:
        from escalation.live.demo import install_demo

        names = app.escalation.names
        install_demo(app, bootstrap, names, options.speed, settings.partitions)
        _say(f"demo: feeding the example events to {names.tickets} (x{options.speed:g}); outputs follow")
    return app


def _worker(app, registry: Registry, agreements_path: Path, loglevel: str):
    """The Faust worker of ``app``; logging stays ours (:func:`escalation.live.logs.setup_logging`)
    and SIGHUP reloads the agreements on its loop."""
    import faust

    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False, stdout=sys.stderr,
                          override_logging=False)
    worker.spinner = None  # no terminal escapes inside the log lines
    worker.loop.add_signal_handler(signal.SIGHUP, _reload, registry, agreements_path, app.escalation.invalidate)
    return worker


def _demo_webhook(registry: Registry):
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


def _install_deliverer(app, settings, registry: Registry, bootstrap: str, hook=None) -> None:
    """``--deliver``: the deliverer (escalation.delivery.worker) as a task of the Faust app, on its
    loop; Faust cancels it at shutdown, which stops its Kafka clients. With the demo's ``hook``
    it delivers to that local webhook only (never to the example's e-mail or Kafka targets)."""
    import dataclasses
    import os

    from escalation.delivery.config import deliver_config
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


def start_metrics(settings):
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


def _reload(registry: Registry, path: Path, invalidate=None) -> None:
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
