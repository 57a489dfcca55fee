"""The WebSocket recorder: websockets' sync client over a socket we open and count.

The recorder opens the TCP connection itself (bounded by ``limits.connect``) and
hands websockets a thin wrapper (``sock=``) that counts every byte that crosses
the socket, so the counts include the handshake and the frame headers, and
compressed payloads are counted as sent. Each message (one or more frames) becomes one event; the close
code, the reason and whether a close frame really arrived are kept, since a
dropped connection (1006) is a finding of its own. Synchronous on purpose: it
runs as is in pytest and under gevent (Locust).
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)
from websockets.sync.client import ClientConnection, connect

from conformance.recording import Limits, RecordedEvent, Recording, WSDetail, WSFrameDetail
from conformance.request import ClientMessage, Request

from .common import Budget, admit, parse_json, shell_line, tls_context
from .sse_lines import TooLarge
from .tls import MemoryTLS
from .transport import OnEvent, Transport, register
from .wire import WireCounter, finish

_MAX_QUEUE = 4
"""Messages websockets may read ahead of the recorder (its default, 16, would let a
flood hold 16 messages of ``max_event_bytes`` each beyond what the recording keeps)."""
_MAX_HANDSHAKE_HEAD = 65_536
"""Bytes allowed for a handshake reply's head, on top of ``Limits.max_body_bytes``."""
_CLOSE_KINDS = {1002: "protocol", 1007: "protocol", 1009: "too_large"}
"""Close codes the *client* sends when the server broke the protocol."""


