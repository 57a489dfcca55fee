"""SSE over HTTP/2: the third transport, ``sse-h2``, of the ``sse`` binding.

Why a transport of its own: browsers open at most six HTTP/1.1 connections per
origin, so a page holds at most six SSE streams; over HTTP/2 every stream of an
origin shares one connection. Whether the events, their framing and their
timing stay the same there is a question for the suite and the load runs alike,
so every rule of the ``sse`` binding applies to this transport unchanged.

The client is the SSE recorder itself (:func:`conformance.wire.sse.record_http`:
httpx over a counting httpcore pool) with HTTP/2 switched on, so the reads, the
bounds and the SSE parsing are the same code as over HTTP/1.1. On ``http://``
it speaks HTTP/2 with prior knowledge (h2c, RFC 9113 section 3.3): no TLS, no
``Upgrade`` round trip. Chosen over TLS because the other two transports run on
plain TCP here, so the byte counts compare frames with frames (HTTP/2 DATA and
HEADERS/HPACK against HTTP/1.1 chunks and heads and WebSocket frames) without
TLS records on one side only, and because loopback tests need no certificate. A
browser speaks HTTP/2 only over TLS (ALPN ``h2``); ``https://`` URLs get exactly
that (ALPN ``h2``, then HTTP/2), and TLS then costs every transport alike.

Bytes are counted at the socket as on the other transports (TCP payload: the
connection preface, SETTINGS, WINDOW_UPDATE, HEADERS with their HPACK blocks,
DATA), and :class:`H2FrameScanner` reads the frame headers as they pass (sans
I/O), so that the "head" of a stream means the same as over HTTP/1.1: every byte
through the end of the first header block in each direction (the preface and
SETTINGS included, like a WebSocket handshake), and the first body byte is the
first DATA frame. The recording's detail (:class:`H2Detail`) keeps frames and
bytes per frame type in each direction.
"""

from __future__ import annotations

import functools
import ssl
import time
from dataclasses import dataclass, field

from conformance.recording import Limits, Recording, SSEDetail
from conformance.request import Request

