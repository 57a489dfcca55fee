"""The SSE recorder: one request over a socket it opens and counts, every read bounded.

The recorder opens the TCP connection itself (bounded by ``limits.connect``),
counts every byte that crosses the socket (:mod:`.wire`; with TLS, which runs
in memory over the counted socket, the TLS records), and speaks HTTP/1.1
through :mod:`.http1`, a sans-I/O parser of one response. Each read waits at
most until the recording's deadline (:class:`.common.Budget`), so that the
head, the first event, the gap between reads and the whole recording are each
bounded without a watchdog thread. The body is split into lines and messages
by :mod:`.sse_lines`. Synchronous on purpose: it runs as is in pytest and
under gevent (Locust).

Why not httpx: per request and per chunk of the body, httpx, httpcore and h11
cost more CPU than everything the recorder itself does (in the load harness
benchmark, about 2 ms per stream and 10 µs per event), and a load generator is
capped by exactly that. HTTP/2 (:mod:`.sse_h2`) still goes through httpx, which
brings the h2 state machine; the SSE reading below is shared.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping

from conformance.recording import Limits, RecordedEvent, Recording, SSEDetail, SSEEventDetail, media_type
from conformance.request import Request

from . import http1
from .common import Budget, admit, connect, parse_json, query_url, shell_line, tls_context
from .decode import BoundedDecoder, UnsupportedEncoding
from .sse_lines import LineSplitter, MessageAssembler, TooLarge
from .tls import MemoryTLS
from .transport import OnEvent, Transport, register
from .wire import WireCounter, finish

USER_AGENT = "agentstream"
"""Sent unless the request names its own User-Agent."""
READ_SIZE = 65_536
"""Bytes asked of the socket per read."""


class _Socket:
    """A connected socket whose every byte is counted, with TLS in memory over it
    when asked. Every read of the socket waits at most until the recording's
    deadline (one TLS read may take several: each is held to it, so that a peer
    sending a byte at a time cannot stretch it); every write at most until the
    end of the recording."""

    def __init__(self, sock: socket.socket, counter: WireCounter, budget: Budget) -> None:
        self.sock, self.counter, self.budget = sock, counter, budget
        self.tls: MemoryTLS | None = None

    def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.tls = MemoryTLS(context, server_hostname, self._recv_raw, self._send_raw)
        self.tls.handshake()

    def _recv_raw(self, n: int) -> bytes:
        remaining = self.budget.remaining()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        data = self.sock.recv(n)
        self.counter.on_received(data, app=self.tls is None)
        return data

    def _send_raw(self, data: bytes) -> None:
        self.sock.settimeout(max(0.001, self.budget.t_total - time.perf_counter()))
        self.sock.sendall(data)
        self.counter.on_sent(data, app=self.tls is None)

    def sendall(self, data: bytes) -> None:
        if self.tls is None:
            self._send_raw(data)
        else:
            self.tls.sendall(data)
            self.counter.on_sent(data, wire=False)

    def read(self) -> bytes:
        """The next bytes (b"" at the end of the stream); TimeoutError past the deadline."""
        if self.tls is None:
            return self._recv_raw(READ_SIZE)
        data = self.tls.recv(READ_SIZE)
        self.counter.on_received(data, wire=False)
        return data


def _target(url: str) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, Host header, request target) of an http(s) URL;
    ValueError for anything else. The target keeps the URL's escapes and
    percent-encodes what may not go on the wire as is (spaces, non-ASCII)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname
    port = parts.port or (443 if scheme == "https" else 80)  # ValueError for a bad port
    wire_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    shown = f"[{wire_host}]" if ":" in wire_host else wire_host
    host_header = shown if port == (443 if scheme == "https" else 80) else f"{shown}:{port}"
    target = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        target += "?" + urllib.parse.quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return scheme, wire_host, port, host_header, target


def _head_bytes(transport: "SSETransport", request: Request, host_header: str, target: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The request head and the headers in it (what ``Recording.sent_headers`` keeps)."""
    headers = [("Host", host_header), *transport.request_headers(request).items()]
    names = {k.lower() for k, _ in headers}
    if "user-agent" not in names:
        headers.append(("User-Agent", USER_AGENT))
    if request.body is not None and "content-length" not in names:
        headers.append(("Content-Length", str(len(request.body))))
    return http1.request_head(request.method, target, headers), headers


