"""The WebSocket recorder: websockets' handshake and our frame parser over a socket we open and count.

The recorder opens the TCP connection itself (bounded by ``limits.connect``),
wraps it in a thin counter of every byte that crosses the socket (so the counts
include the handshake and the frame headers, and compressed payloads are
counted as sent), and drives the protocol over it in its own thread, each read
bounded by the recording's budget (no reader thread): websockets'
``ClientProtocol`` for the opening handshake, fed the reply's head only, then
:class:`~conformance.wire.ws_frames.ClientFrames` for the frames that follow
(websockets' semantics without its per-frame cost: see that module). Each
message (one or more frames) becomes one event; the close code, the reason and
whether a close frame really arrived are kept, since a dropped connection (1006)
is a finding of its own. Synchronous on purpose: it runs as is in pytest and
under gevent (Locust).
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidState,
    InvalidStatus,
    InvalidURI,
)
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import CloseCode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import State
from websockets.uri import parse_uri

from conformance.recording import Limits, RecordedEvent, Recording, WSDetail, WSFrameDetail
from conformance.request import ClientMessage, Request

from .common import Budget, admit, connect, parse_json, shell_line, tls_context
from .sse_lines import TooLarge
from .tls import MemoryTLS
from .transport import OnEvent, Transport, register
from .wire import WireCounter, finish
from .ws_frames import TEXT, ClientFrames, Message

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
        self._tls = MemoryTLS(context, server_hostname, self._recv_raw, csock.sendall)
        self.deadline = float("inf")
        """perf_counter time past which no read of ciphertext may wait: one TLS read
        (the handshake, a record) may take many, and a peer that sends a byte at
        a time would otherwise keep each one short and the whole without end."""

    def _recv_raw(self, bufsize: int) -> bytes:
        remaining = self.deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError
        self._csock.settimeout(remaining)
        return self._csock.recv(bufsize)

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
        sock = connect(parts.hostname, port, min(limits.connect, limits.total))
    except TimeoutError:
        rec.error_kind, rec.error = "connect", f"connect timed out after {limits.describe('connect')}"
        return
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        rec.error_kind, rec.error = "connect", f"{type(exc).__name__}: {exc}"
        return
    try:
        _over_socket(rec, sock, parts, port, target, budget, counter, limits, on_event)
    finally:
        sock.close()


def _over_socket(rec: Recording, sock: socket.socket, parts: urllib.parse.SplitResult, port: int, target: str,
                 budget: Budget, counter: WireCounter, limits: Limits,
                 on_event: Callable[[RecordedEvent], None] | None) -> None:
    request = rec.request
    counter.connected()
    csock: Any = _CountingSocket(sock, counter)
    budget.enter("head", now=counter.t_connected)
    handshake_url = target
    if parts.scheme == "wss":
        # TLS runs here, in memory over the counting socket, so that TLS records are
        # counted as they cross TCP; the WebSocket protocol then speaks ws:// over it
        # (Host then names the port)
        tls_sock = _TLSSocket(csock, tls_context(), parts.hostname, counter)
        try:
            tls_sock.deadline = time.perf_counter() + max(0.001, budget.remaining())
            tls_sock.handshake()
        except TimeoutError:
            rec.error_kind, rec.error = "timeout", f"no TLS handshake within {limits.describe('first_event')}"
            return
        except (ssl.SSLError, OSError, UnicodeError) as exc:
            rec.error_kind, rec.error = "connect", f"TLS handshake failed: {type(exc).__name__}: {exc}"
            return
        csock = tls_sock
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        handshake_url = urllib.parse.urlunsplit(("ws", f"{host}:{port}", parts.path, parts.query, ""))

    guard = (csock if isinstance(csock, _CountingSocket) else csock._csock).guard
    guard.limit = limits.max_body_bytes + _MAX_HANDSHAKE_HEAD
    conn = _Connection(csock, sock, budget, limits)
    events = _handshake(rec, conn, handshake_url, request, limits, counter)
    if events is None:
        if guard.over is not None:
            rec.error_kind, rec.error = "too_large", guard.over
        return
    _read_frames(conn, rec, budget, limits, on_event, events)
    if not rec.client_closed and rec.error_kind in ("timeout", "too_many", "too_large"):
        # we stop reading: close from our side without waiting long for the reply
        conn.close(1000, min(0.5, limits.end_grace))


class _Connection:
    """The socket under the protocol, in the recorder's own thread: each read
    bounded by a deadline, replies (pong, the close echo) sent as soon as they
    are due. No reader thread, no queue, no lock: the sync client's cost per
    stream and per event (about 45 µs and 83 to 95 syscalls per stream in the
    harness benchmark) was mostly that machinery. ``frames`` is the open
    WebSocket once the handshake succeeded."""

    READ = 65_536

    def __init__(self, csock: Any, sock: socket.socket, budget: Budget, limits: Limits) -> None:
        self.csock, self.sock, self.budget, self.limits = csock, sock, budget, limits
        self.frames: ClientFrames | None = None
        self.eof = False

    def send(self, writes: list[bytes]) -> None:
        """Send what the protocol has to send (an empty chunk: half-close, as the sync client does)."""
        for data in writes:
            try:
                if data:
                    self.sock.settimeout(max(0.001, self.budget.t_total - time.perf_counter()))
                    self.csock.sendall(data)
                else:
                    self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                if (self.frames is None or self.frames.close_rcvd is None) and not self.eof:
                    raise
                # the server's close frame (or EOF) is in: a reply that cannot go out loses nothing

    def read(self, deadline: float) -> bytes:
        """Read once (until ``deadline``, a perf_counter time); ``b""`` when the
        connection is gone (``eof`` is then set); TimeoutError when nothing came in time."""
        timeout = deadline - time.perf_counter()
        if timeout <= 0:
            raise TimeoutError
        self.sock.settimeout(timeout)
        if isinstance(self.csock, _TLSSocket):
            self.csock.deadline = deadline
        try:
            data: bytes = self.csock.recv(self.READ)
        except (TimeoutError, socket.timeout):
            raise TimeoutError from None
        except ConnectionAbortedError:
            raise  # the reply guard: the caller says why
        except OSError:
            data = b""  # reset, broken pipe: the connection is gone
        if not data:
            self.eof = True
        return data

    def pump(self, deadline: float) -> list[Message]:
        """Read once into the open WebSocket and return the messages it completed;
        TimeoutError when nothing came in time."""
        frames = self.frames
        assert frames is not None
        data = self.read(deadline)
        if data:
            messages = frames.receive_data(data)
        else:
            frames.receive_eof()
            messages = []
        self.send(frames.data_to_send())
        return messages

    def close(self, code: int, wait_s: float) -> None:
        """Send a close frame (when still open) and wait at most ``wait_s`` for the
        server's close frame or its TCP close."""
        assert self.frames is not None
        if self.frames.state is State.OPEN:
            try:
                self.frames.send_close(code)
                self.send(self.frames.data_to_send())
            except OSError:
                return
        self.wait_closed(wait_s)

    def wait_closed(self, wait_s: float) -> None:
        """Read until the server closes TCP (or ``wait_s`` passes): the client's side of
        the closing handshake. What arrives meanwhile is dropped as it comes (a
        flood must not pile up while we wait)."""
        deadline = min(time.perf_counter() + wait_s, self.budget.t_total)
        while not self.eof:
            try:
                self.pump(deadline)
            except (TimeoutError, OSError):
                break