from .sse import SSETransport, record_http
from .transport import OnEvent, register
from .wire import WireCounter, _Direction

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The client connection preface (RFC 9113 section 3.4)."""
FRAME_HEADER = 9
FRAME_TYPES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE",
               6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
END_HEADERS = 0x4
_HEADER_BLOCK = {1, 9}  # HEADERS, CONTINUATION


@dataclass
class H2FrameScanner:
    """Reads HTTP/2 frame headers out of one direction's byte stream (no I/O).

    It never buffers more than one frame header (9 bytes): payloads are skipped
    by length. ``preface`` is the number of bytes of the client preface still to
    skip (24 on the client's sending side, 0 on the receiving side).
    """

    preface: int = 0
    frames: dict[str, int] = field(default_factory=dict)
    """Frames seen, by type name."""
    bytes: dict[str, int] = field(default_factory=dict)
    """Bytes by frame type (its 9-byte header and payload), plus ``preface``."""
    hpack: int = 0
    """Bytes of header block fragments (HPACK-coded fields, padding included)."""
    data_payload: int = 0
    """Bytes of DATA payloads (the SSE text, padding included)."""
    head: int | None = None
    """Bytes through the end of the first header block on a stream (END_HEADERS)."""
    t_head: float | None = None
    t_first_data: float | None = None
    total: int = 0
    _hdr: bytearray = field(default_factory=bytearray)
    _left: int = 0
    _type: str = ""

    def feed(self, data: bytes, now: float) -> None:
        view = memoryview(data)
        while view:
            if self.preface:
                n = min(self.preface, len(view))
                self.preface -= n
                self._add("preface", n)
                view = view[n:]
                continue
            if self._left:
                n = min(self._left, len(view))
                self._left -= n
                self._add(self._type, n)
                if self._type == "DATA":
                    self.data_payload += n
                elif self._type in ("HEADERS", "CONTINUATION"):
                    self.hpack += n
                view = view[n:]
                if not self._left:
                    self._frame_done(now)
                continue
            n = min(FRAME_HEADER - len(self._hdr), len(view))
            self._hdr += view[:n]
            view = view[n:]
            if len(self._hdr) == FRAME_HEADER:
                self._start_frame(now)

    def _add(self, kind: str, n: int) -> None:
        self.bytes[kind] = self.bytes.get(kind, 0) + n
        self.total += n

    def _start_frame(self, now: float) -> None:
        hdr = bytes(self._hdr)
        self._hdr.clear()
        length = int.from_bytes(hdr[:3], "big")
        code = hdr[3]
        self._flags = hdr[4]
        self._stream = int.from_bytes(hdr[5:9], "big") & 0x7FFF_FFFF
        self._type = FRAME_TYPES.get(code, f"type-{code}")
        self._code = code
        self.frames[self._type] = self.frames.get(self._type, 0) + 1
        self._add(self._type, FRAME_HEADER)
        if code == 0 and length and self._stream and self.t_first_data is None:
            self.t_first_data = now
        self._left = length
        if not length:
            self._frame_done(now)

    def _frame_done(self, now: float) -> None:
        if self.head is None and self._code in _HEADER_BLOCK and self._stream and self._flags & END_HEADERS:
            self.head = self.total
            self.t_head = now


class H2WireCounter(WireCounter):
    """A :class:`WireCounter` that finds heads and first body bytes in HTTP/2 frames
    instead of HTTP/1 text (the blank line a head ends with means nothing in a
    binary frame stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.out = H2FrameScanner(preface=len(PREFACE))
        self.inn = H2FrameScanner()

    def on_sent(self, data: bytes, *, wire: bool = True, app: bool = True) -> None:
        if wire:
            self.sent.count(len(data))
        if app:
            self.out.feed(data, time.perf_counter())
            _mirror(self.sent, self.out)

    def on_received(self, data: bytes, *, wire: bool = True, app: bool = True) -> None:
        if wire:
            self.received.count(len(data))
        if app:
            self.inn.feed(data, time.perf_counter())
            _mirror(self.received, self.inn)


def _mirror(direction: _Direction, scanner: H2FrameScanner) -> None:
    """Copy what the scanner found into the fields :func:`.wire.finish` reads."""
    if direction.head is None and scanner.head is not None:
        direction.head, direction.t_head = scanner.head, scanner.t_head
    if direction.t_first_body is None and scanner.t_first_data is not None:
        direction.t_first_body = scanner.t_first_data


@dataclass
class H2Detail(SSEDetail):
    """An SSE recording's detail, plus what HTTP/2 framing cost in each direction."""

    http_version: str | None = None
    """``HTTP/2`` once a response header block came in HTTP/2 frames; None before."""
    frames_in: dict[str, int] = field(default_factory=dict)
    frames_out: dict[str, int] = field(default_factory=dict)
    bytes_in: dict[str, int] = field(default_factory=dict)
    bytes_out: dict[str, int] = field(default_factory=dict)
    hpack_in: int = 0
    hpack_out: int = 0
    data_payload_in: int = 0


@functools.lru_cache(maxsize=1)
def _h2_tls_context() -> ssl.SSLContext:
    """A TLS context of its own: httpcore sets the ALPN list on the context it is
    given, which must not change the HTTP/1.1 transport's shared one."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["h2"])
    return ctx


class SSEH2Transport(SSETransport):
    """Server-Sent Events over HTTP/2 (httpx with h2): h2c with prior knowledge on
    ``http://``, ALPN ``h2`` on ``https://``."""

    name = "sse-h2"
    binding = "sse"
    label = "SSE over HTTP/2"
    embedded_server = "hypercorn"

    def record(self, request: Request, limits: Limits = Limits(), on_event: OnEvent | None = None) -> Recording:
        """As :meth:`SSETransport.record`, over HTTP/2 only (no fallback to HTTP/1.1,
        even when ALPN offers it). A server that does not speak HTTP/2 is a
        ``connect`` error whose message says so."""
        counter = H2WireCounter()
        rec = record_http(self, request, limits, on_event, counter=counter, http2=True,
                          ssl_context=_h2_tls_context())
        d = rec.detail
        d.frames_in, d.frames_out = dict(counter.inn.frames), dict(counter.out.frames)
        d.bytes_in, d.bytes_out = dict(counter.inn.bytes), dict(counter.out.bytes)
        d.hpack_in, d.hpack_out, d.data_payload_in = counter.inn.hpack, counter.out.hpack, counter.inn.data_payload
        d.http_version = "HTTP/2" if counter.inn.head is not None else None
        if rec.error_kind is not None and rec.status is None and counter.inn.frames.get("SETTINGS") is None:
            # no HTTP/2 at all: a failure to connect (the load users back off), not a dropped stream
            rec.error_kind = "connect"
            rec.error = (rec.error or "no answer") + (" (no HTTP/2 SETTINGS frame came back: the server does not speak HTTP/2 with prior "
                          "knowledge (h2c) on this port; serve it with an HTTP/2 server such as hypercorn, "
                          "or leave sse-h2 out of the profile)")
        return rec

    def new_detail(self) -> H2Detail:
        return H2Detail()

    def curl_flags(self, request: Request) -> list[str]:
        return ["--http2" if request.url.lower().startswith("https:") else "--http2-prior-knowledge"]

    def summary(self, rec: Recording) -> list[str]:
        d = rec.detail
        out = super().summary(rec)
        if isinstance(d, H2Detail) and d.frames_in:
            frames = ",".join(f"{k}:{v}" for k, v in sorted(d.frames_in.items()))
            out += [f"h2_frames_in={frames}", f"hpack_in={d.hpack_in}", f"hpack_out={d.hpack_out}"]
        return out


import h2  # noqa: E402,F401 - httpcore imports it only on the first HTTP/2 connection: fail here, at registration

SSE_H2 = register(SSEH2Transport())
