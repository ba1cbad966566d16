"""Secret redaction, in one place (DESIGN.md §10: secrets never appear in logs, errors or outputs).

Three layers, from the most to the least specific:

1. Secret settings are :class:`pydantic.SecretStr` (``repr``/``str`` print ``**********``), and
   settings errors are built without the input values (:func:`validation_message`).
2. Credentials in URLs (``kafka://user:pass@host``, ``https://user:token@host/...``) are masked
   wherever a URL is printed (:func:`redact_url`); the whole user-info part goes, because a bare
   ``https://token@host`` carries the secret in the user name.
3. As a last line of defence, every secret value this process has been given
   (:func:`remember`) is replaced by :data:`MASK` in any text passed to :func:`redact`: the log
   formatters of :mod:`escalation.live.logs` and the settings errors do so.

Invariant: ``redact(text)`` contains neither a remembered secret (raw or JSON-escaped) nor a
URL's user-info. Values shorter than :data:`MIN_LENGTH` are not remembered: masking every "ab"
in every log line would garble the logs while hiding nothing (such a secret is guessable anyway).
"""

from __future__ import annotations

import json
import re
import threading

from pydantic import SecretStr, ValidationError

__all__ = ["MASK", "MIN_LENGTH", "redact", "redact_url", "remember", "validation_message"]

MASK = "***"
MIN_LENGTH = 4

# scheme://userinfo@ -> scheme://***@ ; userinfo stops at "/", "@" or whitespace (RFC 3986)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")

_lock = threading.Lock()
_known: frozenset[str] = frozenset()      # replaced as a whole: readers need no lock


def remember(*values: str | SecretStr | None) -> None:
    """Add secret values to mask from now on (process-wide; never forgotten)."""
    global _known
    plain = {v.get_secret_value() if isinstance(v, SecretStr) else v for v in values}
    forms = set()
    for value in plain:
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            forms.add(value)
            forms.add(json.dumps(value)[1:-1])     # as it appears inside a JSON string
    with _lock:
        _known = _known | forms


def redact_url(url: str) -> str:
    """``kafka://user:pass@h:9092`` -> ``kafka://***@h:9092``; also inside a longer text."""
    return _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", url)


def redact(text: str) -> str:
    """``text`` with URL credentials and every remembered secret masked."""
    text = redact_url(text)
    # longest first, so a secret that contains another is masked whole
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def validation_message(err: ValidationError, title: str | None = None) -> str:
    """A pydantic error as ``field: message`` lines, without input values (pydantic's own
    ``str(err)`` prints ``input_value=...``, which for a model-level check is the whole input,
    secrets included), and redacted."""
    lines = [f"{title or err.title}: {err.error_count()} problem{'s' if err.error_count() != 1 else ''}"]
    for item in err.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in item["loc"])
        msg = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {msg}" if where else f"  {msg}")
    return redact("\n".join(lines))

