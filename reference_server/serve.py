"""Run the app on uvicorn, bounded: request lines, idle and half-open connections,
oversized client messages, and a graceful drain on SIGTERM.

What uvicorn (0.54, httptools + websockets sans-I/O) does not bound by itself, and
what is added here, each in one small protocol subclass:

* **Long request lines.** A 2000-code-point question of 4-byte characters
  percent-encodes to about 24 KB of request line. httptools has no line limit of
  its own (URLs over 64 KB fail its parser and get a clean 400); the websockets
  handshake parser's 8 KB limit is raised to 64 KB, and past it the 414 answer it
  prepares, which uvicorn never sends, is sent (``HandshakeSafeWebSocketProtocol``).
* **Silent and slowloris connections.** httptools starts no timer until a first
  response: a socket that sends nothing, or a header a byte a minute, was held
  forever (1,200 of them for 70 s at filing, and 1,100 idle sockets under a 1,024
  descriptor limit took ``/health`` down). ``BoundedHttpProtocol`` closes a
  connection that has not delivered a request's headers within
  ``header_timeout_s``, and closes at once any connection past the cap.
* **Half-open peers.** TCP keep-alive and ``TCP_USER_TIMEOUT`` on every accepted
  socket, WebSocket pings (``ws_ping_interval_s``/``ws_ping_timeout_s``).
* **Client messages over 64 KiB.** The websockets parser would fail the
  connection with a bare 1009 (no ``error``, no ``stream_end``). Here the frame is
  dropped and the app is told, so the stream ends ``error`` (code
  ``message_too_large``), ``stream_end``, close 1000 as PROTOCOL.md section 5 asks
  after any error; the connection then reads nothing more.
* **SIGTERM.** uvicorn would send 1012 to every WebSocket mid-stream and cut SSE
  responses after ``timeout_graceful_shutdown``. ``DrainingServer`` first drains
  the app (running streams end ``error``/``shutdown``, ``stream_end``, close; new
  ones get 503), then lets uvicorn shut down once they are gone or after
  ``drain_s``.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from .config import ServerConfig, connection_cap

MAX_REQUEST_LINE = 65_536
"""Largest request line / header line accepted by either HTTP parser."""


def configure_websockets_limits(max_line: int = MAX_REQUEST_LINE) -> None:
    """Raise the websockets handshake parser's line limit (read at import and at call time)."""
    os.environ["WEBSOCKETS_MAX_LINE_LENGTH"] = str(max_line)
    import websockets.http11

    websockets.http11.MAX_LINE_LENGTH = max_line


