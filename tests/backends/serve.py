"""Run a test backend on a free 127.0.0.1 port in a daemon thread.

ASGI apps (FastAPI, Starlette) run on uvicorn with the reference server's
settings (``reference_server.serve.uvicorn_options``: a 24 KB request line
passes on both transports); aiohttp runs on its own AppRunner with raised line
limits. ``defect="default-line-limit"`` keeps aiohttp's stock 8 KB line limit.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

STACKS = ("fastapi", "aiohttp", "starlette")
VARIANTS = ("aiohttp-quirks", "aiohttp-pings", "fastapi-variable")
"""Correct backends that use unusual corners of the formats (see ``aiohttp_app``)."""
MAX_LINE = 65_536


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_ready(base_url: str, thread: threading.Thread, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        try:
            if httpx.get(base_url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"the backend at {base_url} did not start")


@contextmanager
def _uvicorn(app, sock: socket.socket) -> Iterator[None]:
    import uvicorn
    from reference_server.serve import uvicorn_options

    options = uvicorn_options() | {"timeout_graceful_shutdown": 1}
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_ready(f"http://127.0.0.1:{sock.getsockname()[1]}", thread)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@contextmanager
def _hypercorn(app, sock: socket.socket) -> Iterator[None]:
    """An ASGI app on hypercorn (HTTP/1.1, h2c and WebSocket on one port), with the
    reference server's settings: for the sse-h2 transport."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from reference_server.serve import hypercorn_config

    port = sock.getsockname()[1]
    sock.close()  # hypercorn binds the port itself
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        config = hypercorn_config("127.0.0.1", port, "critical")
        config.graceful_timeout = 1
        loop.run_until_complete(hypercorn_serve(app, config, shutdown_trigger=stop.wait))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        _wait_ready(f"http://127.0.0.1:{port}", thread)
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=5)


@contextmanager
def _aiohttp(app, sock: socket.socket, max_line: int) -> Iterator[None]:
    from aiohttp import web

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, max_line_size=max_line, max_field_size=max_line, access_log=None,
                           shutdown_timeout=1.0)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock).start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        _wait_ready(f"http://127.0.0.1:{sock.getsockname()[1]}", thread)
        yield
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


@contextmanager
def serve(stack: str, defect: str | None = None, server: str = "uvicorn") -> Iterator[str]:
    """Start ``stack`` with ``defect`` (None: the correct backend); yields its base URL.
    ``server="hypercorn"`` runs an ASGI stack on hypercorn (HTTP/2 too)."""
    sock = _free_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        if stack.startswith("aiohttp"):
            from .aiohttp_app import create_app

            max_line = 8190 if defect == "default-line-limit" else MAX_LINE
            app = create_app(defect, quirks=stack == "aiohttp-quirks", pings=stack == "aiohttp-pings")
            with _aiohttp(app, sock, max_line):
                yield base_url
        else:
            if stack == "fastapi-variable":
                from .fastapi_app import create_app as fastapi_app

                def create_app(defect):
                    return fastapi_app(defect, variable=True)
            elif stack == "fastapi":
                from .fastapi_app import create_app
            elif stack == "starlette":
                from .starlette_app import create_app
            else:
                raise ValueError(f"unknown stack {stack!r}; one of {STACKS + VARIANTS}")
            with (_hypercorn if server == "hypercorn" else _uvicorn)(create_app(defect), sock):
                yield base_url
    finally:
        sock.close()


def main() -> None:
    """``python -m backends.serve STACK [DEFECT]``: serve one backend until Ctrl-C."""
    import sys

    stack, defect = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    with serve(stack, defect) as url:
        print(url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