def _head_end(scanned: bytearray, data: bytes) -> int | None:
    """Where, in ``data`` (the read after the bytes in ``scanned``), the reply's head
    ends as websockets reads it (every line ends with CRLF, the head with an empty
    one: the first LF CRLF); None when not yet. ``data`` is added to ``scanned``."""
    before = len(scanned)
    scanned += data
    i = scanned.find(b"\n\r\n", max(0, before - 2))
    return None if i < 0 else i + 3 - before


def _handshake(rec: Recording, conn: _Connection, handshake_url: str, request: Request, limits: Limits,
               counter: WireCounter) -> list[Message] | None:
    """Open the WebSocket (websockets' handshake over our socket): sets ``conn.frames``
    and returns the messages that came with the handshake response (frames may
    share its read), or None with the recording saying why not.

    websockets is handed the reply up to the end of its head, so that the frames
    after a 101 go to :class:`ClientFrames`; any other reply goes to websockets
    whole (it reads the body of a rejection)."""
    try:
        proto = ClientProtocol(
            parse_uri(handshake_url),
            extensions=enable_client_permessage_deflate(None) if request.compression else None,
            max_size=limits.max_event_bytes,
        )
        req = proto.connect()
        if request.headers:
            req.headers.update(list(request.headers))
        req.headers.setdefault("User-Agent", USER_AGENT)
        proto.send_request(req)
        conn.send(proto.data_to_send())
        rec.sent_headers = list(req.headers.raw_items())
    except (InvalidHandshake, InvalidURI) as exc:
        rec.error_kind, rec.error = "protocol", f"handshake failed: {type(exc).__name__}: {exc}"
        return None
    except (ValueError, TypeError) as exc:  # e.g. a header value that is not Latin-1
        rec.error_kind, rec.error = "connect", f"could not send the handshake: {type(exc).__name__}: {exc}"
        return None
    except OSError as exc:
        rec.error_kind, rec.error = "closed", f"{type(exc).__name__}: {exc}"
        return None
    deadline = conn.budget.deadline()
    events: list[Any] = []
    scanned: bytearray | None = bytearray()
    after_head = b""
    while not any(isinstance(e, Response) for e in events) and proto.handshake_exc is None:
        try:
            data = conn.read(deadline)
        except TimeoutError:
            rec.error_kind, rec.error = "timeout", f"no handshake response within {limits.describe('first_event')}"
            return None
        except OSError as exc:  # the reply guard stopped an endless reply
            rec.error_kind, rec.error = "closed", f"{type(exc).__name__}: {exc}"
            return None
        if not data:
            proto.receive_eof()
        elif scanned is None:
            proto.receive_data(data)  # the rest of a reply that is not a 101
        else:
            end = _head_end(scanned, data)
            if end is None:
                proto.receive_data(data)
            else:
                scanned = None
                proto.receive_data(data[:end])
                if proto.state is State.OPEN:
                    after_head = data[end:]
                elif end < len(data):
                    proto.receive_data(data[end:])
        try:
            conn.send(proto.data_to_send())
        except OSError as exc:
            rec.error_kind, rec.error = "closed", f"{type(exc).__name__}: {exc}"
            return None
        events += proto.events_received()
        if conn.eof and proto.handshake_exc is None and not any(isinstance(e, Response) for e in events):
            break
    exc = proto.handshake_exc
    if isinstance(exc, InvalidStatus):
        _rejected(rec, exc, limits, counter)
        return None
    if exc is not None or not any(isinstance(e, Response) for e in events):
        cause = exc.__cause__ if exc is not None else EOFError("connection closed")
        if exc is None or isinstance(cause, EOFError) or "EOF" in str(cause or ""):
            rec.error_kind, rec.error = "closed", f"the connection closed before a handshake response ({exc})"
        elif isinstance(exc, InvalidMessage):
            rec.error_kind, rec.error = "protocol", f"invalid handshake response: {exc}; {cause}"
        else:
            rec.error_kind, rec.error = "protocol", f"handshake failed: {type(exc).__name__}: {exc}"
        return None
    response = next(e for e in events if isinstance(e, Response))
    rec.t_headers = counter.received.t_head or time.perf_counter()
    rec.status = response.status_code
    rec.response_headers = list(response.headers.raw_items())
    rec.detail.extensions = [ext.name for ext in proto.extensions]
    frames = conn.frames = ClientFrames(limits.max_event_bytes, proto.extensions)
    messages = frames.receive_data(after_head) if after_head else []
    try:
        conn.send(frames.data_to_send())
    except OSError:
        pass  # the next read says how the connection stands
    return messages


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
    conn: _Connection,
    rec: Recording,
    budget: Budget,
    limits: Limits,
    on_event: Callable[[RecordedEvent], None] | None,
    messages: list[Message],
) -> None:
    request = rec.request
    frames = conn.frames
    assert frames is not None
    end_types = frozenset(request.end_types)
    pending = list(request.messages)
    kept = 0
    close_wait = max(0.001, min(limits.end_grace, budget.t_total - time.perf_counter()))
    budget.enter("first_event", now=rec.t_headers)
    _send_due(conn, rec, pending, 0, None)
    while True:
        for op, raw in messages:
            t_perf, t_wall = time.perf_counter(), time.time()
            if len(rec.events) >= limits.max_events:
                rec.error_kind, rec.error = "too_many", f"more than {limits.describe('max_events')}"
                rec.t_end = t_perf
                return
            if op == TEXT:
                try:
                    text: str | None = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    # what websockets' own client does with such a message: fail with 1007
                    frames.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                    _failed(conn, rec)
                    return
                detail = _TEXT
            else:
                detail = _BINARY
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
            data, err = parse_json(text)
            event = RecordedEvent(index=len(rec.events), raw=raw, text=text, data=data, parse_error=err,
                                  t_perf=t_perf, t_wall=t_wall, detail=detail, type_field=request.type_field)
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
                conn.close(1000, close_wait)
                rec.detail.close_frame_received = frames.close_rcvd is not None
                return
            etype = event.type
            if pending:
                _send_due(conn, rec, pending, n, etype)
            if etype in end_types:
                if request.client_ends:
                    # the protocol keeps the socket open for the next request: this stream is over
                    rec.detail.closed_at_end = True
                    rec.t_end = time.perf_counter()
                    conn.close(1000, close_wait)
                    rcvd = frames.close_rcvd
                    rec.detail.close_frame_received = rcvd is not None
                    rec.detail.close_code = rcvd.code if rcvd is not None else None
                    return
                if budget.phase != "grace":
                    budget.enter("grace")
        # after the messages of this read: how the connection stands
        sent, rcvd = frames.close_sent, frames.close_rcvd
        if sent is not None and sent.code in _CLOSE_KINDS and rcvd is None:
            # the server broke the protocol (bad frame, too big) and the client failed the connection: that is the finding
            _failed(conn, rec)
            return
        if rcvd is not None:
            conn.wait_closed(close_wait)  # the close frame is in; its TCP close may follow
            rec.t_end = time.perf_counter()
            rec.detail.close_frame_received, rec.detail.close_code, rec.detail.close_reason = True, rcvd.code, rcvd.reason
            return
        if conn.eof:
            rec.t_end = time.perf_counter()
            rec.detail.close_frame_received = False
            rec.detail.close_code = 1006
            rec.error_kind, rec.error = "closed", "the connection dropped without a close frame (1006)"
            return
        try:
            messages = conn.pump(budget.deadline())
        except TimeoutError:
            rec.t_end = time.perf_counter()
            rec.error_kind, rec.error = "timeout", budget.describe_timeout()
            return


