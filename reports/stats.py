"""Confidence intervals for the report's ratios: a seeded bootstrap over streams.

A ratio such as "SSE p50 delivery / WS p50 delivery" rests on a few dozen
streams per transport, and events of one stream are not independent (they share
its connection, its moment on a busy machine). So the unit of resampling is the
stream: each bootstrap replicate draws, for each transport on its own, as many
streams as it has, with replacement, recomputes the figure from them exactly as
the point estimate is computed, and forms the ratio. The 2.5th and 97.5th
percentiles of the replicates are the 95 % interval (percentile bootstrap).

A verdict on a claim is given only when the interval is on one side of the
threshold the verdict needs (:func:`decide`); otherwise the report says how many
more streams per transport would make an interval of the same spread clear the
threshold (the half-width shrinks as 1/sqrt(n)), rounded up.

Pure functions on plain data; the random generator is seeded, so the same
results give the same intervals in every report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Sample = Mapping[str, Any]
"""One stream's figures (``samples.json`` of a results directory): ``d`` delivery
latencies (µs), ``w`` wire bytes after the head, ``p`` payload bytes, ``e`` events,
``u`` duration (µs), ``t`` time to first event (µs), ``c`` connect (µs)."""

Figure = Callable[[Sequence[Sample]], "float | None"]

REPLICATES = 1000
SEED = 12
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A ratio, its bootstrap interval, and the streams it rests on."""

    value: float
    low: float
    high: float
    n_a: int
    n_b: int
    level: float = LEVEL

    def text(self) -> str:
        return f"{_num(self.value)} [{_num(self.low)}, {_num(self.high)}] (n = {self.n_a} / {self.n_b} streams)"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": [self.n_a, self.n_b],
                "level": self.level, "method": f"percentile bootstrap over streams, {REPLICATES} replicates, "
                                               f"seed {SEED}"}


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` as HdrHistogram reports a percentile: the
    smallest value with at least ``ceil(q * n)`` values at or below it."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("quantile of no values")
    k = min(max(1, math.ceil(q * arr.size)), arr.size) - 1
    return float(np.partition(arr, k)[k])


def ratio_interval(a: Sequence[Sample], b: Sequence[Sample], figure: Figure, *, replicates: int = REPLICATES,
                   seed: int = SEED, level: float = LEVEL) -> Interval | None:
    """``figure(a) / figure(b)`` with its bootstrap interval over the streams of
    ``a`` and of ``b`` (each resampled on its own). None when either side has no
    streams or the point figure cannot form a ratio (missing, or b's is not > 0)."""
    if not a or not b:
        return None
    fa, fb = figure(a), figure(b)
    if fa is None or fb is None or fb <= 0 or fa < 0:
        return None
    rng = np.random.default_rng(seed)
    ratios: list[float] = []
    na, nb = len(a), len(b)
    for _ in range(replicates):
        ra = figure([a[i] for i in rng.integers(0, na, na)])
        rb = figure([b[i] for i in rng.integers(0, nb, nb)])
        if ra is not None and rb is not None and rb > 0:
            ratios.append(ra / rb)
    if len(ratios) < replicates // 2:
        return None
    tail = (1 - level) / 2
    return Interval(fa / fb, quantile(ratios, tail), quantile(ratios, 1 - tail), na, nb, level)


def more_streams(interval: Interval, threshold: float) -> int | None:
    """Streams to add per transport so that an interval of the same relative spread
    clears ``threshold``: n · (h / d)² − n, with d the distance of the estimate from
    the threshold and h the half-width on that side. None when the estimate sits
    on the threshold (no number of streams is enough to tell)."""
    d = abs(interval.value - threshold)
    if d == 0:
        return None
    h = (interval.value - interval.low) if interval.value > threshold else (interval.high - interval.value)
    n = min(interval.n_a, interval.n_b)
    need = n * (h / d) ** 2
    return max(1, math.ceil(need - n))


def decide(interval: Interval, confirm_at: float, contradict_below: float) -> tuple[str, int | None]:
    """(verdict, more streams needed) for a claim that the ratio is at least
    ``confirm_at``: *confirmed* when the whole interval is at or above it,
    *contradicted* when it is wholly below ``contradict_below``, *not confirmed*
    when it is wholly below ``confirm_at`` otherwise, else *undecided*."""
    if interval.low >= confirm_at:
        return "confirmed", None
    if interval.high < contradict_below:
        return "contradicted", None
    if interval.high < confirm_at:
        return "not confirmed", None
    return "undecided", more_streams(interval, confirm_at)


# --------------------------------------------------------------------------- figures from samples


def p50_delivery_ms(streams: Sequence[Sample]) -> float | None:
    """p50 over the events of all the streams (pooled, as the load run's histogram is)."""
    parts = [s["d"] for s in streams if s.get("d") is not None and len(s["d"])]
    return quantile(np.concatenate(parts), 0.5) / 1000.0 if parts else None


def p99_delivery_ms(streams: Sequence[Sample]) -> float | None:
    parts = [s["d"] for s in streams if s.get("d") is not None and len(s["d"])]
    return quantile(np.concatenate(parts), 0.99) / 1000.0 if parts else None


def _quantile_of(key: str, q: float, scale: float = 1.0) -> Figure:
    def figure(streams: Sequence[Sample]) -> float | None:
        values = [s[key] for s in streams if s.get(key) is not None]
        return quantile(values, q) / scale if values else None
    return figure


def per_event(key: str) -> Figure:
    """Sum of ``key`` over the streams / their events (bytes per event)."""
    def figure(streams: Sequence[Sample]) -> float | None:
        events = sum(s.get("e") or 0 for s in streams)
        return sum(s.get(key) or 0 for s in streams) / events if events else None
    return figure


def framing_per_event(streams: Sequence[Sample]) -> float | None:
    events = sum(s.get("e") or 0 for s in streams)
    if not events:
        return None
    return (sum(s.get("w") or 0 for s in streams) - sum(s.get("p") or 0 for s in streams)) / events


def duration_per_100_s(streams: Sequence[Sample]) -> float | None:
    durations = [s["u"] for s in streams if s.get("u") is not None]
    events = [s["e"] for s in streams if s.get("e")]
    if not durations or not events:
        return None
    return quantile(durations, 0.5) / 1e6 * 100.0 / quantile(events, 0.5)


FIGURES: dict[str, Figure] = {
    "delivery.p50_ms": p50_delivery_ms,
    "delivery.p99_ms": p99_delivery_ms,
    "ttfe.p50_ms": _quantile_of("t", 0.5, 1000.0),
    "connect.p50_ms": _quantile_of("c", 0.5, 1000.0),
    "duration.p50_ms": _quantile_of("u", 0.5, 1000.0),
    "bytes.per_event.wire": per_event("w"),
    "bytes.per_event.framing": framing_per_event,
    "derived.duration_per_100_events_s": duration_per_100_s,
}
"""Metric path (as in the tables) -> the same figure computed from stream samples."""
