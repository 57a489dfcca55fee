"""The backend's Prometheus endpoint, read within bounds (the disconnect probe's gauge).

httpx's timeout bounds each read, not the body: a /metrics that never ends must
not hold the suite, so the total time and size are bounded here. Parsing the
text format is a pure function beside it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

import httpx

MAX_METRICS_BYTES = 4_000_000
"""Largest /metrics body read."""


def read_gauge(url: str, name: str, *, headers: Mapping[str, str] | None = None, timeout: float = 2.0) -> float | None:
    """The current value of gauge ``name`` at ``url`` (summed over its labels), or None
    when the endpoint does not answer 200 in time or does not expose it."""
    deadline = time.monotonic() + timeout
    body = bytearray()
    try:
        with httpx.stream("GET", url, headers=dict(headers or {}), timeout=timeout, trust_env=False) as response:
            if response.status_code != 200:
                return None
            for part in response.iter_bytes():
                body += part
                if len(body) > MAX_METRICS_BYTES or time.monotonic() > deadline:
                    return None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError):
        return None
    return parse_gauge(body.decode("utf-8", "replace"), name)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_gauge(text: str, name: str) -> float | None:
    """The sum of a metric's samples in Prometheus text format, or None if absent."""
    total, seen = 0.0, False
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            try:
                total += float(match.group(3))
            except ValueError:
                continue
            seen = True
    return total if seen else None
