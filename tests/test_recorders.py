"""The transport recorders against real sockets: stub servers, misbehaving servers, a byte-counting relay.

Every server listens on 127.0.0.1 (uvicorn in a thread, or a raw socket server
for what no framework would send). Timing assertions use generous margins: the
point is "bounded", not "fast".
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from httpx_sse._decoders import SSEDecoder

from conformance.wire import SSE, record_sse, record_ws, ws_url
from conformance.wire.sse_lines import Line, LineSplitter, MessageAssembler, TooLarge, parse_stream
from conformance.wire.wire import WireCounter, head_end
from conformance.recording import Limits
try:
    from tests import stub_servers as stubs
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    import stub_servers as stubs  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 1.5
"""Seconds allowed above a bound for scheduling on a loaded 2-core machine."""

FAST = Limits(connect=2, first_event=1.0, idle=0.5, total=4.0, end_grace=0.5, max_event_bytes=100_000, max_events=200)
FLOOD = Limits(connect=2, first_event=3.0, idle=2.0, total=8.0, end_grace=0.5, max_event_bytes=100_000, max_events=200)
"""For the flood cases: the count and size bounds must stop them, so the time
bounds are loose enough that a busy machine does not end them first."""


@pytest.fixture(scope="module")
def stub():
    with stubs.UvicornThread(stubs.stub_app()) as server:
        yield server


@pytest.fixture(scope="module")
def relay(stub):
    with stubs.CountingRelay(stub.port) as r:
        yield r


def raw_server(handler):
    return stubs.RawServer(handler)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    rec = fn(*args, **kwargs)
    return rec, time.perf_counter() - t0


# ===================================================================== sans-I/O


class TestLineSplitter:
    def test_each_terminator_is_a_line_end(self):
        s = LineSplitter(100)
        lines = s.feed(b"a\nb\r\nc\rd")
        assert [(ln.content, ln.ending) for ln in lines] == [(b"a", "LF"), (b"b", "CRLF"), (b"c", "CR")]
        assert s.pending == 1  # "d" waits for its line end
        assert s.flush() == []  # an unterminated tail is dropped

    def test_crlf_split_across_chunks_is_one_line_end(self):
        s = LineSplitter(100)
        assert s.feed(b"data: x\r") == []
        lines = s.feed(b"\n\r")
        assert [(ln.content, ln.ending) for ln in lines] == [(b"data: x", "CRLF")]
        # a held CR at end of stream is a CR line end (here: the blank line)
        assert [(ln.content, ln.ending) for ln in s.flush()] == [(b"", "CR")]

    def test_byte_by_byte_equals_whole(self):
        body = b'\xef\xbb\xbf: hi\r\nid: 1\r\ndata: {"a":\rdata: 1}\r\n\r\n: ping\n\nid: 2\ndata: {"type": "x"}\n\n'
        whole = parse_stream(body)
        s, asm, msgs = LineSplitter(1000), MessageAssembler(1000), []
        for i in range(len(body)):
            for line in s.feed(body[i : i + 1]):
                m = asm.feed_line(line)
                if m:
                    msgs.append(m)
        assert [m.data for m in msgs] == [m.data for m in whole.messages] == ['{"a":\n1}', '{"type": "x"}']
        assert asm.comments == whole.comments == 2
        assert whole.endings == {"LF", "CRLF", "CR"}

    def test_bom_is_dropped_only_at_start(self):
        parsed = parse_stream(b"\xef\xbb\xbfdata: 1\n\n")
        assert [m.data for m in parsed.messages] == ["1"]

    def test_endless_line_is_stopped(self):
        s = LineSplitter(1000)
        with pytest.raises(TooLarge):
            for _ in range(100):
                s.feed(b"x" * 100)

    @pytest.mark.parametrize("seed", range(40))
    def test_any_cut_of_long_lines_gives_the_lines_of_the_whole(self, seed):
        """Long lines come in many reads (their pieces are held apart and joined once):
        any cut of a body, CRs at the cuts included, gives the lines of the whole."""
        import random
        rng = random.Random(seed)
        body = b"".join(rng.choice([b"x" * rng.randrange(1, 3000), b"data: " + b"y" * rng.randrange(0, 500), b""])
                        + rng.choice([b"\n", b"\r\n", b"\r"]) for _ in range(30))
        body += rng.choice([b"", b"an unterminated tail"])  # dropped; a CR before it still ends a line
        whole = LineSplitter(10_000)
        expect = whole.feed(body) + whole.flush()
        s, got, pos = LineSplitter(10_000), [], 0
        while pos < len(body):
            step = rng.choice([1, 2, rng.randrange(1, 400), rng.randrange(1, 5000)])
            got += s.feed(body[pos:pos + step])
            pos += step
            assert s.pending <= 10_001
        assert got + s.flush() == expect

    def test_a_held_cr_ends_its_line_whatever_follows(self):
        s = LineSplitter(1000)
        assert s.feed(b"x" * 500 + b"\r") == []  # held: may be half a CRLF
        assert s.feed(b"an unterminated tail") == [Line(b"x" * 500, "CR")]  # not half a CRLF after all
        assert s.flush() == []
        s = LineSplitter(1000)
        assert s.feed(b"a\r") + s.feed(b"b") + s.feed(b"c\n") == [Line(b"a", "CR"), Line(b"bc", "LF")]

    def test_a_line_in_many_reads_is_stopped_at_the_bound(self):
        s = LineSplitter(1000)
        for _ in range(9):
            assert s.feed(b"x" * 100) == []
        assert s.pending == 900
        assert s.feed(b"x" * 101) == []  # the bound plus a byte that may be a held CR
        with pytest.raises(TooLarge):
            s.feed(b"x")


class TestMessages:
    def test_comment_after_id_is_not_an_event(self):
        """httpx-sse#35: the sticky last id must not turn a keep-alive into an event."""
        parsed = parse_stream(b'id: 1\ndata: {"seq": 1}\n\n: ping\n\n: ping\n\nid: 2\ndata: {"seq": 2}\n\n')
        assert [m.data for m in parsed.messages] == ['{"seq": 1}', '{"seq": 2}']
        assert [m.id for m in parsed.messages] == ["1", "2"]
        assert parsed.comments == 2

    def test_httpx_sse_decoder_quirk_is_real(self):
        """Pins the upstream behaviour the assembler works around (skips once fixed upstream)."""
        dec = SSEDecoder()
        out = [dec.decode(line) for line in ["id: 1", "data: x", "", ": ping", ""]]
        dispatched = [e for e in out if e is not None]
        if len(dispatched) == 1:
            pytest.skip("httpx-sse no longer emits the spurious event (issue 35 fixed)")
        assert dispatched[1].data == "" and dispatched[1].id == "1"

    def test_fields_as_sent(self):
        parsed = parse_stream(b"retry: 1500\nid: 7\nevent: custom\ndata: a\ndata: b\n\nid: 8\n\ndata: c\n\n")
        first, second = parsed.messages
        assert (first.id, first.event, first.retry, first.data, first.data_lines) == ("7", "custom", 1500, "a\nb", 2)
        # the id-only block is not an event; the next message carries no id of its own
        assert (second.id, second.event, second.retry, second.data) == (None, None, None, "c")
        assert first.raw == b"retry: 1500\nid: 7\nevent: custom\ndata: a\ndata: b\n\n"

    def test_message_bound_counts_all_its_lines(self):
        asm = MessageAssembler(max_message=50)
        with pytest.raises(TooLarge):
            for _ in range(10):
                asm.feed_line(Line(b"data: " + b"y" * 10, "LF"))

    def test_unterminated_message_is_dropped(self):
        parsed = parse_stream(b"data: 1\n\ndata: 2\n")
        assert [m.data for m in parsed.messages] == ["1"]
        assert parsed.tail == len(b"data: 2\n")


