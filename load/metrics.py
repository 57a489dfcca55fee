"""What one stream cost, and the exact sum of many: the sans-I/O core of the load scenarios.

Locust rounds response times (whole milliseconds under 100 ms) and only knows one
number per request; a stream has many (connect, first event, a gap and a delivery
latency per event, bytes in and out). So every stream is turned into
:class:`StreamFigures` by a pure function of its :class:`Recording`, and the
figures are accumulated in HdrHistograms at microsecond resolution, per transport
and metric. HdrHistograms merge exactly (counts add bucket by bucket), which is
what makes distributed runs honest: workers ship their encoded histograms, the
master adds them, and any percentile can be recomputed later from the files.

Which metrics there are, their units and histogram scales are the registry's
(:data:`conformance.contracts.METRICS`); how each is computed from a recording is
here (:func:`stream_figures`). Whether a recording is a complete stream is its
transport's call (``Transport.incomplete``). Nothing here does I/O; the Locust
layer (``load.locustfile``) and the results writer (``load.results``) call into it.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import repeat
from operator import attrgetter, mul, sub
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from hdrh.histogram import HdrHistogram

from conformance.contracts import HDR_DIGITS, HDR_HIGHEST, HDR_LOWEST, PERCENTILES, RECORDED, ErrorKind
from conformance.profile import timestamps_s
from conformance.recording import Recording
from conformance.wire import get as get_transport

METRICS: tuple[str, ...] = tuple(m.name for m in RECORDED)
"""The names of the recorded metrics (the registry's), in summary.json's order."""

UNITS: dict[str, str] = {m.name: m.hdr_unit for m in RECORDED if m.hdr_unit is not None}
"""What one histogram value is worth, per metric (``summary.units.histograms``)."""

BYTE_FIELDS = ("wire_in", "wire_out", "payload", "head_in", "head_out")

ERROR_KINDS: tuple[str, ...] = tuple(k.value for k in ErrorKind)
"""Every error kind, each counted (0 included) in ``errors`` of a summary."""


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HDR_LOWEST, HDR_HIGHEST, HDR_DIGITS)


def to_us(seconds: float) -> int:
    """Seconds to whole microseconds, rounded to nearest."""
    return int(round(seconds * 1_000_000))


# --------------------------------------------------------------------------- one stream


@dataclass
class StreamFigures:
    """Everything the load scenarios keep from one stream (plain data, no events)."""

    transport: str
    started_wall: float
    """``time.time()`` at the request start."""
    error_kind: str | None = None
    """None for a complete stream; else an :class:`~conformance.contracts.ErrorKind`
    value, as the stream's transport classified it (``Transport.incomplete``)."""
    error: str | None = None
    rules: list[str] = field(default_factory=list)
    """IDs of the MUST rules the stream breaks (each once)."""
    warnings: list[str] = field(default_factory=list)
    """IDs of the SHOULD rules the stream breaks (each once)."""
    connect_us: int | None = None
    ttfe_us: int | None = None
    duration_us: int | None = None
    gaps_us: list[int] = field(default_factory=list)
    delivery_us: list[int] = field(default_factory=list)
    """Arrival wall clock minus the event's timestamp (the profile's
    ``timestamp_field``), for every event that carries a numeric one (negative
    values are clamped to 0 and counted in ``delivery_negative``)."""
    delivery_negative: int = 0
    events: int = 0
    events_per_s: float | None = None
    wire_in: int = 0
    wire_out: int = 0
    head_in: int = 0
    head_out: int = 0
    payload: int = 0
    events_by_second: dict[int, int] = field(default_factory=dict)
    """Events per whole wall-clock second of arrival (for the timeline)."""

    @property
    def ok(self) -> bool:
        """Complete stream: no transport error (rule violations do not count here)."""
        return self.error_kind is None

    @property
    def failed(self) -> bool:
        """A stream that Locust should show as a failure: transport error or MUST violation."""
        return self.error_kind is not None or bool(self.rules)

    @property
    def framing_per_event(self) -> float | None:
        """Wire bytes after the head, minus payload, per event."""
        if not self.events:
            return None
        return (self.wire_in - self.head_in - self.payload) / self.events

    def failure_message(self) -> str | None:
        """A short, stable message for Locust's error table (grouped by text)."""
        if self.error_kind is not None:
            return f"{self.error_kind}: {self.error or 'stream failed'}"
        if self.rules:
            return "protocol violation " + " ".join(self.rules)
        return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready per-stream record (the optional streams log), without per-event lists."""
        return {
            "transport": self.transport, "started_wall": self.started_wall,
            "error_kind": self.error_kind, "error": self.error,
            "rules": self.rules, "warnings": self.warnings,
            "connect_us": self.connect_us, "ttfe_us": self.ttfe_us, "duration_us": self.duration_us,
            "events": self.events, "events_per_s": self.events_per_s,
            "wire_in": self.wire_in, "wire_out": self.wire_out,
            "head_in": self.head_in, "head_out": self.head_out, "payload": self.payload,
            "framing_per_event": self.framing_per_event,
            "delivery_negative": self.delivery_negative,
        }


_T_WALL, _T_PERF = attrgetter("t_wall"), attrgetter("t_perf")


def _timestamps(events: list[Any], timestamp_field: str | None, scale: float) -> list[float | None]:
    """Each event's timestamp in Unix seconds (``conformance.profile.timestamps_s``),
    None where it has none or it is not finite (no delivery latency from those)."""
    stamps = timestamps_s(events, timestamp_field, scale)
    # a sum of floats is finite only if each is (inf and NaN carry through; an
    # overflow to inf only sends a finite stream down the slow path)
    if None in stamps or not math.isfinite(sum(stamps)):
        return [t if t is not None and math.isfinite(t) else None for t in stamps]
    return stamps


def _us(seconds: Iterable[float]) -> list[int]:
    """``to_us`` of each value, by ``map`` (a Python step per value costs more than
    the arithmetic). For floats ``float.__round__`` is what ``round`` calls, and
    already an int: without the builtin's lookup of it and the ``int`` call, a third
    of the time."""
    scaled = list(map(mul, seconds, repeat(1_000_000)))
    if set(map(type, scaled)) <= {float}:
        return list(map(float.__round__, scaled))
    return [int(round(s)) for s in scaled]


def _whole_seconds(walls: list[float]) -> Iterable[int]:
    """``int(t)`` of each time (``float.__trunc__`` for floats: what ``int`` calls)."""
    return map(float.__trunc__, walls) if set(map(type, walls)) <= {float} else map(int, walls)


def classify_error(rec: Recording) -> tuple[str | None, str | None]:
    """(error kind, message) of a stream, or (None, None) when it is a complete stream.

    The stream's transport decides (``Transport.incomplete``: its recorder's own
    error, an answer that is no stream, an abnormal end), so that the load figures
    and the suite call the same stream by the same name.
    """
    problem = get_transport(rec.transport).incomplete(rec)
    return (None, None) if problem is None else problem


def stream_figures(rec: Recording, findings: Iterable[Any] = (), *, timestamp_field: str | None,
                   timestamp_scale: float = 1.0) -> StreamFigures:
    """Turn one recording (and the rules' findings on it) into figures.

    Pure: everything comes from the recorder's fields, measured at the socket
    (bytes) and with ``perf_counter`` (intervals); delivery latency is the only
    figure that uses the wall clock, against the server's timestamp in
    ``timestamp_field`` (the profile's; None: no delivery latency). The field is
    a required argument because the profile, not this function, knows it;
    ``timestamp_scale`` is the profile's unit (1000: milliseconds).
    """
    fig = StreamFigures(transport=rec.transport, started_wall=rec.wall_start)
    fig.wire_in, fig.wire_out = rec.bytes_received, rec.bytes_sent
    fig.head_in, fig.head_out = rec.head_bytes_received, rec.head_bytes_sent
    fig.payload = rec.payload_bytes
    fig.events = len(rec.events)

    fig.error_kind, fig.error = classify_error(rec)

    must: list[str] = []
    should: list[str] = []
    # A stream the transport broke is an error of that kind; what the validator
    # says about its truncated events (no stream_end, ...) would only repeat it.
    for f in (findings if fig.error_kind is None else ()):
        target = must if getattr(f, "level", "MUST") == "MUST" else should
        if f.rule not in target:
            target.append(f.rule)
    fig.rules, fig.warnings = must, should

    # Per event by map (to_us as _us): this runs on every stream of a load run, and a
    # Python step per event per figure is most of its cost.
    events = rec.events
    walls, perf = list(map(_T_WALL, events)), list(map(_T_PERF, events))
    fig.events_by_second = dict(Counter(_whole_seconds(walls)))
    gaps = _us(map(sub, perf[1:], perf[:-1]))
    fig.gaps_us = [max(0, g) for g in gaps] if gaps and min(gaps) < 0 else gaps
    stamps = _timestamps(events, timestamp_field, timestamp_scale)
    if None in stamps:
        delivery = _us([w - ts for w, ts in zip(walls, stamps) if ts is not None])
    else:
        delivery = _us(map(sub, walls, stamps))
    if delivery and min(delivery) < 0:  # clock skew: count and clamp
        fig.delivery_negative = sum(d < 0 for d in delivery)
        delivery = [max(0, d) for d in delivery]
    fig.delivery_us = delivery

    if rec.connect_s is not None:
        fig.connect_us = max(0, to_us(rec.connect_s))
    if rec.ttfe_s is not None:
        fig.ttfe_us = max(0, to_us(rec.ttfe_s))
    if rec.duration_s is not None:
        fig.duration_us = max(0, to_us(rec.duration_s))
        if rec.duration_s > 0:
            fig.events_per_s = fig.events / rec.duration_s
    return fig


# --------------------------------------------------------------------------- stream samples


SAMPLE_CAP = 1000
"""Streams kept per transport (and level) for the bootstrap: enough for intervals
whose Monte Carlo error is far below their width, bounded whatever the run's length."""


def stream_sample(fig: StreamFigures) -> dict[str, Any]:
    """The figures of one complete stream the report's intervals resample (see
    ``reports.stats``): delivery latencies, bytes after the head, payload, events,
    duration, time to first event, connect."""
    return {"d": list(fig.delivery_us), "w": fig.wire_in - fig.head_in, "p": fig.payload, "e": fig.events,
            "u": fig.duration_us, "t": fig.ttfe_us, "c": fig.connect_us}


class StreamSamples:
    """A uniform sample of at most ``cap`` streams (reservoir sampling, seeded), and
    how many streams it was drawn from. Two samples merge into a uniform sample of
    the union: each kept stream stands for ``seen / kept`` streams of its side, so
    the merge draws from each side in proportion to what it saw."""

    __slots__ = ("cap", "seen", "items", "_rng")

    def __init__(self, cap: int = SAMPLE_CAP, seed: int = 0) -> None:
        import random

        self.cap, self.seen, self.items = cap, 0, []
        self._rng = random.Random(seed)

    def add(self, sample: dict[str, Any]) -> None:
        self.seen += 1
        if len(self.items) < self.cap:
            self.items.append(sample)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.cap:
                self.items[j] = sample

    def merge(self, other: "StreamSamples") -> None:
        if not other.seen:
            return
        total = self.seen + other.seen
        if len(self.items) + len(other.items) <= self.cap:
            self.items = self.items + other.items
        else:
            take = round(self.cap * self.seen / total)
            mine = self._rng.sample(self.items, min(take, len(self.items)))
            theirs = self._rng.sample(other.items, min(self.cap - len(mine), len(other.items)))
            self.items = mine + theirs
        self.seen = total

    def to_wire(self) -> dict[str, Any]:
        return {"seen": self.seen, "items": self.items}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "StreamSamples":
        out = cls()
        out.seen = int(data.get("seen", 0))
        out.items = list(data.get("items") or [])[: out.cap]
        return out


# --------------------------------------------------------------------------- accumulators


class MetricAccumulator:
    """One metric of one transport: an HdrHistogram plus the exact sum, min and max.

    The histogram gives percentiles to 3 significant digits; the exact sum, min
    and max make mean, min and max exact (HDR reports bucket edges).
    """

    __slots__ = ("hist", "total", "min", "max")

    def __init__(self) -> None:
        self.hist = new_histogram()
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None

    @property
    def count(self) -> int:
        return self.hist.get_total_count()

    def record(self, value: int) -> None:
        value = min(max(int(value), 0), HDR_HIGHEST)
        self.hist.record_value(value)
        self.total += value
        self.min = value if self.min is None or value < self.min else self.min
        self.max = value if self.max is None or value > self.max else self.max

    def record_many(self, values: list[int]) -> None:
        """:meth:`record` of each value (the same histogram, sum, min and max), with
        one ``record_value`` per distinct value: HdrHistogram_py records in Python,
        two values per event are most of a stream's accounting, and the events of
        one read share their gap (most gaps of a fast stream are 0)."""
        if not values:
            return
        lo, hi = min(values), max(values)
        if lo < 0 or hi > HDR_HIGHEST or not set(map(type, values)) <= {int}:
            values = [min(max(int(v), 0), HDR_HIGHEST) for v in values]
            lo, hi = min(values), max(values)
        record_value = self.hist.record_value
        for value, n in Counter(values).items():
            record_value(value, n)
        self.total += sum(values)
        self.min = lo if self.min is None or lo < self.min else self.min
        self.max = hi if self.max is None or hi > self.max else self.max

    def add(self, other: "MetricAccumulator") -> None:
        if other.count == 0:
            return
        self.hist.add(other.hist)
        self.total += other.total
        for v in (other.min, other.max):
            if v is not None:
                self.min = v if self.min is None or v < self.min else self.min
                self.max = v if self.max is None or v > self.max else self.max

    def encode(self) -> str:
        """The histogram in HdrHistogram's compressed base64 form ("HISTFAAA...")."""
        return self.hist.encode().decode("ascii")

    def to_wire(self) -> dict[str, Any]:
        return {"hdr": self.encode(), "sum": self.total, "min": self.min, "max": self.max}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "MetricAccumulator":
        acc = cls()
        encoded = data["hdr"]
        acc.hist = HdrHistogram.decode(encoded.encode("ascii") if isinstance(encoded, str) else encoded)
        # decode() keeps the encoder's ranges; make sure ours are the house ones.
        if acc.hist.highest_trackable_value < HDR_HIGHEST:
            fresh = new_histogram()
            fresh.add(acc.hist)
            acc.hist = fresh
        acc.total = int(data.get("sum", 0))
        acc.min, acc.max = data.get("min"), data.get("max")
        return acc

    def stats(self, scale: float, suffix: str) -> dict[str, Any]:
        """count, min, mean, pNN, max in display units (None when nothing was recorded)."""
        keys = ["min", "mean", *(p for p, _ in PERCENTILES), "max"]
        out: dict[str, Any] = {"count": self.count}
        if not self.count or self.min is None or self.max is None:
            out.update({k + suffix: None for k in keys})
            return out
        values = self.hist.get_percentile_to_value_dict([q for _, q in PERCENTILES])
        out["min" + suffix] = _round(self.min / scale)
        out["mean" + suffix] = _round(self.total / self.count / scale)
        for name, q in PERCENTILES:
            # HDR answers with the bucket's highest equivalent value: keep it inside
            # the exact [min, max] so that p50 never exceeds max on tiny samples.
            v = min(max(values[q], self.min), self.max)
            out[name + suffix] = _round(v / scale)
        out["max" + suffix] = _round(self.max / scale)
        return out


def _round(x: float) -> float:
    return float(f"{x:.6g}") if x else 0.0


@dataclass
class TransportAccumulator:
    """Everything recorded for one transport (in one level of a sweep)."""

    metrics: dict[str, MetricAccumulator] = field(default_factory=lambda: {m: MetricAccumulator() for m in METRICS})
    """One accumulator per recorded metric of the registry."""
    streams: int = 0
    streams_ok: int = 0
    events: int = 0
    bytes: dict[str, int] = field(default_factory=lambda: {k: 0 for k in BYTE_FIELDS})
    errors: Counter = field(default_factory=Counter)
    """Streams per error kind ('connect', 'timeout', ...)."""
    violations: int = 0
    """Streams that broke at least one MUST rule."""
    rules: Counter = field(default_factory=Counter)
    """Streams per broken MUST rule ID."""
    warnings: Counter = field(default_factory=Counter)
    """Streams per broken SHOULD rule ID."""
    delivery_negative: int = 0
    events_with_ts: int = 0
    timeline: dict[int, list[int]] = field(default_factory=dict)
    """Whole wall-clock second -> [streams ended, events arrived]."""
    samples: "StreamSamples" = field(default_factory=lambda: StreamSamples())
    """A bounded, uniform sample of the complete streams' own figures, for the
    report's bootstrap intervals (histograms pool the events and lose the streams)."""

    def add_stream(self, fig: StreamFigures, *, ended_wall: float | None = None) -> None:
        """Account for one stream.

        Bytes, events and errors count for every stream (they crossed the wire);
        timing figures only for complete streams, so that a timeout does not pass
        for a slow stream.
        """
        self.streams += 1
        self.events += fig.events
        self.bytes["wire_in"] += fig.wire_in
        self.bytes["wire_out"] += fig.wire_out
        self.bytes["head_in"] += fig.head_in
        self.bytes["head_out"] += fig.head_out
        self.bytes["payload"] += fig.payload
        if fig.error_kind is not None:
            self.errors[fig.error_kind] += 1
        if fig.rules:
            self.violations += 1
            self.rules.update(fig.rules)
        self.warnings.update(fig.warnings)
        for sec, n in fig.events_by_second.items():
            self.timeline.setdefault(sec, [0, 0])[1] += n
        end = ended_wall if ended_wall is not None else fig.started_wall + (fig.duration_us or 0) / 1e6
        self.timeline.setdefault(int(end), [0, 0])[0] += 1
        if not fig.ok:
            return
        self.streams_ok += 1
        m = self.metrics
        for name, value in (("connect", fig.connect_us), ("ttfe", fig.ttfe_us), ("duration", fig.duration_us)):
            if value is not None:
                m[name].record(value)
        m["gap"].record_many(fig.gaps_us)
        m["delivery"].record_many(fig.delivery_us)
        self.events_with_ts += len(fig.delivery_us)
        self.delivery_negative += fig.delivery_negative
        m["events_per_stream"].record(fig.events)
        if fig.events_per_s is not None:
            m["events_per_s"].record(int(round(fig.events_per_s * 1000)))
        self.samples.add(stream_sample(fig))

    def add(self, other: "TransportAccumulator") -> None:
        for name, acc in other.metrics.items():
            self.metrics.setdefault(name, MetricAccumulator()).add(acc)
        self.streams += other.streams
        self.streams_ok += other.streams_ok
        self.events += other.events
        for k, v in other.bytes.items():
            self.bytes[k] = self.bytes.get(k, 0) + v
        self.errors.update(other.errors)
        self.violations += other.violations
        self.rules.update(other.rules)
        self.warnings.update(other.warnings)
        self.delivery_negative += other.delivery_negative
        self.events_with_ts += other.events_with_ts
        for sec, (s, e) in other.timeline.items():
            row = self.timeline.setdefault(sec, [0, 0])
            row[0] += s
            row[1] += e
        self.samples.merge(other.samples)

    def to_wire(self) -> dict[str, Any]:
        """A msgpack/JSON-safe dict (string keys only) that :meth:`from_wire` reads back."""
        return {
            "metrics": {name: acc.to_wire() for name, acc in self.metrics.items()},
            "streams": self.streams, "streams_ok": self.streams_ok, "events": self.events,
            "bytes": dict(self.bytes), "errors": dict(self.errors), "violations": self.violations,
            "rules": dict(self.rules), "warnings": dict(self.warnings),
            "delivery_negative": self.delivery_negative, "events_with_ts": self.events_with_ts,
            "timeline": {str(k): v for k, v in self.timeline.items()},
            "samples": self.samples.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "TransportAccumulator":
        acc = cls()
        for name, m in data.get("metrics", {}).items():
            acc.metrics[name] = MetricAccumulator.from_wire(m)
        acc.streams = int(data.get("streams", 0))
        acc.streams_ok = int(data.get("streams_ok", 0))
        acc.events = int(data.get("events", 0))
        acc.bytes.update({k: int(v) for k, v in data.get("bytes", {}).items()})
        acc.errors = Counter(data.get("errors", {}))
        acc.violations = int(data.get("violations", 0))
        acc.rules = Counter(data.get("rules", {}))
        acc.warnings = Counter(data.get("warnings", {}))
        acc.delivery_negative = int(data.get("delivery_negative", 0))
        acc.events_with_ts = int(data.get("events_with_ts", 0))
        acc.timeline = {int(k): [int(v[0]), int(v[1])] for k, v in data.get("timeline", {}).items()}
        acc.samples = StreamSamples.from_wire(data.get("samples") or {})
        return acc

    # ---- summary

    def summary(self) -> dict[str, Any]:
        """The ``transports.<t>`` section of summary.json (see docs/results-format.md)."""
        metrics = {}
        for metric in RECORDED:
            acc = self.metrics.get(metric.name) or MetricAccumulator()
            metrics[metric.name] = acc.stats(metric.hdr_scale or 1.0, metric.suffix)
        b = self.bytes
        n, ev = self.streams, self.events
        per_stream = {k: (_round(b[k] / n) if n else None) for k in BYTE_FIELDS}
        if ev:
            wire = (b["wire_in"] - b["head_in"]) / ev
            payload = b["payload"] / ev
            framing = wire - payload
            per_event = {"wire": _round(wire), "payload": _round(payload), "framing": _round(framing),
                         "head": _round((b["head_in"] + b["head_out"]) / ev)}
            overhead = _round(100.0 * framing / payload) if payload else None
        else:
            per_event = {"wire": None, "payload": None, "framing": None, "head": None}
            overhead = None
        errors: dict[str, Any] = {k: 0 for k in ERROR_KINDS}
        errors.update(self.errors)
        errors["violations"] = self.violations
        errors["rules"] = dict(sorted(self.rules.items()))
        # Findings are only kept on complete streams (see stream_figures), so the
        # two sets do not overlap and the sum is exact.
        errors["failed_streams"] = self.streams - self.streams_ok + self.violations
        return {
            "streams": n,
            "streams_ok": self.streams_ok,
            "events": ev,
            "events_with_ts": self.events_with_ts,
            "delivery_negative": self.delivery_negative,
            "metrics": metrics,
            "bytes": {**{k: b[k] for k in BYTE_FIELDS}, "per_stream": per_stream, "per_event": per_event,
                      "framing_overhead_pct": overhead},
            "errors": errors,
            "warnings": {"rules": dict(sorted(self.warnings.items()))},
        }



@dataclass
class RunAccumulator:
    """All transports, split by sweep level (key None outside a sweep)."""

    parts: dict[int | None, dict[str, TransportAccumulator]] = field(default_factory=dict)

    def transport(self, transport: str, level: int | None = None) -> TransportAccumulator:
        by_t = self.parts.setdefault(level, {})
        acc = by_t.get(transport)
        if acc is None:
            acc = by_t[transport] = TransportAccumulator()
        return acc

    def add_stream(self, fig: StreamFigures, level: int | None = None, *, ended_wall: float | None = None) -> None:
        self.transport(fig.transport, level).add_stream(fig, ended_wall=ended_wall)

    def add(self, other: "RunAccumulator") -> None:
        for level, by_t in other.parts.items():
            for t, acc in by_t.items():
                self.transport(t, level).add(acc)

    def levels(self) -> list[int]:
        return sorted(k for k in self.parts if k is not None)

    def to_wire_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """Only the stream counts of :meth:`to_wire` (cheap: for a progress line)."""
        return {("all" if k is None else str(k)): {t: {"streams": a.streams, "streams_ok": a.streams_ok,
                                                      "violations": a.violations} for t, a in by_t.items()}
                for k, by_t in self.parts.items()}

    def total(self) -> dict[str, TransportAccumulator]:
        """Every level merged, per transport."""
        out: dict[str, TransportAccumulator] = {}
        for by_t in self.parts.values():
            for t, acc in by_t.items():
                out.setdefault(t, TransportAccumulator()).add(acc)
        return out

    def level(self, level: int) -> dict[str, TransportAccumulator]:
        return dict(self.parts.get(level, {}))

    def to_wire(self) -> dict[str, Any]:
        return {("all" if k is None else str(k)): {t: a.to_wire() for t, a in by_t.items()}
                for k, by_t in self.parts.items()}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "RunAccumulator":
        run = cls()
        for key, by_t in data.items():
            level = None if key == "all" else int(key)
            run.parts[level] = {t: TransportAccumulator.from_wire(a) for t, a in by_t.items()}
        return run


def merge_runs(parts: Iterable[RunAccumulator]) -> RunAccumulator:
    """Exact merge: histogram counts and all counters add."""
    out = RunAccumulator()
    for p in parts:
        out.add(p)
    return out


def fine_bucket(response_time: float) -> float:
    """Locust's response-time bucket, kept to 3 significant digits instead of whole ms.

    Locust's default rounds anything under 100 ms to a whole millisecond, which
    erases the difference between two loopback transports. The HdrHistograms
    are the real record; this only makes Locust's own table less coarse.
    """
    if response_time <= 0:
        return 0
    digits = 2 - int(math.floor(math.log10(response_time)))
    value = round(response_time, digits)
    return int(value) if digits <= 0 else value


# --------------------------------------------------------------------------- cpu


@dataclass
class CpuStats:
    """CPU samples of one load-generator process (percent of ONE core, 1 s apart)."""

    node: str = "local"
    samples: int = 0
    total: float = 0.0
    max: float = 0.0
    busy: int = 0
    """Samples at or above :data:`CPU_BUSY_PERCENT`."""
    machine_samples: int = 0
    machine_total: float = 0.0
    machine_max: float = 0.0

    def add_sample(self, process_percent: float, machine_percent: float | None = None) -> None:
        self.samples += 1
        self.total += process_percent
        self.max = max(self.max, process_percent)
        if process_percent >= CPU_BUSY_PERCENT:
            self.busy += 1
        if machine_percent is not None:
            self.machine_samples += 1
            self.machine_total += machine_percent
            self.machine_max = max(self.machine_max, machine_percent)

    def to_wire(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "CpuStats":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


CPU_BUSY_PERCENT = 90.0
CPU_BUSY_SHARE = 0.2
MACHINE_BUSY_PERCENT = 90.0


def cpu_verdict(processes: Iterable[CpuStats]) -> dict[str, Any]:
    """Was any load generator saturated? Latency measured by a starved client is not trustworthy.

    A process counts as saturated when at least 20 % of its one-second samples
    were at 90 % or more of one core (a Python process runs on one core), or its
    mean was. The machine as a whole (all cores, the server included on
    loopback) is flagged when its mean load reached 90 %.
    """
    procs = list(processes)
    rows = []
    saturated_nodes = []
    machine_means = []
    for p in procs:
        mean = p.total / p.samples if p.samples else None
        share = p.busy / p.samples if p.samples else 0.0
        sat = bool(p.samples) and (share >= CPU_BUSY_SHARE or (mean or 0) >= CPU_BUSY_PERCENT)
        if sat:
            saturated_nodes.append(p.node)
        m_mean = p.machine_total / p.machine_samples if p.machine_samples else None
        if m_mean is not None:
            machine_means.append(m_mean)
        rows.append({"node": p.node, "samples": p.samples, "mean_percent": _opt(mean), "max_percent": _opt(p.max),
                     "busy_share": _opt(share), "saturated": sat, "machine_mean_percent": _opt(m_mean),
                     "machine_max_percent": _opt(p.machine_max if p.machine_samples else None)})
    means = [r["mean_percent"] for r in rows if r["mean_percent"] is not None]
    machine_mean = max(machine_means) if machine_means else None
    machine_sat = machine_mean is not None and machine_mean >= MACHINE_BUSY_PERCENT
    warnings = []
    if saturated_nodes:
        warnings.append(
            f"load generator CPU saturated ({', '.join(saturated_nodes)}: >= {CPU_BUSY_PERCENT:.0f}% of a core "
            f"for >= {CPU_BUSY_SHARE:.0%} of the run): latency measured then is not trustworthy; "
            "use fewer users per process or more --worker processes")
    if machine_sat:
        warnings.append(
            f"the machine's CPU was saturated (mean {machine_mean:.0f}% of all cores): client and server "
            "compete for CPU, latency measured then is not trustworthy")
    return {
        "max_percent": _opt(max((r["max_percent"] or 0.0 for r in rows), default=None)),
        "mean_percent": _opt(max(means) if means else None),
        "machine_mean_percent": _opt(machine_mean),
        "saturated": bool(saturated_nodes) or machine_sat,
        "warning": " ; ".join(warnings) or None,
        "processes": rows,
    }


def _opt(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)
