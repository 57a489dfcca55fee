"""The reference server as a model to copy: origins, admission, bounded connections,
graceful shutdown, oversized client messages and its OpenAPI document.

Each test runs a real server (``python -m reference_server`` in a child process,
or the app on uvicorn in a thread when the test must reach into its state) on a
free loopback port and talks to it over real sockets. Each asserts what would
break if the pattern were removed: without the allowlist the foreign page's
WebSocket opens, without admission the third stream starts, without the header
deadline the slowloris socket stays open, without the drain the WebSocket gets
1012 and no ``stream_end``.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from conformance.wire import ws_url
from reference_server.config import ServerConfig
from reference_server.embedded import EmbeddedServer
from reference_server.origins import OriginError, OriginPolicy, normalize

SSE = "/agent/stream"
WS = "/ws/agent/stream"
Q = {"question": "incidents by team"}


def sse_url(base: str, **params: str) -> str:
    return str(httpx.URL(base + SSE, params=params or Q))


def ws_stream_url(base: str) -> str:
    return ws_url(base + WS, Q)


# --- the origin allowlist, without a socket ------------------------------------------


def test_origin_policy_patterns() -> None:
    policy = OriginPolicy.parse(["https://app.example.com", "http://localhost:*"])
    assert policy.allows(None)  # not a browser page
    assert policy.allows("https://app.example.com") and policy.allows("https://APP.example.com:443")
    assert policy.allows("http://localhost:5173") and policy.allows("http://localhost")
    assert not policy.allows("http://localhost.evil.example:5173")
    assert not policy.allows("https://app.example.com.evil.example")
    assert not policy.allows("http://app.example.com")  # another scheme is another origin
    assert not policy.allows("null") and not policy.allows("garbage")
    assert policy.allows("http://10.0.0.7:8000", host="10.0.0.7:8000")  # the server's own origin
    assert OriginPolicy.parse(["*"]).allows("https://anyone.example")
    assert normalize("HTTP://[::1]:80/") == "http://[::1]"
    for bad in ("localhost:3000", "http://x/path", "ftp://x", "http://localhost:3000:*"):
        with pytest.raises(OriginError, match="origin"):
            OriginPolicy.parse([bad])


def test_cors_headers_echo_only_allowed_origins() -> None:
    policy = OriginPolicy.parse(["http://localhost:*"])
    assert policy.cors_headers("http://localhost:5173") == {"Access-Control-Allow-Origin": "http://localhost:5173",
                                                            "Vary": "Origin"}
    assert "Access-Control-Allow-Origin" not in policy.cors_headers("https://evil.example")


def test_bad_allow_origin_is_a_clear_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from reference_server.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--allow-origin", "localhost:3000"])
    assert exit_info.value.code == 2
    assert "--allow-origin: 'localhost:3000' is not an origin" in capsys.readouterr().err


# --- a server with small bounds --------------------------------------------------------


@pytest.fixture(scope="module")
def bounded() -> Iterator[EmbeddedServer]:
    """Two streams at most, 1 s to send request headers, slow streams (60 ms per chunk)."""
    args = ("--max-streams", "2", "--header-timeout", "1", "--allow-origin", "https://app.example.com")
    with EmbeddedServer(pace_ms=60, args=args) as server:
        yield server


def test_sse_cors_for_allowed_origins_and_403_for_foreign(bounded: EmbeddedServer) -> None:
    base = bounded.base_url
    for origin in ("https://app.example.com", "http://localhost:5173"):
        with httpx.stream("GET", sse_url(base), headers={"Origin": origin}, timeout=10) as response:
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == origin
            assert "Origin" in response.headers["vary"]
    response = httpx.get(sse_url(base), headers={"Origin": "https://evil.example"}, timeout=10)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "origin_not_allowed"
    with httpx.stream("GET", sse_url(base), timeout=10) as response:  # no Origin: curl, a server-side client
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_ws_origin_checked_at_the_handshake(bounded: EmbeddedServer) -> None:
    url = ws_stream_url(bounded.base_url)
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url, origin="https://evil.example", open_timeout=5)
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"] == "origin_not_allowed"
    with ws_connect(url, origin="https://app.example.com", open_timeout=5) as conn:
        assert json.loads(conn.recv(timeout=5))["type"] == "start"


def test_admission_control_refuses_the_stream_past_the_maximum(bounded: EmbeddedServer) -> None:
    base = bounded.base_url
    with httpx.Client(timeout=10) as client:
        held, readers = [], []
        try:
            for _ in range(2):
                held.append(client.send(client.build_request("GET", sse_url(base)), stream=True))
                assert held[-1].status_code == 200
                readers.append(held[-1].iter_lines())  # kept: a dropped iterator closes the response
                next(readers[-1])  # the stream really started
            response = client.get(sse_url(base))
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"] == "overloaded"
            with pytest.raises(InvalidStatus) as refused:
                ws_connect(ws_stream_url(base), open_timeout=5)
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["Retry-After"] == "1"
        finally:
            for response in held:
                response.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # the slots free up once the clients left
        if httpx.get(sse_url(base, question="x"), headers={"Last-Event-ID": "1"}).status_code == 204 and \
                _accepted(base):
            return
        time.sleep(0.1)
    pytest.fail("no stream was admitted again after the held ones were closed")


def _accepted(base: str) -> bool:
    with httpx.stream("GET", sse_url(base), timeout=10) as response:
        return response.status_code == 200


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """How long until the server closed ``sock`` (None: still open after ``seconds``)."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def test_silent_and_slowloris_connections_are_closed(bounded: EmbeddedServer) -> None:
    host, port = bounded.host, bounded.port
    silent = socket.create_connection((host, port), timeout=5)
    slow = socket.create_connection((host, port), timeout=5)
    try:
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for sock, what in ((silent, "silent"), (slow, "slowloris")):
            took = _closed_within(sock, 4.0)
            assert took is not None, f"the {what} connection was still open after 4 s (header timeout 1 s)"
        assert httpx.get(bounded.base_url + "/health", timeout=5).status_code == 200
    finally:
        silent.close()
        slow.close()


