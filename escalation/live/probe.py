"""Blocking, dependency-free checks of a Kafka-protocol listener (used before any client exists).

Invariants: every function here opens at most one short-lived TCP connection, never sends more
than ApiVersions v0 and Metadata v0 (which names no topic, so it cannot auto-create one on
brokers like Tansu), and never raises for a merely absent listener except :func:`probe_broker`,
whose contract is to raise ``OSError``/``ConnectionError`` until the broker is usable.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

__all__ = ["free_port", "owns_listener", "port_accepts", "probe_broker"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the caller must tolerate a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    client_id = b"escalation-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    data = _recv_exact(sock, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise ConnectionError("correlation id mismatch")
    return data[4:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def probe_broker(host: str, port: int, timeout: float = 1.0) -> list[tuple[str, int]]:
    """Send ApiVersions v0 and Metadata v0; return the advertised brokers as (host, port).

    Raises ``OSError``/``ConnectionError`` when the broker is not (yet) usable.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        resp = _request(sock, 18, 0, 1, b"")  # ApiVersions v0
        if struct.unpack(">h", resp[:2])[0] != 0:
            raise ConnectionError("ApiVersions returned an error")
        resp = _request(sock, 3, 0, 2, struct.pack(">i", 0))  # Metadata v0, no topics
        (n,), off, brokers = struct.unpack(">i", resp[:4]), 4, []
        for _ in range(n):
            _node, hlen = struct.unpack(">ih", resp[off : off + 6])
            off += 6
            bhost = resp[off : off + hlen].decode()
            off += hlen
            (bport,) = struct.unpack(">i", resp[off : off + 4])
            off += 4
            brokers.append((bhost, bport))
        if not brokers:
            raise ConnectionError("Metadata lists no brokers")
        return brokers


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def owns_listener(pid: int, host: str, port: int, log_path: Path | None) -> bool:
    """True unless we can tell that the socket listening on host:port is not ``pid``'s.

    Tansu does not exit when its listener fails to bind (a worker thread panics with
    AddrInUse and the process lives on), so a successful probe may come from someone else.
    """
    if log_path is not None and log_path.exists():
        text = log_path.read_text(errors="replace")
        if "AddrInUse" in text or "panicked" in text:
            return False
    proc_tcp = Path("/proc/net/tcp")
    if not proc_tcp.exists():
        return True  # not Linux: rely on the log check above
    want = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    inodes = set()
    for line in proc_tcp.read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == want and f[3] == "0A":  # LISTEN
            inodes.add(f"socket:[{f[9]}]")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False  # process gone
    for fd in fds:
        try:
            if os.readlink(fd) in inodes:
                return True
        except OSError:
            continue
    return False
