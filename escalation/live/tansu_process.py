"""Signalling the Tansu broker's process: its process group, and a detached broker by PID.

Invariant: :func:`stop_pid` never signals a live process that is not Tansu (a stale pidfile's
PID may have been reused by something else); a zombie counts as gone.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["signal_group", "stop_pid"]


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (our child made it with start_new_session)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - group gone and id reused by someone else
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (PID 1 may not reap in containers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_tansu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return sys.platform != "linux"  # cannot check elsewhere; trust the pidfile
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name.startswith("tansu")


def stop_pid(pid: int, timeout: float = 5.0) -> bool:
    """Stop a detached broker by PID (SIGTERM, then SIGKILL). False if it was not running.

    Refuses (``RuntimeError``) to signal a live PID that is not a Tansu process, so a stale
    pidfile never kills an unrelated process that reused the PID.
    """
    if not _alive(pid):
        return False
    if not _is_tansu(pid):
        raise RuntimeError(f"pid {pid} is not a tansu process; not stopping it")
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        signal_group(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
    raise RuntimeError(f"tansu pid {pid} survived SIGKILL")
