"""Pure pieces of the live view and the open model, importable without Locust.

Importing Locust monkey-patches the process with gevent (threads, sockets,
subprocesses); a test or a tool that only needs these functions must not pay
for that, nor have it done to its own threads. ``load.locustfile`` and
``load.open`` use them; ``tests/test_live_view.py`` and
``tests/test_open_model.py`` test them here.
"""

from __future__ import annotations

from typing import Any


def stream_counts(run_wire: Any) -> dict[str, tuple[int, int]]:
    """Transport -> (streams, failed streams) from a RunAccumulator's wire form
    (every level), without decoding a histogram."""
    out: dict[str, tuple[int, int]] = {}
    for by_t in (run_wire or {}).values():
        for t, a in (by_t or {}).items():
            streams = int(a.get("streams", 0))
            failed = streams - int(a.get("streams_ok", 0)) + int(a.get("violations", 0))
            s0, f0 = out.get(t, (0, 0))
            out[t] = (s0 + streams, f0 + failed)
    return out


def progress_line(elapsed_s: float, run_time_s: float | None, now: dict[str, tuple[int, int]],
                  before: dict[str, tuple[int, int]], interval_s: float) -> str:
    """``12 s of 60 s, 48 s left: sse 3.2 streams/s, 0 errors (40 streams); ws ...``:
    streams per second over the last interval, failed streams so far (pure)."""
    if run_time_s:
        head = f"{elapsed_s:.0f} s of {run_time_s:.0f} s, {max(0.0, run_time_s - elapsed_s):.0f} s left"
    else:
        head = f"{elapsed_s:.0f} s (no time limit: -t sets one)"
    parts = []
    for t, (streams, failed) in now.items():
        rate = (streams - before.get(t, (0, 0))[0]) / interval_s if interval_s > 0 else 0.0
        parts.append(f"{t} {rate:.1f} streams/s, {failed} error{'s' if failed != 1 else ''} ({streams} streams)")
    return f"[agentstream] {head}: " + ("; ".join(parts) if parts else "no stream finished yet")


def arrivals_due(t0: float, now: float, rate: float, done: int) -> int:
    """How many arrivals of the timetable ``t0 + k / rate`` are due at ``now``
    beyond the ``done`` already scheduled (pure, for the tests)."""
    if now < t0:
        return 0
    return max(0, int((now - t0) * rate) + 1 - done)
