"""Tiny servers for the recorder tests: well-behaved and misbehaving, all on 127.0.0.1.

* :func:`stub_app` is a Starlette app served by uvicorn in a thread
  (:class:`UvicornThread`): ordinary SSE and WS streams plus the quirks a real
  stack produces (``id:`` + comment keep-alives, CR/CRLF line ends, non-JSON,
  binary frames, a cancel flow).
* :class:`RawServer` runs a function per accepted TCP connection, for the
  backends no framework would let us write: one that stalls after the headers,
  never answers, floods, sends garbage or drops the connection without a close
  frame.
* :func:`self_signed_cert` makes a certificate for 127.0.0.1 (openssl CLI), for
  the TLS cases.
* :class:`CountingRelay` forwards a port to another and counts the bytes in each
  direction: an independent count to compare the recorders' wire counts with.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


def _events(n: int, *, pad: str = "") -> list[dict]:
    out: list[dict] = [{"type": "start", "seq": 0, "ts": time.time()}]
    for i in range(1, n - 1):
        out.append({"type": "chain_of_thought", "seq": i, "ts": time.time(), "content": f"step {i} {pad}"})
    out.append({"type": "stream_end", "seq": n - 1, "ts": time.time()})
    return out


# --------------------------------------------------------------------- SSE


async def sse_stream(request: Request) -> Response:
    """?n=events&eol=LF|CRLF|CR&pad=chars&delay=s&keepalive=1&multiline=1"""
    q = request.query_params
    if "question" in q and not q["question"].strip():
        return JSONResponse({"error": "question must not be empty"}, status_code=422)
    if request.headers.get("last-event-id") is not None:
        return Response(status_code=204)
    n = int(q.get("n", "5"))
    eol = {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}[q.get("eol", "LF")]
    pad = "x" * int(q.get("pad", "0"))
    delay = float(q.get("delay", "0"))
    keepalive = q.get("keepalive") == "1"
    multiline = q.get("multiline") == "1"

    async def body():
        yield f": hello{eol}{eol}".encode()
        for ev in _events(n, pad=pad):
            text = json.dumps(ev)
            if multiline:
                half = len(text) // 2
                data = f"data: {text[:half]}{eol}data: {text[half:]}{eol}"
            else:
                data = f"data: {text}{eol}"
            yield f"id: {ev['seq']}{eol}{data}{eol}".encode()
            if keepalive:
                yield f": keep-alive{eol}{eol}".encode()
            if delay:
                await asyncio.sleep(delay)

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def sse_odd(request: Request) -> Response:
    """Non-JSON data, a named event, a retry field, an id-only block."""

    async def body():
        yield b"retry: 1500\nid: 7\ndata: not json\n\n"
        yield b"id: 8\n\n"  # no data: not an event
        yield b'event: custom\ndata: {"type": "progress", "stage": "s", "message": "m"}\n\n'
        yield b'data: {"type": "stream_end"}\n\n'

    return StreamingResponse(body(), media_type="text/event-stream")


async def sse_forever(request: Request) -> Response:
    """Events without end (a flood)."""

    async def body():
        i = 0
        while True:
            yield f'data: {{"type": "chain_of_thought", "content": "{i}"}}\n\n'.encode()
            i += 1
            if i % 100 == 0:
                await asyncio.sleep(0)

    return StreamingResponse(body(), media_type="text/event-stream")


async def sse_endless_line(request: Request) -> Response:
    async def body():
        yield b'data: {"type": "start", "pad": "'
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0)

    return StreamingResponse(body(), media_type="text/event-stream")


async def sse_no_end(request: Request) -> Response:
    """Sends stream_end and then keeps the response open."""

    async def body():
        yield b'data: {"type": "start"}\n\n'
        yield b'data: {"type": "stream_end"}\n\n'
        await asyncio.sleep(30)

    return StreamingResponse(body(), media_type="text/event-stream")


async def html_page(request: Request) -> Response:
    return Response("<html>" + "y" * 100_000 + "</html>", media_type="text/html")


# --------------------------------------------------------------------- WS


async def ws_stream(websocket: WebSocket) -> None:
    """?n=events&pad=chars&delay=s; honours {"type": "cancel"}."""
    q = websocket.query_params
    if q.get("dataset") == "nope":
        await websocket.close(code=1008)
        return
    await websocket.accept()
    n = int(q.get("n", "5"))
    pad = "x" * int(q.get("pad", "0"))
    delay = float(q.get("delay", "0"))
    cancelled = asyncio.Event()

    async def listen():
        try:
            while True:
                msg = await websocket.receive_text()
                try:
                    if json.loads(msg).get("type") == "cancel":
                        cancelled.set()
                except (ValueError, AttributeError):
                    pass
        except (WebSocketDisconnect, RuntimeError):
            cancelled.set()

    listener = asyncio.create_task(listen())
    try:
        events = _events(n, pad=pad)
        for ev in events[:-1]:
            if cancelled.is_set():
                await websocket.send_text(json.dumps({"type": "error", "code": "cancelled", "message": "cancelled"}))
                break
            await websocket.send_text(json.dumps(ev))
            await asyncio.sleep(delay)
        await websocket.send_text(json.dumps(events[-1]))
        await websocket.close(code=1000)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        listener.cancel()


async def ws_odd(websocket: WebSocket) -> None:
    """A non-JSON text frame, a binary frame (UTF-8 JSON) and a non-UTF-8 binary frame."""
    await websocket.accept()
    await websocket.send_text("this is not json")
    await websocket.send_bytes(b'{"type": "start"}')
    await websocket.send_bytes(b"\xff\xfe\x00")
    await websocket.send_text('{"type": "stream_end"}')
    await websocket.close(code=1000)


async def ws_forever(websocket: WebSocket) -> None:
    await websocket.accept()
    i = 0
    try:
        while True:
            await websocket.send_text(json.dumps({"type": "chain_of_thought", "content": str(i)}))
            i += 1
            if i % 50 == 0:
                await asyncio.sleep(0)
    except (WebSocketDisconnect, RuntimeError, Exception):  # noqa: BLE001 - client left
        pass


async def ws_big(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        await websocket.send_text(json.dumps({"type": "start", "pad": "x" * 200_000}))
        await websocket.receive()
    except Exception:  # noqa: BLE001 - client left
        pass


async def ws_no_close(websocket: WebSocket) -> None:
    """Sends stream_end, then neither closes nor sends anything."""
    await websocket.accept()
    await websocket.send_text('{"type": "start"}')
    await websocket.send_text('{"type": "stream_end"}')
    try:
        await websocket.receive_text()
    except Exception:  # noqa: BLE001 - client left
        pass


def stub_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/sse", sse_stream),
            Route("/sse/odd", sse_odd),
            Route("/sse/forever", sse_forever),
            Route("/sse/endless-line", sse_endless_line),
            Route("/sse/no-end", sse_no_end),
            Route("/html", html_page),
            WebSocketRoute("/ws", ws_stream),
            WebSocketRoute("/ws/odd", ws_odd),
            WebSocketRoute("/ws/forever", ws_forever),
            WebSocketRoute("/ws/big", ws_big),
            WebSocketRoute("/ws/no-close", ws_no_close),
        ]
    )


class UvicornThread:
    """Serve an ASGI app with uvicorn in a daemon thread on a free loopback port."""

    def __init__(self, app, *, ws: str = "auto", **config: object) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        scheme = "https" if config.get("ssl_certfile") else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, log_level="warning", ws=ws, lifespan="off", timeout_graceful_shutdown=1, **config)
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> "UvicornThread":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


# --------------------------------------------------------------------- raw sockets


def _listen() -> tuple[socket.socket, int, str]:
    """A listening socket on a free loopback port, with a short accept timeout so
    the serving thread can notice a stop: (socket, port, base URL)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.2)
    port = lsock.getsockname()[1]
    return lsock, port, f"http://127.0.0.1:{port}"


