"""The reference agent server: agent-stream/1 over SSE and WebSocket, plus health,
data set catalogue and Prometheus metrics.

``create_app`` builds an independent app (own metrics registry, own pace), so
tests can run several in one process. The transports are thin: validation is in
``params``, the events in ``agent``, stamping/pacing/cancel in ``stream``.
"""

from __future__ import annotations

import asyncio
import json
import math
from contextlib import aclosing
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.websockets import WebSocketDisconnect, WebSocketState

from .datasets import catalogue, load_frames
from .metrics import Metrics
from .agent import agent_events
from .params import Rejection, StreamRequest, parse_request
from .stream import StopSignal, dumps, paced_events

SSE_PATH = "/agent/stream"
WS_PATH = "/ws/agent/stream"
WS_POLICY_VIOLATION = 1008


class _Rejected(Exception):
    """Raised by the SSE dependency: answered 422 with a JSON body, no stream."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


@dataclass
class _SseStream:
    """One SSE stream's events and whether they all went out."""

    events: AsyncGenerator[dict[str, Any], None]
    finished: bool = False


_DISCONNECT_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError)


class _NoResume(Exception):
    """Raised by the SSE dependency for a reconnect (Last-Event-ID): answered 204."""


def create_app(pace_ms: float = 30.0) -> FastAPI:
    """A fresh app; ``pace_ms`` is the delay before each chunk/reasoning event
    (finite and >= 0: an infinite pace would make every stream hang)."""
    pace_ms = float(pace_ms)
    if not (math.isfinite(pace_ms) and pace_ms >= 0):
        raise ValueError(f"pace_ms must be a finite number >= 0, not {pace_ms!r}")
    pace = pace_ms / 1000.0
    metrics = Metrics()
    load_frames()  # read the CSVs now, not during the first stream
    for _ in agent_events(StreamRequest("incidents by region")):  # warm pandas' lazy imports up
        pass
    app = FastAPI(title="agent-stream/1 reference server", version="1.0")
    app.state.metrics = metrics
    app.state.pace_ms = pace_ms

    async def rejected_handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Rejected)
        return JSONResponse(exc.rejection.body(), status_code=422)

    async def no_resume_handler(request: Request, exc: Exception) -> Response:
        return Response(status_code=204)

    async def validation_handler(request: Request, exc: Exception) -> Response:
        # not reached by the stream routes (they read the query themselves); kept
        # so that no framework validation error ever has another shape
        return JSONResponse({"error": "invalid_request", "param": "", "message": str(exc)[:500]}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(_Rejected, rejected_handler)
    app.add_exception_handler(_NoResume, no_resume_handler)

    async def sse_stream_context(request: Request) -> AsyncIterator[_SseStream]:
        """Validate, then own the stream's life: FastAPI tears this dependency
        down after the response, also when the client left, so the count of open
        streams is right at once (the endpoint generator itself may be left
        suspended at a ``yield`` and only finalised by the garbage collector)."""
        if "last-event-id" in request.headers:
            raise _NoResume()
        parsed = parse_request(request.query_params)
        if isinstance(parsed, Rejection):
            metrics.rejected.labels(transport="sse").inc()
            raise _Rejected(parsed)
        stream = _SseStream(paced_events(parsed, pace, StopSignal()))
        metrics.started.labels(transport="sse").inc()
        metrics.active.inc()
        try:
            yield stream
        except BaseExceptionGroup as group:
            # FastAPI's SSE keep-alive task raises BrokenResourceError when the
            # client disconnects mid-stream; that is a disconnect, not an error.
            if group.subgroup(lambda e: not isinstance(e, (BaseExceptionGroup, *_DISCONNECT_ERRORS))) is not None:
                raise
        finally:
            try:
                await stream.events.aclose()  # stops the agent if it was still running
            except RuntimeError:  # still running in a task being torn down: it stops with it
                pass
            metrics.active.dec()
            (metrics.completed if stream.finished else metrics.cancelled).labels(transport="sse").inc()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/datasets")
    async def datasets() -> list[dict[str, object]]:
        return catalogue()

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get(SSE_PATH, response_class=EventSourceResponse)
    async def sse_stream(stream: _SseStream = Depends(sse_stream_context)) -> AsyncIterator[ServerSentEvent]:
        async for event in stream.events:
            if event["type"] == "stream_end":
                stream.finished = True  # handed over: the client may close as soon as it sees it
            yield ServerSentEvent(raw_data=dumps(event), id=str(event["seq"]))
            metrics.events.labels(transport="sse").inc()

    @app.websocket(WS_PATH)
    async def ws_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        parsed = parse_request(websocket.query_params)
        if isinstance(parsed, Rejection):
            metrics.rejected.labels(transport="ws").inc()
            try:
                await websocket.send_text(dumps(parsed.ws_event()))
                await websocket.close(WS_POLICY_VIOLATION)
            except (WebSocketDisconnect, OSError, RuntimeError):
                pass
            return

        stop = StopSignal()

        async def read_client() -> None:
            """Watch for cancel messages and for the client going away."""
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        stop.stop("disconnect")
                        return
                    text = message.get("text")
                    if text is None:
                        continue
                    try:
                        data = json.loads(text)
                    except (ValueError, RecursionError):  # not JSON (or absurdly nested): ignored
                        continue
                    if isinstance(data, dict) and data.get("type") == "cancel":
                        stop.stop("cancel")
            except (WebSocketDisconnect, OSError, RuntimeError):
                stop.stop("disconnect")

        reader = asyncio.create_task(read_client())
        metrics.started.labels(transport="ws").inc()
        metrics.active.inc()
        finished = False  # stream_end sent, and not because of a cancel
        cancelled = False
        try:
            async with aclosing(paced_events(parsed, pace, stop)) as events:
                async for event in events:
                    cancelled = cancelled or (event["type"] == "error" and event.get("code") == "cancelled")
                    await websocket.send_text(dumps(event))
                    metrics.events.labels(transport="ws").inc()
                    finished = event["type"] == "stream_end" and not cancelled
            if stop.reason != "disconnect" and websocket.application_state == WebSocketState.CONNECTED:
                await websocket.close(1000)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client went away while we were sending
        finally:
            reader.cancel()
            metrics.active.dec()
            (metrics.completed if finished else metrics.cancelled).labels(transport="ws").inc()

    return app
