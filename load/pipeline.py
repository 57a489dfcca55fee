"""One measured stream, end to end: record it, validate it, turn it into figures.

The Locust users call :func:`measure_stream` (:func:`record`, then :func:`judge`);
the harness benchmark (``load/bench_harness.py``) calls the same two, timing
:func:`judge` apart, so it measures exactly the code path a load run uses. No
Locust import here: importing Locust monkey-patches the process.
"""

from __future__ import annotations

from typing import Any

from conformance.recorders import record_sse, record_ws
from conformance.recording import Limits, Recording
from conformance.validate import validate_recording

from .config import LoadConfig
from .metrics import StreamFigures, classify_error, stream_figures


def limits_for(cfg: LoadConfig) -> Limits:
    t = cfg.stream_timeout_s
    return Limits(connect=min(5.0, t), first_event=t, idle=t, total=t)


def record(transport: str, cfg: LoadConfig, params: dict[str, str]) -> Recording:
    """One stream through the project's recorder for ``transport`` ('sse' or 'ws')."""
    if transport == "sse":
        return record_sse(cfg.host + cfg.sse_path, params=params, limits=limits_for(cfg), end_types=("stream_end",))
    return record_ws(cfg.host + cfg.ws_path, params=params, compression=cfg.ws_compression,
                     limits=limits_for(cfg), end_types=("stream_end",))


def judge(rec: Recording, profile: Any = None) -> StreamFigures:
    """Validate (when ``profile`` is given and the stream is complete), and compute figures."""
    findings: list[Any] = []
    if profile is not None and classify_error(rec)[0] is None:
        findings = validate_recording(rec, profile)
    return stream_figures(rec, findings)


def measure_stream(transport: str, cfg: LoadConfig, params: dict[str, str], profile: Any = None
                   ) -> tuple[Recording, StreamFigures]:
    """Record one stream, then :func:`judge` it."""
    rec = record(transport, cfg, params)
    return rec, judge(rec, profile)
