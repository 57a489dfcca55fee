"""TLS in memory (``ssl.MemoryBIO``) over a byte pipe the recorder counts.

Python's ``SSLSocket`` reads and writes the file descriptor in C, so a wrapper
around it would count plaintext. Running TLS on memory buffers instead and moving
the encrypted bytes ourselves keeps the count at the socket: TLS records,
handshake and alerts included, as for plain TCP.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable

RecvRaw = Callable[[int], bytes]
SendRaw = Callable[[bytes], None]


class MemoryTLS:
    """A TLS client session whose ciphertext goes through ``recv_raw``/``send_raw``.

    ``recv`` returns all the plaintext already decrypted (it may exceed the size
    asked for): a caller that waits on the file descriptor (select) between reads
    must never leave decrypted bytes behind, or it would wait for bytes that
    already came. One lock serialises the TLS state between a reading and a
    writing thread (websockets uses both).
    """

    BUFSIZE = 65536

    def __init__(self, context: ssl.SSLContext, server_hostname: str | None, recv_raw: RecvRaw, send_raw: SendRaw) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._recv_raw = recv_raw
        self._send_raw = send_raw
        self._lock = threading.Lock()

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self._send_raw(data)

    def handshake(self) -> None:
        while True:
            with self._lock:
                try:
                    self.ssl_object.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                out = self._out.read()
            if out:
                self._send_raw(out)
            if done:
                return
            data = self._recv_raw(self.BUFSIZE)
            if not data:
                raise ConnectionError("the connection closed during the TLS handshake")
            self._in.write(data)

    def recv(self, bufsize: int) -> bytes:
        """Plaintext; b"" at the end of the stream (a ragged EOF counts as an end)."""
        while True:
            chunks: list[bytes] = []
            eof = False
            with self._lock:
                while True:
                    try:
                        piece = self.ssl_object.read(max(bufsize, self.BUFSIZE))
                    except ssl.SSLWantReadError:
                        break
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        eof = True
                        break
                    if not piece:
                        eof = True
                        break
                    chunks.append(piece)
                out = self._out.read()  # e.g. a key update answer
            if out:
                self._send_raw(out)
            if chunks:
                return b"".join(chunks)
            if eof:
                return b""
            data = self._recv_raw(self.BUFSIZE)
            if not data:
                with self._lock:
                    self._in.write_eof()
                continue  # read once more: either the rest, or EOF
            with self._lock:
                self._in.write(data)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            with self._lock:
                n = self.ssl_object.write(view)
                out = self._out.read()
            view = view[n:]
            if out:
                self._send_raw(out)

    def close_notify(self) -> None:
        """Best effort TLS close_notify; errors are ignored (the socket closes anyway)."""
        try:
            with self._lock:
                self.ssl_object.unwrap()
        except (ssl.SSLError, ValueError, OSError):
            pass
        try:
            self._flush()
        except OSError:
            pass
