"""The canned stream on aiohttp: SSE written by hand on a ``StreamResponse`` (LF line
ends) and ``WebSocketResponse``. WebSocket rejections are refused at the handshake
with a 400 JSON answer. ``create_app(defect)`` breaks exactly one behaviour;
``default-line-limit`` is applied by ``serve`` (aiohttp's stock 8 KB request line).

``quirks=True`` is still correct but uses the corners of the SSE format a suite
might trip on: CR line ends, ``data:{...}`` without a space, ``event: message``, a
``retry:`` field and comments. ``pings=True`` (also correct) sends a WebSocket ping
before every event, as a heartbeat does now and then."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from . import canned
from .driver import Gauge, paced

DEFECTS = {
    "unknown-type", "missing-stream-end", "analysis-mismatch", "ws-extra-event", "content-type-plain",
    "no-cache-control", "buffered", "multi-line-data", "ws-batched-frames", "ws-drop-without-close",
    "unknown-dataset-500", "default-line-limit", "any-message-cancels", "ts-milliseconds", "rejects-one-character",
}
GONE = ConnectionError
"""What a write raises once the client has left (aiohttp's ClientConnectionResetError
is a ConnectionResetError); aiohttp does not cancel the handler by default."""


def create_app(defect: str | None = None, *, quirks: bool = False, pings: bool = False) -> web.Application:
    assert defect is None or defect in DEFECTS, defect
    gauge = Gauge()

    def parse(request: web.Request) -> canned.Request | canned.Rejection:
        parsed = canned.parse(request.query, defect)
        if defect == "unknown-dataset-500" and isinstance(parsed, canned.Rejection) and parsed.param == "dataset":
            raise KeyError(request.query["dataset"])  # an unhandled lookup: aiohttp answers 500
        return parsed

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=gauge.render())

    async def sse(request: web.Request) -> web.StreamResponse:
        if "Last-Event-ID" in request.headers:
            return web.Response(status=204)
        parsed = parse(request)
        if isinstance(parsed, canned.Rejection):
            return web.json_response(parsed.body(), status=422)
        headers = {"Content-Type": "text/plain" if defect == "content-type-plain" else "text/event-stream",
                   "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if defect == "no-cache-control":
            del headers["Cache-Control"]
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        style = {"pretty": defect == "multi-line-data"}
        if quirks:
            style.update(eol="\r", space=False, name="message")
            await response.write(b": quirks ahead\rretry:2500\r\r")
        with gauge.open():
            try:
                if defect == "buffered":
                    messages = [canned.sse_message(e) async for e in paced(parsed, "sse", defect)]
                    await response.write(b"".join(messages))
                else:
                    async for event in paced(parsed, "sse", defect):
                        await response.write(canned.sse_message(event, **style))
                await response.write_eof()
            except GONE:
                pass  # the client left: stop the work
        return response

    async def ws(request: web.Request) -> web.StreamResponse:
        parsed = parse(request)
        if isinstance(parsed, canned.Rejection):
            return web.json_response(parsed.body(), status=400)
        socket = web.WebSocketResponse(compress=True, max_msg_size=65_536)
        await socket.prepare(request)
        cancel = asyncio.Event()

        async def read_client() -> None:
            async for message in socket:
                if message.type == WSMsgType.TEXT and (canned.client_cancels(message.data)
                                                        or defect == "any-message-cancels"):
                    cancel.set()

        reader = asyncio.create_task(read_client())
        with gauge.open():
            try:
                held: list[str] = []
                async for event in paced(parsed, "ws", defect, cancel):
                    if pings:
                        await socket.ping(b"keep-alive")
                    held.append(canned.dumps(event))
                    if defect != "ws-batched-frames" or len(held) == 2:
                        await socket.send_str("\n".join(held))
                        held = []
                if held:
                    await socket.send_str("\n".join(held))
                if defect == "ws-drop-without-close":
                    request.transport.close()
                else:
                    await socket.close(code=1000)
            except GONE:
                pass  # the client left: stop the work
            finally:
                reader.cancel()
        return socket

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/agent/stream", sse)
    app.router.add_get("/ws/agent/stream", ws)
    return app