def _is_event_stream(status: int, content_type: str | None) -> bool:
    """Whether a response with this status and Content-Type carries an event stream."""
    return 200 <= status < 300 and status != 204 and media_type(content_type) == "text/event-stream"


def record_sse(
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    limits: Limits = Limits(),
    close_after: int | None = None,
    end_types: Iterable[str] = (),
    last_event_id: str | None = None,
    on_event: Callable[[RecordedEvent], None] | None = None,
) -> Recording:
    """GET ``url`` as an EventSource would and record the stream (a shorthand for
    ``SSE.record(Request.make("sse", url, ...))``)."""
    request = Request.make("sse", url, params=params, headers=headers, close_after=close_after,
                           end_types=tuple(end_types), last_event_id=last_event_id)
    return SSE.record(request, limits, on_event)


class SSETransport(Transport):
    """Server-Sent Events over HTTP/1.1, as a browser's EventSource reads them."""

    name = "sse"
    binding = "sse"
    label = "SSE"

    def record(self, request: Request, limits: Limits = Limits(), on_event: OnEvent | None = None) -> Recording:
        """Send the request and record the stream.

        Never raises for network or protocol trouble: ``error_kind``/``error`` say
        what happened. ``request.close_after=N`` closes the response after N events
        (the client leaves); after an event whose type is in ``request.end_types``
        the recorder waits at most ``limits.end_grace`` s for the server to end the
        response. ``on_event(event)`` is called as each event is recorded, while
        the stream is still open (before ``close_after`` acts); what it raises
        propagates.
        """
        return record_http(self, request, limits, on_event)

    def accepted(self, rec: Recording) -> bool:
        return rec.status is not None and rec.body is None and 200 <= rec.status < 300 and rec.status != 204

    def new_detail(self) -> SSEDetail:
        return SSEDetail()

    def incomplete(self, rec: Recording) -> tuple[str, str] | None:
        if rec.error_kind is None and rec.status == 200 and rec.body is not None:
            return "status", f"the answer is not an event stream (Content-Type {rec.header('content-type')!r})"
        return super().incomplete(rec)

    def request_headers(self, request: Request) -> dict[str, str]:
        """The headers this transport sends for ``request`` (its own Accept and
        Last-Event-ID included): what a reproduction has to send."""
        out = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        out.update(request.header_map)
        if request.last_event_id is not None:
            out["Last-Event-ID"] = request.last_event_id
        return out

    def curl_flags(self, request: Request) -> list[str]:
        """curl's options for this transport's HTTP version (none for HTTP/1.1)."""
        return []

    def reproduce(self, request: Request) -> str:
        parts = ["curl", "-N", *self.curl_flags(request)]
        if request.method != "GET":
            parts += ["-X", request.method]
        for name, value in self.request_headers(request).items():
            parts += ["-H", f"{name}: {value}"]
        if request.body is not None:
            parts += ["--data-binary", request.body.decode("utf-8", "replace")]
        parts.append(query_url(request.url, request.query))
        return shell_line(parts)

    def summary(self, rec: Recording) -> list[str]:
        detail = rec.detail
        if detail is None:
            return []
        out = [f"comments={detail.comments}"] if detail.comments else []
        if detail.line_endings:
            out.append(f"line_endings={','.join(sorted(detail.line_endings))}")
        if detail.sentinel_at is not None:
            out.append(f"sentinel_after={detail.sentinel_at}")
        return out


