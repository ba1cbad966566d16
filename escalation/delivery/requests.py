"""What a delivery sends: one value per request, built by the pure mappers and carried out by
:mod:`escalation.delivery.transport`.

Invariants: requests are immutable values; ``HttpRequest.body`` is the exact bytes sent (a
signature is computed over them); nothing here holds a secret in its ``repr`` (headers that carry
one are listed in ``secret_headers`` and masked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage


class MissingSecret(ValueError):
    """A target names an environment variable that is not set: the delivery fails at once."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    secret_headers: frozenset[str] = field(default_factory=frozenset)
    secret_url: bool = False   # the URL itself is the credential (Slack incoming webhooks)

    def __repr__(self) -> str:
        url = "<secret url>" if self.secret_url else self.url
        shown = [(k, "***" if k in self.secret_headers else v) for k, v in self.headers]
        return f"HttpRequest({self.method} {url}, headers={shown}, {len(self.body)} bytes)"


@dataclass(frozen=True)
class MailRequest:
    message: EmailMessage


@dataclass(frozen=True)
class ProduceRequest:
    topic: str
    key: bytes | None
    value: bytes


Request = HttpRequest | MailRequest | ProduceRequest
