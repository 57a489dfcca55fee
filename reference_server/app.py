"""The reference agent server: agent-stream/1 over SSE and WebSocket, the demo page,
health, data set catalogue and Prometheus metrics.

``create_app`` builds an independent app (own metrics registry, own streams, own
configuration), so tests can run several in one process. The transports are thin:
validation is in ``params``, the events in ``agent``, stamping/pacing/stop in
``stream``, origins in ``origins``, every bound in ``config``. What a backend author
should copy, each in one place below:

* who may stream: the Origin allowlist, as CORS on SSE and as a 403 at the
  WebSocket handshake (``_origin_refusal``);
* how many may stream: admission control before any work starts, 503 with
  ``Retry-After`` and a JSON body on both transports (``Streams.refusal``);
* how streams end when the server stops: SIGTERM drains (``Streams.drain``: every
  running stream ends ``error``/``shutdown``, ``stream_end``, close), new ones are
  refused (the uvicorn side is in ``serve``);
* SSE written straight to ASGI (``SSEStream``): one ``http.response.body`` per
  event, a single task watching for the client leaving, no per-event task or
  thread hop; the WebSocket likewise sends one text message per event.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from .agent import RunCache, agent_events
from .config import ServerConfig
from .datasets import DATASET_NAMES, catalogue, load_frames
from .metrics import Metrics
from .params import DEFAULT_MODEL, MAX_QUESTION, Rejection, StreamRequest, parse_request
from .stream import StopSignal, dumps, paced_events

SSE_PATH = "/agent/stream"
WS_PATH = "/ws/agent/stream"
WS_POLICY_VIOLATION = 1008
STATIC_DIR = Path(__file__).resolve().parent / "static"
OVERSIZE_KEY = "agentstream.oversize"
"""Key of the ``websocket.receive`` message ``serve``'s protocol hands the app when
a client message exceeded ``max_client_message`` (the frame itself is dropped)."""


class Streams:
    """The running streams of one app: admission, and the drain on shutdown."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.live: set[StopSignal] = set()
        self.draining = False

    def refusal(self) -> tuple[int, dict[str, str]] | None:
        """Why a new stream may not start now (status, JSON body), or None."""
        if self.draining:
            return 503, {"error": "shutting_down", "param": "",
                         "message": "the server is shutting down; retry on another instance or later"}
        if len(self.live) >= self.config.max_streams:
            return 503, {"error": "overloaded", "param": "",
                         "message": f"{len(self.live)} streams are running, the most this server takes at once "
                                    f"({self.config.max_streams}); retry after {self.config.retry_after_s} s"}
        return None

    def begin(self, metrics: Metrics, stop: StopSignal) -> None:
        """A stream starts: it counts against admission and the open-streams gauge."""
        self.live.add(stop)
        metrics.active.inc()

    def end(self, metrics: Metrics, stop: StopSignal, transport: str, sent: int, finished: bool) -> None:
        """A stream ended, however: its events counted once (a counter increment per
        event is a lock per event), its slot and its gauge given back."""
        metrics.events.labels(transport=transport).inc(sent)
        self.live.discard(stop)
        metrics.active.dec()
        (metrics.completed if finished else metrics.cancelled).labels(transport=transport).inc()

    def drain(self) -> int:
        """Refuse new streams and tell every running one to end (``error`` code
        ``shutdown``, ``stream_end``, close); returns how many were running."""
        self.draining = True
        for stop in list(self.live):
            stop.stop("shutdown")
        return len(self.live)


