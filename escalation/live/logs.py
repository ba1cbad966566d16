"""Logging of ``escalation run``: JSON lines for machines, plain text for people.

``setup_logging(fmt, level)`` replaces the root logger's handlers with one stderr handler:

- ``json``: one JSON object per line, ``{"ts", "level", "logger", "msg", ...extra}`` where ``ts``
  is RFC 3339 UTC with milliseconds, ``extra`` are the fields given with ``extra={...}`` and
  ``exc`` holds a formatted traceback when there is one;
- ``text``: lifecycle lines (:data:`LIFECYCLE`, INFO and WARNING) exactly as their message reads
  (``escalation: ready: 4 partitions assigned``); other loggers (Faust, aiokafka, the engine's
  modules) as ``<ts> <LEVEL> <logger>: <msg>``;
- ``auto`` (the default of ``--log-format``): text when stderr is a terminal, json otherwise.

Lifecycle messages keep their human wording, ``escalation: ...`` prefix included, in both
formats, so a script or test that greps ``escalation: ready`` works either way. They are logged
at INFO through :data:`LIFECYCLE` (``escalation.run``) and always shown (that logger is at most
INFO), while ``level`` (``--loglevel``) filters every other logger.

Both formatters pass their finished line through :func:`escalation.secrets.redact`: whatever a
library logs (a client's config, a URL, an exception), a known secret or a URL's credentials
come out as ``***`` (DESIGN.md §10).
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import IO, Any

import orjson

from escalation.secrets import redact

__all__ = ["LIFECYCLE", "JsonFormatter", "TextFormatter", "resolve_format", "say", "setup_logging", "warn"]

LIFECYCLE = logging.getLogger("escalation.run")

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _ts(record: logging.LogRecord) -> str:
    t = datetime.fromtimestamp(record.created, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values orjson cannot encode are written as ``str(value)``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": _ts(record), "level": record.levelname, "logger": record.name,
                               "msg": record.getMessage()}
        for key, value in _extra(record).items():
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return redact(orjson.dumps(doc, default=str).decode())


class TextFormatter(logging.Formatter):
    """Lifecycle lines verbatim; everything else with time, level and logger name."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if not (record.name == LIFECYCLE.name and record.levelno in (logging.INFO, logging.WARNING)):
            msg = f"{_ts(record)} {record.levelname} {record.name}: {msg}"
        if record.exc_info:
            msg += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return redact(msg)


def resolve_format(fmt: str, stream: IO | None = None) -> str:
    """``auto`` -> ``text`` on a terminal, ``json`` otherwise; ``json``/``text`` as given."""
    if fmt != "auto":
        if fmt not in ("json", "text"):
            raise ValueError(f"log format must be json, text or auto, not {fmt!r}")
        return fmt
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def setup_logging(fmt: str = "auto", level: str | int = "WARNING", stream: IO | None = None) -> str:
    """Route every logger to one handler on ``stream`` (stderr) in ``fmt``; returns the format used."""
    stream = stream or sys.stderr
    used = resolve_format(fmt, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if used == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    lvl = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(lvl, int):
        raise ValueError(f"unknown log level {level!r}")
    root.setLevel(lvl)
    LIFECYCLE.setLevel(min(lvl, logging.INFO))
    return used


def say(msg: str, **fields: Any) -> None:
    """A lifecycle line: ``escalation: <msg>`` at INFO, with ``fields`` as JSON extras."""
    LIFECYCLE.info(f"escalation: {msg}", extra=fields)


def warn(msg: str, **fields: Any) -> None:
    """A lifecycle problem: ``escalation: <msg>`` at WARNING (shown with time and level in text)."""
    LIFECYCLE.warning(f"escalation: {msg}", extra=fields)