def test_parse_json_is_strict_like_a_browser():
    """Python's json.dumps writes NaN for a float nan; JSON.parse in a browser throws on it."""
    from conformance.wire.common import parse_json

    assert parse_json('{"type": "verification", "confidence": 0.5}') == ({"type": "verification", "confidence": 0.5}, None)
    for bad in ('{"confidence": NaN}', '{"x": Infinity}', "-Infinity"):
        data, err = parse_json(bad)
        assert data is None and err.startswith("invalid JSON") and "not a JSON value" in err, bad
    assert parse_json("[" * 100_000)[1] == "invalid JSON: nested too deeply"


class TestWire:
    def test_head_end(self):
        assert head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody") == 25
        assert head_end(b"HTTP/1.1 200 OK\nA: b\n\nbody") == 22
        assert head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n") is None

    def test_head_split_across_reads(self):
        c = WireCounter()
        c.on_received(b"HTTP/1.1 200 OK\r\nX: y\r")
        assert c.received.head is None and c.received.t_first_body is None
        c.on_received(b"\n\r\n")
        assert c.received.head == 25 and c.received.t_first_body is None
        c.on_received(b"data")
        assert c.bytes_received == 29 and c.received.t_first_body is not None

    def test_ws_url(self):
        assert ws_url("http://h:1/ws/x", {"question": "a b&c"}) == "ws://h:1/ws/x?question=a%20b%26c"
        assert ws_url("https://h/ws?x=1", {"y": "2"}) == "wss://h/ws?x=1&y=2"
        assert ws_url("ws://h/p") == "ws://h/p"