def _tune_socket(transport: Any, config: ServerConfig) -> None:
    """Keep-alive probes and a user timeout: a peer that vanished is noticed."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 15)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        if hasattr(socket, "TCP_USER_TIMEOUT") and config.tcp_user_timeout_s:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(config.tcp_user_timeout_s * 1000))
    except OSError:
        pass


def _http_protocol_class(config: ServerConfig) -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    cap = connection_cap(config)

    class BoundedHttpProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with a deadline for each request's headers
        and a cap on open connections."""

        _header_timer: Any = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > cap:
                transport.abort()  # past the cap: refuse at once, keep descriptors for /health
                return
            _tune_socket(transport, config)
            self._arm()

        def _arm(self) -> None:
            if self._header_timer is None and config.header_timeout_s:
                self._header_timer = self.loop.call_later(config.header_timeout_s, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def on_message_begin(self) -> None:
            self._arm()
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def handle_websocket_upgrade(self) -> None:
            self._disarm()
            super().handle_websocket_upgrade()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return BoundedHttpProtocol


def _ws_protocol_class(config: ServerConfig) -> type:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.frames import CloseCode
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    from .app import OVERSIZE_KEY

    class DroppingServerProtocol(ServerProtocol):
        """A message over ``max_size`` is not a reason to fail the connection here:
        the app ends the stream properly instead. Everything the client sends after
        it is read and dropped (the oversized frame cannot be skipped reliably)."""

        oversize: str | None = None

        def fail(self, code: int, reason: str = "") -> None:
            if code == CloseCode.MESSAGE_TOO_BIG and self.state is State.OPEN and self.oversize is None:
                self.oversize = reason or "message too big"
                self.parser = self._drop()
                next(self.parser)
                return
            super().fail(code, reason)

        def _drop(self) -> Any:
            while not (yield from self.reader.at_eof()):
                self.reader.discard()
            yield

    class HandshakeSafeWebSocketProtocol(WebSocketsSansIOProtocol):
        """uvicorn's websockets sans-I/O protocol, plus an answer to a handshake
        request the parser refused (line too long, malformed): 414/431/400, close;
        and an oversized client message handed to the app instead of a 1009."""

        _told_oversize = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn.__class__ = DroppingServerProtocol

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            _tune_socket(transport, config)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.handshake_initiated or getattr(self.conn, "handshake_exc", None) is None:
                return
            if self.transport.is_closing():
                return
            output = b"".join(self.conn.data_to_send())
            if not output.startswith(b"HTTP/"):
                body = b"Invalid WebSocket handshake request.\n"
                output = (
                    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
                )
            self.transport.write(output)
            self.transport.close()

        def handle_parser_exception(self) -> None:
            if getattr(self.conn, "oversize", None) is not None:
                if not self._told_oversize:
                    self._told_oversize = True
                    self.queue.put_nowait({"type": "websocket.receive", "text": None, OVERSIZE_KEY: self.conn.oversize})
                return
            super().handle_parser_exception()

        async def send(self, message: Any) -> None:
            await super().send(message)
            if message.get("type") == "websocket.close" and self._told_oversize and not self.transport.is_closing():
                # the client's close reply can no longer be parsed: end the TCP connection now
                self.transport.close()

    return HandshakeSafeWebSocketProtocol


def uvicorn_options(config: ServerConfig | None = None) -> dict[str, Any]:
    """The uvicorn settings the reference server runs with (also used by tests)."""
    config = config or ServerConfig()
    configure_websockets_limits()
    return {
        "http": _http_protocol_class(config),
        "ws": _ws_protocol_class(config),
        "h11_max_incomplete_event_size": MAX_REQUEST_LINE,  # only used if http is switched to h11
        "ws_max_size": config.max_client_message,
        "ws_per_message_deflate": True,
        "ws_ping_interval": config.ws_ping_interval_s or None,
        "ws_ping_timeout": config.ws_ping_timeout_s or None,
        "timeout_keep_alive": config.keep_alive_s,
        "lifespan": "off",
        "timeout_graceful_shutdown": 2,
    }


def draining_server(uvicorn_config: Any, app: Any, drain_s: float) -> Any:
    """A ``uvicorn.Server`` whose first SIGTERM/SIGINT drains ``app`` before exiting."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """First signal: drain the app's streams (they end with ``error``/``shutdown``
        and ``stream_end``), then exit once none is running or ``drain_s`` passed.
        A second signal exits as uvicorn does."""

        drain_deadline: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.drain_deadline is None and drain_s > 0:
                self.drain_deadline = time.monotonic() + drain_s  # acted on in on_tick, on the event loop
                return
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self.drain_deadline is not None and not self.should_exit:
                streams = app.state.streams
                if not streams.draining:
                    streams.drain()
                if not streams.live or time.monotonic() >= self.drain_deadline:
                    self.should_exit = True
            return await super().on_tick(counter)

    return DrainingServer(uvicorn_config)


def run(host: str, port: int, config: ServerConfig, log_level: str = "info") -> None:
    """Serve ``create_app(config=config)`` until SIGTERM/SIGINT (drained) or a second one."""
    options = uvicorn_options(config)
    import uvicorn

    from .app import create_app

    app = create_app(config=config)
    server = draining_server(uvicorn.Config(app, host=host, port=port, log_level=log_level, **options), app,
                             config.drain_s)
    server.run()


SERVERS = ("uvicorn", "hypercorn")
"""The HTTP servers the reference app runs on: uvicorn (HTTP/1.1 and WebSocket,
the default) and hypercorn (HTTP/1.1, HTTP/2 with prior knowledge (h2c) and
WebSocket on one port), which is what the ``sse-h2`` transport needs."""


def hypercorn_config(host: str, port: int, log_level: str = "info", max_message: int | None = None) -> Any:
    """The hypercorn settings of the reference server: the same request-line bound
    as uvicorn's (a 24 KB request line passes over HTTP/1.1 and HTTP/2), the same
    WebSocket message bound, and a short graceful shutdown."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.h11_max_incomplete_size = MAX_REQUEST_LINE
    config.h2_max_header_list_size = MAX_REQUEST_LINE
    config.websocket_max_message_size = max_message or ServerConfig().max_client_message
    config.graceful_timeout = 2
    config.loglevel = log_level.upper() if log_level != "trace" else "DEBUG"
    config.accesslog = None
    return config


def run_hypercorn(host: str, port: int, config: ServerConfig, log_level: str = "info") -> None:
    """Serve ``create_app(config=config)`` on hypercorn until interrupted (SIGTERM or SIGINT).
    The origin, admission and drain policies are the app's own; the uvicorn-level
    header deadline and connection cap are not applied on hypercorn."""
    import asyncio
    import signal

    from hypercorn.asyncio import serve

    from .app import create_app

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(create_app(config=config), hypercorn_config(host, port, log_level, config.max_client_message),
                    shutdown_trigger=stop.wait)

    asyncio.run(main())
