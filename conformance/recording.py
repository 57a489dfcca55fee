"""What one stream looked like on the wire: the data model every recorder fills.

The transports (``conformance.wire``) are the only code in the project that
talks to a backend; the conformance suite, the load scenarios and the reports all
read these plain objects. Keeping them free of I/O means the validators, parity
checks and statistics are pure functions on data and can be tested without a
socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .request import Request


def media_type(content_type: str | None) -> str:
    """``text/event-stream; charset=utf-8`` -> ``text/event-stream``."""
    return (content_type or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Limits:
    """Bounds on every read, so that no backend can hang or flood a client.

    Times are seconds, sizes bytes. ``first_event`` counts from the moment the
    response headers (SSE) or the handshake (WS) arrived; ``idle`` is the longest
    allowed gap between two reads once the first event arrived; ``total`` bounds
    the whole recording. ``end_grace`` is how long the recorder waits for the
    server to end the response / close the socket after an event whose type is in
    the recorder's ``end_types``.
    """

    connect: float = 5.0
    first_event: float = 10.0
    idle: float = 10.0
    total: float = 60.0
    max_event_bytes: int = 1_000_000
    max_events: int = 10_000
    max_body_bytes: int = 65_536
    end_grace: float = 2.0
    event_idle: float = 30.0
    """Longest gap between two events once the first arrived: keep-alive comments
    and pings extend ``idle`` but not this."""
    max_recording_bytes: int = 64_000_000
    """Most bytes one recording keeps (events as received and as text) and most
    bytes it decompresses: a flood or a compression bomb ends it as too_large."""
    names: tuple[tuple[str, str], ...] = ()
    """The option a user set each bound with (``("idle", "--stream-timeout")``), so
    that a message names what the user knows; unnamed bounds read ``limits.NAME``."""

    def describe(self, name: str) -> str:
        """A bound for a message: ``10 s (--stream-timeout)`` or ``10000 events (limits.max_events)``."""
        value = getattr(self, name)
        unit = "events" if name == "max_events" else "bytes" if name.endswith("_bytes") else "s"
        shown = f"{value}" if isinstance(value, int) else f"{value:g}"
        return f"{shown} {unit} ({dict(self.names).get(name, f'limits.{name}')})"


@dataclass(slots=True)
class SSEEventDetail:
    """The SSE fields of one message, as sent."""

    id: str | None = None
    event: str | None = None
    """The ``event:`` field, or None when the message had none."""
    retry: int | None = None
    data_lines: int = 0
    """How many ``data:`` lines the message had."""


@dataclass(slots=True)
class WSFrameDetail:
    """The kind of WebSocket message an event came in."""

    kind: Literal["text", "binary"] = "text"


@dataclass
class RecordedEvent:
    """One event as it arrived: parsed JSON or the parse error, raw bytes, timing."""

    index: int
    raw: bytes
    """SSE: the message's bytes as on the wire (its field lines and the blank line
    that ends it). WS: the message's payload as received (after decompression)."""
    text: str | None
    """SSE: the joined ``data`` field. WS: the text message's content (None for a
    binary message that is not UTF-8)."""
    data: Any = None
    """The parsed JSON value (usually a dict); None when ``parse_error`` is set."""
    parse_error: str | None = None
    t_perf: float = 0.0
    """``time.perf_counter()`` at arrival: use for intervals."""
    t_wall: float = 0.0
    """``time.time()`` at arrival: compare with the server's ``ts``."""
    detail: Any = None
    """What only this event's transport knows: :class:`SSEEventDetail`,
    :class:`WSFrameDetail`, or another transport's own object."""
    type_field: str = "type"
    """The field that names the type (the request's, from the profile)."""
    named_type: str | None = None
    """The type the transport named for an object without a type field (SSE
    ``event:`` where the protocol puts the type there, as LangGraph does)."""

    @property
    def type(self) -> str | None:
        """The event's type: the string in its type field, else the type its
        transport named."""
        if isinstance(self.data, dict):
            value = self.data.get(self.type_field)
            if isinstance(value, str):
                return value
            return self.named_type
        return None

    @property
    def typed_data(self) -> Any:
        """The parsed value as the protocol means it: an object without a type
        field gets the type its transport named (what the validators read)."""
        if self.named_type is not None and isinstance(self.data, dict) and self.type_field not in self.data:
            return {self.type_field: self.named_type, **self.data}
        return self.data


@dataclass
class SSEDetail:
    """What only an SSE recording has."""

    comments: int = 0
    """Comment lines seen (keep-alives)."""
    line_endings: set[str] = field(default_factory=set)
    """Line terminators seen: any of 'LF', 'CRLF', 'CR'."""
    sentinel_at: int | None = None
    """How many events had arrived when the request's end sentinel (``[DONE]``) did;
    None when it never came."""


