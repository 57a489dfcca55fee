"""The open WebSocket, client side, sans-I/O: the server's frames in, messages out.

Why not websockets' own parser: ``ClientProtocol`` parses each frame with a
generator over a ``StreamReader`` (a ``read_exact`` coroutine per header field and
payload, an ``Opcode`` enum and a ``Frame`` dataclass per frame). In the load
harness that was most of the WebSocket recorder's CPU per event, and even a
client that closes after one event parses the dozens of frames already in
flight. :class:`ClientFrames` walks each read with offsets and hands back whole
messages.

What it keeps: the semantics of websockets' ``ClientProtocol`` on the same bytes,
since the recorder's verdicts rest on them. The same checks in the same order
(opcode, masking, the length against what is left of ``max_size`` as soon as the
header is in, then once the payload is: a negotiated extension's decode, the
reserved bits, a control frame's length and FIN, the order of continuations, the
close frame's payload); the same close frame sent when the server broke the
protocol (1002, 1007 for a close reason that is not UTF-8, 1009) with the same
reason text; the same closing handshake (the close echo, then everything dropped
until the server's TCP close, then the half-close). ``tests/test_ws_frames.py``
holds the two to the same bytes.

What it takes from websockets, so that each fact has one place: the opening
handshake stays ``ClientProtocol``'s (the recorder hands it the reply's head and
this class what follows); what the client sends is ``Frame.serialize`` (masking,
and compression when permessage-deflate was negotiated); close payloads are
``Close`` (code validity, the reason's UTF-8); size errors are
``PayloadTooBig`` (its text); a negotiated extension's ``decode`` is applied to a
``Frame`` as websockets applies it (only then is a ``Frame`` built per frame).
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.exceptions import InvalidState, PayloadTooBig, ProtocolError
from websockets.extensions import Extension
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.protocol import SEND_EOF, State

TEXT = 0x1
BINARY = 0x2
_CLOSE, _PING = 0x8, 0x9
_OPCODES = frozenset(int(op) for op in Opcode)

Message = tuple[int, bytes]
"""A whole message: its opcode (:data:`TEXT` or :data:`BINARY`) and its payload."""


class ClientFrames:
    """The client's side of an open WebSocket: feed it what the server sent, send
    what :meth:`data_to_send` returns (``b""``: half-close), as with websockets'
    sans-I/O ``ClientProtocol``, whose attributes of the same names
    (``state``, ``close_sent``, ``close_rcvd``) mean the same here."""

    def __init__(self, max_size: int | None, extensions: Sequence[Extension] = ()) -> None:
        self.max_size = max_size
        """Most bytes of one message (its fragments together), as websockets' ``max_size``."""
        self.extensions = list(extensions)
        self.state = State.OPEN
        self.close_sent: Close | None = None
        self.close_rcvd: Close | None = None
        self._writes: list[bytes] = []
        self._pending = bytearray()
        """The start of a frame that has not all arrived yet."""
        self._need = 2
        """Bytes ``_pending`` must hold before parsing is worth a try (the frame's
        header, or header and payload once the header is known): a large frame
        arriving in many reads is gathered once, not re-parsed per read."""
        self._discarding = False
        """After a close frame or a failure nothing more is parsed (RFC 6455 1.4, 7.1.7)."""
        self._opcode = 0
        """Opcode of the fragmented message being assembled."""
        self._parts: list[bytes] = []
        self._size: int | None = None
        """Bytes of the fragmented message so far; None when none is under way
        (websockets' ``current_size``)."""

    def receive_data(self, data: bytes) -> list[Message]:
        """Parse what the server sent; return the messages it completed. After a
        protocol error the connection is failed (see :meth:`fail`) and the
        messages before the bad frame are still returned."""
        if self._discarding:
            return []
        if self._pending:
            self._pending += data
            if len(self._pending) < self._need:
                return []
            data, self._pending = bytes(self._pending), bytearray()
        messages: list[Message] = []
        n = len(data)
        pos = 0
        need = 2
        try:
            while n - pos >= 2:
                head1, head2 = data[pos], data[pos + 1]
                opcode = head1 & 0x0F
                if opcode not in _OPCODES:
                    raise ProtocolError("invalid opcode")
                if head2 & 0x80:
                    raise ProtocolError("incorrect masking")
                length = head2 & 0x7F
                start = pos + 2
                if length >= 126:
                    start += 2 if length == 126 else 8
                    if start > n:
                        need = start - pos
                        break
                    length = int.from_bytes(data[pos + 2:start], "big")
                limit = self.max_size
                if limit is not None and self._size is not None:
                    limit -= self._size
                if limit is not None and length > limit:
                    raise PayloadTooBig(length, limit)
                end = start + length
                if end > n:
                    need = end - pos
                    break
                payload = data[start:end]
                pos = end
                fin = head1 & 0x80
                rsv = head1 & 0x70
                if self.extensions:
                    opcode, payload, fin, rsv = self._decode(opcode, payload, fin, rsv, limit)
                if rsv:
                    raise ProtocolError("reserved bits must be 0")
                if opcode < _CLOSE:
                    if opcode:  # TEXT, BINARY
                        if self._size is not None:
                            raise ProtocolError("expected a continuation frame")
                        if fin:
                            messages.append((opcode, payload))
                        else:
                            self._opcode, self._parts, self._size = opcode, [payload], len(payload)
                    else:  # continuation
                        if self._size is None:
                            raise ProtocolError("unexpected continuation frame")
                        self._parts.append(payload)
                        if fin:
                            messages.append((self._opcode, b"".join(self._parts)))
                            self._parts, self._size = [], None
                        else:
                            self._size += len(payload)
                    continue
                if len(payload) > 125:
                    raise ProtocolError("control frame too long")
                if not fin:
                    raise ProtocolError("fragmented control frame")
                if opcode == _PING:
                    self._send(Frame(Opcode.PONG, payload))
                elif opcode == _CLOSE:
                    self._receive_close(payload)
                    return messages
                # a pong: nothing to do
        except ProtocolError as exc:
            self.fail(CloseCode.PROTOCOL_ERROR, str(exc))
            return messages
        except UnicodeDecodeError as exc:  # a close reason that is not UTF-8
            self.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            return messages
        except PayloadTooBig as exc:
            exc.set_current_size(self._size)
            self.fail(CloseCode.MESSAGE_TOO_BIG, str(exc))
            return messages
        if pos < n:
            self._pending[:] = memoryview(data)[pos:]
        self._need = need
        return messages

    def _decode(self, opcode: int, payload: bytes, fin: int, rsv: int, max_size: int | None
                ) -> tuple[int, bytes, int, int]:
        """Apply the negotiated extensions' decode to one frame, as websockets'
        ``Frame.parse`` does (last negotiated first)."""
        frame = Frame(Opcode(opcode), payload, bool(fin), bool(rsv & 0x40), bool(rsv & 0x20), bool(rsv & 0x10))
        for extension in reversed(self.extensions):
            frame = extension.decode(frame, max_size=max_size)
        rsv = (0x40 if frame.rsv1 else 0) | (0x20 if frame.rsv2 else 0) | (0x10 if frame.rsv3 else 0)
        return int(frame.opcode), bytes(frame.data), 0x80 if frame.fin else 0, rsv

    def _receive_close(self, payload: bytes) -> None:
        """The server's close frame: note it, echo it (unless the client closed
        first), then drop whatever follows."""
        self.close_rcvd = Close.parse(payload)  # ProtocolError, UnicodeDecodeError
        if self._size is not None:
            raise ProtocolError("incomplete fragmented message")
        if self.state is State.OPEN:
            # the payload as received, as websockets echoes it (an empty one stays empty)
            self._send(Frame(Opcode.CLOSE, payload))
            self.close_sent = self.close_rcvd
            self.state = State.CLOSING
        self._discard()

    def receive_eof(self) -> None:
        """The server closed TCP: the connection is closed; the client half-closes
        its side too (``b""`` in :meth:`data_to_send`), as websockets' client does."""
        if self.state is State.CLOSED:
            return
        self._discard()
        self.state = State.CLOSED
        self._writes.append(SEND_EOF)

    def send_text(self, data: bytes) -> None:
        """Send one text message (one frame)."""
        if self.state is not State.OPEN:
            raise InvalidState(f"connection is {self.state.name.lower()}")
        self._send(Frame(Opcode.TEXT, data))

    def send_close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake from the client's side."""
        if self.state is not State.OPEN:
            raise InvalidState(f"connection is {self.state.name.lower()}")
        close = Close(code, reason)
        self._send(Frame(Opcode.CLOSE, close.serialize()))
        self.close_sent = close
        self.state = State.CLOSING

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (RFC 6455 7.1.7): send a close frame with ``code``
        unless one was sent already, then parse nothing more and wait for the
        server's TCP close."""
        if self.state is State.OPEN:
            self.send_close(code, reason)
        self._discard()

    def data_to_send(self) -> list[bytes]:
        """What is due to be sent, in order; ``b""`` means half-close."""
        writes, self._writes = self._writes, []
        return writes

    def _send(self, frame: Frame) -> None:
        self._writes.append(frame.serialize(mask=True, extensions=self.extensions))

    def _discard(self) -> None:
        self._discarding = True
        self._pending = bytearray()
        self._parts = []
