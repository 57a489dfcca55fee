"""The SSE recorder: one GET with httpx, every byte counted, every read bounded.

httpx talks to the backend through an httpcore connection pool whose network
backend wraps each stream: the wrapper counts the bytes that cross the socket
(:mod:`.wire`) and replaces httpcore's read timeout by the recorder's own
deadline (:class:`.common.Budget`), so that the head, the first event, the gap
between reads and the whole recording are each bounded without a watchdog
thread. The body is split into lines and messages by :mod:`.sse_lines`.
Synchronous on purpose: it runs as is in pytest and under gevent (Locust).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import h11
import httpcore
import httpx

from conformance.recording import Limits, RecordedEvent, Recording, SSEDetail, SSEEventDetail, media_type
from conformance.request import Request

from .common import Budget, admit, parse_json, query_url, shell_line, tls_context
from .decode import BoundedDecoder, UnsupportedEncoding
from .sse_lines import LineSplitter, MessageAssembler, TooLarge
from .tls import MemoryTLS
from .transport import OnEvent, Transport, register
from .wire import WireCounter, finish


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


def _is_event_stream(response: httpx.Response) -> bool:
    return (200 <= response.status_code < 300 and response.status_code != 204
            and media_type(response.headers.get("content-type")) == "text/event-stream")


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
    """Server-Sent Events over HTTP/1.1 (httpx), as a browser's EventSource reads them."""

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


def record_http(transport: SSETransport, request: Request, limits: Limits, on_event: OnEvent | None, *,
                counter: WireCounter | None = None, http2: bool = False,
                ssl_context: ssl.SSLContext | None = None) -> Recording:
    """Record one SSE request with httpx over a counting connection: HTTP/1.1, or
    HTTP/2 (``http2=True``: prior knowledge on ``http://``, ALPN on ``https://``)
    for the transports of the ``sse`` binding that speak it (``conformance.wire.sse_h2``),
    which bring their own ``counter`` (one that knows HTTP/2 frames)."""
    url = request.url
    rec = Recording(request=request, detail=transport.new_detail())
    rec.wall_start = time.time()
    rec.t_start = time.perf_counter()
    budget = Budget(limits, rec.t_start)
    budget.enter("head", now=rec.t_start)
    counter = WireCounter() if counter is None else counter
    end_set = frozenset(request.end_types)
    req_headers = transport.request_headers(request)

    pool = httpcore.ConnectionPool(
        ssl_context=(ssl_context or tls_context()) if url.lower().startswith("https:") else None,
        max_connections=1,
        retries=0,
        http1=not http2,
        http2=http2,
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
                if _is_event_stream(response):
                    _read_events(response, rec, budget, limits, request.close_after, end_set, on_event,
                                 request.end_sentinel, request.type_field, request.type_from_event,
                                 chunks=_h11_body(pool))
                else:
                    _read_body(response, rec, budget, limits)
            finally:
                response.close()  # mid-stream, this closes the connection (the client leaves)
    except _CallbackRaised as exc:
        raise exc.args[0] from None
    except TooLarge as exc:
        rec.error_kind, rec.error = "too_large", str(exc)
    except UnsupportedEncoding as exc:
        rec.error_kind, rec.error = "protocol", str(exc)
    except _TooMany as exc:
        rec.error_kind, rec.error = "too_many", str(exc)
    except httpx.TimeoutException as exc:
        rec.error_kind = "connect" if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) else "timeout"
        rec.error = f"connect timed out after {limits.describe('connect')}" if rec.error_kind == "connect" else budget.describe_timeout()
    except (httpx.HTTPError, httpx.InvalidURL, OSError, UnicodeError) as exc:  # UnicodeError: IDNA
        rec.error_kind = _classify(exc, got_head=got_head)
        rec.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return finish(rec, counter)


class _TooMany(Exception):
    pass


