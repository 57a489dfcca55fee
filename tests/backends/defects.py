"""Every defect of the test backends, with the rule of the suite that must catch it.

One row per defect: the stack that has it, the area of the protocol, what is
wrong in a sentence, the rule ID, the expected verdict (``fail`` for a MUST,
``warn`` for a SHOULD) and, when the rule is checked per transport, the
transport whose verdict is asserted. ``docs/defects.md`` shows the same table;
``tests/test_defects.py`` checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Defect:
    name: str
    stack: str
    area: str
    what: str
    rule: str
    verdict: str = "fail"
    transport: str | None = None
    """Only the verdict on this transport is asserted (None: any entry of the rule)."""
    params: tuple[str, ...] = field(default=())
    """Extra ``--param`` values for the suite (``pace_ms=150``: long streams)."""
    missed: str | None = None
    """Why the suite does not catch this defect yet (its test is a strict xfail)."""


LONG = ("pace_ms=150",)
"""Streams of about 2.1 s, so the disconnect check can tell (it skips below 1.2 s left)."""

DEFECTS: list[Defect] = [
    # -- schema --
    Defect("confidence-out-of-range", "fastapi", "schema", "verification.confidence is 1.5", "SCHEMA-EVENT"),
    Defect("unknown-type", "aiohttp", "schema", "an event of type tool_call, which the profile does not define",
           "SCHEMA-TYPE-KNOWN"),
    Defect("empty-chunk", "starlette", "schema", "a code_chunk with an empty chunk", "SCHEMA-EVENT"),
    Defect("seq-as-string", "starlette", "schema", "seq is a string (\"3\") instead of an integer", "SCHEMA-ENVELOPE"),
    Defect("ts-milliseconds", "aiohttp", "schema", "ts in milliseconds, not Unix seconds", "SCHEMA-TS-SECONDS"),
    # -- order --
    Defect("missing-start", "fastapi", "order", "the stream begins with progress: no start", "ORDER-FIRST-START"),
    Defect("missing-stream-end", "aiohttp", "order", "the stream ends after complete: no stream_end",
           "ORDER-LAST-STREAM-END"),
    Defect("event-after-end", "starlette", "order", "a progress event after stream_end", "ORDER-NOTHING-AFTER-END"),
    Defect("chunk-sum-mismatch", "fastapi", "order", "code_generated.code is not the concatenation of its code_chunks",
           "ORDER-CHUNK-SUM"),
    Defect("analysis-mismatch", "aiohttp", "order", "complete.data.analysis differs from the analysis_chunks",
           "ORDER-STREAM-SUM"),
    Defect("seq-gap", "starlette", "order", "seq jumps from 4 to 6", "ORDER-SEQ"),
    Defect("complete-and-error", "fastapi", "order", "an error after complete: two terminal events",
           "ORDER-ONE-TERMINAL"),
    Defect("unterminated-code-run", "starlette", "order", "code_chunks never followed by code_generated",
           "ORDER-CHUNK-RUN"),
    Defect("event-between-complete-and-end", "fastapi", "order", "a progress event between complete and stream_end",
           "ORDER-TERMINAL-THEN-END"),
    # -- parity --
    Defect("ws-extra-event", "aiohttp", "parity", "the WebSocket stream has one progress event more than SSE",
           "PARITY-STRUCTURAL"),
    Defect("ws-field-differs", "starlette", "parity", "one progress message differs on the WebSocket",
           "PARITY-STRICT"),
    # -- SSE binding --
    Defect("content-type-plain", "aiohttp", "sse", "Content-Type: text/plain on the event stream", "SSE-CONTENT-TYPE"),
    Defect("no-cache-control", "aiohttp", "sse", "no Cache-Control header", "SSE-CACHE-CONTROL"),
    Defect("no-x-accel-buffering", "starlette", "sse", "X-Accel-Buffering removed from sse-starlette's headers",
           "SSE-X-ACCEL-BUFFERING", "warn"),
    Defect("named-events", "starlette", "sse", "each message carries event: <type>", "SSE-NO-EVENT-NAME"),
    Defect("multi-line-data", "aiohttp", "sse", "pretty-printed JSON over several data: lines", "SSE-ONE-DATA-LINE",
           "warn"),
    Defect("no-sse-id", "fastapi", "sse", "messages carry no id: although events have seq", "SSE-ID-SEQ", "warn"),
    Defect("buffered", "aiohttp", "sse", "every message written at once when the stream is done", "SSE-NOT-BUFFERED"),
    Defect("response-not-ended", "fastapi", "sse", "the response stays open 30 s after stream_end",
           "SSE-ENDS-RESPONSE"),
    Defect("reconnect-reruns", "starlette", "sse", "a request with Last-Event-ID runs the question again",
           "SSE-RECONNECT-204", "warn"),
    # -- WebSocket binding --
    Defect("ws-binary-frames", "fastapi", "ws", "events sent as binary frames", "WS-TEXT-FRAMES"),
    Defect("ws-batched-frames", "aiohttp", "ws", "two events per text frame, separated by a newline", "WS-JSON-FRAME"),
    Defect("ws-close-1001", "starlette", "ws", "closes with 1001 (going away) after stream_end", "WS-CLOSE-1000"),
    Defect("ws-drop-without-close", "aiohttp", "ws", "drops the TCP connection after stream_end, no close frame",
           "WS-CLOSE-FRAME"),
    Defect("ws-cancel-ignored", "fastapi", "ws", "a cancel message is ignored; the stream completes", "WS-CANCEL"),
    Defect("late-cancel-errors", "fastapi", "ws", "a cancel that arrives after complete still sends error (cancelled): two terminal events",
           "WS-CANCEL"),
    Defect("ws-stops-listening", "fastapi", "ws", "client messages are no longer read after 8 events: a mid-stream "
           "cancel is ignored (an early one and a late one are fine)", "WS-CANCEL"),
    Defect("any-message-cancels", "aiohttp", "ws", "any client message, not only a cancel, cancels the stream",
           "WS-IGNORE-CLIENT-MESSAGES"),
    # -- bad input --
    Defect("accepts-empty-question", "starlette", "input", "an empty or blank question gets a stream",
           "INPUT-REJECT"),
    Defect("unknown-dataset-500", "aiohttp", "input", "an unknown dataset raises KeyError: 500 on both transports",
           "INPUT-REJECT"),
    Defect("accepts-too-long-question", "fastapi", "input", "no length limit: a 2001-character question gets a stream",
           "INPUT-REJECT"),
    Defect("question-limit-in-bytes", "starlette", "input",
           "the 2000 limit counts UTF-8 bytes: 2000 emoji (8000 bytes) are refused", "INPUT-ACCEPT"),
    Defect("sse-reject-text-plain", "fastapi", "input", "SSE rejections are 422 with a text/plain body",
           "INPUT-SSE-JSON-ERROR"),
    Defect("ws-reject-as-stream", "starlette", "input",
           "a rejected WebSocket gets start, error, stream_end before close 1008", "INPUT-WS-REJECT-EVENT"),
    Defect("control-characters-crash", "starlette", "input",
           "a question with a control character makes the handler raise: 500 / close 1011", "INPUT-NEVER-5XX"),
    Defect("rejects-one-character", "aiohttp", "input", "a one-character question is rejected", "INPUT-ACCEPT"),
    Defect("default-line-limit", "aiohttp", "input",
           "aiohttp's stock 8190-byte request line: a 2000-emoji question gets 400", "INPUT-ACCEPT"),
    # -- disconnect and cancel --
    Defect("work-continues", "fastapi", "disconnect", "the work runs on after the client leaves (both transports)",
           "DISCONNECT-STOPS", transport="sse", params=LONG),
    Defect("ws-work-continues", "starlette", "disconnect", "the WebSocket work runs on after the client leaves",
           "DISCONNECT-STOPS", transport="ws", params=LONG),
    Defect("gauge-leaks-on-leave", "fastapi", "disconnect",
           "a stream the client left is never taken off the gauge (short streams)", "DISCONNECT-STOPS", transport="sse"),
    Defect("ws-gauge-leaks-on-leave", "starlette", "disconnect",
           "a WebSocket stream the client left is never taken off the gauge (short streams)", "DISCONNECT-STOPS",
           transport="ws"),
    # -- concurrency --
    Defect("shared-seq-counter", "starlette", "concurrency", "one seq counter shared by every stream of the process",
           "ORDER-SEQ"),
    Defect("same-question-shares-seq", "fastapi", "concurrency",
           "streams of the same question open at the same time share one seq counter", "CONCURRENCY-ISOLATED"),
]

BY_NAME = {d.name: d for d in DEFECTS}
assert len(BY_NAME) == len(DEFECTS), "defect names must be unique"
