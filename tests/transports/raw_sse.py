"""A third transport behind the transport interface, to prove the seam: SSE read
from a plain socket with HTTP/1.0 (no httpx), registered as ``sse-raw``.

It follows the ``sse`` binding, so every SSE rule applies to it; a profile that
names it (``transports: {sse-raw: {binding: sse}}``) gets items, verdicts,
parity and reproduction lines for it without a change anywhere else. Load it
into a pytest run with ``-p raw_sse`` (``tests/transports`` on the path).
"""

from __future__ import annotations

import socket
import time
import urllib.parse

from conformance.recording import Limits, RecordedEvent, Recording, SSEDetail, SSEEventDetail, media_type
from conformance.request import Request
from conformance.wire import SSE, Transport, register
from conformance.wire.common import Budget, parse_json, query_url, shell_line
from conformance.wire.sse_lines import LineSplitter, MessageAssembler, TooLarge
from conformance.wire.wire import WireCounter, finish, head_end


class Dechunker:
    """HTTP/1.1 chunked transfer coding, undone incrementally (sizes and CRLFs dropped)."""

    def __init__(self) -> None:
        self._buf = b""
        self._left = 0  # bytes of the current chunk still to pass on (+2 for its CRLF)

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while self._buf:
            if self._left > 2:
                take = self._buf[: self._left - 2]
                out += take
                self._buf = self._buf[len(take):]
                self._left -= len(take)
            elif self._left > 0:
                drop = min(self._left, len(self._buf))
                self._buf, self._left = self._buf[drop:], self._left - drop
            else:
                line_end = self._buf.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(self._buf[:line_end].split(b";")[0] or b"0", 16)
                self._buf = self._buf[line_end + 2:]
                self._left = size + 2
        return bytes(out)


class RawSSE(Transport):
    name = "sse-raw"
    binding = "sse"
    label = "SSE (raw HTTP/1.0)"

    def record(self, request: Request, limits: Limits = Limits(), on_event=None) -> Recording:
        rec = Recording(request=request, detail=self.new_detail())
        rec.wall_start, rec.t_start = time.time(), time.perf_counter()
        budget = Budget(limits, rec.t_start)
        budget.enter("head", now=rec.t_start)
        counter = WireCounter()
        try:
            parts = urllib.parse.urlsplit(query_url(request.url, request.query))
            request_head = self._head(parts, request)
        except (ValueError, UnicodeError) as exc:  # e.g. a lone surrogate in a drawn value
            rec.error_kind, rec.error = "connect", f"could not build the request: {type(exc).__name__}: {exc}"
            return finish(rec, counter)
        try:
            sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=limits.connect)
        except OSError as exc:
            rec.error_kind, rec.error = "connect", f"{type(exc).__name__}: {exc}"
            return finish(rec, counter)
        counter.connected()
        try:
            self._exchange(sock, rec, request_head, request, limits, budget, counter, on_event)
        except TimeoutError:
            rec.error_kind, rec.error = "timeout", budget.describe_timeout()
        except TooLarge as exc:
            rec.error_kind, rec.error = "too_large", str(exc)
        except OSError as exc:
            rec.error_kind, rec.error = "closed", f"{type(exc).__name__}: {exc}"
        finally:
            sock.close()
        return finish(rec, counter)

    @staticmethod
    def _head(parts, request: Request) -> tuple[bytes, list[tuple[str, str]]]:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = [("Host", parts.netloc), *SSE.request_headers(request).items()]
        head = f"{request.method} {target} HTTP/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        return head.encode("latin-1"), headers

    def _exchange(self, sock, rec, request_head, request, limits, budget, counter, on_event) -> None:
        data, rec.sent_headers = request_head
        sock.sendall(data)
        counter.on_sent(data)
        buf = b""
        while (end := head_end(buf)) is None:
            buf += self._recv(sock, budget, counter)
        lines = buf[:end].decode("latin-1").splitlines()
        rec.t_headers = time.perf_counter()
        rec.status = int(lines[0].split()[1])
        rec.response_headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:] if ":" in ln]
        body = buf[end:]
        if not (rec.status == 200 and media_type(rec.header("content-type")) == "text/event-stream"):
            while len(body) < limits.max_body_bytes and (more := self._recv(sock, budget, counter, eof_ok=True)):
                body += more
            rec.body = body[: limits.max_body_bytes]
            return
        splitter, assembler = LineSplitter(limits.max_event_bytes), MessageAssembler(limits.max_event_bytes)
        # uvicorn answers even an HTTP/1.0 request with chunked encoding
        dechunk = Dechunker() if (rec.header("transfer-encoding") or "").lower() == "chunked" else None
        budget.enter("first_event")
        while True:
            for line in splitter.feed(dechunk.feed(body) if dechunk else body):
                msg = assembler.feed_line(line)
                if msg is None:
                    continue
                data_, err = parse_json(msg.data)
                event = RecordedEvent(len(rec.events), msg.raw, msg.data, data_, err, time.perf_counter(), time.time(),
                                      SSEEventDetail(msg.id, msg.event, msg.retry, msg.data_lines), request.type_field)
                rec.events.append(event)
                if rec.t_first_event is None:
                    rec.t_first_event = event.t_perf
                    budget.enter("idle")
                if on_event is not None:
                    on_event(event)
                if request.close_after is not None and len(rec.events) >= request.close_after:
                    rec.client_closed = True
                    return
                if event.type in request.end_types:
                    budget.enter("grace")
            body = self._recv(sock, budget, counter, eof_ok=True)
            if not body:
                rec.detail.comments, rec.detail.line_endings = assembler.comments, set(assembler.endings)
                return

    @staticmethod
    def _recv(sock, budget, counter, eof_ok: bool = False) -> bytes:
        remaining = budget.remaining()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data and not eof_ok:
            raise ConnectionError("the server closed the connection before the response head")
        counter.on_received(data)
        return data

    def accepted(self, rec: Recording) -> bool:
        return SSE.accepted(rec)

    def new_detail(self) -> SSEDetail:
        return SSEDetail()

    def incomplete(self, rec: Recording):
        return SSE.incomplete(rec)

    def reproduce(self, request: Request) -> str:
        return shell_line(["curl", "-0", "-N", *[x for k, v in SSE.request_headers(request).items()
                                                  for x in ("-H", f"{k}: {v}")],
                           query_url(request.url, request.query)])


RAW_SSE = register(RawSSE())
