"""The report's section on network paths: each transport per condition (and proxy),
the method behind each condition and its measured accuracy, and the clock offset.

Reads what ``python -m load --network/--proxy`` wrote under ``network`` and
``clock.offset`` in each run's summary.json (:mod:`network.path`); a run without
them is the plain loopback path. The figures are the runs' own (p50 of the
metrics in :data:`conformance.contracts.METRICS`, bytes per stream), so nothing
here recomputes a statistic. Delivery latency is marked an *estimate* when the
clocks are not known to be shared (:func:`network.clock.latency_is_estimate`'s
verdict, recorded with the run), and then shown corrected by the offset too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from conformance.contracts import METRICS
from conformance.wire import label

from .render import Block, Heading, Para, Table
from .results import Run

FIGURES = ("connect", "ttfe", "delivery", "duration")
"""The metrics the section shows per transport and path, by METRICS name."""


def path_label(summary: Mapping[str, Any]) -> str:
    """``wan``, ``loopback+nginx-accel``; ``loopback`` for a run without a recorded path."""
    net = summary.get("network") or {}
    return str(net.get("label") or "loopback")


def _offset(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    off = (summary.get("clock") or {}).get("offset")
    return off if isinstance(off, Mapping) else {}


def _p50(transport: Mapping[str, Any], metric: str) -> float | None:
    m = METRICS[metric]
    value = ((transport.get("metrics") or {}).get(metric) or {}).get(f"p50{m.suffix}")
    return value if isinstance(value, (int, float)) else None


def rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run and transport: the path, then the p50 figures and bytes."""
    out = []
    for run in runs:
        s = run.summary
        off = _offset(s)
        estimate = bool(off.get("latency_is_estimate")) or (s.get("clock") or {}).get("shared") is False
        for name, t in (s.get("transports") or {}).items():
            if not isinstance(t, Mapping) or not t.get("streams"):
                continue
            row: dict[str, Any] = {"path": path_label(s), "transport": label(name), "streams": t.get("streams")}
            for metric in FIGURES:
                row[f"{METRICS[metric].shown} p50 (ms)"] = _p50(t, metric)
            delivery = row[f"{METRICS['delivery'].shown} p50 (ms)"]
            if estimate and delivery is not None and isinstance(off.get("offset_ms"), (int, float)):
                row[f"{METRICS['delivery'].shown} p50 (ms)"] = (
                    f"≈{delivery + off['offset_ms']:.3f} ± {off.get('uncertainty_ms', 0):.3f} (estimate)")
            per_stream = (t.get("bytes") or {}).get("per_stream") or {}
            row["bytes in per stream"] = per_stream.get("wire_in")
            row["bytes out per stream"] = per_stream.get("wire_out")
            out.append(row)
    return out


def _accuracy_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        net = run.summary.get("network")
        if not isinstance(net, Mapping):
            continue
        acc = net.get("accuracy") or {}
        relay = net.get("relay") or {}
        late = relay.get("lateness_ms") or {}
        cond = net.get("condition") or {}
        out.append({
            "path": path_label(run.summary),
            "method": "shaping relay" if isinstance(net.get("accuracy"), Mapping) else "direct",
            "proxy": (net.get("proxy") or {}).get("what"),
            "configured RTT (ms)": cond.get("rtt_ms"),
            "measured RTT (ms)": acc.get("measured_rtt_ms"),
            "error (ms)": acc.get("error_ms"),
            "new connection configured / measured (ms)": (
                f"{acc['new_connection']['configured_ms']} / {acc['new_connection']['measured_ms']}"
                if isinstance(acc.get("new_connection"), Mapping) else None),
            "relay lateness p50 / p99 (ms)": (f"{late.get('p50')} / {late.get('p99')}" if late else None),
        })
    return out


def _clock_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        off = _offset(run.summary)
        if not off:
            continue
        shared = (run.summary.get("clock") or {}).get("shared")
        out.append({
            "path": path_label(run.summary),
            "clocks shared": shared,
            "offset estimate (ms)": off.get("offset_ms"),
            "uncertainty ± (ms)": off.get("uncertainty_ms"),
            "bounds (ms)": (f"[{off.get('low_ms')}, {off.get('high_ms')}]" if "low_ms" in off else off.get("error")),
            "streams / events": f"{off.get('streams')} / {off.get('events')}" if "streams" in off else None,
            "delivery latency": "estimate" if off.get("latency_is_estimate") or shared is False else "measured",
        })
    return out


def blocks(runs: Sequence[Run]) -> list[Block]:
    """The section; empty when no run recorded a network path or a clock offset."""
    if not any(isinstance(r.summary.get("network"), Mapping) or _offset(r.summary) for r in runs):
        return []
    b: list[Block] = [Heading("Network paths")]
    table = pd.DataFrame(rows(runs))
    b.append(Para("Each transport per path (network condition, and proxy when there is one), medians over the "
                  "streams of each run; bytes counted at the socket. A delivery latency marked *estimate* "
                  "comes from clocks that are not known to be shared and is shown corrected by the clock "
                  "offset, with its uncertainty."))
    if not table.empty:
        b.append(Table(table, numeric=[c for c in table.columns if c not in ("path", "transport")]))
    acc = pd.DataFrame(_accuracy_rows(runs))
    if not acc.empty:
        b.append(Heading("How each path was made, and how close it came", 3))
        methods = sorted({str(r.summary["network"]["method"]) for r in runs
                          if isinstance(r.summary.get("network"), Mapping) and r.summary["network"].get("method")})
        probe = next((r.summary["network"]["accuracy"].get("method") for r in runs
                      if isinstance((r.summary.get("network") or {}).get("accuracy"), Mapping)), None)
        b.append(Para("Method: " + "; ".join(methods) + "."))
        b.append(Para(f"Measured RTT: {probe or 'no shaped path in these runs'}; a new connection also pays the "
                      "emulated TCP handshake (two round trips in all). Relay lateness: how late segments left "
                      "against their scheduled release (timer resolution and CPU contention)."))
        b.append(Table(acc, numeric=["configured RTT (ms)", "measured RTT (ms)", "error (ms)"]))
    clock = pd.DataFrame(_clock_rows(runs))
    if not clock.empty:
        b.append(Heading("Client and server clocks", 3))
        method = next((_offset(r.summary).get("method") for r in runs if _offset(r.summary).get("method")), "")
        b.append(Para(f"Offset = server clock − client clock, bounded by causality from probe streams: {method}."))
        b.append(Table(clock, numeric=["offset estimate (ms)", "uncertainty ± (ms)"]))
    return b


def summary(runs: Sequence[Run]) -> dict[str, Any]:
    """The section's figures for the report's summary.json."""
    return {"paths": rows(runs), "accuracy": _accuracy_rows(runs), "clock": _clock_rows(runs)}


def clock_warnings(runs: Sequence[Run]) -> list[str]:
    """One warning per run whose recorded clock offset makes delivery latency an
    estimate (clocks known to differ), for the report's opening."""
    out = []
    for run in runs:
        off = _offset(run.summary)
        if off.get("latency_is_estimate") and (run.summary.get("clock") or {}).get("shared") is not False:
            out.append(f"on `{path_label(run.summary)}` the backend's clock is {off.get('offset_ms')} ± "
                       f"{off.get('uncertainty_ms')} ms off the client's: every delivery latency of that run is "
                       "an estimate (corrected figures under Network paths)")
    return out
