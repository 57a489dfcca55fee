"""The side-by-side tables of a report, as pandas DataFrames built from summary dicts.

Pure functions: a ``transports`` mapping (the ``transports`` section of a results
summary) in, DataFrames out. Formatting to text is left to :mod:`reports.render`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from conformance.contracts import RECORDED, TS, MetricKind
from conformance.wire import TRANSPORTS
from reports.metrics import get
from reports.results import finite
from reports.transports import Pair, columns, pairs, ratio_column

LATENCIES: list[tuple[str, str]] = [(m.name, m.shown) for m in RECORDED if m.kind is MetricKind.TIME]
"""(metric, label) of every recorded time metric of the registry: the latency table's rows."""
PERCENTILES = ("p50", "p95", "p99")

# (section, label, path under the transport, unit); TS in a label stands for the
# run's timestamp field
OTHER_ROWS: list[tuple[str, str, str, str]] = [
    ("throughput", "streams", "streams", ""),
    ("throughput", "streams complete and valid", "streams_ok", ""),
    ("throughput", "events received", "events", ""),
    ("throughput", f"events carrying {TS} (for delivery latency)", "events_with_ts", ""),
    ("throughput", f"events that arrived before their {TS} (counted as 0)", "delivery_negative", ""),
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


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def value_columns(transports: Mapping[str, Any], prs: Sequence[Pair] | None = None) -> list[str]:
    """The figure columns of the side-by-side tables: one per transport, then one
    ratio per pair (the numeric columns a renderer right-aligns)."""
    cols = columns(transports)
    return [*cols.values(), *(ratio_column(p, cols) for p in _pairs(transports, prs))]


def _pairs(transports: Mapping[str, Any], prs: Sequence[Pair] | None) -> list[Pair]:
    return list(prs) if prs is not None else pairs(list(transports))


def _figures(transports: Mapping[str, Any], path: str, prs: Sequence[Pair] | None,
             ratios: bool = True) -> dict[str, float | None]:
    """One row's figures: each transport's value at ``path``, then each pair's ratio."""
    cols = columns(transports)
    values = {t: _value(transports, t, path) for t in cols}
    row: dict[str, float | None] = {cols[t]: v for t, v in values.items()}
    for p in _pairs(transports, prs):
        row[ratio_column(p, cols)] = _ratio(values.get(p[0]), values.get(p[1])) if ratios else None
    return row


def _counts(transports: Mapping[str, Any], section: str, key: str, prs: Sequence[Pair] | None
            ) -> dict[str, float | None]:
    """A row of counts by rule ID under ``transports[T][section].rules`` (no ratios)."""
    cols = columns(transports)
    row: dict[str, float | None] = {
        cols[t]: finite((((transports.get(t) or {}).get(section) or {}).get("rules") or {}).get(key)) for t in cols}
    row.update({ratio_column(p, cols): None for p in _pairs(transports, prs)})
    return row


def latency_table(transports: Mapping[str, Any], prs: Sequence[Pair] | None = None) -> pd.DataFrame:
    """Rows: metric × percentile; columns: one per transport and one ratio per pair (milliseconds)."""
    rows = []
    for key, label in LATENCIES:
        for p in PERCENTILES:
            path = f"{key}.{p}_ms"
            rows.append({"metric": label, "stat": p, "path": path, **_figures(transports, path, prs)})
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


def headline_table(transports: Mapping[str, Any], prs: Sequence[Pair] | None = None) -> pd.DataFrame:
    """The few figures a reader wants first (the full tables follow)."""
    rows = []
    for label, path, unit in HEADLINE:
        if all(_value(transports, t, path) is None for t in transports):
            continue
        rows.append({"figure": label, "unit": unit, **_figures(transports, path, prs, "errors" not in path)})
    return pd.DataFrame(rows)


def other_table(transports: Mapping[str, Any], section: str, prs: Sequence[Pair] | None = None,
                timestamp_field: str | None = None) -> pd.DataFrame:
    """The throughput, bytes or errors rows: label, unit, a column per transport, a ratio per pair."""
    ts = timestamp_field or "timestamp"
    rows = []
    for sec, label, path, unit in OTHER_ROWS:
        if sec != section:
            continue
        rows.append({"metric": label.replace(TS, ts), "unit": unit, "path": path,
                     **_figures(transports, path, prs, section != "errors")})
    if section == "errors":
        # Every other error count the run wrote (closed, status, too_large, ...).
        known = {p.split(".", 1)[1] for sec, _, p, _ in OTHER_ROWS if sec == "errors"}
        extra = sorted({k for tr in transports.values() for k, v in ((tr or {}).get("errors") or {}).items()
                        if k not in known and finite(v) is not None})
        for k in extra:
            rows.append({"metric": f"errors: {k.replace('_', ' ')}", "unit": "", "path": f"errors.{k}",
                         **_figures(transports, f"errors.{k}", prs, False)})
        # Rule violations (MUST) and SHOULD warnings seen during the load run, by rule id.
        for sec, what in (("errors", "rule violations"), ("warnings", "SHOULD warnings")):
            ids = sorted({rid for tr in transports.values() for rid in (((tr or {}).get(sec) or {}).get("rules") or {})})
            for rid in ids:
                rows.append({"metric": f"{what} {rid}", "unit": "", "path": f"{sec}.rules.{rid}",
                             **_counts(transports, sec, rid, prs)})
    return pd.DataFrame(rows)


def config_table(runs: list[tuple[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """Configuration, machine and versions of each run: one column per run."""
    keys: list[tuple[str, Any]] = []

    def add(label: str, fn: Any) -> None:
        keys.append((label, fn))

    cfg = lambda k: (lambda s: (s.get("config") or {}).get(k))  # noqa: E731
    for k in ("host", "users", "spawn_rate", "run_time_s", "shape", "pace_s", "ws_compression",
              "user_classes", "workers", "profile", "paths", "question_param", "timestamp_field", "parity",
              "questions", "params"):
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
        text = ", ".join("-".join(map(str, x)) if isinstance(x, list) else str(x) for x in v)
        return text if len(text) <= 80 else text[:77] + "..."
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items()) or None
    return v


def sweep_frame(points: list[tuple[int, str, Mapping[str, Any], Mapping[tuple[str, str], Any] | None]]
                ) -> pd.DataFrame:
    """p95 latencies against users: ``points`` are (users, source, summary, histograms).

    One row per (users, transport). Several runs at the same level are merged as
    histograms are: the values and counts of their time histograms are added and
    the p95 is read from the sum (an average of p95s is no p95 of anything). A
    point without histograms gives its summary's own p95 when it is alone at its
    level; several such points leave the figure empty rather than average it.
    """
    cells: dict[tuple[int, str], dict[str, Any]] = {}
    for users, source, summary, hists in points:
        for t, tr in (summary.get("transports") or {}).items():
            if not isinstance(tr, Mapping) or not (tr.get("streams") or 0):
                continue
            c = cells.setdefault((users, t), {"sources": [], "hists": {}, "summaries": [], "streams": 0.0})
            c["sources"].append(source)
            c["summaries"].append(tr)
            c["streams"] += _num(tr, "streams") or 0.0
            for m in ("ttfe", "delivery", "gap"):
                h = (hists or {}).get((t, m))
                c["hists"].setdefault(m, []).append(h)
    if not cells:
        return pd.DataFrame(columns=["users", "transport", "ttfe_p95_ms", "delivery_p95_ms", "gap_p95_ms", "streams"])
    rows = []
    for (users, t), c in cells.items():
        row: dict[str, Any] = {"users": users, "transport": t}
        for m in ("ttfe", "delivery", "gap"):
            hs = c["hists"].get(m) or []
            if hs and all(h is not None for h in hs):
                row[f"{m}_p95_ms"] = merged_percentile(hs, 0.95)
            elif len(c["summaries"]) == 1:
                row[f"{m}_p95_ms"] = _num(c["summaries"][0], "metrics", m, "p95_ms")
            else:
                row[f"{m}_p95_ms"] = None
        row["streams"] = c["streams"]
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["transport", "users"]).reset_index(drop=True)


def merged_percentile(histograms: Sequence[Any], q: float) -> float | None:
    """The q-quantile (0..1) of the sum of decoded histograms (``values_ms``,
    ``counts``): the smallest value with at least ``ceil(q * total)`` counts at or
    below it, as HdrHistogram answers a percentile."""
    import math

    import numpy as np

    values = np.concatenate([h.values_ms for h in histograms]) if histograms else np.array([])
    counts = np.concatenate([h.counts for h in histograms]) if histograms else np.array([])
    if values.size == 0 or counts.sum() == 0:
        return None
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(counts[order])
    rank = max(1, math.ceil(q * cum[-1]))
    return float(values[int(np.searchsorted(cum, rank))])


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


VERDICT_ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}


ALL_OR_PAIRS = "all / pairs"
"""The column of a conformance report's checks that are not about one transport
(parity pairs, checks of the run)."""


def conformance_frame(rules: list[Mapping[str, Any]], transports: Sequence[str] = ()) -> pd.DataFrame:
    """One row per rule of a conformance report, a column per transport, failures first.

    The columns are ``transports`` (the load results' transports) and every
    registered transport the report names, in that order. A rule is often checked
    by several tests (one per bad input, per transport): a column's verdict is
    the worst of its checks (fail, warn, pass, then skip); checks the suite
    reports for a pair of transports or for the whole run have their own column,
    so that an SSE-only rule never shows a WebSocket verdict. ``checks`` counts
    them by verdict and ``message`` is the first message of the worst verdict.
    """
    recs = []
    for r in rules:
        if not isinstance(r, Mapping):
            continue
        t = str(r.get("transport", "") or "all")
        rec = {"rule": str(r.get("id", "?")), "level": str(r.get("level", "")), "transport": t,
               "verdict": str(r.get("verdict", "?")), "message": str(r.get("message") or "")}
        recs.append(rec)
    named = list(dict.fromkeys([*transports, *(t for t in TRANSPORTS if any(r["transport"] == t for r in recs))]))
    cols = columns(named)
    out_cols = ["rule", "level", *cols.values(), ALL_OR_PAIRS, "verdict", "checks", "message"]
    if not recs:
        return pd.DataFrame(columns=out_cols)
    df = pd.DataFrame(recs)
    df["rank"] = df["verdict"].map(VERDICT_ORDER).fillna(9)

    def worst(g: pd.DataFrame) -> str | None:
        return None if g.empty else str(g.sort_values("rank", kind="stable").iloc[0]["verdict"])

    rows = []
    for (rule, level), g in df.groupby(["rule", "level"], sort=False):
        overall = worst(g)
        same = g[g["verdict"] == overall]
        msgs = list(dict.fromkeys(m for m in same["message"] if m))
        # the first line of the message, whole: the report's failures section shows every message in full
        message = (msgs[0].splitlines()[0] + (f" (+{len(msgs) - 1} more)" if len(msgs) > 1 else "")) if msgs else ""
        counts = g["verdict"].value_counts()
        order = sorted(counts.index, key=lambda v: VERDICT_ORDER.get(v, 9))
        rows.append({
            "rule": rule, "level": level,
            **{col: worst(g[g["transport"] == t]) or "" for t, col in cols.items()},
            ALL_OR_PAIRS: worst(g[~g["transport"].isin(list(cols))]) or "",
            "verdict": overall, "checks": ", ".join(f"{int(counts[v])} {v}" for v in order),
            "message": message, "rank": VERDICT_ORDER.get(overall or "", 9),
        })
    out = pd.DataFrame(rows).sort_values(["rank", "rule"], kind="stable").reset_index(drop=True)
    return out[out_cols]