def _failed(conn: _Connection, rec: Recording) -> None:
    """The client failed the connection (1002, 1007, 1009) after bad input: record
    it, then give the server a moment to close."""
    frames = conn.frames
    assert frames is not None and frames.close_sent is not None
    sent = frames.close_sent
    rec.t_end = time.perf_counter()
    rec.detail.close_frame_received = False
    rec.error_kind = _CLOSE_KINDS[sent.code]
    rec.error = f"the client closed with {sent.code} ({sent.reason or 'no reason'}) after bad input from the server"
    try:
        conn.send(frames.data_to_send())
    except OSError:
        pass
    conn.wait_closed(min(0.5, conn.limits.end_grace))


_TEXT = WSFrameDetail("text")
_BINARY = WSFrameDetail("binary")
"""Shared, never mutated: one detail object per kind, not per event."""


def _send_due(conn: _Connection, rec: Recording, pending: list[ClientMessage], n: int, event_type: str | None) -> None:
    """Send the client messages that are due after ``n`` events (the last of type ``event_type``)."""
    assert conn.frames is not None
    for message in [m for m in pending if m.due(n, event_type)]:
        pending.remove(message)
        try:
            conn.frames.send_text(message.text.encode("utf-8"))
            before = time.perf_counter()  # no later than the bytes leave: a causal bound on what answers it
            conn.send(conn.frames.data_to_send())
            rec.detail.messages_sent_at.append(before)
        except (InvalidState, OSError):
            pass  # the connection is closing: the next read reports how


WS = register(WSTransport())
