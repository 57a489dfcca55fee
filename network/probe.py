"""How well the relay does what it was told: configured against measured round trip.

The probe sends small HTTP/1.1 requests (``GET /health``: any answer will do,
its status is not judged) over one kept-alive connection, first straight to the
backend and then through the relay, and takes the median of each: the measured
round trip of the condition is their difference, so the backend's own time
cancels out. A second measure opens a new connection through the relay for each
request: that costs the emulated TCP handshake too, two round trips in all.
Times are ``time.perf_counter()``; every read has a timeout and a size bound.
"""

from __future__ import annotations

import socket
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from .conditions import Condition

MAX_REPLY = 65_536
TIMEOUT_S = 10.0


class ProbeError(RuntimeError):
    """The backend or the relay did not answer the probe in time."""


def _request(host: str, path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: agentstream-probe\r\n"
            f"Accept: */*\r\n\r\n").encode("ascii")


def _read_reply(sock: socket.socket) -> None:
    """Read one HTTP/1.1 reply with Content-Length (bounded in time and size)."""
    buf = b""
    deadline = time.perf_counter() + TIMEOUT_S
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.001, deadline - time.perf_counter()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ProbeError("the connection closed before a reply")
        buf += chunk
        if len(buf) > MAX_REPLY:
            raise ProbeError("the reply head is larger than 64 KiB")
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    if length > MAX_REPLY:
        raise ProbeError("the reply body is larger than 64 KiB")
    while len(body) < length:
        sock.settimeout(max(0.001, deadline - time.perf_counter()))
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise ProbeError("the connection closed inside the reply")
        body += chunk


def _round_trips(base_url: str, path: str, n: int, fresh: bool) -> list[float]:
    parts = urlsplit(base_url)
    addr = (parts.hostname or "127.0.0.1", parts.port or 80)
    out = []
    sock = None
    try:
        for i in range(n + (0 if fresh else 1)):
            t0 = time.perf_counter()
            if sock is None or fresh:
                if sock is not None:
                    sock.close()
                sock = socket.create_connection(addr, timeout=TIMEOUT_S)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if not fresh:
                    t0 = time.perf_counter()
            sock.sendall(_request(parts.netloc, path))
            _read_reply(sock)
            if fresh or i > 0:  # the first request on a kept-alive connection warms it up
                out.append(time.perf_counter() - t0)
    except (OSError, ValueError) as exc:
        raise ProbeError(f"probe of {base_url}{path}: {type(exc).__name__}: {exc}") from None
    finally:
        if sock is not None:
            sock.close()
    return out


def measure(direct_url: str, relay_url: str, condition: Condition, *, n: int = 15,
            path: str = "/health") -> dict[str, Any]:
    """Configured against measured round trip (ms), and the same for a new connection."""
    direct = statistics.median(_round_trips(direct_url, path, n, fresh=False))
    shaped = statistics.median(_round_trips(relay_url, path, n, fresh=False))
    direct_new = statistics.median(_round_trips(direct_url, path, max(3, n // 3), fresh=True))
    shaped_new = statistics.median(_round_trips(relay_url, path, max(3, n // 3), fresh=True))
    rtt = shaped - direct
    new = shaped_new - direct_new
    configured = condition.rtt_s
    return {
        "method": ("median of GET /health round trips over one kept-alive HTTP/1.1 connection through the "
                   "relay minus the same straight to the backend"),
        "samples": n,
        "configured_rtt_ms": round(configured * 1e3, 3),
        "measured_rtt_ms": round(rtt * 1e3, 3),
        "error_ms": round((rtt - configured) * 1e3, 3),
        "error_pct": round(100 * (rtt - configured) / configured, 1) if configured else None,
        "direct_rtt_ms": round(direct * 1e3, 3),
        "new_connection": {"configured_ms": round(2 * configured * 1e3, 3),
                           "measured_ms": round(new * 1e3, 3),
                           "method": "the same with a new TCP connection per request (handshake + request)"},
    }
