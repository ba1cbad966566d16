"""Finding the embedded broker that ``escalation run`` started (DESIGN.md §14).

``run`` with no broker configured listens on 127.0.0.1:9092 when that port is free (another free
port otherwise) and writes its address to ``.escalation/broker`` in its working directory;
``send``, ``tail``, ``topics`` and ``sli`` read it when no broker is configured.

Invariants:
- the file holds one line, the aiokafka bootstrap ``127.0.0.1:PORT``, and is written atomically
  (temp file + rename), so a reader never sees half an address;
- :func:`remove_broker_file` removes the file only while it still names the address this process
  wrote: a second ``run`` in the same directory that wrote its own address is not disturbed;
- a configured broker (flag, ``ESCALATION_BROKER``, settings file) always wins over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from escalation.live.probe import port_accepts

BROKER_FILE = Path(".escalation") / "broker"
DEFAULT_PORT = 9092


class NoBroker(RuntimeError):
    """No broker configured and no running ``escalation run`` found; the message says what to do."""


def broker_file(cwd: Path | None = None) -> Path:
    return (cwd or Path.cwd()) / BROKER_FILE


def write_broker_file(bootstrap: str, cwd: Path | None = None) -> Path:
    path = broker_file(cwd)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".broker.{os.getpid()}.tmp")
    tmp.write_text(bootstrap + "\n")
    os.replace(tmp, path)
    return path


def read_broker_file(cwd: Path | None = None) -> str | None:
    """The address in the file, or None when there is no (readable, non-empty) file."""
    try:
        text = broker_file(cwd).read_text().strip()
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None


def remove_broker_file(bootstrap: str, cwd: Path | None = None) -> None:
    if read_broker_file(cwd) == bootstrap:
        broker_file(cwd).unlink(missing_ok=True)


def discover(cwd: Path | None = None) -> str:
    """The bootstrap of the running embedded broker; :class:`NoBroker` if there is none."""
    where = broker_file(cwd)
    bootstrap = read_broker_file(cwd)
    if bootstrap is None:
        raise NoBroker(f"no broker configured and no {BROKER_FILE} here: start `escalation run` in this "
                       f"directory, or give --broker / ESCALATION_BROKER")
    host, _, port = bootstrap.rpartition(":")
    # A file left by a run that was killed (-9) names a dead address: say so rather than let the
    # Kafka client retry for a minute.
    if not port.isdigit() or not port_accepts(host, int(port)):
        raise NoBroker(f"{where} names {bootstrap}, where no broker answers (is `escalation run` still "
                       f"running? remove the stale file)")
    return bootstrap


def client_settings(flags: Mapping[str, Any], cwd: Path | None = None, settings_file: str | None = None):
    """Live settings for a client command (send, tail, topics, sli): the configured broker, else
    the discovered embedded one (with the client profile that broker needs, unless one is given).

    Raises ``SettingsError`` for unusable settings and :class:`NoBroker`.
    """
    from escalation.live.settings import load_settings

    settings = load_settings(flags, settings_file=settings_file)
    if not settings.embedded:
        return settings
    found = discover(cwd)
    # Tansu needs the test profile's producer settings (DESIGN.md §7).
    return load_settings({**flags, "broker": f"kafka://{found}", "profile": flags.get("profile") or "test"},
                         settings_file=settings_file)


def start_embedded():
    """The embedded broker for ``run``: on 127.0.0.1:9092 when free, else on a free port."""
    from escalation.live.broker import BrokerStartError, EmbeddedBroker

    if not port_accepts("127.0.0.1", DEFAULT_PORT):
        try:
            return EmbeddedBroker(port=DEFAULT_PORT).start()
        except BrokerStartError:
            pass  # taken in the meantime (or not bindable): any free port will do
    return EmbeddedBroker().start()
