"""Metric paths into a results summary, and what every metric means.

A gate rule, a report table and a claim verdict all name figures the same way:
``TRANSPORT.METRIC.STAT`` (``ws.ttfe.p95_ms``, ``sse.bytes.per_event.framing``).
Resolving such a path is the one place that knows the layout of
``summary.json`` (docs/results-format.md), so that a typo gives the same clear
message everywhere instead of a KeyError somewhere deep.

The definitions below are shown in every report: the point of spelling them out
as formulas is that nobody reads the gap between two events as the latency of
one event, or the bytes of one stream as the bytes of one event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

TRANSPORTS = ("sse", "ws")
TRANSPORT_NAMES = {"sse": "SSE", "ws": "WebSocket"}


class MetricError(ValueError):
    """A metric path that does not name a number in the summary (bad input)."""


def _keys(node: Any) -> str:
    if isinstance(node, Mapping) and node:
        return ", ".join(sorted(str(k) for k in node))
    return "(none)"


def _walk(node: Any, keys: list[str]) -> tuple[bool, Any, int]:
    """Follow ``keys`` from ``node``; return (found, value, how many keys matched)."""
    for depth, key in enumerate(keys):
        if not isinstance(node, Mapping) or key not in node:
            return False, node, depth
        node = node[key]
    return True, node, len(keys)


def resolve(summary: Mapping[str, Any], path: str) -> float | None:
    """The number that ``path`` names in ``summary``, or None when it was not measured.

    ``path`` is ``TRANSPORT.KEY[.KEY...]``; the keys are looked up first under
    ``transports[T]["metrics"]`` and then directly under ``transports[T]``, so
    ``ws.ttfe.p95_ms`` and ``sse.bytes.per_event.framing`` both work.

    None (not an error) means the summary holds the key but no value: for
    instance no event carried ``ts``, so there is no delivery latency. A path
    that names nothing, or a group of figures rather than one, raises
    :class:`MetricError` with the keys that do exist.
    """
    parts = path.split(".")
    if len(parts) < 2 or not all(parts):
        raise MetricError(
            f"metric {path!r}: expected TRANSPORT.METRIC[.STAT], e.g. ws.ttfe.p95_ms"
        )
    transports = summary.get("transports") if isinstance(summary, Mapping) else None
    if not isinstance(transports, Mapping):
        raise MetricError(f"metric {path!r}: the summary has no 'transports' section")
    transport, keys = parts[0], parts[1:]
    if transport not in transports:
        raise MetricError(
            f"unknown metric {path!r}: no transport {transport!r} in the summary "
            f"(transports: {_keys(transports)})"
        )
    node = transports[transport]
    metrics = node.get("metrics") if isinstance(node, Mapping) else None
    found, value, depth = _walk(metrics, keys)
    if not found:
        found, value, depth2 = _walk(node, keys)
        if not found:
            if depth == 0 and depth2 == 0:
                known = (set(metrics) if isinstance(metrics, Mapping) else set()) | (
                    set(node) if isinstance(node, Mapping) else set())
                known.discard("metrics")
                raise MetricError(
                    f"unknown metric {path!r}: {transport} has no {keys[0]!r} "
                    f"(known: {', '.join(sorted(map(str, known))) or '(none)'})"
                )
            # Name the deeper of the two partial matches: that is what the user meant.
            base, at = (metrics, depth) if depth >= depth2 else (node, depth2)
            _, parent, _ = _walk(base, keys[:at])
            raise MetricError(
                f"unknown metric {path!r}: {'.'.join([transport, *keys[:at]])} has no "
                f"{keys[at]!r} (known: {_keys(parent)})"
            )
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, Mapping):
            raise MetricError(
                f"metric {path!r} names a group, not a number; add one of: {_keys(value)}"
            )
        raise MetricError(f"metric {path!r} is {value!r}, not a number")
    value = float(value)
    if math.isnan(value):
        return None
    return value


def get(summary: Mapping[str, Any], path: str) -> float | None:
    """Like :func:`resolve` but None for anything missing: for reports, not gates."""
    try:
        return resolve(summary, path)
    except MetricError:
        return None


# One line per metric: (name, formula, what it is for). Shown in every report.
DEFINITIONS: list[tuple[str, str, str]] = [
    ("connect", "t(response head received) − t(request start)",
     "SSE: the HTTP response headers; WS: the handshake response (perf_counter, per stream)."),
    ("ttfe (time to first event)", "t(first event received) − t(request start)",
     "What a user waits before anything shows up (per stream)."),
    ("delivery latency", "wall clock at arrival of event i − ts of event i",
     "How late ONE event reaches the client after the server emitted it; one value per event "
     "that carries `ts`. Valid only when client and server share a clock (loopback)."),
    ("inter-event gap", "t(event i received) − t(event i−1 received), i ≥ 1",
     "The time BETWEEN two events: set mostly by how fast the backend produces them. It is not "
     "the latency of any event; a slow agent has large gaps and small delivery latency."),
    ("duration", "t(end of stream) − t(request start)", "One whole stream."),
    ("events per second (per stream)", "events in the stream / duration",
     "Rate seen by one client."),
    ("events per second (run)", "events of the transport / run duration_s",
     "Aggregate throughput of all clients of one transport."),
    ("duration per 100 events", "duration p50 × 100 / events per stream p50",
     "The seed's '100 events' figure, scaled from the measured streams."),
    ("pNN", "the NN-th percentile of all values of one transport (HdrHistogram, µs resolution)",
     "p50 is the median; p99 means 1 value in 100 was worse."),
    ("bytes per stream (in/out)", "wire_in / streams, wire_out / streams",
     "Everything received / sent at the socket, head and handshake included."),
    ("handshake and header bytes", "head_in / streams, head_out / streams",
     "Request and response head (SSE) or upgrade handshake (WS), per stream."),
    ("wire bytes per event", "(wire_in − head_in) / events",
     "Bytes received after the response head or handshake, per event."),
    ("payload bytes per event", "Σ len(UTF-8 JSON text of each event) / events", "The event itself."),
    ("framing bytes per event", "wire bytes per event − payload bytes per event",
     "SSE: `data: `, `id: `, line ends, blank line, chunked encoding; WS: frame headers."),
    ("framing overhead %", "100 × framing bytes per event / payload bytes per event", ""),
    ("header bytes per event", "(head_in + head_out) per stream / events per stream",
     "The head and handshake, spread over the events of a stream (the third part of the "
     "bytes-per-event plot)."),
    ("ratio WS/SSE", "WS figure / SSE figure", "Below 1: WebSocket is lower (faster or smaller)."),
]
