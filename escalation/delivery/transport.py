"""Carrying out one request: HTTP (aiohttp), SMTP (smtplib in a thread), Kafka (aiokafka).

Invariants: :meth:`Transport.send` never raises for a delivery problem; it returns an
:class:`~escalation.delivery.retry.Outcome` (network errors, timeouts and SMTP 4xx are
retryable; SMTP 5xx are not). Error texts never carry a secret: URLs are redacted and bodies of
error responses are cut to 200 characters.

Why smtplib in a worker thread rather than aiosmtplib: mail is the rarest and slowest channel, a
thread per message is cheap at that rate, and the standard library's client needs no extra
runtime dependency (aiosmtpd is used only by the tests, as the real SMTP server).
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from urllib.parse import urlsplit

import aiohttp

from escalation.delivery.requests import (
    HttpRequest,
    MailRequest,
    ProduceRequest,
    Request,
)
from escalation.delivery.retry import Outcome, http_outcome
from escalation.secrets import redact, redact_url


class Transport:
    def __init__(self, session: aiohttp.ClientSession, producer=None, smtp_url: str | None = None,
                 timeout: float = 10.0) -> None:
        self.session, self.producer, self.smtp_url, self.timeout = session, producer, smtp_url, timeout

    async def send(self, request: Request) -> Outcome:
        if isinstance(request, HttpRequest):
            return await self._http(request)
        if isinstance(request, MailRequest):
            return await self._mail(request.message)
        return await self._produce(request)

    async def _http(self, req: HttpRequest) -> Outcome:
        where = "the webhook" if req.secret_url else redact_url(req.url)
        try:
            async with self.session.request(req.method, req.url, data=req.body, headers=dict(req.headers),
                                            timeout=aiohttp.ClientTimeout(total=self.timeout),
                                            allow_redirects=False) as resp:
                text = (await resp.content.read(4096)).decode("utf-8", "replace")
                error = None if resp.status < 300 else redact(f"HTTP {resp.status} from {where}: {text[:200]}")
                return http_outcome(resp.status, resp.headers.get("Retry-After"), error)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            return Outcome(False, True, None, None, redact(f"{type(err).__name__} talking to {where}"))

    async def _mail(self, message: EmailMessage) -> Outcome:
        if not self.smtp_url:
            return Outcome(False, False, None, None, "ESCALATION_SMTP_URL is not set")
        try:
            await asyncio.to_thread(_smtp_send, self.smtp_url, message, self.timeout)
        except smtplib.SMTPResponseException as err:
            return Outcome(False, 400 <= err.smtp_code < 500, err.smtp_code, None, f"SMTP {err.smtp_code}")
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _msg in err.recipients.values()]
            return Outcome(False, all(400 <= c < 500 for c in codes), codes[0] if codes else None, None,
                           f"SMTP recipients refused ({', '.join(map(str, codes))})")
        except (smtplib.SMTPException, OSError) as err:
            return Outcome(False, True, None, None, f"{type(err).__name__} talking to the SMTP server")
        return Outcome(True, False, 250)

    async def _produce(self, req: ProduceRequest) -> Outcome:
        from aiokafka.errors import KafkaError

        try:
            await self.producer.send_and_wait(req.topic, req.value, key=req.key)
        except KafkaError as err:
            return Outcome(False, getattr(err, "retriable", True), None, None, f"Kafka: {type(err).__name__}")
        return Outcome(True, False, None)


def _smtp_send(url: str, message: EmailMessage, timeout: float) -> None:
    """One SMTP session per message: ``smtp://host:port`` (``smtps://`` for implicit TLS),
    optional ``user:password@`` for AUTH."""
    parts = urlsplit(url)
    cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with cls(parts.hostname or "127.0.0.1", parts.port or (465 if parts.scheme == "smtps" else 25),
             timeout=timeout) as smtp:
        if parts.username:
            smtp.login(parts.username, parts.password or "")
        smtp.send_message(message)
