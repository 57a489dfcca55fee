"""Two server stacks that send the scripted streams of ``broken_streams`` as SSE:
Starlette on uvicorn and aiohttp. ``POST /NAME`` answers with script NAME, its
events a few milliseconds apart (so that buffering can be told apart), the
request's threadId and runId filled in; an unknown name is a 404; a body that is
not a JSON object a 400 with a JSON error. ``GET /health`` for readiness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from .broken_streams import BY_NAME

STACKS = ("starlette", "aiohttp")
GAP_S = 0.02
"""Between two messages: a 10-event stream takes 0.2 s, long enough for SSE-NOT-BUFFERED."""
HEADERS = {"Cache-Control": "no-cache"}


def _document(body: bytes) -> Any:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def _frames(name: str, doc: Any) -> AsyncIterator[bytes]:
    for i, frame in enumerate(BY_NAME[name].frames(doc)):
        if i:
            await asyncio.sleep(GAP_S)
        yield frame


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def stream(request: Request) -> Response:
        name = request.path_params["name"]
        doc = _document(await request.body())
        if name not in BY_NAME:
            return JSONResponse({"error": f"no script {name}"}, status_code=404)
        if doc is None:
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        return StreamingResponse(_frames(name, doc), media_type="text/event-stream", headers=HEADERS)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/health", health), Route("/{name}", stream, methods=["POST"])])


def aiohttp_app() -> Any:
    from aiohttp import web

    async def stream(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        doc = _document(await request.read())
        if name not in BY_NAME:
            return web.json_response({"error": f"no script {name}"}, status=404)
        if doc is None:
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **HEADERS})
        await response.prepare(request)
        async for frame in _frames(name, doc):
            await response.write(frame)
        await response.write_eof()
        return response

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/{name}", stream)
    return app


@contextmanager
def serve(stack: str) -> Iterator[str]:
    """The scripted server on ``stack``, on a free loopback port; yields its base URL."""
    from .serve import MAX_LINE, _aiohttp, _free_socket, _uvicorn

    sock = _free_socket()
    try:
        if stack == "starlette":
            with _uvicorn(starlette_app(), sock):
                yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        elif stack == "aiohttp":
            with _aiohttp(aiohttp_app(), sock, MAX_LINE):
                yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        else:
            raise ValueError(f"unknown stack {stack!r}; one of {STACKS}")
    finally:
        sock.close()
