"""Content decoding within a byte budget (sans-I/O).

An HTTP client that advertises gzip or brotli and decompresses each chunk whole
can be made to hold gigabytes by a few kilobytes of a compression bomb. The SSE
transport asks for ``identity``; when a server compresses anyway (gzip or
deflate), this decoder inflates at most ``step`` bytes at a time and stops the
recording once ``limit`` bytes came out. Any other coding is refused: it was not
asked for, and no bound can be put on a decoder this module does not drive.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from .sse_lines import TooLarge

STEP = 262_144
"""Most bytes inflated per call: what one piece of a body can grow to in memory."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding the transport did not ask for and cannot bound."""


class BoundedDecoder:
    def __init__(self, content_encoding: str | None, limit: int) -> None:
        coding = (content_encoding or "").strip().lower()
        self.coding = coding or "identity"
        self.limit = limit
        self.total = 0
        if coding in ("", "identity"):
            self._inflater = None
        elif coding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._inflater = zlib.decompressobj()
        else:
            raise UnsupportedEncoding(f"the server sent Content-Encoding: {content_encoding}, which was not asked for "
                                      "(Accept-Encoding: identity)")

    def _count(self, n: int) -> None:
        self.total += n
        if self.total > self.limit:
            raise TooLarge(f"the body decoded to more than {self.limit} bytes ({self.coding})")

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most ``STEP`` bytes."""
        if self._inflater is None:
            self._count(len(data))
            yield data
            return
        pending = data
        while pending:
            try:
                out = self._inflater.decompress(pending, STEP)
            except zlib.error as exc:
                raise UnsupportedEncoding(f"the {self.coding} body does not decode: {exc}") from None
            self._count(len(out))
            if out:
                yield out
            pending = self._inflater.unconsumed_tail