def record_http(transport: SSETransport, request: Request, limits: Limits, on_event: OnEvent | None) -> Recording:
    """Record one SSE request over HTTP/1.1 on a counted socket (TLS on ``https://``)."""
    rec = Recording(request=request, detail=transport.new_detail())
    rec.wall_start = time.time()
    rec.t_start = time.perf_counter()
    budget = Budget(limits, rec.t_start)
    budget.enter("head", now=rec.t_start)
    counter = WireCounter()
    try:
        scheme, host, port, host_header, target = _target(query_url(request.url, request.query))
        head, rec.sent_headers = _head_bytes(transport, request, host_header, target)
    except (ValueError, UnicodeError) as exc:  # a bad URL or port, a header value that is not Latin-1
        rec.error_kind, rec.error = "connect", f"could not build the request: {type(exc).__name__}: {exc}"
        return finish(rec, counter)
    try:
        sock = connect(host, port, max(0.001, min(limits.connect, limits.total)))
    except TimeoutError:
        rec.error_kind, rec.error = "connect", f"connect timed out after {limits.describe('connect')}"
        return finish(rec, counter)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        rec.error_kind, rec.error = "connect", f"{type(exc).__name__}: {exc}"
        return finish(rec, counter)
    counter.connected()
    conn = _Socket(sock, counter, budget)
    try:
        if scheme == "https":
            try:
                conn.start_tls(tls_context(), host)
            except TimeoutError:
                rec.error_kind, rec.error = "timeout", f"no TLS handshake within {limits.describe('first_event')}"
                return finish(rec, counter)
            except (ssl.SSLError, OSError, ConnectionError) as exc:
                rec.error_kind, rec.error = "connect", f"TLS handshake failed: {type(exc).__name__}: {exc}"
                return finish(rec, counter)
        _exchange(conn, rec, budget, limits, on_event, head)
    finally:
        sock.close()  # mid-stream, this is the client leaving
    return finish(rec, counter)


def _exchange(conn: _Socket, rec: Recording, budget: Budget, limits: Limits, on_event: OnEvent | None,
              head: bytes) -> None:
    """Send the request, read the response head, then its events or its body."""
    request = rec.request
    parser = http1.ResponseParser(head_request=request.method == "HEAD")
    got_head = False
    try:
        try:
            conn.sendall(head + (request.body or b""))
        except OSError:
            pass  # a server that answers before reading the request (a 4xx) and closes: its answer may be in
        first = b""
        while parser.head is None:
            data = conn.read()
            first = parser.feed(data) if data else parser.feed_eof()
        got_head = True
        rec.t_headers = conn.counter.received.t_head or time.perf_counter()
        rec.status = parser.head.status
        rec.response_headers = parser.head.headers
        read_response(rec, budget, limits, on_event, _body(conn, parser, first))
    except _CallbackRaised as exc:
        raise exc.args[0] from None
    except TimeoutError:
        rec.error_kind, rec.error = "timeout", budget.describe_timeout()
    except http1.Incomplete as exc:
        rec.error_kind, rec.error = "closed", str(exc)
    except http1.Malformed as exc:
        rec.error_kind, rec.error = "protocol", f"not HTTP/1.1: {exc}"
    except (OSError, ssl.SSLError) as exc:  # reset, broken pipe, a TLS alert
        rec.error_kind = "closed" if got_head else "connect"
        rec.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _body(conn: _Socket, parser: http1.ResponseParser, first: bytes) -> Iterator[bytes]:
    """The body's bytes, one piece per read (``first``: what came with the head),
    until the response's framing ends."""
    if first:
        yield first
    while not parser.complete:
        data = conn.read()
        if not data:
            parser.feed_eof()  # raises unless the body was delimited by the connection's end
            return
        piece = parser.feed(data)
        if piece:
            yield piece


def read_response(rec: Recording, budget: Budget, limits: Limits, on_event: OnEvent | None,
                  chunks: Iterable[bytes]) -> None:
    """The body of the response whose head ``rec`` holds, given as its raw pieces:
    its events when it is an event stream, else the body itself, bounded. What
    the reading itself finds (a bound passed, a coding not asked for) goes on
    ``rec``; the transport's own errors (timeouts, resets, framing) propagate to
    its recorder, and what ``on_event`` raises as :class:`_CallbackRaised`."""
    request = rec.request
    coding = rec.header("content-encoding")
    try:
        if _is_event_stream(rec.status or 0, rec.header("content-type")):
            _read_events(rec, budget, limits, request.close_after, frozenset(request.end_types), on_event,
                         request.end_sentinel, request.type_field, request.type_from_event,
                         chunks=chunks, content_encoding=coding)
        else:
            _read_body(rec, budget, limits, chunks=chunks, content_encoding=coding)
    except TooLarge as exc:
        rec.error_kind, rec.error = "too_large", str(exc)
    except UnsupportedEncoding as exc:
        rec.error_kind, rec.error = "protocol", str(exc)
    except _TooMany as exc:
        rec.error_kind, rec.error = "too_many", str(exc)


