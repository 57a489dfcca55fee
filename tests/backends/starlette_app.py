"""The canned stream on plain Starlette with sse-starlette: CRLF line ends,
``Cache-Control: no-store``, and ``: ping`` keep-alive comments every
``PING_S`` (so comments really arrive between events). WebSocket rejections are
closed before the accept (uvicorn answers 403 at the handshake).
``create_app(defect)`` breaks exactly one behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import nullcontext

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import canned
from .driver import Gauge, detached, paced

PING_S = 0.02
DEFECTS = {
    "empty-chunk", "seq-as-string", "event-after-end", "seq-gap", "ws-field-differs", "named-events",
    "no-x-accel-buffering", "reconnect-reruns", "ws-close-1001", "accepts-empty-question",
    "ws-reject-as-stream", "shared-seq-counter", "unterminated-code-run", "ws-work-continues",
    "question-limit-in-bytes", "ws-gauge-leaks-on-leave", "control-characters-crash",
}


def create_app(defect: str | None = None) -> Starlette:
    assert defect is None or defect in DEFECTS, defect
    gauge = Gauge(leak_on_leave=defect == 'ws-gauge-leaks-on-leave')

    def parse(query) -> canned.Request | canned.Rejection:
        return canned.parse(query, defect)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(gauge.render())

    async def sse(request: Request) -> Response:
        if "last-event-id" in request.headers and defect != "reconnect-reruns":
            return Response(status_code=204)
        parsed = parse(request.query_params)
        if isinstance(parsed, canned.Rejection):
            return JSONResponse(parsed.body(), status_code=422)

        async def messages() -> AsyncIterator[ServerSentEvent]:
            with gauge.open():  # left on completion and when sse-starlette cancels us on disconnect
                async for event in paced(parsed, "sse", defect):
                    yield ServerSentEvent(data=canned.dumps(event), id=str(event["seq"]),
                                          event=event["type"] if defect == "named-events" else None)

        response = EventSourceResponse(messages(), ping=PING_S)
        if defect == "no-x-accel-buffering":
            del response.headers["x-accel-buffering"]
        return response

    async def ws(websocket: WebSocket) -> None:
        parsed = parse(websocket.query_params)
        if isinstance(parsed, canned.Rejection):
            if defect != "ws-reject-as-stream":
                await websocket.close(1008)  # before accept: a 403 at the handshake
                return
            await websocket.accept()  # the defect: a whole stream (start, error, stream_end) before 1008
            stamper = canned.Stamper()
            for event in [{"type": "start"}, parsed.ws_event(), {"type": "stream_end"}]:
                await websocket.send_text(canned.dumps(stamper.stamp(event)))
            await websocket.close(1008)
            return
        await websocket.accept()
        cancel = asyncio.Event()

        async def read_client() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    if canned.client_cancels(message.get("text")):
                        cancel.set()
            except (WebSocketDisconnect, OSError, RuntimeError):
                return

        reader = asyncio.create_task(read_client())
        events = paced(parsed, "ws", defect, cancel)
        if defect == "ws-work-continues":  # the work outlives the socket and holds the gauge
            events, holding = detached(events, gauge), nullcontext()
        else:
            holding = gauge.open()
        try:
            with holding:
                async for event in events:
                    await websocket.send_text(canned.dumps(event))
                await websocket.close(1001 if defect == "ws-close-1001" else 1000)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client left: stop the work
        finally:
            reader.cancel()

    return Starlette(routes=[
        Route("/health", health),
        Route("/metrics", metrics),
        Route("/agent/stream", sse),
        WebSocketRoute("/ws/agent/stream", ws),
    ])
