"""The WebSocket frame parser (conformance.wire.ws_frames), sans-I/O, held to
websockets' own ``ClientProtocol`` on the same bytes: the messages, what the
client sends back (pong, close echo, the close frame of a failure and its
reason), the close frames noted and the state, whatever the split of the bytes
into reads."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import pytest
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import SEND_EOF, State
from websockets.streams import StreamReader
from websockets.uri import parse_uri

from conformance.wire.ws_frames import BINARY, TEXT, ClientFrames

MAX = 1000
"""max_size of both parsers in these tests."""


def frame(payload: bytes, opcode: int = 1, *, fin: bool = True, rsv: int = 0, mask: bool = False,
          length: int | None = None, form: int | None = None) -> bytes:
    """A server frame as bytes, any bit as asked: ``form`` forces the length's
    encoding (7, 16 or 64 bits), ``length`` a length that is not the payload's."""
    n = len(payload) if length is None else length
    form = form or (7 if n < 126 else 16 if n < 65536 else 64)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    m = 0x80 if mask else 0
    if form == 7:
        head += bytes([m | n])
    elif form == 16:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if mask:
        head += b"\0\0\0\0"  # a zero mask: the payload reads as is
    return head + payload


def close(code: int | None = 1000, reason: bytes = b"") -> bytes:
    return frame(b"" if code is None else struct.pack("!H", code) + reason, 8)


@dataclass
class Outcome:
    messages: list[tuple[int, bytes]]
    sent: list[tuple[int, bytes] | bytes]
    """What the client sent: (opcode, unmasked payload) per frame, b"" for the half-close."""
    close_sent: Close | None
    close_rcvd: Close | None
    state: State


def _sent(writes: list[bytes]) -> list[tuple[int, bytes] | bytes]:
    """The client's frames as (opcode, payload), read back with websockets' parser (they are masked)."""
    out: list[tuple[int, bytes] | bytes] = []
    for data in writes:
        if data == SEND_EOF:
            out.append(data)
            continue
        reader = StreamReader()
        reader.feed_data(data)
        parser = Frame.parse(reader.read_exact, mask=True)
        try:
            next(parser)
        except StopIteration as done:
            out.append((int(done.value.opcode), bytes(done.value.data)))
        assert not reader.buffer
    return out


def _deflate() -> PerMessageDeflate:
    return PerMessageDeflate(False, False, 15, 15)


def with_websockets(chunks: list[bytes], eof: bool, *, deflate: bool = False, client_close: int | None = None
                    ) -> Outcome:
    """What websockets' ClientProtocol makes of the server's bytes (messages assembled from its frames)."""
    proto = ClientProtocol(parse_uri("ws://example.test/"), state=State.OPEN, max_size=MAX)
    if deflate:
        proto.extensions = [_deflate()]
    writes: list[bytes] = []
    if client_close is not None:
        proto.send_close(client_close)
        writes += proto.data_to_send()
    messages: list[tuple[int, bytes]] = []
    parts: list[bytes] = []
    opcode = 0
    for chunk in chunks:
        proto.receive_data(chunk)
        writes += proto.data_to_send()
        for f in proto.events_received():
            if f.opcode in (Opcode.TEXT, Opcode.BINARY):
                opcode, parts = int(f.opcode), [bytes(f.data)]
            elif f.opcode is Opcode.CONT:
                parts.append(bytes(f.data))
            else:
                continue
            if f.fin:
                messages.append((opcode, b"".join(parts)))
    if eof:
        proto.receive_eof()
        writes += proto.data_to_send()
    return Outcome(messages, _sent(writes), proto.close_sent, proto.close_rcvd, proto.state)


def with_ours(chunks: list[bytes], eof: bool, *, deflate: bool = False, client_close: int | None = None) -> Outcome:
    frames = ClientFrames(MAX, [_deflate()] if deflate else [])
    writes: list[bytes] = []
    if client_close is not None:
        frames.send_close(client_close)
        writes += frames.data_to_send()
    messages: list[tuple[int, bytes]] = []
    for chunk in chunks:
        got = frames.receive_data(chunk)
        assert all(type(m[1]) is bytes for m in got)
        messages += got
        writes += frames.data_to_send()
    if eof:
        frames.receive_eof()
        writes += frames.data_to_send()
    return Outcome(messages, _sent(writes), frames.close_sent, frames.close_rcvd, frames.state)