class _TooMany(Exception):
    pass


class _CallbackRaised(Exception):
    """Carries what ``on_event`` raised (args[0]) to the caller, untouched."""


def _read_body(rec: Recording, budget: Budget, limits: Limits, *, chunks: Iterable[bytes],
               content_encoding: str | None) -> None:
    """A response that is not an event stream: keep at most max_body_bytes of it."""
    budget.enter("idle")
    body = bytearray()
    rec.body = b""
    decoder = BoundedDecoder(content_encoding, limits.max_recording_bytes)
    try:
        for raw in chunks:
            for chunk in decoder.feed(raw):
                room = limits.max_body_bytes - len(body)
                body += chunk[:room]
                if len(chunk) > room:
                    rec.body_truncated = True
                    break
            if rec.body_truncated:
                break
    finally:
        rec.body = bytes(body)  # what came, even when the read then failed
    rec.t_end = time.perf_counter()


def _read_events(
    rec: Recording,
    budget: Budget,
    limits: Limits,
    close_after: int | None,
    end_types: frozenset[str],
    on_event: Callable[[RecordedEvent], None] | None = None,
    sentinel: str | None = None,
    type_field: str = "type",
    type_from_event: bool = False,
    *,
    chunks: Iterable[bytes],
    content_encoding: str | None,
) -> None:
    """Read the events of an event-stream body, given as its raw pieces in the
    order they arrived (each piece's arrival time is its events' time)."""
    splitter = LineSplitter(limits.max_event_bytes)
    assembler = MessageAssembler(limits.max_event_bytes)
    budget.enter("first_event", now=rec.t_headers)
    decoder = BoundedDecoder(content_encoding, limits.max_recording_bytes)
    events = rec.events
    detail = rec.detail
    kept = 0

    def take(lines: list, t_perf: float, t_wall: float) -> bool:
        """Feed the lines of one read; True when the client is done (close_after reached)."""
        if not lines:
            return False
        budget.progress(t_perf)
        try:
            messages = assembler.feed_lines(lines)
        except TooLarge as exc:  # the messages before the line that overflowed still count
            if record(exc.messages, t_perf, t_wall):
                return True
            raise
        return record(messages, t_perf, t_wall)

    def record(messages: list, t_perf: float, t_wall: float) -> bool:
        nonlocal kept
        for msg in messages:
            if sentinel is not None and msg.data == sentinel:
                # the protocol's end marker: not an event; the server must end the response now
                if detail.sentinel_at is None:
                    detail.sentinel_at = len(events)
                if budget.phase != "grace":
                    budget.enter("grace")
                continue
            if len(events) >= limits.max_events:
                raise _TooMany(f"more than {limits.describe('max_events')}")
            data, err = parse_json(msg.data)
            event = RecordedEvent(
                index=len(events),
                raw=msg.raw,
                text=msg.data,
                data=data,
                parse_error=err,
                t_perf=t_perf,
                t_wall=t_wall,
                detail=SSEEventDetail(msg.id, msg.event, msg.retry, msg.data_lines),
                type_field=type_field,
                named_type=msg.event if type_from_event and isinstance(data, dict) and type_field not in data else None,
            )
            kept = admit(rec, event, budget, limits, kept)
            if on_event is not None:
                try:
                    on_event(event)
                except Exception as exc:  # past the handlers below, which would take an OSError for a dropped stream
                    raise _CallbackRaised(exc) from exc
            if close_after is not None and len(events) >= close_after:
                return True
            if sentinel is None and budget.phase != "grace" and event.type in end_types:
                budget.enter("grace")  # with a sentinel, the sentinel is the end
        return False

    try:
        for raw in chunks:
            t_perf, t_wall = time.perf_counter(), time.time()
            for chunk in decoder.feed(raw):
                if take(splitter.feed(chunk), t_perf, t_wall):
                    rec.client_closed = True
                    rec.t_end = time.perf_counter()
                    return  # the caller closes the connection, mid-stream
        # end of the body: a held CR ends its line; an unterminated message is dropped
        take(splitter.flush(), time.perf_counter(), time.time())
        rec.t_end = time.perf_counter()
    finally:
        detail.comments = assembler.comments
        detail.line_endings = set(assembler.endings)


SSE = register(SSETransport())
