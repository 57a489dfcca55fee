"""SSE over HTTP/2 (conformance/wire/sse_h2.py): frames counted at the socket, the
reference app on hypercorn, and every rule of the sse binding applying to it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from hpack import Encoder
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame, WindowUpdateFrame

from backends.serve import serve
from backends.suite_run import run_suite
from conformance.profile import load_profile
from conformance.request import Request
from conformance.rules import RULES
from conformance.wire import TRANSPORTS, get
from conformance.wire.metrics import read_gauge
from conformance.wire.sse_h2 import PREFACE, H2FrameScanner, H2WireCounter
from conformance.wire.transport import embedded_server
from reference_server.embedded import EmbeddedServer

PROFILE = "agent-stream/1+h2"
QUESTION = {"question": "Show top incidents"}


@pytest.fixture(scope="module")
def h2_server() -> Iterator[str]:
    """The reference server on hypercorn (HTTP/1.1, h2c and WebSocket on one port)."""
    with EmbeddedServer(pace_ms=1, server="hypercorn") as server:
        yield server.base_url


def _record(name: str, base: str, **kw) -> object:
    path = load_profile(PROFILE).transports[name].path
    return get(name).record(Request.make(name, base + path, params=QUESTION, end_types=("stream_end",), **kw))


# --- the frame scanner, without I/O ------------------------------------------------

def _server_bytes() -> tuple[bytes, int, int]:
    """A server's side of a connection: SETTINGS, the response HEADERS, two DATA
    frames, a WINDOW_UPDATE; with the offset where the head ends and the DATA payload."""
    settings = SettingsFrame(0).serialize()
    headers = HeadersFrame(1)
    headers.data = Encoder().encode([(":status", "200"), ("content-type", "text/event-stream")])
    headers.flags.add("END_HEADERS")
    head = settings + headers.serialize()
    body = b""
    texts = (b'data: {"type":"start"}\n\n', b'data: {"type":"stream_end"}\n\n')
    for text in texts:
        frame = DataFrame(1)
        frame.data = text
        body += frame.serialize()
    return head + body + WindowUpdateFrame(0, window_increment=10).serialize(), len(head), sum(map(len, texts))


@pytest.mark.parametrize("step", [1, 2, 7, 9, 10, 4096])
def test_the_scanner_finds_frames_head_and_first_data_however_the_bytes_are_cut(step: int) -> None:
    data, head, payload = _server_bytes()
    scanner = H2FrameScanner()
    for i in range(0, len(data), step):
        scanner.feed(data[i:i + step], now=float(i))
    assert scanner.frames == {"SETTINGS": 1, "HEADERS": 1, "DATA": 2, "WINDOW_UPDATE": 1}
    assert scanner.total == sum(scanner.bytes.values()) == len(data)
    assert scanner.head == head
    assert scanner.data_payload == payload
    assert scanner.hpack == scanner.bytes["HEADERS"] - 9
    # the first DATA frame's header is complete in the chunk that holds byte head+8
    assert scanner.t_first_data == float((head + 8) // step * step)


def test_the_client_side_skips_the_preface_and_counts_it() -> None:
    counter = H2WireCounter()
    counter.on_sent(PREFACE + SettingsFrame(0).serialize())
    assert counter.out.bytes == {"preface": 24, "SETTINGS": 9} and counter.sent.total == 33
    assert counter.sent.head is None  # no header block yet: no head (a blank line in the preface is not one)


# --- against real servers ------------------------------------------------------------

def test_sse_h2_records_the_same_events_as_sse_with_every_byte_of_the_frames(h2_server: str) -> None:
    h1, h2 = _record("sse", h2_server), _record("sse-h2", h2_server)
    assert h2.ok and h2.status == 200 and h2.detail.http_version == "HTTP/2", h2.error
    strip = lambda rec: [{k: v for k, v in e.data.items() if k != "ts"} for e in rec.events]  # noqa: E731
    assert strip(h2) == strip(h1) and len(h2.events) > 20
    d = h2.detail
    # bytes at the socket are the frames: nothing counted that the scanner did not see, and back
    assert h2.bytes_received == sum(d.bytes_in.values())
    assert h2.bytes_sent == sum(d.bytes_out.values()) and d.bytes_out["preface"] == 24
    assert d.frames_in["DATA"] >= 1 and d.frames_out["HEADERS"] == 1  # a server may write several events at once
    # the head is everything through the response's header block (SETTINGS + HEADERS), HPACK inside it
    assert h2.head_bytes_received == d.bytes_in["SETTINGS"] + d.bytes_in["HEADERS"]
    assert 0 < d.hpack_in < d.bytes_in["HEADERS"] and 0 < d.hpack_out < d.bytes_out["HEADERS"]
    # the SSE text is the DATA payload, and it is what HTTP/1.1 carried in its chunks
    assert d.data_payload_in == sum(len(e.raw) for e in h2.events)
    assert h2.t_headers <= h2.t_first_byte <= h2.t_first_event
    assert get("sse-h2").reproduce(h2.request).startswith("curl -N --http2-prior-knowledge ")


def test_a_server_without_http2_is_one_clear_error(reference_url: str) -> None:
    rec = _record("sse-h2", reference_url)  # uvicorn: HTTP/1.1 only
    assert rec.error_kind == "connect" and rec.status is None
    assert "does not speak HTTP/2 with prior knowledge" in rec.error and "hypercorn" in rec.error


def test_the_h2_profile_asks_for_hypercorn_and_pairs_every_transport_with_sse() -> None:
    profile = load_profile(PROFILE)
    assert list(profile.transports) == ["sse", "ws", "sse-h2"]
    assert profile.transports["sse-h2"] == profile.transports["sse"]  # `like: sse`
    assert profile.parity == (("sse", "ws"), ("sse", "sse-h2"))
    assert embedded_server(profile.transports) == "hypercorn" and embedded_server(["sse", "ws"]) is None
    assert TRANSPORTS["sse-h2"].binding == "sse"


def test_every_sse_rule_runs_and_passes_on_sse_h2_against_the_embedded_server(tmp_path: Path) -> None:
    """Without --base-url the suite starts the reference server on hypercorn, because
    the profile has a transport that needs it; every rule of the sse binding and of
    all transports is judged on sse-h2, and parity with sse holds."""
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-p", "no:cacheprovider",
                           "--assert=plain", "--profile", PROFILE, "--embedded-pace-ms", "5", "-k", "sse-h2",
                           "--conformance-report", str(report)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    entries = json.loads(report.read_text())["rules"]
    on_h2 = {e["id"] for e in entries if "sse-h2" in e["transport"]}
    expected = {r.id for r in RULES.values() if r.scope == "transport" and r.binding in (None, "sse") and not r.only_with}
    assert expected <= on_h2 and "PARITY-STRICT" in on_h2
    # every rule passes but those of other protocols (runs, spans, a sentinel: agent-stream/1 has none)
    assert [e for e in entries if e["verdict"] != "pass" and not e["message"].startswith("the profile ")] == []


def test_a_broken_sse_backend_fails_the_same_rule_over_http2(tmp_path: Path) -> None:
    with serve("starlette", "named-events", server="hypercorn") as url:
        run = run_suite(url, tmp_path / "report.json", select="SSE-NO-EVENT-NAME", extra=("--profile", PROFILE))
    assert run.crash() is None, run.explain()
    verdicts = {e["transport"]: e["verdict"] for e in run.entries("SSE-NO-EVENT-NAME")}
    assert verdicts == {"sse": "fail", "sse-h2": "fail"}, run.explain()


# --- disconnect over HTTP/2 -----------------------------------------------------------

def _active_streams(base: str) -> float | None:
    return read_gauge(base + "/metrics", load_profile(PROFILE).disconnect.gauge)


@pytest.mark.parametrize("leave", ["drop-connection", "reset-stream"])
def test_a_client_leaving_with_data_unsent_frees_the_stream_over_http2(h2_server: str, leave: str) -> None:
    """An HTTP/2 client that grants no flow-control window (so the server holds
    the stream's body unsent) and then leaves: the stream is off the gauge within a
    second. Hypercorn 0.18 never wakes an app whose ``send`` waits on a buffer of a
    connection that has closed (its send task has ended), so the reference server
    must not wait on such a ``send`` after the client left; the conformance run saw
    it as ``DISCONNECT-STOPS[sse-h2]`` failing on a loaded machine."""
    host, port = h2_server.removeprefix("http://").rsplit(":", 1)
    assert _active_streams(h2_server) == 0
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(client=True, initial_values={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn.initiate_connection()
    path = load_profile(PROFILE).transports["sse-h2"].path + "?question=Show+top+incidents"
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", f"{host}:{port}"),
                              (":path", path), ("accept", "text/event-stream")], end_stream=True)
        sock.sendall(conn.data_to_send())
        deadline = time.perf_counter() + 5
        status = None
        while status is None and time.perf_counter() < deadline:
            for event in conn.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
            sock.sendall(conn.data_to_send())
        assert status == b"200"
        time.sleep(0.2)  # the server has events queued that the zero window holds back
        assert _active_streams(h2_server) == 1
        if leave == "reset-stream":
            conn.reset_stream(1)
            sock.sendall(conn.data_to_send())
    left = time.perf_counter()
    while _active_streams(h2_server) != 0 and time.perf_counter() - left < 1.0:
        time.sleep(0.02)
    assert _active_streams(h2_server) == 0, f"still active {time.perf_counter() - left:.2f} s after the client left"