class _ReplyGuard:
    """Bounds a handshake reply other than 101 (head and body, plaintext bytes):
    websockets reads such a body to its end, however long. Frames after a 101 are
    bounded by ``max_size`` and the recording's bytes instead."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self.over: str | None = None
        self._seen = 0
        self._status_line = b""

    def see(self, data: bytes, counter: WireCounter) -> None:
        if self.limit is None:
            return
        self._seen += len(data)
        if len(self._status_line) < 12:
            self._status_line += data[: 12 - len(self._status_line)]
        if self._status_line[9:12] == b"101" and counter.received.head is not None:
            self.limit = None
        elif self._seen > self.limit:
            self.over = f"the handshake reply grew past {self.limit} bytes without completing"
            raise ConnectionAbortedError(self.over)


class _CountingSocket:
    """Delegates to a socket and counts what ``recv``/``send``/``sendall`` move."""

    def __init__(self, sock: socket.socket, counter: WireCounter) -> None:
        self._sock = sock
        self._counter = counter
        self.plaintext = True
        """False once TLS runs over this socket: its bytes are then ciphertext."""
        self.guard = _ReplyGuard()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = self._sock.recv(bufsize, flags)
        self._counter.on_received(data, app=self.plaintext)
        if self.plaintext:
            self.guard.see(data, self._counter)
        return data

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._sock.sendall(data, flags)
        self._counter.on_sent(bytes(data), app=self.plaintext)

    def send(self, data: bytes, flags: int = 0) -> int:
        n = self._sock.send(data, flags)
        self._counter.on_sent(bytes(data[:n]), app=self.plaintext)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _TLSSocket:
    """TLS in memory over the counting socket, so TLS records are counted as they cross TCP."""

    def __init__(self, csock: _CountingSocket, context: ssl.SSLContext, server_hostname: str, counter: WireCounter) -> None:
        self._csock = csock
        self._counter = counter
        csock.plaintext = False
        self._tls = MemoryTLS(context, server_hostname, csock.recv, csock.sendall)

    def handshake(self) -> None:
        self._tls.handshake()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = self._tls.recv(bufsize)
        self._counter.on_received(data, wire=False)
        self._csock.guard.see(data, self._counter)  # plaintext: the counting socket below sees ciphertext
        return data

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._tls.sendall(bytes(data))
        self._counter.on_sent(bytes(data), wire=False)

    def send(self, data: bytes, flags: int = 0) -> int:
        self.sendall(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._csock, name)


def ws_url(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> str:
    """``url`` with an http(s) scheme turned into ws(s) and ``params`` added to its query."""
    parts = urllib.parse.urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    query = parts.query
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params or ())
    if pairs:
        extra = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, errors="surrogatepass")
        query = f"{query}&{extra}" if query else extra
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path or "/", query, ""))


def record_ws(
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    compression: bool = False,
    limits: Limits = Limits(),
    cancel_after: int | None = None,
    cancel_message: Any = {"type": "cancel"},  # noqa: B006 - never mutated
    close_after: int | None = None,
    end_types: Iterable[str] = (),
    on_event: Callable[[RecordedEvent], None] | None = None,
) -> Recording:
    """Open a WebSocket to ``url`` and record every message (a shorthand for
    ``WS.record(Request.make("ws", url, ...))``): ``cancel_after=N`` sends
    ``cancel_message`` as JSON after N events, ``origin`` is sent as Origin."""
    all_headers = dict(headers or {})
    if origin is not None:
        all_headers["Origin"] = origin
    messages = (ClientMessage.json(cancel_message, after_events=cancel_after),) if cancel_after is not None else ()
    request = Request.make("ws", url, params=params, headers=all_headers, compression=compression,
                           messages=messages, close_after=close_after, end_types=tuple(end_types))
    return WS.record(request, limits, on_event)


class WSTransport(Transport):
    """A WebSocket (websockets' sync client over a socket counted here): one
    JSON event per text message."""

    name = "ws"
    binding = "ws"
    label = "WebSocket"

    def record(self, request: Request, limits: Limits = Limits(), on_event: OnEvent | None = None) -> Recording:
        """Open the WebSocket and record every message.

        Never raises for network or protocol trouble: ``error_kind``/``error`` say
        what happened. Each of ``request.messages`` is sent when it is due and the
        recorder reads on until the server closes; ``request.close_after=N``
        closes from the client after N events; after an event whose type is in
        ``request.end_types`` the recorder waits at most ``limits.end_grace`` s for
        the server to close. ``on_event(event)`` is called as each event is
        recorded, while the socket is still open (before the request's messages
        or ``close_after`` act); what it raises propagates.
        """
        rec = Recording(request=request, detail=self.new_detail())
        rec.wall_start = time.time()
        rec.t_start = time.perf_counter()
        budget = Budget(limits, rec.t_start)
        counter = WireCounter()
        try:
            _record(rec, budget, counter, limits, on_event)
        finally:
            finish(rec, counter)
        return rec

    def accepted(self, rec: Recording) -> bool:
        return rec.status == 101

    def new_detail(self) -> WSDetail:
        return WSDetail()

    def incomplete(self, rec: Recording) -> tuple[str, str] | None:
        problem = super().incomplete(rec)
        if problem is None and not rec.client_closed and rec.detail.close_code not in (1000, None):
            return "close", f"close code {rec.detail.close_code}"
        return problem

    def reproduce(self, request: Request) -> str:
        parts = ["python", "-m", "conformance.recorders", "ws", ws_url(request.url, request.query)]
        for name, value in request.headers:
            parts += ["--header", f"{name}: {value}"]
        for m in request.messages:
            parts += ["--send", m.text]
            parts += ["--on-type", m.on_type] if m.on_type is not None else ["--after", str(m.after_events)]
        if request.close_after is not None:
            parts += ["--close-after", str(request.close_after)]
        if request.compression:
            parts.append("--compression")
        for end in request.end_types:
            parts += ["--end-type", end]
        if request.client_ends:
            parts.append("--client-ends")
        if request.type_field != "type":
            parts += ["--type-field", request.type_field]
        return shell_line(parts)

    def summary(self, rec: Recording) -> list[str]:
        d = rec.detail
        parts = [f"close={d.close_code}"]
        if d.close_reason:
            parts.append(f"reason={d.close_reason!r}")
        parts.append(f"close_frame={'yes' if d.close_frame_received else 'no'}")
        if d.extensions:
            parts.append(f"extensions={','.join(d.extensions)}")
        if d.closed_at_end:
            parts.append("closed_at_end")
        return parts


def _record(
    rec: Recording,
    budget: Budget,
    counter: WireCounter,
    limits: Limits,
    on_event: Callable[[RecordedEvent], None] | None,
) -> None:
    request = rec.request
    try:
        target = ws_url(request.url, request.query)
        parts = urllib.parse.urlsplit(target)
    except ValueError as exc:
        rec.error_kind, rec.error = "connect", f"bad URL {rec.url!r}: {exc}"
        return
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        rec.error_kind, rec.error = "connect", f"not a WebSocket URL: {rec.url!r}"
        return
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        rec.error_kind, rec.error = "connect", f"bad port in {rec.url!r}"
        return

    # TCP connect, bounded by limits.connect (and total)
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=min(limits.connect, limits.total))
    except TimeoutError:
        rec.error_kind, rec.error = "connect", f"connect timed out after {limits.describe('connect')}"
        return
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        rec.error_kind, rec.error = "connect", f"{type(exc).__name__}: {exc}"
        return
    counter.connected()
    csock: Any = _CountingSocket(sock, counter)
    budget.enter("head", now=counter.t_connected)
    handshake_url = target
    if parts.scheme == "wss":
        # websockets would wrap the socket in an SSLSocket, whose bytes we could not
        # count: do TLS here and let websockets speak ws:// over it (Host then names the port)
        tls_sock = _TLSSocket(csock, tls_context(), parts.hostname, counter)
        try:
            sock.settimeout(max(0.001, budget.remaining()))
            tls_sock.handshake()
        except TimeoutError:
            sock.close()
            rec.error_kind, rec.error = "timeout", f"no TLS handshake within {limits.describe('first_event')}"
            return
        except (ssl.SSLError, OSError, UnicodeError) as exc:
            sock.close()
            rec.error_kind, rec.error = "connect", f"TLS handshake failed: {type(exc).__name__}: {exc}"
            return
        csock = tls_sock
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        handshake_url = urllib.parse.urlunsplit(("ws", f"{host}:{port}", parts.path, parts.query, ""))
    sock.settimeout(None)

    guard = (csock if isinstance(csock, _CountingSocket) else csock._csock).guard
    guard.limit = limits.max_body_bytes + _MAX_HANDSHAKE_HEAD
    ws_cm, ws = _handshake(rec, csock, sock, handshake_url, request, budget, limits, counter)
    if ws is None:
        if guard.over is not None:
            rec.error_kind, rec.error = "too_large", guard.over
        return

    try:
        response = ws.response
        rec.t_headers = counter.received.t_head or time.perf_counter()
        rec.status = response.status_code if response is not None else None
        if response is not None:
            rec.response_headers = list(response.headers.raw_items())
        rec.detail.extensions = [ext.name for ext in ws.protocol.extensions]
        if ws.request is not None:
            rec.sent_headers = list(ws.request.headers.raw_items())
        _read_frames(ws, rec, budget, limits, on_event)
        if not rec.client_closed and rec.error_kind in ("timeout", "too_many", "too_large"):
            # we stop reading: close from our side without waiting long for the reply
            ws.close_timeout = min(0.5, limits.end_grace)
            ws.close(1000)
    finally:
        try:
            ws_cm.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - tearing down a connection that may be broken
            pass
        sock.close()


def _handshake(rec: Recording, csock: Any, sock: socket.socket, handshake_url: str, request: Request, budget: Budget,
               limits: Limits, counter: WireCounter) -> tuple[Any, Any]:
    """Open the WebSocket (websockets' handshake over our socket): (context, connection),
    or (None, None) with the recording saying why not."""
    try:
        # websockets <= 17 handshakes in connect(); later versions may do it in
        # __enter__: both happen inside this try.
        ws_cm = connect(
            handshake_url,
            sock=csock,
            compression="deflate" if request.compression else None,
            additional_headers=list(request.headers) or None,
            open_timeout=budget.remaining(),
            ping_interval=None,
            close_timeout=max(0.001, min(limits.end_grace, budget.t_total - time.perf_counter())),
            max_size=limits.max_event_bytes,
            max_queue=_MAX_QUEUE,
            create_connection=_KeepEventsConnection,
        )
        return ws_cm, ws_cm.__enter__()
    except InvalidStatus as exc:
        _rejected(rec, exc, limits, counter)
        sock.close()
        return None, None
    except ValueError as exc:  # a redirect cannot be followed over our socket
        sock.close()
        if isinstance(exc.__cause__, InvalidStatus):
            _rejected(rec, exc.__cause__, limits, counter)
        else:  # e.g. a header value that is not Latin-1
            rec.error_kind, rec.error = "connect", f"could not send the handshake: {type(exc).__name__}: {exc}"
        return None, None
    except TimeoutError:
        sock.close()
        rec.error_kind, rec.error = "timeout", f"no handshake response within {limits.describe('first_event')}"
        return None, None
    except InvalidMessage as exc:
        sock.close()
        cause = exc.__cause__
        if isinstance(cause, EOFError) or "EOF" in str(cause or ""):
            rec.error_kind, rec.error = "closed", f"the connection closed before a handshake response ({exc})"
        else:
            rec.error_kind, rec.error = "protocol", f"invalid handshake response: {exc}; {cause}"
        return None, None
    except (InvalidHandshake, InvalidURI) as exc:
        sock.close()
        rec.error_kind, rec.error = "protocol", f"handshake failed: {type(exc).__name__}: {exc}"
        return None, None
    except OSError as exc:
        sock.close()
        rec.error_kind, rec.error = "closed", f"{type(exc).__name__}: {exc}"
        return None, None
    except Exception as exc:  # noqa: BLE001 - never raise for what a server sends
        sock.close()
        rec.error_kind, rec.error = "protocol", f"handshake failed: {type(exc).__name__}: {exc}"
        return None, None


def _rejected(rec: Recording, exc: InvalidStatus, limits: Limits, counter: WireCounter) -> None:
    response = exc.response
    rec.t_headers = counter.received.t_head or time.perf_counter()
    rec.status = response.status_code
    rec.response_headers = list(response.headers.raw_items())
    body = response.body or b""
    rec.body = body[: limits.max_body_bytes]
    rec.body_truncated = len(body) > limits.max_body_bytes
    rec.t_end = time.perf_counter()


def _read_frames(
    ws: Any,
    rec: Recording,
    budget: Budget,
    limits: Limits,
    on_event: Callable[[RecordedEvent], None] | None,
) -> None:
    request = rec.request
    end_types = frozenset(request.end_types)
    pending = list(request.messages)
    kept = 0
    budget.enter("first_event", now=rec.t_headers)
    _send_due(ws, rec, pending, 0, None)
    while True:
        try:
            message = _recv(ws, budget)
        except TimeoutError:
            rec.t_end = time.perf_counter()
            sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
            if rcvd is not None:
                # the server's close frame is in; only its TCP close is missing
                rec.detail.close_frame_received, rec.detail.close_code, rec.detail.close_reason = True, rcvd.code, rcvd.reason
                return
            if sent is not None and sent.code in _CLOSE_KINDS and not rec.client_closed:
                # websockets failed the connection (bad frame, bad UTF-8, too big) and
                # is still waiting for the server to close: that is the finding
                rec.error_kind = _CLOSE_KINDS[sent.code]
                rec.error = f"the client closed with {sent.code} ({sent.reason or 'no reason'}) after bad input from the server"
            else:
                rec.error_kind, rec.error = "timeout", budget.describe_timeout()
            return
        except ConnectionClosed as exc:
            rec.t_end = time.perf_counter()
            _closed(rec, exc)
            return
        t_perf, t_wall = time.perf_counter(), time.time()
        if len(rec.events) >= limits.max_events:
            rec.error_kind, rec.error = "too_many", f"more than {limits.describe('max_events')}"
            rec.t_end = t_perf
            return
        if isinstance(message, str):
            raw, text, frame = message.encode("utf-8"), message, _TEXT
        else:
            raw, frame = bytes(message), _BINARY
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        data, err = parse_json(text)
        event = RecordedEvent(index=len(rec.events), raw=raw, text=text, data=data, parse_error=err, t_perf=t_perf,
                              t_wall=t_wall, detail=frame, type_field=request.type_field)
        try:
            kept = admit(rec, event, budget, limits, kept)
        except TooLarge as exc:
            rec.error_kind, rec.error, rec.t_end = "too_large", str(exc), t_perf
            return
        if on_event is not None:
            on_event(event)
        n = len(rec.events)
        if request.close_after is not None and n >= request.close_after:
            rec.client_closed = True
            rec.t_end = time.perf_counter()
            ws.close(1000)
            rec.detail.close_frame_received = ws.protocol.close_rcvd is not None
            return
        _send_due(ws, rec, pending, n, event.type)
        if event.type in end_types and request.client_ends:
            # the protocol keeps the socket open for the next request: this stream is over
            rec.detail.closed_at_end = True
            rec.t_end = time.perf_counter()
            ws.close_timeout = max(0.001, min(limits.end_grace, budget.t_total - rec.t_end))
            ws.close(1000)
            rec.detail.close_frame_received = ws.protocol.close_rcvd is not None
            rec.detail.close_code = ws.protocol.close_rcvd.code if ws.protocol.close_rcvd is not None else None
            return
        if event.type in end_types and budget.phase != "grace":
            budget.enter("grace")


_TEXT = WSFrameDetail("text")
_BINARY = WSFrameDetail("binary")
"""Shared, never mutated: one detail object per kind, not per event."""


def _send_due(ws: Any, rec: Recording, pending: list[ClientMessage], n: int, event_type: str | None) -> None:
    """Send the client messages that are due after ``n`` events (the last of type ``event_type``)."""
    for message in [m for m in pending if m.due(n, event_type)]:
        pending.remove(message)
        try:
            ws.send(message.text)
            rec.detail.messages_sent_at.append(time.perf_counter())
        except ConnectionClosed:
            pass  # the next recv reports the close


class _KeepEventsConnection(ClientConnection):
    """websockets drops the events of a read when the automatic reply it then sends
    fails (sync/connection.py: "If self.send_data raised an exception, then events
    are lost"). A server that closes TCP right after its close frame (aiohttp does)
    makes our close reply fail with EPIPE whenever a pong went out just before: the
    last frames, stream_end among them, would vanish. Once the server's close frame
    is in, a reply that cannot go out is no reason to lose what arrived."""

    def send_data(self) -> None:
        try:
            super().send_data()
        except OSError:
            if self.protocol.close_rcvd is None:
                raise


_SLICE = 0.25
"""Longest single wait in recv: between waits the recorder looks whether websockets
has failed the connection, or has the server's close frame (in both cases it then
waits for the server to close TCP, which a broken server may never do; only a call
such as close() enforces close_timeout)."""


def _recv(ws: Any, budget: Budget) -> str | bytes:
    """The next message, within the budget; TimeoutError when it runs out."""
    deadline = budget.deadline()  # fixed for this wait: the idle bounds restart only on progress
    while True:
        timeout = deadline - time.perf_counter()
        if timeout <= 0:
            raise TimeoutError
        try:
            return ws.recv(timeout=min(timeout, _SLICE))
        except TimeoutError:
            sent = ws.protocol.close_sent
            if (sent is not None and sent.code in _CLOSE_KINDS) or ws.protocol.close_rcvd is not None:
                # websockets failed the connection, or the server's close frame is in but
                # its TCP close is not: websockets would wait for it without a bound.
                ws.close()  # bounded by close_timeout; the next recv reports the close
            continue


def _closed(rec: Recording, exc: ConnectionClosed) -> None:
    """Record how the connection ended; an error kind only when it was not a clean close."""
    detail = rec.detail
    if exc.rcvd is not None:
        detail.close_frame_received = True
        detail.close_code = exc.rcvd.code
        detail.close_reason = exc.rcvd.reason
        return
    detail.close_frame_received = False
    if exc.sent is not None and exc.sent.code in _CLOSE_KINDS:
        # websockets failed the connection because of what the server sent
        rec.error_kind = _CLOSE_KINDS[exc.sent.code]
        rec.error = f"the client closed with {exc.sent.code} ({exc.sent.reason or 'no reason'}) after bad input from the server"
        return
    detail.close_code = 1006
    rec.error_kind, rec.error = "closed", "the connection dropped without a close frame (1006)"


WS = register(WSTransport())
