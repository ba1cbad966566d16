"""Real local servers that behave as each vendor documents, for the delivery tests.

One aiohttp application on 127.0.0.1 (a free port, its own thread and loop) serves:

- ``POST /pd/v2/enqueue``: PagerDuty Events API v2: 202 ``{"status": "success", ...}`` for a valid
  event, 400 ``{"status": "invalid event", ...}`` for an invalid one (missing routing key, unknown
  action, trigger without summary/source/severity), 429 (``Retry-After``) and 5xx when scripted;
- ``POST /og/v2/alerts`` and ``/og/v2/alerts/{alias}/{acknowledge|close}?identifierType=alias``:
  Opsgenie Alert API: 202 ``{"result": "Request will be processed", ...}``, 401 without a GenieKey,
  422 on a create without message;
- ``POST /slack/hook``: Slack incoming webhook: 200 ``ok``, 400 ``invalid_payload`` without text;
- ``POST /hook``: a CloudEvents receiver that checks ``X-Escalation-Signature`` (401 if wrong);
- ``POST /am/api/v2/alerts``: Alertmanager API v2: 200 for a list of alerts with labels, 400 otherwise.

Scripts: ``script[routing_key] = [status, ...]`` answers the next requests of that routing key with
those statuses first (429 carries ``Retry-After: 1``). Every request is recorded (``requests``).
``delay`` seconds are waited before each answer (to make a kill land mid-stream).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web

HOOK_SECRET = "hook-secret-for-tests"


@dataclass
class Seen:
    route: str
    path: str
    headers: dict
    body: bytes
    at: float
    status: int

    @property
    def json(self):
        return orjson.loads(self.body)


@dataclass
class Vendors:
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def seen(self, route: str, status: int | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.route == route and (status is None or r.status == status)]

    def _scripted(self, key: str) -> int | None:
        with self.lock:
            queue = self.script.get(key)
            return queue.pop(0) if queue else None


def _pagerduty(v: Vendors, body: dict) -> tuple[int, dict, dict]:
    scripted = v._scripted(body.get("routing_key", "")) if isinstance(body, dict) else None
    if scripted is not None:
        return scripted, {"Retry-After": "1"} if scripted == 429 else {}, {"status": "scripted"}
    errors = []
    if not isinstance(body, dict) or not body.get("routing_key"):
        errors.append("'routing_key' is missing")
    elif body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    elif body["event_action"] == "trigger":
        p = body.get("payload") or {}
        errors += [f"'payload.{f}' is missing" for f in ("summary", "source", "severity") if not p.get(f)]
        if p.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("'payload.severity' is invalid")
        if len(p.get("summary", "")) > 1024 or len(body.get("dedup_key", "")) > 255:
            errors.append("too long")
    elif not body.get("dedup_key"):
        errors.append("'dedup_key' is missing")
    if errors:
        return 400, {}, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return 202, {}, {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}


def _opsgenie(request: web.Request, body) -> tuple[int, dict]:
    if not request.headers.get("Authorization", "").startswith("GenieKey "):
        return 401, {"message": "Could not authenticate", "took": 0.0}
    if request.match_info.get("verb") is None and not (isinstance(body, dict) and body.get("message")):
        return 422, {"message": "Request body is not processable", "errors": {"message": "Message can not be empty."}}
    if request.match_info.get("verb") and request.query.get("identifierType") != "alias":
        return 400, {"message": "identifierType must be alias here"}
    return 202, {"result": "Request will be processed", "took": 0.01, "requestId": "r-1"}


def build(v: Vendors) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        route = request.match_info["route"]
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if v.delay:
            await asyncio.sleep(v.delay)
        status, headers, reply = _answer(v, route, request, raw, body)
        with v.lock:
            v.requests.append(Seen(route, request.path_qs, dict(request.headers), raw, time.monotonic(), status))
        if isinstance(reply, str):
            return web.Response(status=status, text=reply, headers=headers)
        return web.json_response(reply, status=status, headers=headers)

    app = web.Application()
    app.router.add_post("/{route:pd}/v2/enqueue", handle)
    app.router.add_post("/{route:og}/v2/alerts", handle)
    app.router.add_post("/{route:og}/v2/alerts/{alias}/{verb:acknowledge|close}", handle)
    app.router.add_post("/{route:slack}/hook", handle)
    app.router.add_post("/{route:hook}", handle)
    app.router.add_post("/{route:am}/api/v2/alerts", handle)
    return app


def _answer(v: Vendors, route: str, request: web.Request, raw: bytes, body):
    if route == "pd":
        return _pagerduty(v, body)
    if route == "og":
        status, reply = _opsgenie(request, body)
        return status, {}, reply
    if route == "slack":
        ok = isinstance(body, dict) and body.get("text")
        return (200, {}, "ok") if ok else (400, {}, "invalid_payload")
    if route == "hook":
        want = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        good = hmac.compare_digest(request.headers.get("X-Escalation-Signature", ""), want)
        ct = request.headers.get("Content-Type", "").startswith("application/cloudevents+json")
        return (200, {}, {"ok": True}) if good and ct else (401, {}, {"error": "bad signature"})
    ok = isinstance(body, list) and all(isinstance(a, dict) and a.get("labels") for a in body)
    return (200, {}, "") if ok else (400, {}, "bad alerts")


class VendorServer:
    """Context manager: serve :func:`build` on 127.0.0.1 in a thread; stop it on exit."""

    def __init__(self) -> None:
        self.vendors = Vendors()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Vendors:
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.vendors

    async def _start(self) -> web.AppRunner:
        runner = web.AppRunner(build(self.vendors), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.vendors.port = site._server.sockets[0].getsockname()[1]
        return runner

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
