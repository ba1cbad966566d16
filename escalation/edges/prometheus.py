"""Reading SLI slices from Prometheus's HTTP API (``/api/v1/query``, ``/api/v1/query_range``) for
``escalation sli prometheus`` (DESIGN.md §14).

Invariants:
- live: slice ``[s, e)`` is queried at ``time=e`` once the wall clock is past ``e + lag``, and
  every slice from the first one on is queried once, in order; a failed query (Prometheus down,
  a 5xx) is retried with backoff and the slice is not skipped, so an outage delays slices but
  loses none (the loop then catches up at once);
- backfill: ``query_range`` with ``step`` = the slice and points at the slice ends, at most
  :data:`MAX_POINTS` points per request (Prometheus refuses more than 11,000), never past the
  last slice that is ``lag`` old (a younger one would be sent with partial counts, and the live
  run would later send other counts under the same id);
- slices are yielded in (end, config order), i.e. in time order per service, as the engine
  wants its metric stream;
- a query that Prometheus answers with an error (bad PromQL: 400/422) is a :class:`QueryError`
  that stops the run: a typo must not look like "no data".
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import aiohttp

from escalation.edges.sli_config import SliConfig, SliQuery
from escalation.edges.slices import NotACount, Skip, metric_event, sample_of, slice_ends

MAX_POINTS = 10_000


class QueryError(RuntimeError):
    """Prometheus refused a query (the expression is wrong); not retried."""


class Unavailable(RuntimeError):
    """Prometheus could not be reached or failed (network, 5xx); retried in live mode."""


class Prometheus:
    def __init__(self, session: aiohttp.ClientSession, url: str, timeout: float = 30.0) -> None:
        self.session, self.base, self.timeout = session, url.rstrip("/"), timeout

    async def _get(self, path: str, params: dict) -> list[dict]:
        try:
            async with self.session.get(self.base + path, params=params,
                                        timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise Unavailable(f"{self.base}: {type(err).__name__}: {err}") from None
        if status >= 500 or status == 429 or not isinstance(body, dict):
            raise Unavailable(f"{self.base}{path}: HTTP {status}")
        if body.get("status") != "success":
            raise QueryError(f"{params.get('query')!r}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    async def instant(self, expr: str, at: int) -> list[dict]:
        return await self._get("/api/v1/query", {"query": expr, "time": str(at)})

    async def range(self, expr: str, start: int, end: int, step: int) -> list[dict]:
        return await self._get("/api/v1/query_range",
                               {"query": expr, "start": str(start), "end": str(end), "step": str(step)})


def _event(sli: SliQuery, size: int, end: int, good: list[dict], total: list[dict], key: str) -> dict | Skip:
    try:
        return metric_event(sli, end - size, end, sample_of(good, key), sample_of(total, key))
    except NotACount as err:
        return Skip(sli, end - size, end, str(err))


def _points(result: list[dict]) -> dict[int, list[dict]]:
    """A range result as per-timestamp instant results (``{"value": [t, v]}`` per series)."""
    out: dict[int, list[dict]] = {}
    for series in result:
        for t, v in series.get("values", ()):
            out.setdefault(int(round(float(t))), []).append({"metric": series.get("metric", {}), "value": [t, v]})
    return out


async def backfill(prom: Prometheus, config: SliConfig, start: int, end: int) -> AsyncIterator[dict | Skip]:
    """Every slice in ``[start, end]`` (see the module invariants), fetched with ``query_range``."""
    size = config.slice_seconds
    ends = slice_ends(start, end, size)
    for i in range(0, len(ends), MAX_POINTS):
        chunk = ends[i:i + MAX_POINTS]
        fetched = await asyncio.gather(*(prom.range(expr, chunk[0], chunk[-1], size)
                                         for s in config.slis for expr in (s.good, s.total)))
        points = [_points(r) for r in fetched]
        for e in chunk:
            for j, sli in enumerate(config.slis):
                yield _event(sli, size, e, points[2 * j].get(e, []), points[2 * j + 1].get(e, []), "value")


async def one_slice(prom: Prometheus, config: SliConfig, end: int) -> list[dict | Skip]:
    size = config.slice_seconds
    fetched = await asyncio.gather(*(prom.instant(expr, end) for s in config.slis for expr in (s.good, s.total)))
    return [_event(sli, size, end, fetched[2 * j], fetched[2 * j + 1], "value") for j, sli in enumerate(config.slis)]


async def live(prom: Prometheus, config: SliConfig, now: Callable[[], float], warn: Callable[[str], None],
               stop: asyncio.Event, first_end: int | None = None) -> AsyncIterator[dict | Skip]:
    """Each slice once it is ``lag`` old, forever (until ``stop``); starts with the newest slice
    that is already ``lag`` old unless ``first_end`` says otherwise."""
    from escalation.edges.slices import floor_to

    size, lag = config.slice_seconds, config.lag_seconds
    end = first_end if first_end is not None else floor_to(now() - lag, size)
    backoff = 0.5
    while not stop.is_set():
        wait = end + lag - now()
        if wait > 0:
            await _sleep(stop, wait)
            continue
        try:
            results = await one_slice(prom, config, end)
        except Unavailable as err:
            warn(f"prometheus unavailable ({err}); slice ending {end} retried in {backoff:g}s")
            await _sleep(stop, backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = 0.5
        for r in results:
            yield r
        end += size


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
