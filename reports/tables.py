"""The side-by-side tables of a report, as pandas DataFrames built from summary dicts.

Pure functions: a ``transports`` mapping (the ``transports`` section of a results
summary) in, DataFrames out. Formatting to text is left to :mod:`reports.render`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from reports.metrics import TRANSPORT_NAMES, TRANSPORTS, get
from reports.results import finite

LATENCIES = [
    ("connect", "connect"),
    ("ttfe", "time to first event"),
    ("delivery", "delivery latency"),
    ("gap", "inter-event gap (not a latency)"),
    ("duration", "stream duration"),
]
PERCENTILES = ("p50", "p95", "p99")

# (section, label, path under the transport, unit)
OTHER_ROWS: list[tuple[str, str, str, str]] = [
    ("throughput", "streams", "streams", ""),
    ("throughput", "streams complete and valid", "streams_ok", ""),
    ("throughput", "events received", "events", ""),
    ("throughput", "events carrying ts (for delivery latency)", "events_with_ts", ""),
    ("throughput", "events that arrived before their ts (counted as 0)", "delivery_negative", ""),
    ("throughput", "events per stream (p50)", "events_per_stream.p50", ""),
    ("throughput", "events per second, per stream (p50)", "events_per_s.p50", "ev/s"),
    ("throughput", "events per second, whole run", "derived.run_events_per_s", "ev/s"),
    ("throughput", "duration per 100 events", "derived.duration_per_100_events_ms", "ms"),
    ("bytes", "received per stream", "bytes.per_stream.wire_in", "B"),
    ("bytes", "sent per stream", "bytes.per_stream.wire_out", "B"),
    ("bytes", "payload per stream", "bytes.per_stream.payload", "B"),
    ("bytes", "handshake/header bytes received per stream", "bytes.per_stream.head_in", "B"),
    ("bytes", "handshake/header bytes sent per stream", "bytes.per_stream.head_out", "B"),
    ("bytes", "wire bytes per event", "bytes.per_event.wire", "B"),
    ("bytes", "payload bytes per event", "bytes.per_event.payload", "B"),
    ("bytes", "framing bytes per event", "bytes.per_event.framing", "B"),
    ("bytes", "framing overhead (% of payload)", "bytes.framing_overhead_pct", "%"),
    ("bytes", "header bytes per event (amortised)", "derived.header_bytes_per_event", "B"),
    ("errors", "failed streams", "errors.failed_streams", ""),
    ("errors", "connect errors", "errors.connect", ""),
    ("errors", "timeouts", "errors.timeout", ""),
    ("errors", "protocol errors", "errors.protocol", ""),
]


def _num(node: Any, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(k)
    return finite(node)


def derive(transport: Mapping[str, Any], run_duration_s: float | None) -> dict[str, float | None]:
    """Figures computed from one transport's summary that the load run does not write.

    ``header_bytes_per_event`` spreads the head/handshake of a stream over its
    events (the third part of the bytes-per-event plot); ``duration_per_100_events_ms``
    scales the median stream to 100 events, for the seed's "100 events" claim.
    """
    streams = _num(transport, "streams")
    events = _num(transport, "events")
    eps = _num(transport, "metrics", "events_per_stream", "p50")
    mean_eps = events / streams if events is not None and streams else None
    head_in = _num(transport, "bytes", "per_stream", "head_in")
    head_out = _num(transport, "bytes", "per_stream", "head_out")
    headers = _num(transport, "bytes", "per_event", "head")  # written by newer load runs
    if headers is None and mean_eps and (head_in is not None or head_out is not None):
        headers = ((head_in or 0.0) + (head_out or 0.0)) / mean_eps
    dur = _num(transport, "metrics", "duration", "p50_ms")
    per100 = dur * 100.0 / eps if dur is not None and eps else None
    rate = _num(transport, "run_events_per_s")
    if rate is None and events is not None and run_duration_s:
        rate = events / run_duration_s
    wire = _num(transport, "bytes", "per_event", "wire")
    return {
        "header_bytes_per_event": headers,
        "duration_per_100_events_ms": per100,
        "run_events_per_s": rate,
        "wire_bytes_per_100_events": wire * 100.0 if wire is not None else None,
        "events_per_stream_mean": mean_eps,
    }


def _value(transports: Mapping[str, Any], transport: str, path: str) -> float | None:
    if transport not in transports:
        return None
    return get({"transports": transports}, f"{transport}.{path}")


def _ratio(ws: float | None, sse: float | None) -> float | None:
    if ws is None or sse is None or sse == 0:
        return None
    return ws / sse


def latency_table(transports: Mapping[str, Any]) -> pd.DataFrame:
    """Rows: metric × percentile; columns: SSE, WebSocket and WS/SSE (milliseconds)."""
    rows = []
    for key, label in LATENCIES:
        for p in PERCENTILES:
            sse = _value(transports, "sse", f"{key}.{p}_ms")
            ws = _value(transports, "ws", f"{key}.{p}_ms")
            rows.append({"metric": label, "stat": p, "path": f"{key}.{p}_ms",
                         "SSE": sse, "WebSocket": ws, "WS / SSE": _ratio(ws, sse)})
    return pd.DataFrame(rows)


HEADLINE: list[tuple[str, str, str]] = [
    ("time to first event p50", "ttfe.p50_ms", "ms"),
    ("delivery latency p50", "delivery.p50_ms", "ms"),
    ("delivery latency p99", "delivery.p99_ms", "ms"),
    ("events per second, whole run", "derived.run_events_per_s", "ev/s"),
    ("wire bytes per event", "bytes.per_event.wire", "B"),
    ("framing bytes per event", "bytes.per_event.framing", "B"),
    ("failed streams", "errors.failed_streams", ""),
]


def headline_table(transports: Mapping[str, Any]) -> pd.DataFrame:
    """The few figures a reader wants first (the full tables follow)."""
    rows = []
    for label, path, unit in HEADLINE:
        sse, ws = _value(transports, "sse", path), _value(transports, "ws", path)
        if sse is None and ws is None:
            continue
        rows.append({"figure": label, "unit": unit, "SSE": sse, "WebSocket": ws,
                     "WS / SSE": _ratio(ws, sse) if "errors" not in path else None})
    return pd.DataFrame(rows)


def other_table(transports: Mapping[str, Any], section: str) -> pd.DataFrame:
    """The throughput, bytes or errors rows: label, unit, SSE, WebSocket, WS/SSE."""
    rows = []
    for sec, label, path, unit in OTHER_ROWS:
        if sec != section:
            continue
        sse = _value(transports, "sse", path)
        ws = _value(transports, "ws", path)
        rows.append({"metric": label, "unit": unit, "path": path, "SSE": sse, "WebSocket": ws,
                     "WS / SSE": _ratio(ws, sse) if section != "errors" else None})
    if section == "errors":
        # Every other error count the run wrote (closed, status, too_large, ...).
        known = {p.split(".", 1)[1] for sec, _, p, _ in OTHER_ROWS if sec == "errors"}
        extra = sorted({k for t in TRANSPORTS for k, v in ((transports.get(t) or {}).get("errors") or {}).items()
                        if k not in known and finite(v) is not None})
        for k in extra:
            sse, ws = _value(transports, "sse", f"errors.{k}"), _value(transports, "ws", f"errors.{k}")
            rows.append({"metric": f"errors: {k.replace('_', ' ')}", "unit": "", "path": f"errors.{k}",
                         "SSE": sse, "WebSocket": ws, "WS / SSE": None})
        # Rule violations seen during the load run (by rule id), one row each.
        ids = sorted({rid for t in TRANSPORTS for rid in
                      ((transports.get(t) or {}).get("errors", {}).get("rules") or {})})
        for rid in ids:
            vals = [finite(((transports.get(t) or {}).get("errors", {}).get("rules") or {}).get(rid))
                    for t in TRANSPORTS]
            rows.append({"metric": f"rule violations {rid}", "unit": "", "path": f"errors.rules.{rid}",
                         "SSE": vals[0], "WebSocket": vals[1], "WS / SSE": None})
        # SHOULD rules broken during the load run (warnings, not failures).
        wids = sorted({rid for t in TRANSPORTS for rid in
                       (((transports.get(t) or {}).get("warnings") or {}).get("rules") or {})})
        for rid in wids:
            vals = [finite((((transports.get(t) or {}).get("warnings") or {}).get("rules") or {}).get(rid))
                    for t in TRANSPORTS]
            rows.append({"metric": f"SHOULD warnings {rid}", "unit": "", "path": f"warnings.rules.{rid}",
                         "SSE": vals[0], "WebSocket": vals[1], "WS / SSE": None})
    return pd.DataFrame(rows)


def config_table(runs: list[tuple[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """Configuration, machine and versions of each run: one column per run."""
    keys: list[tuple[str, Any]] = []

    def add(label: str, fn: Any) -> None:
        keys.append((label, fn))

    cfg = lambda k: (lambda s: (s.get("config") or {}).get(k))  # noqa: E731
    for k in ("host", "users", "spawn_rate", "run_time_s", "shape", "pace_s", "ws_compression",
              "user_classes", "workers", "sse_path", "ws_path", "questions", "params"):
        add(f"config.{k}", cfg(k))
    add("started_at", lambda s: s.get("started_at"))
    add("duration_s", lambda s: s.get("duration_s"))
    add("clock shared", lambda s: (s.get("clock") or {}).get("shared"))
    add("cpu max %", lambda s: (s.get("cpu") or {}).get("max_percent"))
    add("cpu mean %", lambda s: (s.get("cpu") or {}).get("mean_percent"))
    add("cpu saturated", lambda s: (s.get("cpu") or {}).get("saturated"))
    versions = sorted({k for _, s in runs for k in (s.get("versions") or {})})
    for k in versions:
        add(f"version {k}", (lambda kk: lambda s: (s.get("versions") or {}).get(kk))(k))
    data: dict[str, list[Any]] = {"setting": [label for label, _ in keys]}
    for name, s in runs:
        data[name] = [_short(fn(s)) for _, fn in keys]
    df = pd.DataFrame(data)
    # Drop settings no run has.
    present = df.drop(columns="setting").apply(lambda r: any(v not in (None, "") for v in r), axis=1)
    return df[present].reset_index(drop=True)


def _short(v: Any) -> Any:
    if isinstance(v, list):
        text = ", ".join(str(x) for x in v)
        return text if len(text) <= 80 else text[:77] + "..."
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items()) or None
    return v


def sweep_frame(points: list[tuple[int, str, Mapping[str, Any]]]) -> pd.DataFrame:
    """p95 latencies against users: ``points`` are (users, source, summary).

    One row per (users, transport); several runs at the same level are averaged.
    """
    rows = []
    for users, source, summary in points:
        for t, tr in (summary.get("transports") or {}).items():
            if not isinstance(tr, Mapping) or not (tr.get("streams") or 0):
                continue
            rows.append({
                "users": users, "transport": t, "source": source,
                "ttfe_p95_ms": _num(tr, "metrics", "ttfe", "p95_ms"),
                "delivery_p95_ms": _num(tr, "metrics", "delivery", "p95_ms"),
                "gap_p95_ms": _num(tr, "metrics", "gap", "p95_ms"),
                "streams": _num(tr, "streams"),
            })
    if not rows:
        return pd.DataFrame(columns=["users", "transport", "ttfe_p95_ms", "delivery_p95_ms",
                                     "gap_p95_ms", "streams"])
    df = pd.DataFrame(rows)
    return (df.groupby(["users", "transport"], as_index=False)
              .agg(ttfe_p95_ms=("ttfe_p95_ms", "mean"), delivery_p95_ms=("delivery_p95_ms", "mean"),
                   gap_p95_ms=("gap_p95_ms", "mean"), streams=("streams", "sum"))
              .sort_values(["transport", "users"]).reset_index(drop=True))


def throughput_frame(timeline: pd.DataFrame | None, transports: list[str] | None = None) -> pd.DataFrame:
    """Events and streams per second per transport (rows of several workers summed)."""
    if timeline is None or timeline.empty:
        return pd.DataFrame(columns=["t_s", "transport", "events", "streams"])
    df = timeline.copy()
    if transports is not None:
        df = df[df["transport"].isin(transports)]
    if "streams" not in df.columns:
        df["streams"] = 0
    df["t_s"] = pd.to_numeric(df["t_s"], errors="coerce")
    df = df.dropna(subset=["t_s"])
    return (df.groupby(["transport", "t_s"], as_index=False)[["events", "streams"]].sum()
              .sort_values(["transport", "t_s"]).reset_index(drop=True))


def transport_label(t: str) -> str:
    return TRANSPORT_NAMES.get(t, t)


VERDICT_ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}


def conformance_frame(rules: list[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per rule of a conformance report, SSE and WebSocket side by side, failures first.

    A rule is often checked by several tests (one per bad input, per transport):
    a column's verdict is the worst of its checks (fail, warn, pass, then skip);
    checks the suite reports for ``both`` transports at once (parity, or a check
    that is not about one transport) have their own column, so that an SSE-only
    rule never shows a WebSocket verdict. ``checks`` counts them by verdict and
    ``message`` is the first message of the worst verdict.
    """
    cols = ["rule", "level", "SSE", "WebSocket", "both", "verdict", "checks", "message"]
    recs = []
    for r in rules:
        if not isinstance(r, Mapping):
            continue
        t = str(r.get("transport", "") or "both")
        rec = {"rule": str(r.get("id", "?")), "level": str(r.get("level", "")), "transport": t,
               "verdict": str(r.get("verdict", "?")), "message": str(r.get("message") or "")}
        recs.append(rec)
    if not recs:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(recs)
    df["rank"] = df["verdict"].map(VERDICT_ORDER).fillna(9)

    def worst(g: pd.DataFrame) -> str | None:
        return None if g.empty else str(g.sort_values("rank", kind="stable").iloc[0]["verdict"])

    rows = []
    for (rule, level), g in df.groupby(["rule", "level"], sort=False):
        overall = worst(g)
        same = g[g["verdict"] == overall]
        msgs = list(dict.fromkeys(m for m in same["message"] if m))
        message = (msgs[0][:300] + (f" (+{len(msgs) - 1} more)" if len(msgs) > 1 else "")) if msgs else ""
        counts = g["verdict"].value_counts()
        order = sorted(counts.index, key=lambda v: VERDICT_ORDER.get(v, 9))
        rows.append({
            "rule": rule, "level": level,
            "SSE": worst(g[g["transport"] == "sse"]) or "",
            "WebSocket": worst(g[g["transport"] == "ws"]) or "",
            "both": worst(g[~g["transport"].isin(["sse", "ws"])]) or "",
            "verdict": overall, "checks": ", ".join(f"{int(counts[v])} {v}" for v in order),
            "message": message, "rank": VERDICT_ORDER.get(overall or "", 9),
        })
    out = pd.DataFrame(rows).sort_values(["rank", "rule"], kind="stable").reset_index(drop=True)
    return out[cols]