def splits(data: bytes) -> list[list[bytes]]:
    """The bytes in one read, in two reads at every boundary, and one byte per read."""
    return [[data]] + [[data[:i], data[i:]] for i in range(1, len(data))] + [[data[i:i + 1] for i in range(len(data))]]


def compressed(messages: list[tuple[bytes, bool]]) -> bytes:
    """Server frames of permessage-deflate messages (one shared context, as negotiated):
    (payload, split it in two frames)."""
    encoder = zlib.compressobj(wbits=-15)
    out = b""
    for payload, fragmented in messages:
        data = encoder.compress(payload) + encoder.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        data = data[:-4]
        if fragmented:
            half = len(data) // 2
            out += frame(data[:half], 1, fin=False, rsv=0x40) + frame(data[half:], 0)
        else:
            out += frame(data, 1, rsv=0x40)
    return out


TEXTS = frame(b'{"type": "start"}') + frame(b"\xff\xfe", 2) + frame(b"x" * 200) + frame(b"y" * 300, form=64)
FRAGMENTED = frame(b'{"type": ', fin=False) + frame(b"ping", 9) + frame(b'"a"', 0, fin=False) + frame(b"", 10) \
    + frame(b"}", 0)

CASES: dict[str, tuple[bytes, bool]] = {
    # (the server's bytes, EOF after them)
    "texts, binary, 16- and 64-bit lengths, then close": (TEXTS + close(1000, b"bye"), True),
    "a fragmented message with a ping and a pong between its frames": (FRAGMENTED + close(1001), True),
    "an empty close frame (1005), echoed empty": (frame(b"a") + close(None), True),
    "frames after the close frame are dropped": (close(1000) + frame(b"late") + b"\x03garbage", True),
    "a close code outside the registry": (frame(b"a") + close(999), True),
    "a close frame of one byte": (frame(b"a") + frame(b"\x03", 8), True),
    "a close reason that is not UTF-8": (frame(b"a") + close(1000, b"\xff"), True),
    "a private close code with a reason": (close(4000, "déjà".encode()), True),
    "a reserved opcode": (frame(b"a") + frame(b"zz", 3), False),
    "a masked frame": (frame(b"a") + frame(b"b", mask=True), False),
    "RSV1 without an extension": (frame(b"a") + frame(b"b", rsv=0x40), False),
    "RSV2": (frame(b"b", rsv=0x20), False),
    "RSV3 on a ping": (frame(b"b", 9, rsv=0x10), False),
    "a ping of 126 bytes": (frame(b"p" * 126, 9), False),
    "a fragmented ping": (frame(b"p", 9, fin=False), False),
    "a fragmented ping of 126 bytes": (frame(b"p" * 126, 9, fin=False), False),
    "RSV1 on a ping of 126 bytes": (frame(b"p" * 126, 9, rsv=0x40), False),
    "a bad opcode, masked": (frame(b"p", 5, mask=True), False),
    "a continuation with nothing to continue": (frame(b"a") + frame(b"b", 0), False),
    "a text frame inside a fragmented message": (frame(b"a", fin=False) + frame(b"b"), False),
    "a close frame inside a fragmented message": (frame(b"a", fin=False) + close(1000), True),
    "one frame past max_size (header alone)": (frame(b"a") + frame(b"", length=MAX + 1), False),
    "a fragmented message past max_size": (frame(b"a" * 600, fin=False) + frame(b"b" * 401, 0), False),
    "exactly max_size over fragments": (frame(b"a" * 600, fin=False) + frame(b"b" * 400, 0) + close(), True),
    "a 64-bit length of 2**63": (frame(b"", length=2**63, form=64), False),
    "EOF inside a frame": (frame(b"a") + frame(b"bcdef")[:4], True),
    "EOF inside a header": (frame(b"a") + frame(b"b" * 300)[:3], True),
    "EOF after whole frames, no close frame": (frame(b"a") + frame(b"b"), True),
    "nothing but EOF": (b"", True),
    "a stall: no EOF, no close": (frame(b"a") + frame(b"b", fin=False), False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_as_websockets_at_every_split(name: str) -> None:
    data, eof = CASES[name]
    expected = with_websockets([data], eof)
    for chunks in splits(data) if data else [[]]:
        assert with_ours(chunks, eof) == expected, (name, [len(c) for c in chunks])


@pytest.mark.parametrize("name", ["texts, binary, 16- and 64-bit lengths, then close", "frames after the close frame are dropped",
                                  "a reserved opcode", "a fragmented message with a ping and a pong between its frames"])
def test_same_as_websockets_after_the_client_closed(name: str) -> None:
    """In CLOSING (the client sent its close first) frames are still parsed, a close
    frame is not echoed, and a protocol error sends nothing more."""
    data, eof = CASES[name]
    expected = with_websockets([data], eof, client_close=1000)
    assert expected.state is State.CLOSED or not eof
    for chunks in splits(data):
        assert with_ours(chunks, eof, client_close=1000) == expected, [len(c) for c in chunks]


DEFLATE_CASES: dict[str, tuple[bytes, bool]] = {
    "compressed messages, whole and fragmented, and a plain one": (
        compressed([(b'{"type": "start"}' * 3, False), (b"abc" * 50, True), (b'{"type": "end"}', False)])
        + frame(b"plain") + close(1000), True),
    "a compressed message that inflates past max_size": (compressed([(b"\0" * (MAX + 1), False)]), False),
    "RSV1 on a continuation": (frame(b"a", fin=False, rsv=0x40) + frame(b"b", 0, rsv=0x40), False),
    "bytes that do not inflate": (frame(b"\xff\xff\xff\xff", rsv=0x40), False),
}


@pytest.mark.parametrize("name", list(DEFLATE_CASES))
def test_same_as_websockets_with_permessage_deflate(name: str) -> None:
    data, eof = DEFLATE_CASES[name]
    expected = with_websockets([data], eof, deflate=True)
    for chunks in splits(data)[:200]:
        assert with_ours(chunks, eof, deflate=True) == expected, [len(c) for c in chunks]


def test_messages_and_replies() -> None:
    """What the cases above compare, stated once: messages, pong and close echo, 1002/1007/1009 with their reasons."""
    ours = with_ours([FRAGMENTED + frame(b"\x01\x02", 2) + close(1000, b"done")], True)
    assert ours.messages == [(TEXT, b'{"type": "a"}'), (BINARY, b"\x01\x02")]
    assert ours.sent == [(10, b"ping"), (8, struct.pack("!H", 1000) + b"done"), b""]
    assert ours.close_rcvd == Close(1000, "done") and ours.close_sent == ours.close_rcvd and ours.state is State.CLOSED

    def failure(data: bytes) -> Close | None:
        return with_ours([data], False).close_sent

    assert failure(frame(b"zz", 3)) == Close(1002, "invalid opcode")
    assert failure(frame(b"b", rsv=0x40)) == Close(1002, "reserved bits must be 0")
    assert failure(frame(b"a" * 600, fin=False) + frame(b"b" * 401, 0)) == \
        Close(1009, "frame with 401 bytes after reading 600 bytes exceeds limit of 1000 bytes")
    assert failure(close(1000, b"\xff")) == Close(1007, "invalid start byte at position 0")


def test_a_large_frame_in_many_reads_is_gathered_once() -> None:
    """A frame arriving in many small reads is not re-parsed per read (no quadratic copying)."""
    frames = ClientFrames(None)
    data = frame(b"z" * 5_000_000, 2)
    got = []
    for i in range(0, len(data), 1000):
        got += frames.receive_data(data[i:i + 1000])
    assert got == [(BINARY, b"z" * 5_000_000)]
    assert frames.receive_data(frame(b"next")) == [(TEXT, b"next")]


def test_failing_and_sending() -> None:
    frames = ClientFrames(MAX)
    frames.send_text(b"hello")
    frames.fail(1007, "bad text")
    assert _sent(frames.data_to_send()) == [(1, b"hello"), (8, struct.pack("!H", 1007) + b"bad text")]
    assert frames.state is State.CLOSING and frames.receive_data(frame(b"dropped")) == []
    with pytest.raises(Exception, match="connection is closing"):
        frames.send_text(b"too late")
    frames.receive_eof()
    assert frames.data_to_send() == [SEND_EOF] and frames.state is State.CLOSED
