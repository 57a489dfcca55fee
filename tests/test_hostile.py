"""No backend can blow up the recorders: each hostile backend of tests/hostile.py
ends in its bound of time and memory, with the error kind that names it."""

from __future__ import annotations

import pytest

from hostile import CASES, LIMITS, run


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_backend_is_bounded(case) -> None:
    o = run(case)
    assert o.rec.error_kind == case.error_kind, (o.rec.error_kind, o.rec.error)
    assert o.seconds < case.bound_s, f"{o.seconds:.2f} s"
    # what one recording may keep (its count covers the events' bytes, text and parsed
    # values), plus the event in the making (the line held, its bytes, text and parse)
    # and a megabyte for the rest; a JSON decoder that needs 13 bytes of working memory
    # per byte of a large event (orjson) takes the floods to 20 MB
    bound = LIMITS.max_recording_bytes / 1e6 + 4 * LIMITS.max_event_bytes / 1e6 + 1
    assert o.peak_mb < bound, f"{o.peak_mb:.1f} MB against {bound:.0f} MB"


def test_the_decoder_stops_a_bomb_at_its_limit() -> None:
    """Inflated bytes are counted before they are buffered: 200 MB of gzip stops
    at the limit plus one step."""
    from conformance.wire.decode import STEP, BoundedDecoder
    from conformance.wire.sse_lines import TooLarge
    from hostile import gzip_bomb_bytes

    decoder = BoundedDecoder("gzip", 4_000_000)
    seen = 0
    with pytest.raises(TooLarge, match="more than 4000000 bytes"):
        for piece in decoder.feed(gzip_bomb_bytes(pattern=b": comment\n")):
            seen += len(piece)
            assert len(piece) <= STEP
    assert seen <= 4_000_000