class SSEStream(Response):
    """One SSE response written straight to ASGI: the headers, one body message per
    event (``id: <seq>`` and one ``data:`` line), then the end of the body. A single
    task waits for ``http.disconnect`` and stops the stream when the client leaves.

    A ``send`` under way when the client leaves is cancelled, not awaited: a server
    may never complete it. Hypercorn 0.18 over HTTP/2 holds a stream's unsent body
    in a buffer that only its connection's send task drains; once the client has
    dropped the connection (or reset the stream while its flow-control window was
    shut) nothing drains it, and a ``send`` that waits for room or for the buffer to
    empty waits for ever, so the stream would stay open and counted."""

    media_type = "text/event-stream"

    def __init__(self, request: StreamRequest, app_state: Any, headers: dict[str, str]) -> None:
        super().__init__(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
                         media_type="text/event-stream; charset=utf-8")
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # a stream has none
        self.request = request
        self.app_state = app_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.app_state
        metrics: Metrics = state.metrics
        streams: Streams = state.streams
        stop = StopSignal()
        streams.begin(metrics, stop)
        sent = 0  # added to the counter once, at the end (Streams.end)
        finished = False
        me = asyncio.current_task()
        sending = False

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    stop.stop("disconnect")
                    if sending and me is not None:
                        me.cancel()  # see the class docstring
                    return

        async def put(message: dict[str, Any]) -> None:
            nonlocal sending
            sending = True
            try:
                await send(message)
            finally:
                sending = False

        watcher = asyncio.create_task(watch())
        try:
            await put({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with aclosing(paced_events(self.request, state.pace, stop, state.runs)) as events:
                async for event in events:
                    body = f"id: {event['seq']}\ndata: {dumps(event)}\n\n".encode()
                    await put({"type": "http.response.body", "body": body, "more_body": True})
                    sent += 1
                    finished = event["type"] == "stream_end" and stop.reason is None
            if stop.reason != "disconnect":  # nobody is left to read the end of the body
                await put({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we were sending
        except asyncio.CancelledError:
            # ours (the client left during a send) is taken back; any other is the server's
            if stop.reason != "disconnect" or me is None or me.uncancel() > 0:
                raise
        finally:
            watcher.cancel()
            streams.end(metrics, stop, "sse", sent, finished)


def _origin_refusal(config: ServerConfig, headers: Any, scheme: str) -> dict[str, str] | None:
    origin = headers.get("origin")
    if config.origins.allows(origin, headers.get("host"), scheme):
        return None
    return {"error": "origin_not_allowed", "param": "Origin",
            "message": f"pages on {origin[:100]!r} may not use this stream; allowed: "
                       f"{', '.join(config.origins.patterns) or 'this server only'} (--allow-origin)"}


def _openapi_parameters() -> list[dict[str, Any]]:
    return [
        {"name": "question", "in": "query", "required": True,
         "description": "the question; 1 to 2000 Unicode code points once leading and trailing white space is stripped",
         "schema": {"type": "string", "minLength": 1, "maxLength": MAX_QUESTION}},
        {"name": "dataset", "in": "query", "required": False, "description": "the data set to analyse",
         "schema": {"type": "string", "enum": list(DATASET_NAMES), "default": "all"}},
        {"name": "model", "in": "query", "required": False, "description": "an opaque model id (ignored here)",
         "schema": {"type": "string", "default": DEFAULT_MODEL}},
    ]


_ERROR_BODY = {"type": "object", "required": ["error", "message"],
               "properties": {"error": {"type": "string"}, "param": {"type": "string"}, "message": {"type": "string"}}}


def _json_error(description: str, retry: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ERROR_BODY}}}
    if retry:
        out["headers"] = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
    return out


SSE_OPENAPI = {
    "parameters": _openapi_parameters() + [
        {"name": "Last-Event-ID", "in": "header", "required": False,
         "description": "sent by a reconnecting EventSource: answered 204, the question is not run again",
         "schema": {"type": "string"}},
    ],
    "responses": {
        "200": {"description": "the event stream: one `id: <seq>` and one `data: <JSON event>` line per message "
                               "(PROTOCOL.md sections 2 to 4), ending after `stream_end`",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        "204": {"description": "a reconnect (Last-Event-ID): nothing to resume, the browser stops"},
        "403": _json_error("the page's Origin is not in the allowlist"),
        "422": _json_error("a bad parameter; `param` names it"),
        "503": _json_error("too many streams, or the server is shutting down", retry=True),
    },
}

WS_OPENAPI = {
    "summary": "agent-stream/1 over a WebSocket",
    "description": "Upgrade to a WebSocket (OpenAPI cannot describe the messages): one text message per event, "
                   "close 1000 after `stream_end`; the client may send `{\"type\": \"cancel\"}`. A bad parameter "
                   "is accepted, answered with one `error` event and closed with 1008.",
    "parameters": _openapi_parameters(),
    "responses": {
        "101": {"description": "switching to the WebSocket protocol"},
        "403": _json_error("the page's Origin is not in the allowlist"),
        "503": _json_error("too many streams, or the server is shutting down", retry=True),
    },
}


class ReferenceApp(FastAPI):
    """FastAPI, with the two stream endpoints reached before its middleware stack.

    The stream handlers are the routes below (the OpenAPI document describes
    them, and they run as written); only the per-message wrappers of Starlette's
    error and exception middleware are skipped on the stream paths, which were a
    measurable part of the CPU per event. A handler that raises still ends the
    connection cleanly (uvicorn answers 500 or closes the WebSocket with 1011).
    """

    stream_handlers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.stream_handlers.get((scope["type"], scope.get("path", "")))
        if handler is not None and (scope["type"] == "websocket" or scope.get("method") == "GET"):
            if scope["type"] == "http":
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
            else:
                await handler(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def create_app(pace_ms: float | None = None, config: ServerConfig | None = None) -> FastAPI:
    """A fresh app. ``pace_ms`` (when given) overrides ``config.pace_ms``: the delay
    before each chunk/reasoning event, finite and >= 0 (an infinite pace would make
    every stream hang)."""
    config = config or ServerConfig()
    if pace_ms is not None:
        config = replace(config, pace_ms=float(pace_ms))  # checked by ServerConfig
    metrics = Metrics()
    load_frames()  # read the CSVs now, not during the first stream
    for _ in agent_events(StreamRequest("incidents by region")):  # warm pandas' lazy imports up
        pass
    app = ReferenceApp(title="agent-stream/1 reference server", version="1.1",
                  description="The reference backend of agent-stream/1 (see PROTOCOL.md): the same JSON events "
                              "over Server-Sent Events and a WebSocket. The demo page is at `/`.")
    app.state.metrics = metrics
    app.state.config = config
    app.state.pace_ms = config.pace_ms
    app.state.pace = config.pace_ms / 1000.0
    app.state.streams = streams = Streams(config)
    app.state.runs = RunCache(config.run_cache)

    async def validation_handler(request: Request, exc: Exception) -> Response:
        # not reached by the stream routes (they read the query themselves); kept
        # so that no framework validation error ever has another shape
        return JSONResponse({"error": "invalid_request", "param": "", "message": str(exc)[:500]}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation_handler)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/datasets")
    async def datasets() -> list[dict[str, object]]:
        return catalogue()

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/", include_in_schema=False)
    async def demo_page() -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get(SSE_PATH, response_class=Response, openapi_extra=SSE_OPENAPI,
             summary="agent-stream/1 over Server-Sent Events")
    async def sse_stream(request: Request) -> Response:
        cors = config.origins.cors_headers(request.headers.get("origin"), request.headers.get("host"),
                                           request.url.scheme)
        refused = _origin_refusal(config, request.headers, request.url.scheme)
        if refused is not None:
            metrics.rejected.labels(transport="sse").inc()
            return JSONResponse(refused, status_code=403, headers=cors)
        if "last-event-id" in request.headers:
            return Response(status_code=204, headers=cors)
        parsed = parse_request(request.query_params)
        if isinstance(parsed, Rejection):
            metrics.rejected.labels(transport="sse").inc()
            return JSONResponse(parsed.body(), status_code=422, headers=cors)
        busy = streams.refusal()
        if busy is not None:
            metrics.rejected.labels(transport="sse").inc()
            return JSONResponse(busy[1], status_code=busy[0],
                                headers={**cors, "Retry-After": str(config.retry_after_s)})
        metrics.started.labels(transport="sse").inc()
        return SSEStream(parsed, app.state, cors)

    @app.websocket(WS_PATH)
    async def ws_stream(websocket: WebSocket) -> None:
        refused = _origin_refusal(config, websocket.headers, "https" if websocket.url.scheme == "wss" else "http")
        status, body, extra = (403, refused, {}) if refused is not None else (0, None, {})
        if body is None:
            busy = streams.refusal()
            if busy is not None:
                status, body, extra = busy[0], busy[1], {"Retry-After": str(config.retry_after_s)}
        if body is not None:  # refused at the handshake: an HTTP answer, no WebSocket
            metrics.rejected.labels(transport="ws").inc()
            try:
                await websocket.send_denial_response(JSONResponse(body, status_code=status, headers=extra))
            except (RuntimeError, OSError, WebSocketDisconnect):
                pass
            return
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
            """Watch for cancel messages, oversized messages and the client going away."""
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        stop.stop("disconnect")
                        return
                    if message.get(OVERSIZE_KEY):
                        stop.stop("too_large")
                        return  # the protocol drops every later frame: nothing more to read
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
        streams.begin(metrics, stop)
        metrics.started.labels(transport="ws").inc()
        sent = 0  # added to the counter at the end (Streams.end)
        finished = False  # stream_end sent, and not because of a cancel
        try:
            async with aclosing(paced_events(parsed, app.state.pace, stop, app.state.runs)) as events:
                async for event in events:
                    await websocket.send_text(dumps(event))
                    sent += 1
                    finished = event["type"] == "stream_end" and stop.reason is None
            if stop.reason != "disconnect" and websocket.application_state == WebSocketState.CONNECTED:
                await websocket.close(1000)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client went away while we were sending
        finally:
            reader.cancel()
            streams.end(metrics, stop, "ws", sent, finished)

    app.stream_handlers = {("http", SSE_PATH): sse_stream, ("websocket", WS_PATH): ws_stream}
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document plus the WebSocket endpoint, which it leaves out."""
        if app.openapi_schema is None:
            schema = base_openapi()
            schema.setdefault("paths", {})[WS_PATH] = {"get": WS_OPENAPI}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
