"""One measured stream, end to end: record it, validate it, turn it into figures.

The Locust users and the harness benchmark (``load/bench_harness.py``) both call
:func:`measure_stream`, so the benchmark times exactly the code path a load run
uses. No Locust import here: importing Locust monkey-patches the process.
"""

from __future__ import annotations

from typing import Any

from conformance.recorders import record_sse, record_ws
from conformance.recording import Limits, Recording

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


def validate(rec: Recording, profile: Any) -> list[Any]:
    """MUST and SHOULD findings of the conformance validator on a complete stream."""
    from conformance import validate as v

    fn = getattr(v, "validate_recording", None)
    if fn is not None:
        return fn(rec, profile)
    return v.validate_stream(rec.objects, profile)


def measure_stream(transport: str, cfg: LoadConfig, params: dict[str, str], profile: Any = None
                   ) -> tuple[Recording, StreamFigures]:
    """Record, validate (when ``profile`` is given and the stream is complete), and compute figures."""
    rec = record(transport, cfg, params)
    findings: list[Any] = []
    if profile is not None and classify_error(rec)[0] is None:
        findings = validate(rec, profile)
    return rec, stream_figures(rec, findings)
