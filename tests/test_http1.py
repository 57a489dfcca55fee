"""The SSE recorder's HTTP/1.1 parser (conformance/wire/http1.py), held to h11 on the same bytes.

h11 is what read these responses before (through httpx); the parser replaced it
for speed, so it must read every valid response the same way (status, headers,
body) whatever the reads' boundaries, and refuse what h11 refuses.
"""

from __future__ import annotations

import h11
import pytest

from conformance.wire import http1

CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"18\r\ndata: {\"type\":\"start\"}\n\n\r\n"
           b"5;name=value\r\nhello\r\n"
           b"0\r\nX-Trailer: yes\r\n\r\n")

VALID = {
    "chunked with an extension and a trailer": CHUNKED,
    "content-length": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\nRetry-After: 1\r\n\r\n{\"busy\":1}\n",
    "close-delimited": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n",
    "http/1.0": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it",
    "204 has no body": b"HTTP/1.1 204 No Content\r\n\r\n",
    "interim 100 and 103 first": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "bare LF head": b"HTTP/1.1 200 OK\nContent-Length: 3\nX-A:  spaced  \n\nabc",
    "no reason phrase": b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    "empty header value": b"HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 1\r\n\r\nx",
    "folded header": b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\nContent-Length: 1\r\n\r\nx",
    "repeated equal lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    "chunked wins over length": (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"2\r\nok\r\n0\r\n\r\n"),
    "upper-case hex size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
}

MALFORMED = {
    "not http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "bad status line": b"HTTP/1.1 2000 OK\r\n\r\n",
    "header without a colon": b"HTTP/1.1 200 OK\r\nContent-Type text/plain\r\n\r\n",
    "space before the colon": b"HTTP/1.1 200 OK\r\nContent-Type : text/plain\r\n\r\n",
    "unknown transfer coding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    "conflicting lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "length not a number": b"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nab",
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    "chunk data without CRLF": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
    "chunk size line with a bare LF": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n",
}

INCOMPLETE = {
    "nothing at all": b"",
    "half a head": b"HTTP/1.1 200 OK\r\nContent-Ty",
    "short length": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    "cut chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n18\r\ndata: {\"ty",
    "no last chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n",
}


def h11_read(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """What h11 (as httpcore drove it) reads from ``raw`` followed by the end of the connection."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")
    status, headers, body = None, [], b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = [(k.decode(), v.decode("latin-1")) for k, v in event.headers.raw_items()]
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return status, headers, body
        elif event is h11.NEED_DATA:
            raise h11.RemoteProtocolError("incomplete")


def ours(raw: bytes, step: int | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """The parser on ``raw`` fed ``step`` bytes at a time (all at once: None), then EOF."""
    p = http1.ResponseParser()
    body = b""
    pieces = [raw] if step is None else [raw[i:i + step] for i in range(0, len(raw), step)]
    for piece in pieces:
        body += p.feed(piece)
    if not p.complete:
        body += p.feed_eof()
    assert p.head is not None and p.complete
    return p.head.status, p.head.headers, body


@pytest.mark.parametrize("raw", VALID.values(), ids=VALID.keys())
def test_valid_responses_read_as_h11_reads_them(raw: bytes) -> None:
    expected = h11_read(raw)
    status, headers, body = ours(raw)
    assert (status, body) == (expected[0], expected[2])
    # h11 joins a folded line with one space, as we do; it rewrites the framing
    # headers (one Content-Length, a lower-case coding), which we keep as sent
    framing = ("content-length", "transfer-encoding")
    assert [(k, v) for k, v in headers if k.lower() not in framing] == \
        [(k, v) for k, v in expected[1] if k.lower() not in framing]
    for step in range(1, len(raw) + 1):  # every split of the bytes into reads gives the same result
        assert ours(raw, step)[::2] == (status, body), step


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_responses_are_refused_like_h11(raw: bytes) -> None:
    with pytest.raises(h11.RemoteProtocolError):
        h11_read(raw)
    with pytest.raises(http1.Malformed):
        ours(raw)


@pytest.mark.parametrize("raw", INCOMPLETE.values(), ids=INCOMPLETE.keys())
def test_responses_cut_short_are_incomplete(raw: bytes) -> None:
    with pytest.raises(h11.RemoteProtocolError):
        h11_read(raw)
    with pytest.raises(http1.Incomplete):
        ours(raw)


def test_body_bytes_pass_on_as_they_come_and_memory_stays_bounded() -> None:
    p = http1.ResponseParser()
    assert p.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n") == b""
    assert p.head is not None and p.head.status == 200 and p.head.size == 47
    assert p.feed(b"x" * 70_000) == b"x" * 70_000  # a 1 MiB chunk is not held until it is whole
    assert not p.complete
    with pytest.raises(http1.Malformed, match="longer than"):
        http1.ResponseParser().feed(b"HTTP/1.1 200 OK\r\nX: " + b"y" * http1.MAX_HEAD)
    endless = http1.ResponseParser()
    endless.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(http1.Malformed, match="chunk-size line"):
        endless.feed(b"1" * http1.MAX_LINE)


def test_bytes_after_the_response_are_not_its_body() -> None:
    p = http1.ResponseParser()
    assert p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n") == b"ok"
    assert p.complete and p.feed(b"more") == b""


def test_request_heads_refuse_what_would_split_them() -> None:
    head = http1.request_head("POST", "/agent?q=1", [("Host", "h:1"), ("Content-Length", "2")])
    assert head == b"POST /agent?q=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n\r\n"
    for bad in ([("X", "a\r\nInjected: 1")], [("Bad Name", "v")], [("X", "\u20ac")]):
        with pytest.raises(ValueError):
            http1.request_head("GET", "/", bad)
    with pytest.raises(ValueError):
        http1.request_head("GET", "/a b", [])
