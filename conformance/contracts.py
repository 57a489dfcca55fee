"""The contracts between the stages, each written down once.

The suite writes a conformance report, the load scenarios write results, the
reports read both and write a report and a gate baseline: the format names and
versions are here. A recording that is not a complete stream has one error kind
from :class:`ErrorKind`, whoever classified it (a transport, the load figures,
the reports). Every figure the load run measures and the report derives is a
:class:`Metric` of :data:`METRICS` (name, unit, kind, definition, histogram
scale), read by the load run and the reports alike. Nothing in this module does
I/O or imports a third-party package: every stage may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Format(str, Enum):
    """Document formats (the ``format`` field of each JSON file), name/version."""

    CONFORMANCE = "agentstream-conformance/1"
    """The suite's JSON report (``--conformance-report``)."""
    RESULTS = "agentstream-results/1"
    """A load run's ``summary.json`` (docs/results-format.md)."""
    REPORT = "agentstream-report/1"
    """The comparison report's ``report.json``."""
    BASELINE = "agentstream-baseline/1"
    """A gate baseline."""

    def __str__(self) -> str:
        return self.value


class ErrorKind(str, Enum):
    """Why a recording is not a complete stream: one vocabulary for every stage."""

    CONNECT = "connect"
    """No connection, or the request could not be sent."""
    TIMEOUT = "timeout"
    """A bound of ``Limits`` ran out (head, first event, idle, total, grace)."""
    TOO_LARGE = "too_large"
    """An event, a line or a message grew past its bound."""
    TOO_MANY = "too_many"
    """More events than ``Limits.max_events``."""
    PROTOCOL = "protocol"
    """A framing or HTTP error of the server."""
    CLOSED = "closed"
    """The connection dropped."""
    STATUS = "status"
    """The server answered without a stream (a refusal, or not an event stream)."""
    CLOSE = "close"
    """A WebSocket closed by the server with a code other than normal closure."""

    def __str__(self) -> str:
        return self.value


RECORDER_ERRORS: frozenset[str] = frozenset(
    k.value for k in (ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.TOO_LARGE, ErrorKind.TOO_MANY,
                      ErrorKind.PROTOCOL, ErrorKind.CLOSED))
"""The kinds a transport itself sets on ``Recording.error_kind``; STATUS and CLOSE
are judged from a recording that ended normally (``Transport.incomplete``)."""


# --------------------------------------------------------------------------- metrics


class MetricKind(str, Enum):
    """What sort of figure a metric is: decides its unit and how it is recorded."""

    TIME = "time"
    """An interval: recorded in microseconds, shown in milliseconds (summary keys ``*_ms``)."""
    COUNT = "count"
    """A number of things (events)."""
    RATE = "rate"
    """Things per second."""
    BYTES = "bytes"
    """Bytes counted at the socket."""
    SHARE = "share"
    """A percentage or a ratio of two figures."""
    STAT = "stat"
    """A statistic of another metric's values (a percentile)."""

    def __str__(self) -> str:
        return self.value


TS = "{ts}"
"""Stands for the profile's timestamp field in a metric's formula and meaning
(:meth:`Metric.definition` fills it in)."""


@dataclass(frozen=True)
class Metric:
    """One figure the load run measures or the report derives, defined once.

    The load run records every metric with ``hdr_scale`` in an HdrHistogram per
    transport (``histograms/T.NAME.hdr``, ``transports[T].metrics.NAME`` in
    summary.json); the others are derived from the summary at ``path``. The
    report shows every definition, so that nobody reads the gap between two
    events as the latency of one, or the bytes of a stream as those of an event.
    """

    name: str
    """Key: the histogram's file and summary key for a recorded metric."""
    unit: str
    """Unit of the figures in summary.json and the tables."""
    kind: MetricKind
    title: str
    """The term the definitions table explains."""
    formula: str
    meaning: str
    label: str = ""
    """How tables and plots name it, when that differs from ``title``."""
    hdr_unit: str | None = None
    """What one histogram value is worth (HdrHistograms hold integers only); None: not recorded."""
    hdr_scale: float | None = None
    """Histogram value / ``hdr_scale`` = the figure in ``unit``."""
    path: str | None = None
    """Metric path under a transport (``TRANSPORT.PATH`` in a gate rule); None: no single figure."""

    @property
    def recorded(self) -> bool:
        """The load run keeps an HdrHistogram of it."""
        return self.hdr_scale is not None

    @property
    def needs_timestamp(self) -> bool:
        """Measured against the events' own timestamp: nothing to measure for a
        protocol whose events carry none (OpenAI, Anthropic)."""
        return TS in self.formula

    @property
    def suffix(self) -> str:
        """Suffix of its statistics' keys in summary.json (``p50_ms`` for a time)."""
        return "_ms" if self.kind is MetricKind.TIME else ""

    @property
    def shown(self) -> str:
        """Its name in tables and plots."""
        return self.label or self.title

    def definition(self, timestamp_field: str | None = None) -> tuple[str, str, str]:
        """(term, formula, meaning) with the timestamp field of the run filled in
        (the words "the event's timestamp" when the results do not name one)."""
        ts = timestamp_field or "timestamp"
        return self.title, self.formula.replace(TS, ts), self.meaning.replace(TS, ts)


