"""Metric paths into a results summary, and what every metric means.

A gate rule, a report table and a claim verdict all name figures the same way:
``TRANSPORT.METRIC.STAT`` (``ws.ttfe.p95_ms``, ``sse.bytes.per_event.framing``).
Resolving such a path is the one place that knows the layout of
``summary.json`` (docs/results-format.md), so that a typo gives the same clear
message everywhere instead of a KeyError somewhere deep.

What every metric means is the registry's (:data:`conformance.contracts.METRICS`):
:func:`definitions` is shown in every report, and the point of spelling them out
as formulas is that nobody reads the gap between two events as the latency of
one event, or the bytes of one stream as the bytes of one event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from conformance.contracts import METRICS


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


def definitions(timestamp_field: str | None = None) -> list[tuple[str, str, str]]:
    """(term, formula, meaning) of every metric of the registry, shown in every
    report, with the run's timestamp field in the formulas that read it."""
    return [m.definition(timestamp_field) for m in METRICS.values()]
