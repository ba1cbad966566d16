"""The demo's local webhook: ``escalation run --demo`` delivers to a receiver it runs itself.

Why: the demo should show the whole path a new user cares about, from a ticket event to a signed
request reaching an on-call tool, without credentials and without paging anyone. So the demo
copy of the agreements gains one ``webhook`` target (:data:`TARGET`, url = this receiver on
127.0.0.1, signed with a secret made up for the run) named by every escalation level, and the
deliverer of the demo delivers to that target only (the agreement's e-mail and Kafka targets are
shown in the outputs but not used).

Invariants:
- the receiver listens on 127.0.0.1 only, on a free port, in a daemon thread, until ``stop()``;
- every request is printed as one line; a request whose ``X-Escalation-Signature`` is not the
  HMAC-SHA256 of its body under the run's secret is answered 401 (so delivery reports it) and
  printed as refused; an output id received a second time is printed with ``AGAIN`` (the
  deliverer promises one successful delivery per output and target, DESIGN.md §12);
- the bundled agreement file is never changed: the target exists only in the run's registry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry

__all__ = ["SECRET_ENV", "TARGET", "DemoWebhook", "describe", "with_demo_webhook"]

TARGET = "demo-webhook"
SECRET_ENV = "ESCALATION_DEMO_WEBHOOK_SECRET"   # the deliverer reads the secret by this name (§12)


def with_demo_webhook(registry: Registry, url: str) -> Registry:
    """The same agreements plus the webhook target :data:`TARGET` at ``url``, appended to the
    ``notify`` of every escalation level (so triggers, and the acknowledged/resolved outputs that
    carry every recipient of the alert, reach it). An agreement that already names a target
    :data:`TARGET` is kept as it is (its own target wins; nothing is overwritten)."""
    copies = []
    for c in registry:
        data = c.agreement.model_dump(mode="json", exclude_none=True)
        targets = data.setdefault("notification_targets", {})
        if TARGET not in targets:
            targets[TARGET] = {"kind": "webhook", "url": url, "secret_env": SECRET_ENV}
            for policy in data.get("escalation", []):
                for level in policy["levels"]:
                    level["notify"] = [*level.get("notify", []), TARGET]
        copies.append(Agreement.model_validate(data))
    return Registry(copies)


#: one lock for every line the demo prints: the webhook's server threads and the event loop's
#: printer share the terminal
_LINES = threading.Lock()


def say(line: str, out=None) -> None:
    """Print one whole line of the demo's output. ``print`` writes a line and its newline in two
    calls, so another thread's line could land between them (seen in a test: a webhook line
    followed by an ``out`` line on the same line)."""
    out = out or sys.stdout
    with _LINES:
        out.write(line + "\n")
        out.flush()


def describe(event: dict) -> str:
    """One line about a delivered CloudEvent: type, ticket, what happened, the alert's dedup_key."""
    data = event.get("data") or {}
    type_ = str(event.get("type", "?"))
    if type_ == "escalation.acknowledged":
        what = f"by {data.get('by')}" + (f" at level {data['level']}" if data.get("level") is not None else "")
    elif type_ == "escalation.resolved":
        what = f"{data.get('reason')}, overrun {data.get('overrun')}"
    elif "level" in data:
        what = f"level {data['level']}" + (f" repeat {data['repeat']}" if data.get("repeat") else "")
    else:
        what = str(data.get("clock", ""))
    return f"{type_} {event.get('subject', '')} {what} (dedup {data.get('dedup_key')})"


class DemoWebhook:
    """A signed-CloudEvents receiver on 127.0.0.1 that prints what it gets (see the module doc)."""

    def __init__(self, out=None) -> None:
        self.secret = secrets.token_hex(16)
        self.out = out or sys.stdout
        self.seen: dict[str, int] = {}          # output id -> times received
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-webhook", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> "DemoWebhook":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def signed(self, body: bytes, header: str | None) -> bool:
        """Our own check of ``X-Escalation-Signature`` (not the sender's code): HMAC-SHA256 of the body."""
        want = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(header, want)

    def take(self, body: bytes, content_type: str, signature: str | None) -> int:
        """Check, count and print one request; returns the HTTP status to answer."""
        if not self.signed(body, signature):
            self._say(f"  webhook refused a request: bad or missing X-Escalation-Signature ({len(body)} bytes)")
            return 401
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = None
        if not content_type.startswith("application/cloudevents+json") or not isinstance(event, dict):
            self._say(f"  webhook refused a request: not a structured CloudEvent ({content_type or 'no type'})")
            return 415
        with self._lock:
            count = self.seen[str(event.get("id"))] = self.seen.get(str(event.get("id")), 0) + 1
        again = f"  AGAIN ({count} times)" if count > 1 else ""
        self._say(f"  webhook <- {describe(event)}, signature ok{again}")
        return 200

    def _say(self, line: str) -> None:
        say(line, self.out)


def _handler(hook: DemoWebhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's method name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20))
            status = hook.take(body, self.headers.get("Content-Type", ""), self.headers.get("X-Escalation-Signature"))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:   # our own line per request instead of an access log
            pass

    return Handler
