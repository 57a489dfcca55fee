"""Drawn inputs, reproducible from a seed: hostile parameter values and questions.

Pure functions of ``seed``: the same seed draws the same values on every
transport and in every run, so a verdict on drawn input is the same each time
for the same backend (``--draw-seed`` picks another draw). A seeded
``random.Random`` rather than Hypothesis: the suite neither shrinks nor keeps an
example database, and Hypothesis's own pytest plugin would add about a second
to every pytest run in the environment the suite is installed in.
"""

from __future__ import annotations

import random
import sys
import unicodedata
from functools import lru_cache

SPECIALS = ("%", "%00", "\x00", "\u2028", "\ufeff", "../../etc/passwd", "' OR 1=1 --", "{}", "null")
"""Values that broke real backends: encodings, separators, path and query tricks."""

_RANGES = ((0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0x97F), (0x2000, 0x2BFF),
           (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0xFE00, 0xFFFD), (0x1F300, 0x1FAFF),
           (0x20000, 0x200FF))
"""Code point ranges drawn from: ASCII, Latin, Greek/Cyrillic, RTL scripts,
Devanagari, punctuation and symbols, CJK, Hangul, specials, emoji, CJK beyond
the BMP."""


@lru_cache(maxsize=None)
def _pool(categories: tuple[str, ...] | None) -> tuple[str, ...]:
    """The characters of ``_RANGES`` (of these Unicode major categories, or any
    that can be encoded), once per process."""
    out = []
    for lo, hi in _RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            cat = unicodedata.category(ch)
            if cat in ("Cs", "Cn"):
                continue
            if categories is None or cat[0] in categories or cat in categories:
                out.append(ch)
    return tuple(out)


def _text(rng: random.Random, pool: tuple[str, ...], min_size: int, max_size: int) -> str:
    return "".join(rng.choice(pool) for _ in range(rng.randint(min_size, max_size)))


def boundary_values(min_length: int | None, max_length: int | None) -> list[str]:
    """Values always sent, whatever the seed: empty, white space only, the shortest
    and longest allowed and one past it, NUL and the other control characters, a
    lone surrogate (the client sends its UTF-8-style bytes, percent-encoded),
    characters outside the BMP, and the longest request line (the longest value in
    4-byte characters: about 24 KB once percent-encoded)."""
    shortest = max(1, min_length or 1)
    out = ["", " \t ", "a" * shortest, "\x00", "".join(chr(c) for c in range(1, 32)) + "\x7f", "\ud800",
           "\U0001F600\U00010348\U000E0041"]
    if max_length:
        out += ["x" * max_length, "x" * (max_length + 1), "\U0001F600" * max_length]
    return out


def drawn_values(seed: int, count: int = 8) -> list[tuple[int, str]]:
    """``count`` (slot, value) pairs: the slot picks a request parameter, the value
    is short unicode, long unicode, control characters, a value around the
    2000-character limit, or one of :data:`SPECIALS`."""
    rng = random.Random(f"values:{seed}")
    out = []
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            value = _text(rng, _pool(None), 0, 50)
        elif kind == 1:
            value = _text(rng, _pool(None), 1, 300)
        elif kind == 2:
            value = "".join(chr(rng.randrange(0x20)) for _ in range(rng.randint(0, 20)))
        elif kind == 3:
            value = "x" * rng.randint(1990, 2010)
        else:
            value = rng.choice(SPECIALS)
        out.append((rng.randrange(100), value))
    return out


def drawn_questions(seed: int, count: int = 6) -> list[str]:
    """``count`` questions of letters, digits, punctuation, spaces and symbols, 1 to
    200 characters, never blank."""
    rng = random.Random(f"questions:{seed}")
    pool = _pool(("L", "N", "P", "Zs", "S"))
    out: list[str] = []
    while len(out) < count:
        q = _text(rng, pool, 1, 200)
        if q.strip():
            out.append(q)
    return out


if __name__ == "__main__":  # python -m conformance.draw [SEED]: show a draw
    s = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    for slot, v in drawn_values(s):
        print(slot, repr(v[:80]))
    for q in drawn_questions(s):
        print(repr(q[:80]))