# ===================================================================== wire counts


def _assert_counts_match(rec, relay):
    relay.wait_idle()
    assert rec.bytes_sent == relay.up > 0
    assert rec.bytes_received == relay.down > 0
    assert rec.head_bytes_sent == head_end(bytes(relay.captured["up"]))
    assert rec.head_bytes_received == head_end(bytes(relay.captured["down"]))


@pytest.mark.parametrize("query", [{"n": "6"}, {"n": "6", "keepalive": "1", "multiline": "1", "eol": "CRLF"}, {"n": "4", "pad": "3000"}])
def test_sse_wire_bytes_equal_relay_count(relay, query):
    relay.reset()
    rec = record_sse(relay.base_url + "/sse", params=query, limits=FAST)
    assert rec.ok, rec.error
    assert len(rec.events) == int(query["n"])
    _assert_counts_match(rec, relay)
    # a GET has no body: the whole request is its head
    assert rec.head_bytes_sent == rec.bytes_sent
    # the body on the wire is at least the events' bytes (chunked framing comes on top)
    assert rec.bytes_received - rec.head_bytes_received > sum(len(e.raw) for e in rec.events)


@pytest.mark.parametrize("compression", [False, True])
def test_ws_wire_bytes_equal_relay_count(relay, compression):
    relay.reset()
    rec = record_ws(relay.base_url + "/ws", params={"n": "6", "pad": "2000"}, compression=compression, limits=FAST)
    assert rec.ok, rec.error
    assert len(rec.events) == 6 and rec.detail.close_code == 1000 and rec.detail.close_frame_received
    _assert_counts_match(rec, relay)
    assert rec.detail.extensions == (["permessage-deflate"] if compression else [])
    body_in = rec.bytes_received - rec.head_bytes_received
    if compression:
        assert body_in < rec.payload_bytes / 4  # "x" * 2000 compresses well: counted as sent, not as decoded
    else:
        assert body_in > rec.payload_bytes  # every frame header is counted on top of the payload


def _head_size(rec) -> int:
    """The response head's size rebuilt from the status and headers (uvicorn writes 'name: value')."""
    reason = {200: "OK", 101: "Switching Protocols"}[rec.status]
    return len(f"HTTP/1.1 {rec.status} {reason}\r\n") + sum(len(k) + len(v) + 4 for k, v in rec.response_headers) + 2


def test_tls_wire_bytes_are_counted_below_tls(tmp_path):
    """https/wss: TLS runs in memory over the counting socket, so the counts are TCP payload."""
    from conformance.wire.common import tls_context

    pair = stubs.self_signed_cert(str(tmp_path))
    if pair is None:
        pytest.skip("no openssl CLI to make a certificate")
    cert, key = pair
    with stubs.UvicornThread(stubs.stub_app(), ssl_certfile=cert, ssl_keyfile=key) as srv, stubs.CountingRelay(srv.port) as relay:
        base = f"https://127.0.0.1:{relay.port}"
        untrusted = record_sse(base + "/sse", limits=FAST)
        assert untrusted.error_kind == "connect" and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
        relay.wait_idle()
        tls_context().load_verify_locations(cert)  # the shared context now trusts this test certificate
        for transport, compression in (("sse", False), ("ws", False), ("ws", True)):
            relay.reset()
            if transport == "sse":
                rec = record_sse(base + "/sse", params={"n": "5", "pad": "3000"}, limits=FAST)
            else:
                rec = record_ws(base.replace("https", "wss") + "/ws", params={"n": "5", "pad": "3000"}, compression=compression, limits=FAST)
            relay.wait_idle()
            assert rec.ok and len(rec.events) == 5, rec.error
            assert (rec.bytes_sent, rec.bytes_received) == (relay.up, relay.down)
            if transport == "ws":
                # a stream longer than the bound on a handshake reply (128 KiB) is not cut:
                # that bound is on the plaintext reply, which a 101 ends
                long = record_ws(base.replace("https", "wss") + "/ws", params={"n": "60", "pad": "3000"},
                                 compression=compression, limits=FAST)
                assert long.ok and len(long.events) == 60 and long.payload_bytes > 170_000, long.error
            # the heads are found in the plaintext; the wire adds the TLS handshake and records
            assert rec.head_bytes_received == _head_size(rec)
            assert 0 < rec.head_bytes_sent < rec.bytes_sent and rec.head_bytes_received < rec.bytes_received
            assert rec.t_headers <= rec.t_first_byte <= rec.t_first_event
        assert rec.detail.extensions == ["permessage-deflate"] and rec.detail.close_code == 1000


