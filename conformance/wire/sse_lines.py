"""SSE framing without I/O: bytes -> lines (with their terminators) -> messages.

httpx-sse's ``SSEDecoder`` interprets the fields (``data``/``event``/``id``/``retry``)
as the WHATWG spec says; this module does what a conformance tool needs on top:

* it splits lines itself, so that each line's terminator (LF, CRLF or CR) is
  known, each message keeps its raw bytes, and a line or message that grows past
  a bound is stopped (:class:`TooLarge`) instead of filling memory;
* it counts comment lines and ``data:`` lines;
* it dispatches a message only when it had at least one ``data`` line, as the
  spec says. ``SSEDecoder`` also dispatches a blank line once an ``id`` was ever
  seen, because the last event id is sticky (florimondmanca/httpx-sse#35): a
  keep-alive comment (``: ping`` + blank line) after ``id: 3`` would become a
  spurious empty event. Here a comment is never an event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from httpx_sse._decoders import SSEDecoder  # not re-exported by httpx-sse 0.4

_EOL = re.compile(rb"\r\n|\r|\n")
_ENDING_NAME = {b"\n": "LF", b"\r\n": "CRLF", b"\r": "CR"}
_ENDING_BYTES = {"LF": b"\n", "CRLF": b"\r\n", "CR": b"\r", "": b""}
_BOM = b"\xef\xbb\xbf"


class TooLarge(Exception):
    """A line or a message grew past its bound."""


@dataclass(frozen=True)
class Line:
    content: bytes
    """The line without its terminator."""
    ending: str
    """'LF', 'CRLF' or 'CR'."""

    @property
    def raw(self) -> bytes:
        return self.content + _ENDING_BYTES[self.ending]


class LineSplitter:
    """Incremental splitter on CRLF, LF or CR, bounded by ``max_line`` bytes.

    A CR at the very end of a chunk is held back until the next byte shows
    whether it is a CR line end or the first half of a CRLF. A leading UTF-8 BOM
    is dropped (the spec says so).
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = b""
        self._started = False

    @property
    def pending(self) -> int:
        """Bytes held that do not form a complete line yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Line]:
        buf = self._buf + data
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[len(_BOM):]
        out: list[Line] = []
        pos = 0
        for m in _EOL.finditer(buf):
            eol = m.group()
            if eol == b"\r" and m.end() == len(buf):
                break  # may be the first half of a CRLF split across chunks
            out.append(Line(buf[pos:m.start()], _ENDING_NAME[eol]))
            pos = m.end()
        self._buf = buf[pos:]
        # the held part is at most one line plus a held CR
        if len(self._buf) > self.max_line + 1:
            raise TooLarge(f"a line grew past {self.max_line} bytes without a line end")
        return out

    def flush(self) -> list[Line]:
        """At end of stream: a held CR ends its line; an unterminated tail is dropped."""
        out: list[Line] = []
        if self._buf.endswith(b"\r"):
            out.append(Line(self._buf[:-1], "CR"))
            self._buf = b""
        return out


@dataclass
class Message:
    """One dispatched SSE message."""

    raw: bytes
    data: str
    data_lines: int
    id: str | None
    """The message's own ``id`` field (None when it carried none; the sticky
    last-event-id of the spec is not repeated here)."""
    event: str | None
    """The ``event`` field as sent, None when absent."""
    retry: int | None
    comments: int
    """Comment lines inside this message."""


@dataclass
class MessageAssembler:
    """Groups lines into messages, bounded by ``max_message`` bytes of raw input."""

    max_message: int
    comments: int = 0
    """Comment lines seen so far in the whole stream."""
    endings: set[str] = field(default_factory=set)
    _decoder: SSEDecoder = field(default_factory=SSEDecoder)
    _raw: bytearray = field(default_factory=bytearray)
    _data_lines: int = 0
    _own_id: bool = False
    _own_event: bool = False
    _msg_comments: int = 0

    def feed_line(self, line: Line) -> Message | None:
        self.endings.add(line.ending)
        self._raw += line.raw
        if line.content:
            if len(self._raw) > self.max_message:
                raise TooLarge(f"an SSE message grew past {self.max_message} bytes")
            text = line.content.decode("utf-8", errors="replace")
            if text.startswith(":"):
                self.comments += 1
                self._msg_comments += 1
            else:
                name = text.partition(":")[0]
                if name == "data":
                    self._data_lines += 1
                elif name == "id" and "\0" not in text:
                    self._own_id = True
                elif name == "event":
                    self._own_event = True
                self._decoder.decode(text)
            return None
        # blank line: dispatch
        sse = self._decoder.decode("")
        msg = None
        if sse is not None and self._data_lines > 0:
            msg = Message(
                raw=bytes(self._raw),
                data=sse.data,
                data_lines=self._data_lines,
                id=sse.id if self._own_id else None,
                event=sse.event if self._own_event else None,
                retry=sse.retry,
                comments=self._msg_comments,
            )
        self._raw = bytearray()
        self._data_lines = 0
        self._own_id = self._own_event = False
        self._msg_comments = 0
        return msg


@dataclass
class ParsedStream:
    messages: list[Message]
    comments: int
    endings: set[str]
    tail: int
    """Bytes at the end that did not form a complete message (dropped, as the spec says)."""


def parse_stream(data: bytes, *, max_line: int = 1_000_000, max_message: int = 1_000_000) -> ParsedStream:
    """Parse a whole event-stream body at once (tests, offline checks)."""
    splitter = LineSplitter(max_line)
    asm = MessageAssembler(max_message)
    messages = []
    for line in splitter.feed(data) + splitter.flush():
        msg = asm.feed_line(line)
        if msg is not None:
            messages.append(msg)
    return ParsedStream(messages, asm.comments, asm.endings, splitter.pending + len(asm._raw))
