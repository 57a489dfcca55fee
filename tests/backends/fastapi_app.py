"""The canned stream on FastAPI: native ``fastapi.sse.EventSourceResponse`` (LF line
ends, ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no`` set by FastAPI)
and Starlette's WebSocket. ``create_app(defect)`` breaks exactly one behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import nullcontext

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.websockets import WebSocketDisconnect

from . import canned
from .driver import Gauge, detached, paced

DEFECTS = {
    "confidence-out-of-range", "missing-start", "chunk-sum-mismatch", "complete-and-error",
    "response-not-ended", "no-sse-id", "ws-binary-frames", "ws-cancel-ignored",
    "sse-reject-text-plain", "work-continues", "accepts-too-long-question", "event-between-complete-and-end",
    "late-cancel-errors", "same-question-shares-seq", "gauge-leaks-on-leave",
    "ws-stops-listening",
}


class _Reject(Exception):
    def __init__(self, status: int, rejection: canned.Rejection | None = None) -> None:
        self.status, self.rejection = status, rejection


def create_app(defect: str | None = None, variable: bool = False) -> FastAPI:
    """``variable``: every stream differs, as an LLM's do (see ``canned.plan``)."""
    assert defect is None or defect in DEFECTS, defect
    app = FastAPI()
    gauge = Gauge(leak_on_leave=defect == 'gauge-leaks-on-leave')

    async def rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Reject)
        if exc.rejection is None:
            return Response(status_code=exc.status)
        if defect == "sse-reject-text-plain":
            return PlainTextResponse(exc.rejection.message, status_code=exc.status)
        return JSONResponse(exc.rejection.body(), status_code=exc.status)

    app.add_exception_handler(_Reject, rejected)

    def sse_request(request: Request) -> canned.Request:
        if "last-event-id" in request.headers:
            raise _Reject(204)  # cannot resume: 204 stops the browser
        parsed = canned.parse(request.query_params, defect)
        if isinstance(parsed, canned.Rejection):
            raise _Reject(422, parsed)
        return parsed

    def events(req: canned.Request, transport: str, cancel: asyncio.Event | None = None) -> AsyncIterator[dict]:
        source = paced(req, transport, defect, cancel, variable)
        return detached(source, gauge) if defect == "work-continues" else source

    def holding():
        """The gauge, held by the handler (by the detached work for work-continues)."""
        return nullcontext() if defect == "work-continues" else gauge.open()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(gauge.render())

    @app.get("/agent/stream", response_class=EventSourceResponse)
    async def sse(req: canned.Request = Depends(sse_request)) -> AsyncIterator[ServerSentEvent]:
        with holding():  # left on completion and when FastAPI cancels us on disconnect
            async for event in events(req, "sse"):
                yield ServerSentEvent(raw_data=canned.dumps(event),
                                      id=None if defect == "no-sse-id" else str(event["seq"]))
            if defect == "response-not-ended":
                await asyncio.sleep(30)

    @app.websocket("/ws/agent/stream")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        parsed = canned.parse(websocket.query_params, defect)
        if isinstance(parsed, canned.Rejection):
            await websocket.send_text(canned.dumps(parsed.ws_event()))
            await websocket.close(1008)
            return
        cancel = asyncio.Event()
        sent = [0]

        async def read_client() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    deaf = defect == "ws-stops-listening" and sent[0] >= 8
                    if canned.client_cancels(message.get("text")) and defect != "ws-cancel-ignored" and not deaf:
                        cancel.set()
            except (WebSocketDisconnect, OSError, RuntimeError):
                return

        reader = asyncio.create_task(read_client())
        try:
            with holding():
                async for event in events(parsed, "ws", cancel):
                    if defect == "ws-binary-frames":
                        await websocket.send_bytes(canned.dumps(event).encode())
                    else:
                        await websocket.send_text(canned.dumps(event))
                    sent[0] += 1
                await websocket.close(1000)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client left: stop the work
        finally:
            reader.cancel()

    return app
