"""Bytes on the wire, counted where they cross the socket (sans-I/O).

Both recorders feed every buffer they send or receive into a :class:`WireCounter`
at the lowest layer they control (the httpcore network stream, the socket under
websockets), so the counts are TCP payload: HTTP heads, chunked framing, WS
handshake and frame headers included. The counter also finds where the HTTP
head ends in each direction (the first blank line), which gives the head sizes
and the moment the first body byte arrived, without trusting any parser above.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.recording import Recording

_MAX_HEAD_SCAN = 1_048_576
"""Stop looking for the end of a head after this many bytes: a peer that never
ends its head is then reported by the HTTP layer, and this buffer stays small."""


@dataclass
class _Direction:
    total: int = 0
    """Bytes on the wire (TCP payload; TLS records when TLS is on)."""
    head: int | None = None
    """Size of the HTTP head (through the blank line), once it has been seen."""
    t_head: float | None = None
    """perf_counter when the end of the head arrived."""
    t_first_body: float | None = None
    """perf_counter when the first byte after the head arrived."""
    _app_total: int = 0
    _scan: bytearray = field(default_factory=bytearray)

    def count(self, n: int) -> None:
        self.total += n

    def scan(self, data: bytes, now: float) -> None:
        """Look at application bytes (plaintext) for the end of the head."""
        if not data:
            return
        self._app_total += len(data)
        if self.head is None:
            if len(self._scan) < _MAX_HEAD_SCAN:
                self._scan += data
                end = head_end(bytes(self._scan))
                if end is not None:
                    self.head = end
                    self.t_head = now
                    self._scan = bytearray()
                    if self._app_total > end:
                        self.t_first_body = now
        elif self.t_first_body is None:
            self.t_first_body = now


def head_end(buf: bytes) -> int | None:
    """Offset just past the blank line that ends an HTTP head, or None.

    Accepts CRLF (the standard) and bare LF (which lenient parsers such as h11
    accept too), whichever ends first.
    """
    ends = []
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        ends.append(i + 4)
    j = buf.find(b"\n\n")
    if j >= 0:
        ends.append(j + 2)
    return min(ends) if ends else None


@dataclass
class WireCounter:
    """Counts bytes in each direction and notes the connection moments."""

    sent: _Direction = field(default_factory=_Direction)
    received: _Direction = field(default_factory=_Direction)
    t_connected: float | None = None

    def connected(self) -> None:
        self.t_connected = time.perf_counter()

    def on_sent(self, data: bytes, *, wire: bool = True, app: bool = True) -> None:
        """Bytes sent: ``wire`` counts them, ``app`` looks for the HTTP head in them.
        Plain TCP: both. With TLS the socket layer passes ``app=False`` (ciphertext)
        and the TLS layer ``wire=False`` (plaintext)."""
        if wire:
            self.sent.count(len(data))
        if app:
            self.sent.scan(data, time.perf_counter())

    def on_received(self, data: bytes, *, wire: bool = True, app: bool = True) -> None:
        if wire:
            self.received.count(len(data))
        if app:
            self.received.scan(data, time.perf_counter())

    @property
    def bytes_sent(self) -> int:
        return self.sent.total

    @property
    def bytes_received(self) -> int:
        return self.received.total


def finish(rec: "Recording", counter: WireCounter) -> "Recording":
    """Close a recording: its end time (if not set yet) and the socket's counts.

    Both recorders end every recording here, so the timing and byte fields mean
    the same on both transports."""
    if rec.t_end is None:
        rec.t_end = time.perf_counter()
    rec.t_connected = counter.t_connected
    rec.t_first_byte = counter.received.t_first_body
    rec.bytes_sent = counter.bytes_sent
    rec.bytes_received = counter.bytes_received
    rec.head_bytes_sent = counter.sent.head or 0
    rec.head_bytes_received = counter.received.head or 0
    return rec
