"""``escalation receive``: acknowledgements from on-call tools into the ``tickets`` topic.

Routes (DESIGN.md §12): ``POST /pagerduty`` (v3 webhooks, ``X-PagerDuty-Signature`` verified with
``$ESCALATION_PAGERDUTY_WEBHOOK_SECRET``), ``POST /opsgenie`` (webhook callbacks; the shared secret
``$ESCALATION_OPSGENIE_CALLBACK_TOKEN`` in the ``X-Escalation-Token`` header or a ``token`` query
parameter), ``POST /ack {"dedup_key", "by"}`` (``Authorization: Bearer $ESCALATION_ACK_TOKEN``
when that variable is set), ``GET /health``; and ticket tools' webhooks (DESIGN.md §14):
``POST /hooks/jira``, ``/hooks/zendesk``, ``/hooks/servicenow``, checked by
:mod:`~escalation.delivery.hook_auth` and mapped by :mod:`~escalation.delivery.hook_events` into
§3 ticket events.

Invariants: a request is answered 202 only after its ``notification.acknowledged`` event (a
webhook: all of its ticket events, in order) is stored in the topic (key: the ticket), so a tool
that got 202 need not retry; a refused request (401, 422, ...) produces nothing; a vendor route whose
secret is not configured refuses everything (503) rather than accept unsigned input; bodies are
limited to 1 MiB; the server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timezone
from typing import Awaitable, Callable, Mapping

import orjson
from aiohttp import web

from escalation.delivery.ack import (
    AckRefused,
    Ignored,
    from_opsgenie,
    from_pagerduty,
    from_plain,
    verify_pagerduty,
)
from escalation.delivery.hook_auth import CHECKS
from escalation.delivery.hook_events import ticket_events
from escalation.delivery.hook_mapping import HookMapping

PD_SECRET = "ESCALATION_PAGERDUTY_WEBHOOK_SECRET"
OG_TOKEN = "ESCALATION_OPSGENIE_CALLBACK_TOKEN"
ACK_TOKEN = "ESCALATION_ACK_TOKEN"

Produce = Callable[[dict], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _token_ok(offered: str | None, secret: str) -> bool:
    return offered is not None and hmac.compare_digest(offered.encode(), secret.encode())


def _check(route: str, request: web.Request, body: bytes, env: Mapping[str, str]) -> None:
    if route == "pagerduty":
        if not env.get(PD_SECRET):
            raise AckRefused(503, f"{PD_SECRET} is not set: PagerDuty webhooks are refused")
        verify_pagerduty(body, request.headers.get("X-PagerDuty-Signature"), env[PD_SECRET])
    elif route == "opsgenie":
        if not env.get(OG_TOKEN):
            raise AckRefused(503, f"{OG_TOKEN} is not set: Opsgenie callbacks are refused")
        offered = request.headers.get("X-Escalation-Token") or request.query.get("token")
        if not _token_ok(offered, env[OG_TOKEN]):
            raise AckRefused(401, "bad or missing token")
    elif env.get(ACK_TOKEN):
        auth = request.headers.get("Authorization", "")
        if not _token_ok(auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None, env[ACK_TOKEN]):
            raise AckRefused(401, "bad or missing bearer token")


_MAPPERS = {"pagerduty": from_pagerduty, "opsgenie": from_opsgenie, "ack": from_plain}


def _parse(body: bytes):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AckRefused(400, "body is not JSON") from None


def build_app(produce: Produce, env: Mapping[str, str], now: Callable[[], datetime] = _now,
              hooks: Mapping[str, HookMapping] | None = None) -> web.Application:
    """The receiver; ``hooks`` are the ticket tools' mappings (a tool without one answers 503)."""
    hooks = hooks or {}

    async def handle(request: web.Request) -> web.Response:
        route = request.match_info["route"]
        body = await request.read()
        try:
            _check(route, request, body, env)     # authenticate before parsing anything
            event = _MAPPERS[route](_parse(body), now())
        except AckRefused as err:
            return web.json_response({"error": str(err)}, status=err.status)
        except Ignored as what:
            return web.json_response({"ignored": str(what)}, status=200)
        await produce(event)
        return web.json_response({"id": event["id"], "ticket": event["ticket"]}, status=202)

    async def hook(request: web.Request) -> web.Response:
        tool = request.match_info["tool"]
        body = await request.read()
        try:
            CHECKS[tool](body, request.headers, request.query, env)    # authenticate before parsing
            if tool not in hooks:
                raise AckRefused(503, f"no mapping for {tool} webhooks")
            events = ticket_events(_parse(body), hooks[tool])           # all mapped and checked, or none
        except AckRefused as err:
            return web.json_response({"error": str(err)}, status=err.status)
        except Ignored as what:
            return web.json_response({"ignored": str(what)}, status=200)
        # in order, one at a time: one ticket's events stay in order. A broker error half way is a
        # 5xx, the tool retries, and the events already stored come again with their same ids.
        for event in events:
            await produce(event)
        return web.json_response({"ids": [e["id"] for e in events], "ticket": events[0]["ticket"]}, status=202)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/{route:pagerduty|opsgenie|ack}", handle)
    app.router.add_post("/hooks/{tool:jira|zendesk|servicenow}", hook)
    app.router.add_get("/health", health)
    return app


async def start_server(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app``; returns the runner (``await runner.cleanup()`` to stop) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]
