"""Run an app on uvicorn with limits that admit a 24 KB request line, and no hang beyond.

A 2000-code-point question of 4-byte characters percent-encodes to about 24 KB
of request line. The stacks used here: httptools parses HTTP (no line limit of
its own; URLs over 64 KB fail its URL parser and get a clean 400), then hands
WebSocket upgrades to the websockets sans-I/O handshake parser, whose line limit
(8 KB by default) is raised to 64 KB. Past that limit the websockets parser
prepares a 414 answer that uvicorn (0.54) never sends, leaving the client
hanging: ``HandshakeSafeWebSocketProtocol`` sends it and closes.
"""

from __future__ import annotations

import os
from typing import Any

MAX_REQUEST_LINE = 65_536
"""Largest request line / header line accepted by either HTTP parser."""
WS_MAX_MESSAGE = 65_536
"""Largest message a client may send over the WebSocket (a cancel is tiny)."""


def configure_websockets_limits(max_line: int = MAX_REQUEST_LINE) -> None:
    """Raise the websockets handshake parser's line limit (read at import and at call time)."""
    os.environ["WEBSOCKETS_MAX_LINE_LENGTH"] = str(max_line)
    import websockets.http11

    websockets.http11.MAX_LINE_LENGTH = max_line


def _ws_protocol_class() -> type:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class HandshakeSafeWebSocketProtocol(WebSocketsSansIOProtocol):
        """uvicorn's websockets sans-I/O protocol, plus an answer to a handshake
        request the parser refused (line too long, malformed): 414/431/400, close."""

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

    return HandshakeSafeWebSocketProtocol


def uvicorn_options() -> dict[str, Any]:
    """The uvicorn settings the reference server runs with (also used by tests)."""
    configure_websockets_limits()
    return {
        "http": "httptools",
        "ws": _ws_protocol_class(),
        "h11_max_incomplete_event_size": MAX_REQUEST_LINE,  # only used if http is switched to h11
        "ws_max_size": WS_MAX_MESSAGE,
        "ws_per_message_deflate": True,
        "lifespan": "off",
        "timeout_graceful_shutdown": 2,
    }


def run(host: str, port: int, pace_ms: float, log_level: str = "info") -> None:
    """Serve ``create_app(pace_ms)`` until interrupted."""
    options = uvicorn_options()
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(pace_ms), host=host, port=port, log_level=log_level, **options)


SERVERS = ("uvicorn", "hypercorn")
"""The HTTP servers the reference app runs on: uvicorn (HTTP/1.1 and WebSocket,
the default) and hypercorn (HTTP/1.1, HTTP/2 with prior knowledge (h2c) and
WebSocket on one port), which is what the ``sse-h2`` transport needs."""


def hypercorn_config(host: str, port: int, log_level: str = "info") -> Any:
    """The hypercorn settings of the reference server: the same request-line bound
    as uvicorn's (a 24 KB request line passes over HTTP/1.1 and HTTP/2), the same
    WebSocket message bound, and a short graceful shutdown."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.h11_max_incomplete_size = MAX_REQUEST_LINE
    config.h2_max_header_list_size = MAX_REQUEST_LINE
    config.websocket_max_message_size = WS_MAX_MESSAGE
    config.graceful_timeout = 2
    config.loglevel = log_level.upper() if log_level != "trace" else "DEBUG"
    config.accesslog = None
    return config


def run_hypercorn(host: str, port: int, pace_ms: float, log_level: str = "info") -> None:
    """Serve ``create_app(pace_ms)`` on hypercorn until interrupted (SIGTERM or SIGINT)."""
    import asyncio
    import signal

    from hypercorn.asyncio import serve

    from .app import create_app

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(create_app(pace_ms), hypercorn_config(host, port, log_level), shutdown_trigger=stop.wait)

    asyncio.run(main())
