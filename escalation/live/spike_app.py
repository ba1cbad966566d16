"""Spike: the smallest Faust app with the shape of the engine, to learn the stack on Tansu.

One agent consumes ``source`` (JSON values, raw string keys), counts records per key in a
changelog-backed Table and produces one record per input to ``sink``:
``{"key": k, "n": <input n>, "count": <count of k including this record>}``. After a restart a
correctly recovered table continues the counts, so ``count`` exposes lost table updates.

Run as a worker (used by ``bench/live_spike.py``; prints one JSON line per lifecycle event on
stdout: ``init``, ``assigned``, ``ready``, ``first``, ``stopping``)::

    python -m escalation.live.spike_app --broker kafka://127.0.0.1:PORT --app-id A \
        --source S --sink K [--datadir D] [--profile test|production] [--set name=value ...]

Not part of the engine; to be removed once the real shell exists.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import faust

from escalation.live.settings import LiveSettings, load_settings

__all__ = ["create_spike_app"]


def _emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, "t": time.time(), **data}), flush=True)


def create_spike_app(
    settings: LiveSettings, *, broker_url: str | None, source: str, sink: str, datadir: str | Path | None = None
) -> faust.App:
    """Build the spike app from ``settings`` (``broker_url``: the embedded broker's url, if any)."""
    kw = settings.faust_app_kwargs(broker_url)
    if datadir is not None:
        kw["datadir"] = str(datadir)
    app = faust.App(settings.app_id, key_serializer="raw", value_serializer="json", **kw)
    src = app.topic(source, partitions=settings.partitions)
    out = app.topic(sink, partitions=settings.partitions)
    counts = app.Table("counts", default=int, partitions=settings.partitions)
    first = [True]

    @app.agent(src)
    async def count(stream: Any) -> None:
        async for key, value in stream.items():
            k = key.decode() if isinstance(key, bytes) else str(key)
            counts[k] += 1
            await out.send(key=k.encode(), value={"key": k, "n": value.get("n"), "count": counts[k]})
            if first[0]:
                first[0] = False
                _emit("first")

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        _emit("assigned", partitions=len(assigned))

    @app.on_before_shutdown.connect
    def _stopping(sender: Any, **kwargs: Any) -> None:
        _emit("stopping")

    return app


class _Worker(faust.Worker):
    async def on_startup_finished(self) -> None:  # the worker owns app.on_startup_finished
        await super().on_startup_finished()
        _emit("ready")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m escalation.live.spike_app")
    p.add_argument("--broker", required=True)
    p.add_argument("--app-id", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--sink", required=True)
    p.add_argument("--datadir")
    p.add_argument("--profile", choices=["test", "production"], default="test")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any LiveSettings field")
    a = p.parse_args(argv)
    extra = dict(kv.split("=", 1) for kv in a.set)
    settings = load_settings(app_id=a.app_id, broker=a.broker, profile=a.profile, **extra)
    _emit("init", tuning=settings.client_tuning())
    app = create_spike_app(settings, broker_url=None, source=a.source, sink=a.sink, datadir=a.datadir)
    worker = _Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False, stdout=sys.stderr)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