@dataclass
class WSDetail:
    """What only a WebSocket recording has."""

    extensions: list[str] = field(default_factory=list)
    close_code: int | None = None
    """The close code the server sent (1006 when the connection dropped without
    a close frame); None when the client closed first or never connected."""
    close_reason: str | None = None
    close_frame_received: bool = False
    messages_sent_at: list[float] = field(default_factory=list)
    """``perf_counter`` when each client message of the request went out."""
    closed_at_end: bool = False
    """The client closed after an end type, as the request asked (``client_ends``):
    the socket stays open for the next request in such protocols."""


@dataclass
class Recording:
    """A whole stream: request, response, events, timings and bytes on the wire.

    Times are ``time.perf_counter()`` values (None when the moment never came);
    ``wall_start`` is ``time.time()`` at the start, to map perf times onto the
    wall clock. Byte counts are TCP payload counted at the socket, in each
    direction: HTTP request/response heads, chunked framing, WS handshake and
    frame headers included. What only one transport has is in ``detail``.
    """

    request: Request
    """What was asked for: the reproduction line and the replay come from it."""
    sent_headers: list[tuple[str, str]] = field(default_factory=list)
    """Every request header as sent on the wire, the client library's own
    (Host, User-Agent, Sec-WebSocket-Key, ...) included."""

    # response: SSE status and headers, or the WS handshake response
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    """For a response that is not an event stream (a rejection), its body, bounded
    by ``Limits.max_body_bytes``."""
    body_truncated: bool = False
    """The rejection body was longer than ``Limits.max_body_bytes`` and was cut."""
    client_closed: bool = False
    """The client ended the stream on purpose (``Request.close_after``)."""

    events: list[RecordedEvent] = field(default_factory=list)

    wall_start: float = 0.0
    t_start: float = 0.0
    t_connected: float | None = None
    """TCP connection established."""
    t_headers: float | None = None
    """Response headers (SSE) or handshake response (WS) received."""
    t_first_byte: float | None = None
    """First byte of the body (SSE) or of the first frame after the handshake (WS)."""
    t_first_event: float | None = None
    t_end: float | None = None

    bytes_sent: int = 0
    bytes_received: int = 0
    head_bytes_sent: int = 0
    """Request head (SSE) or WS handshake request, in bytes."""
    head_bytes_received: int = 0
    """Response head (SSE) or WS handshake response, in bytes."""

    error_kind: str | None = None
    """None when the stream ended normally; else an :class:`conformance.contracts.ErrorKind`
    value of the recorders: 'connect', 'timeout', 'too_large', 'too_many',
    'protocol' (a framing or HTTP error), 'closed' (the connection dropped). An
    HTTP answer without a stream (a non-2xx or non-event-stream SSE response, a
    WS handshake refused with an HTTP status) is no error here: ``status``,
    ``response_headers`` and ``body`` hold it."""
    error: str | None = None
    """What happened, in one sentence, when ``error_kind`` is set."""
    detail: Any = None
    """What only this transport knows (:class:`SSEDetail`, :class:`WSDetail`, ...)."""

    # --- derived values, computed from the fields above ---

    @property
    def transport(self) -> str:
        return self.request.transport

    @property
    def url(self) -> str:
        return self.request.url

    @property
    def params(self) -> dict[str, str]:
        return self.request.params

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def payload_bytes(self) -> int:
        """Bytes of event content: the JSON text of every event, UTF-8 encoded."""
        texts = [e.text for e in self.events]
        if None not in texts and all(map(str.isascii, texts)):  # as many bytes as characters: no copy
            return sum(map(len, texts))
        return sum(len(e.text.encode("utf-8")) if e.text is not None else len(e.raw) for e in self.events)

    @property
    def objects(self) -> list[Any]:
        """The parsed events (None where an event did not parse)."""
        return [e.typed_data for e in self.events]

    def header(self, name: str) -> str | None:
        """The first response header of that name (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.response_headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def media_type(self) -> str:
        """The response's Content-Type without parameters, lower case ('' if none)."""
        return media_type(self.header("content-type"))

    @property
    def connect_s(self) -> float | None:
        """TCP connect plus response headers / handshake, in seconds."""
        return None if self.t_headers is None else self.t_headers - self.t_start

    @property
    def ttfe_s(self) -> float | None:
        """Time from the start of the request to the first event, in seconds."""
        return None if self.t_first_event is None else self.t_first_event - self.t_start

    @property
    def duration_s(self) -> float | None:
        return None if self.t_end is None else self.t_end - self.t_start
