"""Backends that try to blow up the recorders, and what the recorders did with them.

    python tests/hostile.py        # the table in docs/hostile.md: time, peak memory, what was recorded

Each case is a raw TCP handler (``stub_servers.RawServer``) and the transport that
meets it. ``tests/test_hostile.py`` runs every case and asserts the bounds.
"""

from __future__ import annotations

import socket
import time
import tracemalloc
import zlib
from dataclasses import dataclass, replace
from typing import Callable

import stub_servers as stubs
from conformance.recording import Limits, Recording
from conformance.wire import record_sse, record_ws

LIMITS = Limits(connect=2, first_event=2, idle=1, total=12, end_grace=1, event_idle=3,
                max_recording_bytes=8_000_000)
"""Small bounds, so that each case ends fast; the defaults are the same shape."""

_BOMB_CACHE: dict[str, bytes] = {}


def gzip_bomb_bytes(inflated_mb: int = 200, pattern: bytes = b"\0") -> bytes:
    """gzip that inflates to ``inflated_mb`` MB of ``pattern`` (200 MB of NULs: 200 KB)."""
    key = f"{inflated_mb}:{pattern!r}"
    if key not in _BOMB_CACHE:
        z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = pattern * (1_000_000 // len(pattern))
        _BOMB_CACHE[key] = b"".join(z.compress(block) for _ in range(inflated_mb)) + z.flush()
    return _BOMB_CACHE[key]


def _sse_head(extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" + extra +
            b"Connection: close\r\n\r\n")


def gzip_bomb(conn: socket.socket) -> None:
    stubs.read_head(conn)
    conn.sendall(_sse_head(b"Content-Encoding: gzip\r\n") + gzip_bomb_bytes())


def brotli_unasked(conn: socket.socket) -> None:
    stubs.read_head(conn)
    conn.sendall(_sse_head(b"Content-Encoding: br\r\n") + b"\x8b\xff\xff" * 64)


def sse_flood(conn: socket.socket) -> None:
    stubs.read_head(conn)
    conn.sendall(_sse_head())
    big = b'data: {"type":"progress","stage":"x","message":"' + b"x" * 900_000 + b'"}\n\n'
    for _ in range(1200):
        conn.sendall(big)


def ws_flood(conn: socket.socket) -> None:
    stubs.ws_accept(conn)
    frame = stubs.ws_frame(b'{"type":"progress","stage":"x","message":"' + b"x" * 900_000 + b'"}')
    for _ in range(1200):
        conn.sendall(frame)


def comment_drip(conn: socket.socket) -> None:
    """One event, then a comment line that never ends, one byte a second."""
    stubs.read_head(conn)
    conn.sendall(_sse_head() + b'data: {"type":"start"}\n\n: ')
    for _ in range(60):
        time.sleep(1.0)
        conn.sendall(b"z")


def keepalive_only(conn: socket.socket) -> None:
    """One event, then complete keep-alive comments every 0.2 s, and no event ever."""
    stubs.read_head(conn)
    conn.sendall(_sse_head() + b'data: {"type":"start"}\n\n')
    for _ in range(300):
        time.sleep(0.2)
        conn.sendall(b": ping\n")


def ws_endless_200(conn: socket.socket) -> None:
    """Answers the upgrade with 200 and a body that never ends."""
    stubs.read_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    block = b"y" * 65_536
    for _ in range(200_000):
        conn.sendall(block)


@dataclass(frozen=True)
class Case:
    name: str
    handler: Callable[[socket.socket], None]
    transport: str
    what: str
    error_kind: str
    bound_s: float
    """The recorder must be done within this many seconds."""


CASES = [
    Case("gzip bomb", gzip_bomb, "sse", "200 KB of gzip inflating to 200 MB, though identity was asked for",
         "too_large", 5.0),
    Case("brotli, unasked", brotli_unasked, "sse", "Content-Encoding: br, though identity was asked for",
         "protocol", 2.0),
    Case("SSE flood", sse_flood, "sse", "1,200 events of 900 KB", "too_large", 8.0),
    Case("WS flood", ws_flood, "ws", "1,200 frames of 900 KB", "too_large", 8.0),
    Case("comment drip", comment_drip, "sse", "one event, then a comment line growing one byte a second",
         "timeout", LIMITS.idle + 1.5),
    Case("keep-alives only", keepalive_only, "sse", "one event, then a keep-alive comment every 0.2 s",
         "timeout", LIMITS.event_idle + 1.5),
    Case("WS upgrade answered 200, endless body", ws_endless_200, "ws", "a 200 reply whose body never ends",
         "too_large", 5.0),
]


@dataclass
class Outcome:
    case: Case
    rec: Recording
    seconds: float
    peak_mb: float


def run(case: Case, limits: Limits = LIMITS) -> Outcome:
    record = record_sse if case.transport == "sse" else record_ws  # the test's own choice of recorder per case
    gzip_bomb_bytes()  # made once, outside the measurement
    with stubs.RawServer(case.handler) as srv:
        tracemalloc.start()
        start = time.perf_counter()
        rec = record(srv.base_url + "/x", limits=replace(limits))
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Outcome(case, rec, seconds, peak / 1e6)


def table() -> str:
    lines = ["| hostile backend | what it sends | time | peak memory (Python heap) | what was recorded |",
             "| --- | --- | --- | --- | --- |"]
    for case in CASES:
        o = run(case)
        lines.append(f"| {case.name} ({case.transport}) | {case.what} | {o.seconds:.2f} s | {o.peak_mb:.1f} MB | "
                     f"{len(o.rec.events)} events, {o.rec.error_kind}: {o.rec.error} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
