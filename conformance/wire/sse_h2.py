"""SSE over HTTP/2: the third transport, ``sse-h2``, of the ``sse`` binding.

Why a transport of its own: browsers open at most six HTTP/1.1 connections per
origin, so a page holds at most six SSE streams; over HTTP/2 every stream of an
origin shares one connection. Whether the events, their framing and their
timing stay the same there is a question for the suite and the load runs alike,
so every rule of the ``sse`` binding applies to this transport unchanged.

The client is httpx (with h2) over a counting httpcore pool, whose network
backend counts the bytes and bounds each read by the recording's budget; the
SSE parsing, the event bounds and the error kinds are the SSE recorder's own
(:mod:`.sse`), so they are the same code as over HTTP/1.1. On ``http://``
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from conformance.recording import Limits, Recording, SSEDetail
from conformance.request import Request

from .common import Budget, query_url
from .sse import SSETransport, _CallbackRaised, read_response
from .tls import MemoryTLS
from .transport import OnEvent, register
from .wire import WireCounter, _Direction, finish

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
        rec = _record_httpx(self, request, limits, on_event, counter=counter, ssl_context=_h2_tls_context())
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


# --------------------------------------------------------------------------- httpx over a counted socket


class _CountingStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, counter: WireCounter, budget: Budget) -> None:
        self._inner = inner
        self._counter = counter
        self._budget = budget
        self.plaintext = True
        """False once TLS runs over this stream: its bytes are then ciphertext."""

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        remaining = self._budget.remaining()
        if remaining <= 0:
            raise httpcore.ReadTimeout(self._budget.describe_timeout())
        data = self._inner.read(max_bytes, remaining)
        self._counter.on_received(data, app=self.plaintext)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        remaining = max(0.001, self._budget.t_total - time.perf_counter())
        if timeout is not None:
            remaining = min(remaining, timeout)
        self._inner.write(buffer, remaining)
        self._counter.on_sent(buffer, app=self.plaintext)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # TLS runs in memory over this stream, so the counts stay those of the TCP payload.
        return _TLSStream(self, ssl_context, server_hostname, self._counter)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _TLSStream(httpcore.NetworkStream):
    def __init__(self, raw: _CountingStream, context: ssl.SSLContext, server_hostname: str | None, counter: WireCounter) -> None:
        self._raw = raw
        self._counter = counter
        raw.plaintext = False
        self._tls = MemoryTLS(context, server_hostname, lambda n: raw.read(n), lambda data: raw.write(data))
        try:
            self._tls.handshake()
        except (ssl.SSLError, ConnectionError) as exc:
            raw.close()
            raise httpcore.ConnectError(f"TLS handshake failed: {exc}") from exc

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            data = self._tls.recv(max_bytes)
        except ssl.SSLError as exc:
            raise httpcore.ReadError(f"TLS error: {exc}") from exc
        self._counter.on_received(data, wire=False)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._tls.sendall(buffer)
        except ssl.SSLError as exc:
            raise httpcore.WriteError(f"TLS error: {exc}") from exc
        self._counter.on_sent(buffer, wire=False)

    def close(self) -> None:
        self._raw.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("TLS in TLS (an HTTPS proxy) is not supported by the recorder")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._tls.ssl_object
        if info == "is_readable":
            return False
        return self._raw.get_extra_info(info)


class _CountingBackend(httpcore.NetworkBackend):
    def __init__(self, counter: WireCounter, budget: Budget) -> None:
        self._inner = httpcore.SyncBackend()
        self._counter = counter
        self._budget = budget

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        cap = max(0.001, self._budget.t_total - time.perf_counter())
        timeout = cap if timeout is None else min(timeout, cap)
        inner = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        self._counter.connected()
        return _CountingStream(inner, self._counter, self._budget)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not supported by the recorder")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Transport(httpx.HTTPTransport):
    """httpx's own transport (request/response mapping, exception mapping) over our pool."""

    def __init__(self, pool: httpcore.ConnectionPool) -> None:  # noqa: D107 - no super().__init__: it would build a second pool
        self._pool = pool


def _classify(exc: BaseException, *, got_head: bool) -> str:
    if isinstance(exc, UnicodeError):  # a host name IDNA cannot encode
        return "connect"
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc).lower()
        if "disconnected" in text or "peer closed" in text or "incomplete" in text:
            return "closed"
        return "protocol"
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.CloseError)):
        return "closed"
    if isinstance(exc, OSError):
        return "closed" if got_head else "connect"
    return "protocol"


def _record_httpx(transport: SSETransport, request: Request, limits: Limits, on_event: OnEvent | None, *,
                  counter: WireCounter, ssl_context: ssl.SSLContext) -> Recording:
    """Record one SSE request with httpx over HTTP/2 only (prior knowledge on
    ``http://``, ALPN on ``https://``), on a counting connection (``counter``
    knows HTTP/2 frames); the events are read by the SSE recorder's own reader."""
    url = request.url
    rec = Recording(request=request, detail=transport.new_detail())
    rec.wall_start = time.time()
    rec.t_start = time.perf_counter()
    budget = Budget(limits, rec.t_start)
    budget.enter("head", now=rec.t_start)
    req_headers = transport.request_headers(request)

    pool = httpcore.ConnectionPool(
        ssl_context=ssl_context if url.lower().startswith("https:") else None,
        max_connections=1,
        retries=0,
        http1=False,
        http2=True,
        network_backend=_CountingBackend(counter, budget),
    )
    timeout = httpx.Timeout(connect=limits.connect, read=limits.total, write=limits.total, pool=limits.connect)
    got_head = False
    try:
        with httpx.Client(transport=_Transport(pool), timeout=timeout, follow_redirects=False, trust_env=False) as client:
            try:
                # the query is encoded here, not by httpx: a lone surrogate (a value no
                # text encoding holds) then goes out as its percent-encoded bytes
                http_request = client.build_request(request.method, query_url(url, request.query),
                                                    headers=req_headers, content=request.body)
            except (ValueError, TypeError) as exc:  # e.g. a header value that is not Latin-1
                rec.error_kind, rec.error = "connect", f"could not build the request: {type(exc).__name__}: {exc}"
                return finish(rec, counter)
            rec.sent_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in http_request.headers.raw]
            response = client.send(http_request, stream=True)
            try:
                got_head = True
                rec.t_headers = counter.received.t_head or time.perf_counter()
                rec.status = response.status_code
                rec.response_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
                read_response(rec, budget, limits, on_event, response.iter_raw())
            finally:
                response.close()  # mid-stream, this closes the connection (the client leaves)
    except _CallbackRaised as exc:
        raise exc.args[0] from None
    except httpx.TimeoutException as exc:
        rec.error_kind = "connect" if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) else "timeout"
        rec.error = f"connect timed out after {limits.describe('connect')}" if rec.error_kind == "connect" else budget.describe_timeout()
    except (httpx.HTTPError, httpx.InvalidURL, OSError, UnicodeError) as exc:  # UnicodeError: IDNA
        rec.error_kind = _classify(exc, got_head=got_head)
        rec.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return finish(rec, counter)



import h2  # noqa: E402,F401 - httpcore imports it only on the first HTTP/2 connection: fail here, at registration

SSE_H2 = register(SSEH2Transport())