def test_a_live_stream_outlasts_the_header_deadline(bounded: EmbeddedServer) -> None:
    """The deadline is for request headers only: a stream of 2 s on a 1 s deadline ends properly."""
    with httpx.stream("GET", sse_url(bounded.base_url), timeout=10) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert json.loads(lines[-1][5:])["type"] == "stream_end"


def test_oversized_client_message_ends_the_stream_properly(bounded: EmbeddedServer) -> None:
    with ws_connect(ws_stream_url(bounded.base_url), open_timeout=5, max_size=None) as conn:
        first = json.loads(conn.recv(timeout=5))
        conn.send("x" * 70_000)
        got = [first]
        try:
            while True:
                got.append(json.loads(conn.recv(timeout=5)))
        except ConnectionClosed:
            pass
        assert conn.close_code == 1000, conn.close_code
    assert [e["type"] for e in got[-2:]] == ["error", "stream_end"]
    assert got[-2]["code"] == "message_too_large"
    assert [e["seq"] for e in got] == list(range(len(got)))


def test_openapi_describes_the_stream_endpoints(bounded: EmbeddedServer) -> None:
    doc = httpx.get(bounded.base_url + "/openapi.json", timeout=5).json()
    sse_op = doc["paths"][SSE]["get"]
    params = {p["name"]: p for p in sse_op["parameters"]}
    assert params["question"]["required"] is True and params["question"]["schema"]["maxLength"] == 2000
    assert params["dataset"]["schema"]["enum"] == ["incidents", "deployments", "all"] or \
        set(params["dataset"]["schema"]["enum"]) >= {"incidents", "deployments", "all"}
    assert set(sse_op["responses"]) >= {"200", "204", "403", "422", "503"}
    assert "text/event-stream" in sse_op["responses"]["200"]["content"]
    assert "Retry-After" in sse_op["responses"]["503"]["headers"]
    ws_op = doc["paths"][WS]["get"]
    assert {p["name"] for p in ws_op["parameters"]} == {"question", "dataset", "model"}
    assert set(ws_op["responses"]) >= {"101", "403", "503"}


# --- SIGTERM -------------------------------------------------------------------------------


def test_sigterm_ends_running_streams_with_shutdown_and_stream_end() -> None:
    with EmbeddedServer(pace_ms=80) as server:
        base = server.base_url
        sse_events: list[dict[str, Any]] = []
        sse_done = threading.Event()

        def read_sse() -> None:
            try:
                with httpx.stream("GET", sse_url(base), timeout=10) as response:
                    for line in response.iter_lines():
                        if line.startswith("data:"):
                            sse_events.append(json.loads(line[5:]))
            finally:
                sse_done.set()

        reader = threading.Thread(target=read_sse, daemon=True)
        reader.start()
        with ws_connect(ws_stream_url(base), open_timeout=5) as conn:
            got = [json.loads(conn.recv(timeout=5)) for _ in range(3)]
            while len(sse_events) < 3:
                time.sleep(0.02)
            assert server.process is not None
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            try:
                while True:
                    got.append(json.loads(conn.recv(timeout=5)))
            except ConnectionClosed:
                pass
            assert conn.close_code == 1000, conn.close_code
        assert sse_done.wait(5)
        for events in (got, sse_events):
            assert [e["type"] for e in events[-2:]] == ["error", "stream_end"], events[-3:]
            assert events[-2]["code"] == "shutdown"
            assert events[-1]["type"] != "complete"
        assert server.process.wait(timeout=5) == 0
        assert time.monotonic() - started < 3, "the drain waited for the streams' natural end"


def test_draining_refuses_new_streams() -> None:
    """Once drained (the SIGTERM path), a new stream gets 503 shutting_down on both transports."""
    import uvicorn

    from reference_server.app import create_app
    from reference_server.serve import uvicorn_options

    config = ServerConfig(pace_ms=1)
    app = create_app(config=config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", **uvicorn_options(config)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert _accepted(base)
        app.state.streams.drain()  # nothing is running: only the flag changes
        response = httpx.get(sse_url(base), timeout=5)
        assert response.status_code == 503 and response.json()["error"] == "shutting_down"
        assert response.headers["retry-after"] == "1"
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(ws_stream_url(base), open_timeout=5)
        assert refused.value.response.status_code == 503
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def test_server_config_rejects_nonsense() -> None:
    for bad in ({"max_streams": 0}, {"header_timeout_s": float("nan")}, {"drain_s": -1}):
        with pytest.raises(ValueError, match="must be"):
            ServerConfig(**bad)
