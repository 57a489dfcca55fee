"""SSE framing without I/O: bytes -> lines (with their terminators) -> messages.

The fields (``data``/``event``/``id``/``retry``) are interpreted as the WHATWG
spec says and exactly as httpx-sse's ``SSEDecoder`` does (a test holds the two
against each other; the decoder itself cost three times as much per event in
the load harness); on top, this module does what a conformance tool needs:

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple


_EOL = re.compile(rb"\r\n|\r|\n")
_ENDING_NAME = {b"\n": "LF", b"\r\n": "CRLF", b"\r": "CR"}
_ENDING_BYTES = {"LF": b"\n", "CRLF": b"\r\n", "CR": b"\r", "": b""}
_BOM = b"\xef\xbb\xbf"


class TooLarge(Exception):
    """A line or a message grew past its bound."""

    def __init__(self, message: str, messages: "list[Message] | None" = None) -> None:
        super().__init__(message)
        self.messages = messages or []
        """Messages completed before the bound was passed (still to be recorded)."""


class Line(NamedTuple):
    """One line. A tuple, not a dataclass: the recorder makes three per event, and
    a frozen dataclass costs a microsecond each to build."""

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
    is dropped (the spec says so). A chunk without any CR (what nearly every
    server sends) is split with ``bytes.split``, in C; the regular expression
    only runs on chunks that hold a CR. The pieces of a long line are kept apart
    until its end comes and joined once, so that a line of many reads is not
    copied again on each one.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = b""
        self._more: list[bytes] = []
        """Pieces after ``_buf`` that hold no line end (nor does ``_buf`` end in CR)."""
        self._more_len = 0
        self._started = False

    @property
    def pending(self) -> int:
        """Bytes held that do not form a complete line yet."""
        return len(self._buf) + self._more_len

    def feed(self, data: bytes) -> list[Line]:
        if self._buf:
            if self._started and b"\n" not in data and b"\r" not in data and (self._more or self._buf[-1] != 13):
                self._more.append(data)
                self._more_len += len(data)
                if len(self._buf) + self._more_len > self.max_line + 1:
                    raise TooLarge(f"a line grew past {self.max_line} bytes without a line end")
                return []
            if self._more:
                buf = b"".join([self._buf, *self._more, data])
                self._more, self._more_len = [], 0
            else:
                buf = self._buf + data
        else:
            buf = data
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[len(_BOM):]
        if b"\r" not in buf:
            parts = buf.split(b"\n")
            self._buf = parts.pop()
            if len(self._buf) > self.max_line + 1:
                raise TooLarge(f"a line grew past {self.max_line} bytes without a line end")
            return [Line(p, "LF") for p in parts]
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
        if not self._more and self._buf.endswith(b"\r"):
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


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


class MessageAssembler:
    """Groups lines into messages, bounded by ``max_message`` bytes of raw input.

    The fields are interpreted as the WHATWG "interpret an event stream" steps say
    and as httpx-sse's ``SSEDecoder`` does (the same field split, one leading space
    dropped from the value, an ``id`` holding NUL ignored, ``retry`` as ``int()``
    reads it, the data lines joined by LF), on the line's bytes: a colon and a
    space are ASCII, so splitting before or after UTF-8 decoding gives the same
    text, and only the values that are kept are decoded. ``tests/test_recorders.py``
    holds it against ``SSEDecoder`` on the same lines.
    """

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self.comments = 0
        """Comment lines seen so far in the whole stream."""
        self.endings: set[str] = set()
        self._raw = bytearray()
        self._data: list[bytes] = []
        self._id: bytes | None = None
        self._event: bytes | None = None
        self._retry: int | None = None
        self._msg_comments = 0

    def feed_line(self, line: Line) -> Message | None:
        """One line: the message it completes, if any."""
        done = self.feed_lines((line,))
        return done[0] if done else None

    def feed_lines(self, lines: Iterable[Line]) -> list[Message]:
        """Lines in order: the messages they complete. One call for all the lines
        of a read, with the state in local variables: the recorder's per-event
        cost is mostly this loop. On :class:`TooLarge`, the messages completed
        before the line that overflowed are in the exception's ``messages``."""
        out: list[Message] = []
        endings, max_message = self.endings, self.max_message
        raw, data = self._raw, self._data
        for content, ending in lines:
            if ending not in endings:
                endings.add(ending)
            raw += content
            raw += _ENDING_BYTES[ending]
            if content:
                if len(raw) > max_message:
                    self._raw, self._data = raw, data
                    raise TooLarge(f"an SSE message grew past {max_message} bytes", out)
                if content[0] == 58:  # b":": a comment
                    self.comments += 1
                    self._msg_comments += 1
                    continue
                name, _, value = content.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    data.append(value)
                elif name == b"id":
                    if b"\0" not in value:
                        self._id = value
                elif name == b"event":
                    self._event = value
                elif name == b"retry":
                    try:
                        self._retry = int(_text(value))
                    except ValueError:
                        pass
                continue
            # blank line: dispatch
            if data:
                event, ident = self._event, self._id
                out.append(Message(
                    raw=bytes(raw),
                    data=_text(data[0] if len(data) == 1 else b"\n".join(data)),
                    data_lines=len(data),
                    id=None if ident is None else _text(ident),
                    event=None if event is None else (_text(event) or "message"),  # the spec's default name
                    retry=self._retry,
                    comments=self._msg_comments,
                ))
                data = []
            raw = bytearray()
            # the id stays sticky in the spec, but only a message's own id is reported
            self._id = self._event = self._retry = None
            self._msg_comments = 0
        self._raw, self._data = raw, data
        return out


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
    messages = asm.feed_lines(splitter.feed(data) + splitter.flush())
    return ParsedStream(messages, asm.comments, asm.endings, splitter.pending + len(asm._raw))