class RawServer:
    """Accept TCP connections on a free loopback port; run ``handler(conn)`` for each in a thread."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self._handler = handler
        self._lsock, self.port, self.base_url = _listen()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._lsock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(10)
            self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self._handler(conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def __enter__(self) -> "RawServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass
        self._thread.join(timeout=2)
        self._lsock.close()


def read_head(conn: socket.socket) -> bytes:
    """Read an HTTP request head (until the blank line)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def wait_closed(conn: socket.socket, seconds: float) -> None:
    """Hold the connection open (sending nothing) until the peer closes or time runs out."""
    conn.settimeout(seconds)
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stall_after_headers(conn: socket.socket) -> None:
    read_head(conn)
    conn.sendall(SSE_HEAD)
    wait_closed(conn, 30)


def stall_after_one_event(conn: socket.socket) -> None:
    read_head(conn)
    conn.sendall(SSE_HEAD + chunk(b'data: {"type": "start"}\n\n'))
    wait_closed(conn, 30)


def never_answer(conn: socket.socket) -> None:
    read_head(conn)
    wait_closed(conn, 30)


def garbage_head(conn: socket.socket) -> None:
    read_head(conn)
    conn.sendall(b"\x00\x01garbage that is not HTTP\r\n\r\n")
    wait_closed(conn, 2)