def _time(name: str, title: str, formula: str, meaning: str, label: str = "") -> Metric:
    return Metric(name, "ms", MetricKind.TIME, title, formula, meaning, label, "us", 1000.0, name)


METRICS: dict[str, Metric] = {m.name: m for m in (
    # recorded per stream or per event, in HdrHistograms (this order is summary.json's)
    _time("connect", "connect", "t(response head received) − t(request start)",
          "SSE: the HTTP response headers; WS: the handshake response (perf_counter, per stream)."),
    _time("ttfe", "ttfe (time to first event)", "t(first event received) − t(request start)",
          "What a user waits before anything shows up (per stream).", label="time to first event"),
    _time("gap", "inter-event gap", "t(event i received) − t(event i−1 received), i ≥ 1",
          "The time BETWEEN two events: set mostly by how fast the backend produces them. It is not "
          "the latency of any event; a slow agent has large gaps and small delivery latency.",
          label="inter-event gap (not a latency)"),
    _time("delivery", "delivery latency", f"wall clock at arrival of event i − {TS} of event i",
          f"How late ONE event reaches the client after the server emitted it; one value per event "
          f"that carries `{TS}`. Valid only when client and server share a clock (loopback)."),
    _time("duration", "duration", "t(end of stream) − t(request start)", "One whole stream.",
          label="stream duration"),
    Metric("events_per_stream", "events", MetricKind.COUNT, "events per stream", "events received in one stream",
           "Complete streams only.", hdr_unit="1", hdr_scale=1.0, path="events_per_stream"),
    Metric("events_per_s", "events/s", MetricKind.RATE, "events per second (per stream)",
           "events in the stream / duration", "Rate seen by one client.", hdr_unit="0.001/s", hdr_scale=1000.0,
           path="events_per_s"),
    # derived from the summary
    Metric("run_events_per_s", "events/s", MetricKind.RATE, "events per second (run)",
           "events of the transport / run duration_s", "Aggregate throughput of all clients of one transport.",
           path="run_events_per_s"),
    Metric("duration_per_100_events", "ms", MetricKind.TIME, "duration per 100 events",
           "duration p50 × 100 / events per stream p50",
           "The seed's '100 events' figure, scaled from the measured streams.",
           path="derived.duration_per_100_events_ms"),
    Metric("pNN", "", MetricKind.STAT, "pNN",
           "the NN-th percentile of all values of one transport (HdrHistogram, µs resolution)",
           "p50 is the median; p99 means 1 value in 100 was worse."),
    Metric("bytes_per_stream", "B", MetricKind.BYTES, "bytes per stream (in/out)",
           "wire_in / streams, wire_out / streams",
           "Everything received / sent at the socket, head and handshake included.",
           path="bytes.per_stream.wire_in"),
    Metric("head_bytes_per_stream", "B", MetricKind.BYTES, "handshake and header bytes",
           "head_in / streams, head_out / streams",
           "Request and response head (SSE) or upgrade handshake (WS), per stream.",
           path="bytes.per_stream.head_in"),
    Metric("wire_bytes_per_event", "B", MetricKind.BYTES, "wire bytes per event", "(wire_in − head_in) / events",
           "Bytes received after the response head or handshake, per event.", path="bytes.per_event.wire"),
    Metric("payload_bytes_per_event", "B", MetricKind.BYTES, "payload bytes per event",
           "Σ len(UTF-8 JSON text of each event) / events", "The event itself.", path="bytes.per_event.payload"),
    Metric("framing_bytes_per_event", "B", MetricKind.BYTES, "framing bytes per event",
           "wire bytes per event − payload bytes per event",
           "SSE: `data: `, `id: `, line ends, blank line, chunked encoding; WS: frame headers.",
           path="bytes.per_event.framing"),
    Metric("framing_overhead_pct", "%", MetricKind.SHARE, "framing overhead %",
           "100 × framing bytes per event / payload bytes per event", "", path="bytes.framing_overhead_pct"),
    Metric("header_bytes_per_event", "B", MetricKind.BYTES, "header bytes per event",
           "(head_in + head_out) per stream / events per stream",
           "The head and handshake, spread over the events of a stream (the third part of the "
           "bytes-per-event plot).", path="derived.header_bytes_per_event"),
    Metric("ratio", "", MetricKind.SHARE, "ratio T / reference", "figure of transport T / the same figure of the "
           "reference transport",
           "Below 1: T is lower (faster or smaller). The reference is the first transport of each parity pair "
           "the results record, else the first transport of the results."),
)}
"""Every figure of the load run and the report, by name, in the order summary.json
and the definitions table list them."""

RECORDED: tuple[Metric, ...] = tuple(m for m in METRICS.values() if m.recorded)
"""The metrics the load run keeps an HdrHistogram of, per transport."""

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99_9", 99.9),
)
"""The percentiles summary.json gives for each recorded metric (key, percent),
beside ``count``, ``min``, ``mean`` and ``max``."""

HDR_LOWEST, HDR_HIGHEST, HDR_DIGITS = 1, 3_600_000_000, 3
"""The range of every histogram file: 1 µs .. 1 hour, 3 significant digits (0.1 % error)."""