# ===================================================================== happy paths


def test_sse_records_events_fields_and_timings(stub):
    rec = record_sse(stub.base_url + "/sse", params={"n": "5", "delay": "0.02"}, headers={"X-Test": "1"}, limits=FAST)
    assert rec.ok and rec.status == 200
    assert rec.header("content-type").startswith("text/event-stream")
    assert rec.request.header_map == {"X-Test": "1"}
    assert SSE.request_headers(rec.request) == {"Accept": "text/event-stream", "Accept-Encoding": "identity", "X-Test": "1"}
    sent = dict(rec.sent_headers)
    assert sent["Accept"] == "text/event-stream" and sent["X-Test"] == "1" and sent["Host"] == f"127.0.0.1:{stub.port}"
    assert [e.type for e in rec.events] == ["start", "chain_of_thought", "chain_of_thought", "chain_of_thought", "stream_end"]
    assert [e.detail.id for e in rec.events] == ["0", "1", "2", "3", "4"]
    assert all(e.detail.data_lines == 1 and e.detail.event is None and not hasattr(e.detail, "kind") for e in rec.events)
    assert rec.detail.comments == 1 and rec.detail.line_endings == {"LF"}
    assert rec.t_start <= rec.t_connected <= rec.t_headers <= rec.t_first_byte <= rec.t_first_event <= rec.t_end
    # events arrive as produced (20 ms apart), and t_wall follows the server's ts closely on loopback
    assert rec.events[-1].t_perf - rec.events[0].t_perf > 0.05
    assert all(0 <= e.t_wall - e.data["ts"] < 1.0 for e in rec.events)
    assert abs((rec.events[0].t_wall - rec.wall_start) - (rec.events[0].t_perf - rec.t_start)) < 0.05


@pytest.mark.parametrize("eol", ["CR", "CRLF"])
def test_sse_line_endings_recorded(stub, eol):
    rec = record_sse(stub.base_url + "/sse", params={"n": "3", "eol": eol, "multiline": "1"}, limits=FAST)
    assert rec.ok and rec.detail.line_endings == {eol}
    assert [e.detail.data_lines for e in rec.events] == [2, 2, 2]
    assert rec.events[0].raw.endswith(b"\r\r" if eol == "CR" else b"\r\n\r\n")


def test_sse_keepalive_comments_with_ids_are_not_events_uvicorn(stub):
    """A real server sending id: on every event and a comment keep-alive after each (httpx-sse#35)."""
    rec = record_sse(stub.base_url + "/sse", params={"n": "6", "keepalive": "1"}, limits=FAST)
    assert rec.ok
    assert len(rec.events) == 6 and all(e.parse_error is None for e in rec.events)
    assert rec.detail.comments == 7  # the greeting and one per event


def test_sse_keepalive_comments_with_ids_raw_bytes():
    with raw_server(stubs.id_keepalive_raw) as srv:
        rec = record_sse(srv.base_url + "/x", limits=FAST)
    assert rec.ok
    assert [e.data for e in rec.events] == [{"type": "start", "seq": 0}, {"type": "stream_end", "seq": 1}]
    assert rec.detail.comments == 3


def test_sse_non_json_and_named_events(stub):
    rec = record_sse(stub.base_url + "/sse/odd", limits=FAST)
    assert rec.ok and len(rec.events) == 3  # the id-only block is no event
    bad, named, end = rec.events
    assert bad.data is None and bad.parse_error.startswith("invalid JSON") and bad.text == "not json"
    assert (bad.detail.id, bad.detail.retry) == ("7", 1500)
    assert named.detail.event == "custom" and named.type == "progress" and named.detail.id is None
    assert end.type == "stream_end"


def test_sse_rejection_body_and_status(stub):
    rec = record_sse(stub.base_url + "/sse", params={"question": "  "}, limits=FAST)
    assert rec.status == 422 and rec.error_kind is None and rec.events == []
    assert json.loads(rec.body) == {"error": "question must not be empty"}
    assert rec.header("content-type") == "application/json"


