"""Every bound and policy of the reference server, in one frozen value.

A backend that streams to browsers needs each of these, and each default is
here once, with why it has that value: the app (``create_app``), the uvicorn
protocols (``serve``), the command line and the tests all read this object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .origins import DEV_ORIGINS, OriginPolicy

MAX_CLIENT_MESSAGE = 65_536
"""Largest WebSocket message a client may send (a cancel is 17 bytes). A larger one
ends the stream with ``error`` (code ``message_too_large``), ``stream_end`` and close
1000, as PROTOCOL.md section 5 asks after any error, never a bare 1009."""


@dataclass(frozen=True)
class ServerConfig:
    pace_ms: float = 30.0
    """Delay before each chunk and reasoning event (a model emits tokens over time)."""
    origins: OriginPolicy = field(default_factory=lambda: OriginPolicy(DEV_ORIGINS))
    """Who may read SSE cross-origin (CORS) and open the WebSocket (Origin check)."""
    max_streams: int = 200
    """Concurrent streams (both transports) beyond which new ones are refused: SSE
    503 + Retry-After + JSON, WebSocket 503 at the handshake. Without it a burst of
    2,000 streams was all accepted and every one waited 17 s for its first event;
    refusing early lets a client retry elsewhere or later."""
    retry_after_s: int = 1
    """Retry-After of a refusal for load or shutdown."""
    header_timeout_s: float = 10.0
    """A connection must deliver a request's headers within this (silent sockets and
    slowloris senders are closed; uvicorn's httptools protocol has no such bound)."""
    keep_alive_s: float = 5.0
    """Idle keep-alive connections are closed after this (uvicorn's own timer)."""
    max_connections: int | None = None
    """Open connections beyond which new ones are closed at once; None: the file
    descriptor limit minus a reserve (so that /health and the listening socket
    always have descriptors: 1,100 idle sockets under a 1,024 limit took it down)."""
    ws_ping_interval_s: float = 10.0
    """WebSocket ping interval; a peer that does not answer within ``ws_ping_timeout_s``
    is half-open and is closed."""
    ws_ping_timeout_s: float = 10.0
    tcp_user_timeout_s: float = 30.0
    """TCP_USER_TIMEOUT: unacknowledged data older than this drops the connection (a
    half-open SSE client whose writes are never acknowledged)."""
    drain_s: float = 3.0
    """On SIGTERM, running streams are told to end (``error`` code ``shutdown``, then
    ``stream_end``, then close); the server exits when they have, or after this."""
    max_client_message: int = MAX_CLIENT_MESSAGE
    run_cache: int = 256
    """Finished runs kept to replay a question asked again (``agent.RunCache``); 0: off."""

    def __post_init__(self) -> None:
        for name in ("pace_ms", "header_timeout_s", "keep_alive_s", "ws_ping_interval_s", "ws_ping_timeout_s",
                     "tcp_user_timeout_s", "drain_s"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {getattr(self, name)!r}")
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, not {self.max_streams!r}")
        if self.run_cache < 0:
            raise ValueError(f"run_cache must be >= 0, not {self.run_cache!r}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, not {self.max_connections!r}")


def connection_cap(config: ServerConfig, reserve: int = 64) -> int:
    """The connection limit: ``max_connections``, else the descriptor limit minus ``reserve``."""
    if config.max_connections is not None:
        return config.max_connections
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 65_536
    except (ImportError, OSError, ValueError):
        soft = 1024
    return max(16, soft - reserve)
