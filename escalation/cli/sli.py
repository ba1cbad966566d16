"""``escalation sli prometheus``: Prometheus counters -> ``metric.observed`` slices on ``metrics``
(DESIGN.md §14). Each event sent is also written to stdout as one JSON line; skipped slices and
the summary go to stderr."""

from __future__ import annotations

import asyncio
import sys
import time

import click
import orjson

from escalation.cli.common import (
    broker_options,
    client_settings,
    parse_instant,
    print_status,
    run_async,
    stop_on_signals,
)
from escalation.live.topics import ensure_public_topics


@click.group("sli")
def sli_group() -> None:
    """Turn SLI sources into metric.observed slices."""


@sli_group.command("prometheus")
@click.option("--url", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="slis.yaml: slice, lag and per SLI a good and a total PromQL expression")
@click.option("--from", "from_", help="backfill from this RFC 3339 instant (with --to)")
@click.option("--to", help="backfill up to this RFC 3339 instant")
@click.option("--dry-run", is_flag=True, help="print the events, send nothing (no broker needed)")
@broker_options
def prometheus_command(url, config_path, from_, to, dry_run, broker, topic_prefix, profile, settings_file) -> None:
    """Evaluate each SLI's good/total expressions at every closed slice's end and send the counts.

    Without --from/--to it runs live: each slice once it is `lag` old, until Ctrl-C. With them it
    backfills the closed slices in between with query_range and exits."""
    from escalation.edges.sli_config import SliConfigError, load_sli_config

    try:
        config = load_sli_config(config_path)
    except SliConfigError as err:
        for problem in err.problems:
            click.echo(problem, err=True)
        raise SystemExit(1) from None
    if (from_ is None) != (to is None):
        raise click.UsageError("--from and --to go together (backfill); give neither to run live")
    window = None
    if from_ is not None:
        window = (parse_instant(from_).timestamp(), parse_instant(to).timestamp())
        if window[1] <= window[0]:
            raise click.UsageError("--to must be after --from")
    settings = None if dry_run else client_settings(broker, topic_prefix, profile, settings_file)
    run_async(_run(url, config, window, settings))


async def _run(url, config, window, settings) -> None:
    import aiohttp

    from escalation.edges.prometheus import Prometheus, QueryError
    from escalation.edges.slices import Skip

    sink = await _Sink.open(settings)
    sent = skipped = 0
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        async with aiohttp.ClientSession() as session:
            async for item in _slices(Prometheus(session, url), config, window, url, stop):
                if isinstance(item, Skip):
                    skipped += 1
                    print_status(f"warning: {item}")
                else:
                    await sink.send(item)
                    sent += 1
                if stop.is_set():
                    break
    except QueryError as err:
        print_status(f"error: Prometheus refused the query {err}")
        raise SystemExit(1) from None
    finally:
        await sink.close()
        print_status(f"sli prometheus: sent {sent} slice{'s' if sent != 1 else ''}, skipped {skipped}"
                     + (f" to {sink.topic}" if sink.topic else " (dry run)"))


def _slices(prom, config, window, url, stop: asyncio.Event):
    """The slices to send: the closed ones of the backfill ``window``, else live ones until ``stop``."""
    from escalation.edges.prometheus import backfill, live
    from escalation.edges.slices import floor_to, iso

    if window is None:
        print_status(f"sli prometheus: live, {len(config.slis)} SLI(s), slice {config.slice}, lag {config.lag}, "
                     f"from {url}")
        return live(prom, config, time.time, print_status, stop)
    newest = floor_to(time.time() - config.lag_seconds, config.slice_seconds)
    if window[1] > newest:   # a younger slice would go out with partial counts
        print_status(f"--to is later than the newest closed slice ({config.lag} lag): backfilling to {iso(newest)}")
    return backfill(prom, config, int(window[0]), int(min(window[1], newest)))


class _Sink:
    """Validated events to the metrics topic (key = service) and to stdout; stdout only when dry."""

    def __init__(self, producer, topic: str | None) -> None:
        self.producer, self.topic = producer, topic

    @classmethod
    async def open(cls, settings) -> "_Sink":
        if settings is None:
            return cls(None, None)
        from aiokafka import AIOKafkaProducer

        await ensure_public_topics(settings)
        tuning = settings.client_tuning()
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all",
                                    max_batch_size=tuning.get("producer_max_batch_size", 16384),
                                    **settings.aiokafka_security())
        await producer.start()
        return cls(producer, f"{settings.topic_prefix}metrics")

    async def send(self, event: dict) -> None:
        value = orjson.dumps(event)
        if self.producer is not None:
            await self.producer.send_and_wait(self.topic, value, key=event["service"].encode())
        sys.stdout.write(value.decode() + "\n")
        sys.stdout.flush()

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