def test_sse_last_event_id_is_sent(stub):
    rec = record_sse(stub.base_url + "/sse", last_event_id="4", limits=FAST)
    assert rec.status == 204 and rec.body == b"" and rec.events == []
    assert rec.request.last_event_id == "4" and ("Last-Event-ID", "4") in rec.sent_headers


def test_sse_non_event_stream_body_is_bounded(stub):
    rec = record_sse(stub.base_url + "/html", limits=Limits(max_body_bytes=1000))
    assert rec.status == 200 and rec.error_kind is None
    assert len(rec.body) == 1000 and rec.body_truncated and rec.body.startswith(b"<html>")


def test_ws_records_frames_and_close(stub):
    rec = record_ws(stub.base_url + "/ws", params={"n": "5"}, headers={"X-Test": "1"}, origin="http://example.test", limits=FAST)
    assert rec.ok and rec.status == 101
    assert rec.request.header_map == {"X-Test": "1", "Origin": "http://example.test"}
    sent = dict(rec.sent_headers)
    assert sent["X-Test"] == "1" and sent["Origin"] == "http://example.test" and sent["Upgrade"] == "websocket"
    assert [e.type for e in rec.events][0::4] == ["start", "stream_end"] and len(rec.events) == 5
    assert all(e.detail.kind == "text" and e.raw == e.text.encode() for e in rec.events)
    assert (rec.detail.close_code, rec.detail.close_frame_received, rec.client_closed) == (1000, True, False)
    assert rec.t_start <= rec.t_connected <= rec.t_headers <= rec.t_first_byte <= rec.t_first_event <= rec.t_end
    assert rec.head_bytes_sent > 0 and rec.head_bytes_received > 0


def test_ws_non_json_and_binary_frames(stub):
    rec = record_ws(stub.base_url + "/ws/odd", limits=FAST)
    assert rec.ok and rec.detail.close_code == 1000
    text_bad, bin_json, bin_bad, end = rec.events
    assert text_bad.detail.kind == "text" and text_bad.data is None and text_bad.text == "this is not json"
    assert text_bad.parse_error.startswith("invalid JSON")
    assert bin_json.detail.kind == "binary" and bin_json.type == "start"
    assert bin_bad.detail.kind == "binary" and bin_bad.text is None and bin_bad.raw == b"\xff\xfe\x00" and bin_bad.parse_error
    assert end.type == "stream_end"


def test_ws_cancel_after(stub):
    rec = record_ws(stub.base_url + "/ws", params={"n": "100", "delay": "0.02"}, cancel_after=2, limits=FAST)
    assert rec.ok and rec.detail.messages_sent_at
    assert rec.events[1].t_perf <= rec.detail.messages_sent_at[0]
    assert [e.type for e in rec.events][-2:] == ["error", "stream_end"]
    assert rec.events[-2].data["code"] == "cancelled" and len(rec.events) < 10
    assert rec.detail.close_code == 1000 and not rec.client_closed


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_close_after_and_on_event(stub, transport):
    seen = []
    fn = record_sse if transport == "sse" else record_ws
    rec = fn(stub.base_url + "/" + transport, params={"n": "100", "delay": "0.02"}, close_after=3, limits=FAST,
             on_event=lambda e: seen.append((e.index, e.type)))
    assert rec.ok and rec.client_closed and len(rec.events) == 3
    assert seen == [(0, "start"), (1, "chain_of_thought"), (2, "chain_of_thought")]  # the last one too, before leaving
    assert rec.duration_s < 1.0
    if transport == "ws":
        assert rec.detail.close_code is None


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_what_on_event_raises_propagates(stub, transport):
    """Even an OSError: it is the caller's, not a dropped stream ("closed")."""
    def boom(event):
        raise FileNotFoundError("the callback's own error")

    fn = record_sse if transport == "sse" else record_ws
    with pytest.raises(FileNotFoundError, match="the callback's own error"):
        fn(stub.base_url + "/" + transport, params={"n": "3"}, on_event=boom, limits=FAST)


def test_ws_rejected_by_close_before_accept(stub):
    rec = record_ws(stub.base_url + "/ws", params={"dataset": "nope"}, limits=FAST)
    assert rec.status == 403 and rec.error_kind is None and rec.events == []  # uvicorn turns it into HTTP 403


def test_ws_rejected_with_status_and_body():
    with raw_server(stubs.ws_reject_401) as srv:
        rec = record_ws(srv.base_url + "/x", limits=FAST)
    assert rec.status == 401 and rec.error_kind is None
    assert json.loads(rec.body) == {"error": "no token"}
    assert rec.header("content-type") == "application/json"


# ===================================================================== end grace