def _h11_body(pool: httpcore.ConnectionPool) -> Iterator[bytes] | None:
    """The raw body of the response just received, read straight from the
    connection's h11 state machine and our counting stream.

    httpx and httpcore wrap every chunk of a body in several layers (iterators,
    exception-mapping context managers, tracing): in the harness benchmark they
    cost more per event than everything the recorder itself does. Past the head,
    this reader does what httpcore's HTTP/1.1 body loop does (``next_event``,
    read on NEED_DATA, the same end-of-response rule) on the same h11 connection,
    so framing, limits and error messages stay h11's, and maps the errors as
    httpx would (``httpx.ReadTimeout``, ``ReadError``, ``RemoteProtocolError``).
    None when the pool is not the HTTP/1.1 connection this expects (then the
    caller reads through httpx)."""
    try:
        http11 = pool.connections[0]._connection  # type: ignore[attr-defined]
        state, stream = http11._h11_state, http11._network_stream
        size = int(http11.READ_NUM_BYTES)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    if not isinstance(state, h11.Connection) or not isinstance(stream, (_CountingStream, _TLSStream)):
        return None

    def body() -> Iterator[bytes]:
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is h11.NEED_DATA:
                try:
                    data = stream.read(size)
                except httpcore.ReadTimeout as exc:
                    raise httpx.ReadTimeout(str(exc)) from exc
                except httpcore.ReadError as exc:
                    raise httpx.ReadError(str(exc)) from exc
                state.receive_data(data)
            elif type(event) is h11.Data:
                yield bytes(event.data)
            else:  # EndOfMessage, ConnectionClosed, PAUSED: the body is over
                return
    return body()


def _decoder(response: httpx.Response, limits: Limits) -> BoundedDecoder:
    return BoundedDecoder(response.headers.get("content-encoding"), limits.max_recording_bytes)


class _CallbackRaised(Exception):
    """Carries what ``on_event`` raised (args[0]) to the caller, untouched."""


def _read_body(response: httpx.Response, rec: Recording, budget: Budget, limits: Limits) -> None:
    """A response that is not an event stream: keep at most max_body_bytes of it."""
    budget.enter("idle")
    body = bytearray()
    rec.body = b""
    decoder = _decoder(response, limits)
    try:
        for raw in response.iter_raw():
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
    response: httpx.Response,
    rec: Recording,
    budget: Budget,
    limits: Limits,
    close_after: int | None,
    end_types: frozenset[str],
    on_event: Callable[[RecordedEvent], None] | None = None,
    sentinel: str | None = None,
    type_field: str = "type",
    type_from_event: bool = False,
    chunks: Iterable[bytes] | None = None,
) -> None:
    """Read the events of an event-stream response. ``chunks``: the raw body (by
    default ``response.iter_raw()``; the recorder's own reader, :func:`_h11_body`)."""
    splitter = LineSplitter(limits.max_event_bytes)
    assembler = MessageAssembler(limits.max_event_bytes)
    budget.enter("first_event", now=rec.t_headers)
    decoder = _decoder(response, limits)
    kept = 0

    def take(lines: list, t_perf: float, t_wall: float) -> bool:
        """Feed lines; True when the client is done (close_after reached)."""
        nonlocal kept
        if lines:
            budget.progress(t_perf)
        for line in lines:
            msg = assembler.feed_line(line)
            if msg is None:
                continue
            if sentinel is not None and msg.data == sentinel:
                # the protocol's end marker: not an event; the server must end the response now
                if rec.detail.sentinel_at is None:
                    rec.detail.sentinel_at = len(rec.events)
                if budget.phase != "grace":
                    budget.enter("grace")
                continue
            if len(rec.events) >= limits.max_events:
                raise _TooMany(f"more than {limits.describe('max_events')}")
            data, err = parse_json(msg.data)
            event = RecordedEvent(
                index=len(rec.events),
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
            if close_after is not None and len(rec.events) >= close_after:
                return True
            if event.type in end_types and sentinel is None and budget.phase != "grace":
                budget.enter("grace")  # with a sentinel, the sentinel is the end
        return False

    try:
        for raw in (chunks if chunks is not None else response.iter_raw()):
            for chunk in decoder.feed(raw):
                if take(splitter.feed(chunk), time.perf_counter(), time.time()):
                    rec.client_closed = True
                    rec.t_end = time.perf_counter()
                    return  # the caller closes the response, mid-stream
        # end of the body: a held CR ends its line; an unterminated message is dropped
        take(splitter.flush(), time.perf_counter(), time.time())
        rec.t_end = time.perf_counter()
    finally:
        rec.detail.comments = assembler.comments
        rec.detail.line_endings = set(assembler.endings)


SSE = register(SSETransport())
