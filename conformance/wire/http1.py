"""HTTP/1.1 for one request and its response, without I/O (RFC 9112).

The SSE recorder sends one request per connection and reads one response, so
it needs little of a general HTTP client: a request head, a response head, and
the body's framing (``Content-Length``, ``chunked`` or the end of the
connection). httpx and httpcore did this through several layers per chunk of
the body (iterators, exception-mapping context managers, tracing, h11's event
machinery) and per request (URL models, cookie jars, header models): in the
load harness they cost more CPU per event than everything the recorder itself
does. This module is that small part, as pure functions on bytes in the manner
of h11, and as strict as h11 0.16 where it matters to a conformance tool:

* the head may end its lines with CRLF or a bare LF (h11 accepts both), a
  header line must be ``name: value`` with a token name (an obsolete line fold
  joins its line to the header before it with a space, as RFC 9112 tells a
  client to), and the head is bounded (:data:`MAX_HEAD`);
* ``Transfer-Encoding`` must be exactly ``chunked`` (anything else cannot be
  framed), it wins over ``Content-Length``, and several different
  ``Content-Length`` values are an error;
* a chunk's size line must end in CRLF, its data must be followed by CRLF (the
  check whose absence in h11 before 0.16 allowed request smuggling), and sizes,
  extensions and trailers are bounded;
* 1xx responses before the final one are skipped; a response that ends before
  its framing says it should raises :class:`Incomplete`, anything malformed
  :class:`Malformed`.

``tests/test_http1.py`` holds the parser to h11 on the same bytes.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_HEAD = 102_400
"""Most bytes of a response head (httpcore's limit for h11: 100 KiB)."""
MAX_LINE = 4_096
"""Most bytes of a chunk-size line or a trailer line."""
MAX_TRAILERS = 65_536
"""Most bytes of the trailer section after the last chunk."""

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_STATUS = re.compile(rb"HTTP/(\d\.\d) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_TEXT_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NAME_OK = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")


class HTTPError(Exception):
    """The response cannot be read as HTTP/1.1."""


class Malformed(HTTPError):
    """The peer sent bytes that break HTTP/1.1 framing or syntax."""


class Incomplete(HTTPError):
    """The connection ended before the response did."""


class Head(NamedTuple):
    """A final response head."""

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    """As sent: names in their own case, values decoded as Latin-1, in order."""
    size: int
    """Bytes of the head through its blank line, 1xx heads before it included."""


def request_head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    """The bytes of a request head. ValueError for a method, target, name or
    value that cannot go on the wire as it is (a CR or LF would split the head
    into something the caller did not write; a value outside Latin-1 has no
    bytes in HTTP)."""
    if not _NAME_OK.fullmatch(method):
        raise ValueError(f"illegal method {method!r}")
    if not target or any(c in target for c in " \r\n\0") or not target.isascii():
        raise ValueError(f"illegal request target {target!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if not _NAME_OK.fullmatch(name):
            raise ValueError(f"illegal header name {name!r}")
        if _TEXT_BAD.search(value):
            raise ValueError(f"illegal header value for {name}: {value!r}")
        lines.append(f"{name}: {value}")
    text = "\r\n".join(lines) + "\r\n\r\n"
    return text.encode("latin-1")  # UnicodeEncodeError (a ValueError) outside Latin-1


def _head_end(buf: bytes) -> int:
    """Offset past the blank line that ends a head (CRLF CRLF, or LF LF with an
    optional CR between, as h11 reads it), or -1."""
    i = buf.find(b"\n\r\n")
    j = buf.find(b"\n\n")
    ends = [k + 3 for k in (i,) if k >= 0] + [k + 2 for k in (j,) if k >= 0]
    return min(ends) if ends else -1


def parse_head(raw: bytes) -> tuple[str, int, str, list[tuple[str, str]]]:
    """(version, status, reason, headers) of a complete head (its blank line included)."""
    lines = raw.split(b"\n")
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    while lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise Malformed("empty response head")
    m = _STATUS.fullmatch(lines[0])
    if m is None:
        raise Malformed(f"illegal status line {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # obs-fold: a client replaces it with a space (RFC 9112 section 5.2)
            if not headers:
                raise Malformed(f"a folded line before any header: {line[:80]!r}")
            value = line.strip(b" \t")
            if _VALUE_BAD.search(value):
                raise Malformed(f"illegal header value in {line[:80]!r}")
            name_s, prev = headers[-1]
            headers[-1] = (name_s, f"{prev} {value.decode('latin-1')}" if prev else value.decode("latin-1"))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise Malformed(f"illegal header line {line[:80]!r}")
        value = value.strip(b" \t")
        if _VALUE_BAD.search(value):
            raise Malformed(f"illegal header value in {line[:80]!r}")
        headers.append((name.decode("ascii"), value.decode("latin-1")))
    return m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1"), headers


def _framing(status: int, headers: list[tuple[str, str]], head_request: bool) -> tuple[str, int]:
    """How the body of a final response ends: ('none'|'length'|'chunked'|'close', length)."""
    if head_request or status in (204, 304):
        return "none", 0
    codings = [v for k, v in headers if k.lower() == "transfer-encoding"]
    if codings:
        joined = [c.strip().lower() for v in codings for c in v.split(",") if c.strip()]
        if joined != ["chunked"]:
            raise Malformed(f"Transfer-Encoding {', '.join(codings)!r} cannot be read (only 'chunked' can)")
        return "chunked", 0
    lengths = {c.strip() for k, v in headers if k.lower() == "content-length" for c in v.split(",")}
    if lengths:
        if len(lengths) > 1 or not all(n.isdigit() and n.isascii() for n in lengths):
            raise Malformed(f"Content-Length {', '.join(sorted(lengths))!r} is not one length")
        n = int(lengths.pop())
        return ("length", n) if n else ("none", 0)
    return "close", 0


class ResponseParser:
    """Reads one response: :meth:`feed` the bytes as they come, :meth:`feed_eof`
    at the end of the connection. Both return the body bytes they completed
    (chunk sizes and CRLFs removed); :attr:`head` is set once the final head
    is in, :attr:`complete` once the body's framing ended. Memory held is
    bounded by :data:`MAX_HEAD` before the head and by :data:`MAX_LINE` /
    :data:`MAX_TRAILERS` after it: body bytes are passed on as they come."""

    __slots__ = ("head", "complete", "_head_request", "_buf", "_mode", "_left", "_state", "_skipped", "_trailers")

    def __init__(self, *, head_request: bool = False) -> None:
        self.head: Head | None = None
        self.complete = False
        self._head_request = head_request
        self._buf = b""
        self._mode = ""
        self._left = 0
        self._state = "size"  # chunked: size, data, crlf, trailer
        self._skipped = 0
        self._trailers = 0

    def feed(self, data: bytes) -> bytes:
        """The body bytes ``data`` completes (possibly empty)."""
        if self.complete:
            return b""  # bytes after the response (a keep-alive peer's next one): not ours
        if self.head is None:
            data = self._read_head(data)
            if self.head is None or not data:
                return b""
        mode = self._mode
        if mode == "chunked":
            return self._chunked(data)
        if mode == "length":
            take = data[: self._left]
            self._left -= len(take)
            if self._left == 0:
                self.complete = True
            return take
        if mode == "close":
            return data
        return b""

    def feed_eof(self) -> bytes:
        """The end of the connection: Incomplete unless the framing allowed it."""
        if self.complete:
            return b""
        if self.head is None:
            if self._buf.strip():
                raise Incomplete("the connection closed in the middle of the response head")
            raise Incomplete("the server closed the connection without sending a response")
        if self._mode == "close":
            self.complete = True
            return b""
        what = "chunked body" if self._mode == "chunked" else f"body ({self._left} bytes of Content-Length missing)"
        raise Incomplete(f"the connection closed before the end of the {what}")

    def _read_head(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        while True:
            end = _head_end(buf)
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise Malformed(f"the response head is longer than {MAX_HEAD} bytes")
                self._buf = buf
                return b""
            if end > MAX_HEAD:
                raise Malformed(f"the response head is longer than {MAX_HEAD} bytes")
            version, status, reason, headers = parse_head(buf[:end])
            self._skipped += end
            buf = buf[end:]
            if 100 <= status < 200:
                if status == 101:
                    raise Malformed("101 Switching Protocols to a request that asked for no upgrade")
                continue  # an interim response (100 Continue, 103 Early Hints): the final one follows
            self._mode, self._left = _framing(status, headers, self._head_request)
            self.head = Head(version, status, reason, headers, self._skipped)
            self._buf = b""
            if self._mode == "none":
                self.complete = True
            return buf

    def _chunked(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        pos, n = 0, len(buf)
        out: list[bytes] = []
        state, left = self._state, self._left
        while pos < n:
            if state == "data":
                take = min(left, n - pos)
                out.append(buf[pos:pos + take])
                pos += take
                left -= take
                if left == 0:
                    state = "crlf"
            elif state == "size":
                i = buf.find(b"\n", pos, pos + MAX_LINE)
                if i < 0:
                    if n - pos >= MAX_LINE:
                        raise Malformed(f"a chunk-size line is longer than {MAX_LINE} bytes")
                    break
                if i == pos or buf[i - 1] != 13:
                    raise Malformed(f"a chunk-size line does not end in CRLF: {buf[pos:i + 1][:40]!r}")
                size = buf[pos:i - 1].split(b";", 1)[0].rstrip(b" \t")
                if not _HEX.fullmatch(size):
                    raise Malformed(f"illegal chunk size {buf[pos:i - 1][:40]!r}")
                pos = i + 1
                left = int(size, 16)
                state = "data" if left else "trailer"
            elif state == "crlf":
                if n - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise Malformed("a chunk's data is not followed by CRLF")
                pos += 2
                state = "size"
            else:  # trailer section: header lines, then a blank line
                i = buf.find(b"\n", pos)
                if i < 0:
                    if n - pos >= MAX_LINE:
                        raise Malformed(f"a trailer line is longer than {MAX_LINE} bytes")
                    break
                line = buf[pos:i]
                pos = i + 1
                self._trailers += len(line) + 1
                if self._trailers > MAX_TRAILERS:
                    raise Malformed(f"the trailer section is longer than {MAX_TRAILERS} bytes")
                if line in (b"", b"\r"):
                    self.complete = True
                    break
        self._buf = buf[pos:] if pos < n and not self.complete else b""
        self._state, self._left = state, left
        return out[0] if len(out) == 1 else b"".join(out)