def test_sse_server_that_does_not_end_after_stream_end(stub):
    rec, elapsed = timed(record_sse, stub.base_url + "/sse/no-end", end_types=("stream_end",), limits=FAST)
    assert [e.type for e in rec.events] == ["start", "stream_end"]
    assert rec.error_kind == "timeout" and "end_grace" in rec.error
    assert elapsed < FAST.end_grace + MARGIN


def test_ws_server_that_does_not_close_after_stream_end(stub):
    rec, elapsed = timed(record_ws, stub.base_url + "/ws/no-close", end_types=("stream_end",), limits=FAST)
    assert [e.type for e in rec.events] == ["start", "stream_end"]
    assert rec.error_kind == "timeout" and "end_grace" in rec.error
    assert elapsed < FAST.end_grace + MARGIN


# ===================================================================== misbehaving servers


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_never_answers(transport):
    with raw_server(stubs.never_answer) as srv:
        fn = record_sse if transport == "sse" else record_ws
        rec, elapsed = timed(fn, srv.base_url + "/x", limits=FAST)
    assert rec.error_kind == "timeout" and rec.status is None and rec.events == []
    assert rec.t_connected is not None and rec.bytes_sent > 0 and rec.bytes_received == 0
    assert elapsed < FAST.first_event + MARGIN


@pytest.mark.parametrize(
    "handler,transport,bound",
    [
        (stubs.stall_after_headers, "sse", FAST.first_event),
        (stubs.stall_after_one_event, "sse", FAST.idle),
        (stubs.comments_forever, "sse", FAST.first_event),  # keep-alives are not events
        (stubs.ws_stall_after_handshake, "ws", FAST.first_event),
        (stubs.ws_stall_after_one_frame, "ws", FAST.idle),
    ],
)
def test_stalling_server_times_out(handler, transport, bound):
    with raw_server(handler) as srv:
        fn = record_sse if transport == "sse" else record_ws
        rec, elapsed = timed(fn, srv.base_url + "/x", limits=FAST)
    assert rec.error_kind == "timeout", rec.error
    assert rec.status in (200, 101)
    assert bound - 0.1 < elapsed < bound + MARGIN
    if handler is stubs.comments_forever:
        assert rec.detail.comments >= 5


def test_total_bound_with_a_trickle():
    """Keep-alives every 50 ms never trip the idle bound; the total one stops them."""
    limits = Limits(first_event=30, idle=0.5, total=1.0)
    with raw_server(stubs.comments_forever) as srv:
        rec, elapsed = timed(record_sse, srv.base_url + "/x", limits=limits)
    assert rec.error_kind == "timeout" and "limits.total" in rec.error
    assert elapsed < limits.total + MARGIN


def test_sse_flood_of_events(stub):
    rec, elapsed = timed(record_sse, stub.base_url + "/sse/forever", limits=FLOOD)
    assert rec.error_kind == "too_many" and len(rec.events) == FLOOD.max_events, rec.error
    assert elapsed < FLOOD.total


def test_sse_endless_line(stub):
    rec, elapsed = timed(record_sse, stub.base_url + "/sse/endless-line", limits=FLOOD)
    assert rec.error_kind == "too_large" and rec.events == [], rec.error
    assert rec.bytes_received < 4 * FLOOD.max_event_bytes + 65536
    assert elapsed < FLOOD.total


def test_sse_oversized_multiline_event(stub):
    limits = Limits(max_event_bytes=4000, first_event=2, total=4)
    rec = record_sse(stub.base_url + "/sse", params={"n": "3", "pad": "5000", "multiline": "1"}, limits=limits)
    assert rec.error_kind == "too_large" and [e.type for e in rec.events] == ["start"]


def test_ws_flood_of_frames(stub):
    rec, elapsed = timed(record_ws, stub.base_url + "/ws/forever", limits=FLOOD)
    assert rec.error_kind == "too_many" and len(rec.events) == FLOOD.max_events, rec.error
    assert elapsed < FLOOD.total


def test_ws_oversized_frame(stub):
    rec, elapsed = timed(record_ws, stub.base_url + "/ws/big", limits=FLOOD)
    assert rec.error_kind == "too_large" and rec.events == [], rec.error
    assert elapsed < FLOOD.total


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_garbage_response_head(transport):
    with raw_server(stubs.garbage_head) as srv:
        fn = record_sse if transport == "sse" else record_ws
        rec, elapsed = timed(fn, srv.base_url + "/x", limits=FAST)
    assert rec.error_kind == "protocol" and rec.status is None
    assert elapsed < MARGIN


