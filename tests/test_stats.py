"""Bootstrap intervals and the verdicts that rest on them (reports/stats.py, reports/claims.py),
on samples drawn from known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from load.metrics import StreamSamples
from reports import stats
from reports.claims import evaluate_claims


def streams(rng: np.random.Generator, n: int, median_ms: float, sigma: float = 0.5, events: int = 40,
            spread: float = 0.1) -> list[dict]:
    """``n`` streams whose events' delivery latency is lognormal with the given median;
    each stream also gets its own offset (streams are not independent of their events)."""
    out = []
    for _ in range(n):
        shift = rng.normal(0.0, spread)
        d = np.exp(math.log(median_ms * 1000.0) + shift + rng.normal(0.0, sigma, events))
        out.append({"d": d, "w": events * 150.0, "p": events * 140.0, "e": events, "u": 2e6, "t": 5e3, "c": 1e3})
    return out


def test_the_interval_holds_the_true_ratio_and_narrows_with_more_streams():
    rng = np.random.default_rng(1)
    big = stats.ratio_interval(streams(rng, 300, 3.0), streams(rng, 300, 1.0), stats.p50_delivery_ms)
    small = stats.ratio_interval(streams(rng, 12, 3.0), streams(rng, 12, 1.0), stats.p50_delivery_ms)
    assert big.low < 3.0 < big.high and big.high - big.low < 0.15 * 3.0
    assert small.high - small.low > 2 * (big.high - big.low)
    assert (big.n_a, big.n_b) == (300, 300)


def test_coverage_is_about_the_nominal_level():
    """Over 60 independent experiments of 25 streams a side, the 95 % interval holds
    the true ratio (2) in most of them: far more than a point estimate ever would."""
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(60):
        iv = stats.ratio_interval(streams(rng, 25, 2.0), streams(rng, 25, 1.0), stats.p50_delivery_ms,
                                  replicates=300)
        hits += iv.low <= 2.0 <= iv.high
    assert hits >= 50  # 95 % of 60 is 57; a bootstrap on 25 streams runs a little under


def test_the_same_samples_give_the_same_interval():
    rng = np.random.default_rng(2)
    a, b = streams(rng, 20, 1.5), streams(rng, 20, 1.0)
    first = stats.ratio_interval(a, b, stats.p50_delivery_ms)
    assert first == stats.ratio_interval(a, b, stats.p50_delivery_ms)
    assert first != stats.ratio_interval(a, b, stats.p50_delivery_ms, seed=99)


def test_no_ratio_without_streams_or_with_a_zero_reference():
    rng = np.random.default_rng(3)
    a = streams(rng, 5, 1.0)
    assert stats.ratio_interval([], a, stats.p50_delivery_ms) is None
    zero = [dict(s, d=np.zeros(10)) for s in a]
    assert stats.ratio_interval(a, zero, stats.p50_delivery_ms) is None


def test_quantile_reads_as_hdrhistogram_does():
    assert stats.quantile([1, 2, 3, 4], 0.5) == 2.0
    assert stats.quantile(list(range(1, 101)), 0.95) == 95.0
    with pytest.raises(ValueError):
        stats.quantile([], 0.5)


@pytest.mark.parametrize("low, high, verdict", [
    (2.6, 3.0, "confirmed"), (0.5, 0.85, "contradicted"), (1.0, 2.0, "not confirmed"),
    (0.8, 2.0, "not confirmed"), (2.0, 3.0, "undecided"), (0.5, 3.0, "undecided"),
])
def test_a_verdict_only_when_the_interval_clears_the_threshold(low, high, verdict):
    iv = stats.Interval((low + high) / 2, low, high, 30, 30)
    assert stats.decide(iv, 2.5, 1 / 1.1)[0] == verdict


def test_more_streams_follows_the_square_root_law():
    # estimate 2.0, upper half-width 0.5, threshold 2.25: the half-width must halve, so 4x the streams
    iv = stats.Interval(2.0, 1.5, 2.5, 20, 20)
    assert stats.more_streams(iv, 2.25) == 60
    assert stats.more_streams(stats.Interval(2.5, 2.0, 3.0, 20, 20), 2.5) is None


def test_a_claim_with_a_wide_interval_is_undecided_and_says_how_many_streams_it_needs():
    rng = np.random.default_rng(4)
    # true ratio 2.5, exactly the 4x claim's confirmation threshold's neighbourhood, few noisy streams
    samples = {"sse": streams(rng, 8, 2.6, events=5, spread=0.8), "ws": streams(rng, 8, 1.0, events=5, spread=0.8)}
    summary = {"transports": {
        t: {"streams": 8, "metrics": {"delivery": {"p50_ms": stats.p50_delivery_ms(s)}},
            "bytes": {"per_event": {"framing": 10.0, "wire": 150.0}}} for t, s in samples.items()}}
    latency = evaluate_claims(summary, samples=samples)[0]
    assert latency.verdict == "undecided" and latency.more_streams and latency.more_streams > 0
    assert f"needs about {latency.more_streams} more streams per transport" in latency.text
    assert latency.interval.n_a == 8 and "over 8 SSE and 8 WS streams" in latency.text
    d = latency.to_dict()
    assert d["interval"]["n"] == [8, 8] and "bootstrap" in d["interval"]["method"]


def test_the_stream_sample_stays_bounded_and_uniform():
    s = StreamSamples(cap=100)
    for i in range(10_000):
        s.add({"i": i})
    assert len(s.items) == 100 and s.seen == 10_000
    assert 3000 < float(np.mean([x["i"] for x in s.items])) < 7000  # uniform over 0..9999, not the first 100
    other = StreamSamples(cap=100)
    for i in range(1000):
        other.add({"i": -1})
    s.merge(other)
    assert s.seen == 11_000 and len(s.items) == 100
    assert 4 <= sum(x["i"] == -1 for x in s.items) <= 16  # 1000 of 11000 streams: about 9 of 100