def sse_drop_mid_stream(conn: socket.socket) -> None:
    read_head(conn)
    conn.sendall(SSE_HEAD + chunk(b'data: {"type": "start"}\n\n'))
    time.sleep(0.05)
    conn.shutdown(socket.SHUT_RDWR)


def comments_forever(conn: socket.socket) -> None:
    """Keep-alives every 50 ms and never an event."""
    read_head(conn)
    conn.sendall(SSE_HEAD)
    for _ in range(1000):
        conn.sendall(chunk(b": ping\n\n"))
        time.sleep(0.05)


def id_keepalive_raw(conn: socket.socket) -> None:
    """The httpx-sse #35 pattern, byte for byte: event with id, then a comment block."""
    read_head(conn)
    body = (
        b'id: 0\ndata: {"type": "start", "seq": 0}\n\n'
        b": ping\n\n"
        b": ping\n\n"
        b'id: 1\ndata: {"type": "stream_end", "seq": 1}\n\n'
        b": ping\n\n"
    )
    conn.sendall(SSE_HEAD + chunk(body) + b"0\r\n\r\n")
    wait_closed(conn, 2)


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(conn: socket.socket) -> None:
    head = read_head(conn).decode("latin-1")
    key = ""
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
    conn.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()
    )


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def ws_drop_without_close(conn: socket.socket) -> None:
    ws_accept(conn)
    conn.sendall(ws_frame(b'{"type": "start"}'))
    time.sleep(0.05)
    conn.shutdown(socket.SHUT_RDWR)


def ws_stall_after_handshake(conn: socket.socket) -> None:
    ws_accept(conn)
    wait_closed(conn, 30)


def ws_stall_after_one_frame(conn: socket.socket) -> None:
    ws_accept(conn)
    conn.sendall(ws_frame(b'{"type": "start"}'))
    wait_closed(conn, 30)


def ws_garbage_frames(conn: socket.socket) -> None:
    ws_accept(conn)
    conn.sendall(ws_frame(b'{"type": "start"}') + b"\x0f\xff\xff\xff garbage")  # reserved opcode
    wait_closed(conn, 5)


def ws_reject_401(conn: socket.socket) -> None:
    read_head(conn)
    body = json.dumps({"error": "no token"}).encode()
    conn.sendall(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    wait_closed(conn, 2)


# --------------------------------------------------------------------- relay


class CountingRelay:
    """Forward 127.0.0.1:<port> to a target port, counting the bytes each way.

    ``up`` is client -> server, ``down`` server -> client. The counts are final
    once both directions have seen EOF (``wait_idle``).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = 0
        self.down = 0
        self.captured = {"up": bytearray(), "down": bytearray()}
        """The first 64 KiB each way, to find the HTTP heads independently."""
        self._lock = threading.Lock()
        self._active = 0
        self._lsock, self.port, self.base_url = _listen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._lsock.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            for s in (client, upstream):
                s.settimeout(30)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._active += 2
            pair = [2]
            threading.Thread(target=self._pump, args=(client, upstream, "up", pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down", pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, pair: list[int]) -> None:
        try:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    break
                with self._lock:
                    cap = self.captured[direction]
                    if len(cap) < 65536:
                        cap += data[: 65536 - len(cap)]
                    if direction == "up":
                        self.up += len(data)
                    else:
                        self.down += len(data)
                try:
                    dst.sendall(data)
                except OSError:
                    break
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self._lock:
                self._active -= 1
                pair[0] -= 1
                done = pair[0] == 0
            if done:
                for s in (src, dst):
                    try:
                        s.close()
                    except OSError:
                        pass

    def reset(self) -> None:
        with self._lock:
            self.up = self.down = 0
            self.captured = {"up": bytearray(), "down": bytearray()}

    def wait_idle(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._active == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError("relay still has open connections")

    def __enter__(self) -> "CountingRelay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._lsock.close()


def self_signed_cert(directory: str) -> tuple[str, str] | None:
    """(cert, key) paths of a fresh self-signed certificate for 127.0.0.1, or None without openssl."""
    import os
    import shutil

    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    import subprocess

    proc = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, timeout=60,
    )
    return (cert, key) if proc.returncode == 0 else None