def test_ws_garbage_frames():
    limits = Limits(first_event=2, idle=5, total=6, end_grace=0.5)
    with raw_server(stubs.ws_garbage_frames) as srv:
        rec, elapsed = timed(record_ws, srv.base_url + "/x", limits=limits)
    assert rec.error_kind == "protocol" and "1002" in rec.error
    assert [e.type for e in rec.events] == ["start"]
    assert elapsed < limits.end_grace + MARGIN


def test_ws_drop_without_close_frame():
    with raw_server(stubs.ws_drop_without_close) as srv:
        rec = record_ws(srv.base_url + "/x", limits=FAST)
    assert (rec.detail.close_code, rec.detail.close_frame_received, rec.error_kind) == (1006, False, "closed")
    assert [e.type for e in rec.events] == ["start"]


def _ws_close_frame_then_hold(conn):
    """Sends stream_end and a close frame 1000, then keeps TCP open (never closes it)."""
    import struct

    stubs.ws_accept(conn)
    conn.sendall(stubs.ws_frame(b'{"type": "start"}') + stubs.ws_frame(b'{"type": "stream_end"}')
                 + stubs.ws_frame(struct.pack("!H", 1000), opcode=8))
    stubs.wait_closed(conn, 10)


def test_ws_close_frame_without_tcp_close_is_recorded():
    """The close frame arrived: its code is the finding, not a timeout (websockets alone
    would wait for the TCP close without a bound)."""
    limits = Limits(first_event=2, idle=3, total=6, end_grace=0.5)
    with raw_server(_ws_close_frame_then_hold) as srv:
        rec, elapsed = timed(record_ws, srv.base_url + "/x", limits=limits)
    assert (rec.detail.close_code, rec.detail.close_frame_received, rec.error_kind) == (1000, True, None), rec.error
    assert [e.type for e in rec.events] == ["start", "stream_end"]
    assert elapsed < limits.end_grace + MARGIN


def test_sse_drop_mid_stream():
    with raw_server(stubs.sse_drop_mid_stream) as srv:
        rec = record_sse(srv.base_url + "/x", limits=FAST)
    assert rec.error_kind == "closed" and [e.type for e in rec.events] == ["start"]


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_connection_refused_and_bad_url(transport):
    fn = record_sse if transport == "sse" else record_ws
    with raw_server(stubs.never_answer) as srv:
        port = srv.port
    rec = fn(f"http://127.0.0.1:{port}/x", limits=FAST)  # nothing listens there any more
    assert rec.error_kind == "connect" and rec.t_connected is None
    bad = fn("not a url", limits=FAST)
    assert bad.error_kind == "connect" and bad.error


# ===================================================================== gevent, CLI, reference server


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_recorders_run_under_gevent_monkey_patching(stub):
    code = textwrap.dedent(
        """
        from gevent import monkey; monkey.patch_all()
        import json, socket, sys, time
        import gevent
        assert socket.socket.__module__.startswith("gevent"), socket.socket
        from conformance.wire import record_sse, record_ws
        from conformance.recording import Limits
        base = sys.argv[1]
        limits = Limits(first_event=2, idle=2, total=8)
        # two recordings at once in greenlets, as Locust users would run them
        jobs = [gevent.spawn(record_sse, base + "/sse", params={"n": "5", "delay": "0.05"}, limits=limits),
                gevent.spawn(record_ws, base + "/ws", params={"n": "5", "delay": "0.05"}, limits=limits, compression=True)]
        gevent.joinall(jobs, timeout=20)
        sse, ws = (j.value for j in jobs)
        t0 = time.perf_counter()
        stalled = record_ws(base + "/ws/no-close", end_types=("stream_end",), limits=Limits(end_grace=0.3))
        print(json.dumps({"sse": [sse.error_kind, len(sse.events), sse.bytes_received > 0],
                          "ws": [ws.error_kind, len(ws.events), ws.detail.close_code],
                          "overlap": sse.t_first_event < ws.t_end and ws.t_first_event < sse.t_end,
                          "stalled": [stalled.error_kind, round(time.perf_counter() - t0, 1) < 2]}))
        """
    )
    p = subprocess.run([sys.executable, "-c", code, stub.base_url], capture_output=True, text=True, timeout=60, env=_env())
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out == {"sse": [None, 5, True], "ws": [None, 5, 1000], "overlap": True, "stalled": ["timeout", True]}


def _cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "conformance.recorders", *args], capture_output=True, text=True, timeout=timeout, env=_env())


def test_cli_ws(stub):
    p = _cli("ws", stub.base_url + "/ws", "--param", "n=3", "--compression", "--header", "X-A: b")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert [json.loads(line)["type"] for line in lines[:-1]] == ["start", "chain_of_thought", "stream_end"]
    assert lines[-1].startswith("# ws status=101 close=1000") and "extensions=permessage-deflate" in lines[-1]
    assert "events=3" in lines[-1] and "bytes_in=" in lines[-1] and lines[-1].endswith("ok")


def test_cli_sse_error_and_bad_usage(stub):
    p = _cli("sse", stub.base_url + "/sse/odd", "--timeout", "5")
    assert p.returncode == 0
    assert p.stdout.splitlines()[0].startswith("# event 0 (sse): invalid JSON")
    p = _cli("sse", stub.base_url + "/sse", "-p", "question= ")
    assert p.returncode == 1 and "status=422" in p.stdout and "body=" in p.stdout and p.stdout.strip().endswith("no stream")
    p = _cli("ws", stub.base_url + "/ws", "--param", "novalue")
    assert p.returncode == 2 and "NAME=VALUE" in p.stderr and "Traceback" not in p.stderr


def test_reference_server_both_transports(request):
    """The reference server, when tests/conftest.py provides it: full streams, same events on both."""
    try:
        base = request.getfixturevalue("reference_url")
    except pytest.FixtureLookupError:
        pytest.skip("no reference_url fixture yet")
    params = {"question": "How many rows are there?", "dataset": "all"}
    sse = record_sse(base + "/agent/stream", params=params, end_types=("stream_end",))
    ws = record_ws(base + "/ws/agent/stream", params=params, end_types=("stream_end",))
    assert sse.ok and ws.ok, (sse.error, ws.error)
    assert sse.events[-1].type == ws.events[-1].type == "stream_end"
    assert ws.detail.close_code == 1000
    assert [e.type for e in sse.events] == [e.type for e in ws.events]


def _fragmented(conn) -> None:
    """One JSON event per message, each message sent in three frames (RFC 6455 fragmentation)."""
    stubs.ws_accept(conn)
    for event in ({"type": "start", "seq": 0}, {"type": "stream_end", "seq": 1}):
        text = json.dumps(event).encode()
        parts = [text[:5], text[5:9], text[9:]]
        conn.sendall(bytes([0x01, len(parts[0])]) + parts[0])   # text, FIN=0
        conn.sendall(bytes([0x00, len(parts[1])]) + parts[1])   # continuation, FIN=0
        conn.sendall(bytes([0x80, len(parts[2])]) + parts[2])   # continuation, FIN=1
    conn.sendall(stubs.ws_frame(struct.pack("!H", 1000), opcode=0x8))
    stubs.wait_closed(conn, 2)


def test_ws_fragmented_message_is_one_event():
    """PROTOCOL 5: a message may arrive in several frames; it is one event."""
    with raw_server(_fragmented) as srv:
        rec = record_ws(srv.base_url + "/x", limits=FAST, end_types=("stream_end",))
    assert [e.data for e in rec.events] == [{"type": "start", "seq": 0}, {"type": "stream_end", "seq": 1}], rec.error
    assert rec.detail.close_code == 1000, (rec.error_kind, rec.error)


@pytest.mark.parametrize("record", [record_sse, record_ws])
def test_a_host_idna_cannot_encode_is_a_connect_error(record):
    rec = record("http://" + "a" * 64 + ".example/x", limits=FAST)
    assert rec.error_kind == "connect", rec.error


def _tls_trickle(conn) -> None:
    """Takes the ClientHello, then sends the header of a 16 KB TLS record and its
    body a byte at a time: every read gets something, the handshake never ends."""
    conn.recv(65536)
    conn.sendall(b"\x16\x03\x03\x40\x00")
    for _ in range(200):
        time.sleep(0.05)
        conn.sendall(b"\x00")


@pytest.mark.parametrize("record", [record_sse, record_ws], ids=["sse", "ws"])
def test_a_tls_peer_that_trickles_bytes_cannot_outlast_the_deadline(record) -> None:
    with raw_server(_tls_trickle) as srv:
        url = srv.base_url.replace("http://", "https://") + "/agent/stream"
        t0 = time.perf_counter()
        rec = record(url.replace("https", "wss") if record is record_ws else url, limits=FAST)
        took = time.perf_counter() - t0
    assert rec.events == [] and rec.error_kind == "timeout" and "TLS handshake" in rec.error, rec.error
    assert took < FAST.first_event + 1.0, took
