"""The report's plots, as PNG bytes.

Built on ``matplotlib.figure.Figure`` (rendered by Agg) rather than pyplot, so
no global figure state or GUI backend is involved and a report can be built in
any process. Every function returns None when it has nothing to draw, so a run
without, say, a concurrency sweep simply has no sweep plot. Each draws every
transport it is given, coloured by its position in ``order`` (the report's
order of the transports), so that a transport has one colour in every plot.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from conformance.contracts import METRICS, PERCENTILES
from conformance.wire import label as transport_label
from reports.results import Histogram, finite
from reports.transports import listing

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
"""Transport colours, by position in the report's order (then round again)."""
DPI = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def colors(order: Iterable[str]) -> dict[str, str]:
    """Transport -> its colour: the palette by position."""
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(dict.fromkeys(order))}


def _order(names: Iterable[Any], order: Sequence[str] | None) -> list[str]:
    """``order`` followed by any name it lacks, in the order first seen."""
    return list(dict.fromkeys([*(order or ()), *(str(n) for n in names)]))


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


CDF_METRICS = ("delivery", "ttfe", "connect", "gap")
"""The recorded time metrics drawn as CDFs, one panel each (2 × 2)."""
_PCTS = [("min", 0.0), *((key, q / 100) for key, q in PERCENTILES), ("max", 1.0)]


def _percentile_points(metric: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """A coarse CDF from a summary's percentiles, when no histogram was written."""
    xs, ys = [], []
    for key, frac in _PCTS:
        v = finite(metric.get(f"{key}_ms"))
        if v is not None:
            xs.append(v)
            ys.append(frac)
    if len(xs) < 2:
        return None
    return np.asarray(xs), np.asarray(ys)


def latency_cdf(histograms: Mapping[tuple[str, str], Histogram],
                transports: Mapping[str, Any], order: Sequence[str] | None = None) -> bytes | None:
    """CDF per transport of delivery, ttfe, connect and gap: one panel per metric.

    From the HdrHistograms when the run wrote them (every value, µs resolution),
    otherwise from the summary's percentiles (marked as such).
    """
    fig = latency_cdf_figure(histograms, transports, order)
    return None if fig is None else _png(fig)


def _readable_x_axis(ax: Any, log: bool) -> None:
    """Few, short tick labels on the x axis. Left to itself matplotlib puts eight
    labels such as 0.4750 on a narrow linear axis (the connect panel, where every
    value is about the same) and they run into each other; on a log axis the minor
    labels (2×10⁻¹ ...) collide the same way."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    short = FuncFormatter(lambda v, _pos: f"{v:.3g}")
    if log:
        ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=2))
    ax.xaxis.set_major_formatter(short)


def latency_cdf_figure(histograms: Mapping[tuple[str, str], Histogram],
                       transports: Mapping[str, Any], order: Sequence[str] | None = None) -> Figure | None:
    """The figure :func:`latency_cdf` renders (tests read its tick labels)."""
    color = colors(_order(transports, order))
    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2).ravel()
    drawn = False
    for ax, metric in zip(axes, CDF_METRICS):
        lo, hi = np.inf, 0.0
        for t in transports:
            h = histograms.get((t, metric))
            if h is not None and h.total:
                x, y = h.cdf()
                ax.step(x, y, where="post", color=color[t], label=f"{transport_label(t)} (n={h.total})")
            else:
                m = ((transports.get(t) or {}).get("metrics") or {}).get(metric)
                pts = _percentile_points(m) if isinstance(m, Mapping) else None
                if pts is None:
                    continue
                x, y = pts
                ax.plot(x, y, "o--", color=color[t], label=f"{transport_label(t)} (percentiles only)")
            drawn = True
            pos = x[x > 0]
            if len(pos):
                lo, hi = min(lo, float(pos.min())), max(hi, float(pos.max()))
        ax.set_title(METRICS[metric].shown, fontsize=10)
        log = hi > 0 and hi / lo > 10
        ax.set_xlabel("milliseconds" + (" (log scale)" if log else ""))
        ax.set_ylabel("fraction ≤ x")
        ax.set_ylim(0, 1.02)
        if log:
            ax.set_xscale("log")
        _readable_x_axis(ax, log)
        for q in (0.5, 0.95, 0.99):
            ax.axhline(q, color="#bbbbbb", lw=0.6, ls=":")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="#888")
    if not drawn:
        return None
    fig.suptitle(f"Latency distributions (CDF): {listing(transports)}")
    fig.tight_layout()
    return fig


def bytes_per_event(rows: Mapping[str, Mapping[str, float | None]]) -> bytes | None:
    """Stacked bars per transport (in the order of ``rows``): payload, framing and
    (amortised) header bytes per event. The parts have the colours, not the transports."""
    names = [t for t, r in rows.items() if r.get("payload") is not None]
    if not names:
        return None
    parts = [("payload", "payload", "#8fbc8f"), ("framing", "framing", "#f4a460"),
             ("headers", "headers/handshake (amortised)", "#9370db")]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    x = np.arange(len(names))
    stacks = {key: np.array([max(rows[t].get(key) or 0.0, 0.0) for t in names]) for key, _, _ in parts}
    totals = sum(stacks.values())
    bottom = np.zeros(len(names))
    for key, label, color in parts:
        vals = stacks[key]
        bars = ax.bar(x, vals, 0.55, bottom=bottom, label=label, color=color, edgecolor="white")
        for rect, v, b in zip(bars, vals, bottom):
            if v >= 0.06 * totals.max():  # small parts are named under the bar instead
                ax.text(rect.get_x() + rect.get_width() / 2, b + v / 2, f"{v:.1f}",
                        ha="center", va="center", fontsize=8)
        bottom += vals
    for xi, total in zip(x, bottom):
        ax.text(xi, total, f"{total:.1f} B", ha="center", va="bottom", fontsize=9, fontweight="bold")
    ticks = [f"{transport_label(t)}\n" + " + ".join(f"{stacks[k][i]:.1f}" for k, _, _ in parts)
             for i, t in enumerate(names)]
    ax.set_xticks(x, ticks)
    ax.set_xlabel("payload + framing + headers (bytes per event)", fontsize=8)
    ax.set_ylabel("bytes per event")
    ax.set_ylim(0, max(bottom.max() * 1.12, 1))
    ax.set_title("Bytes per event: payload, framing and headers")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def sweep(df: pd.DataFrame, order: Sequence[str] | None = None) -> bytes | None:
    """p95 latency against the number of users, per transport (needs 2+ levels)."""
    if df.empty or df["users"].nunique() < 2:
        return None
    names = _order(df["transport"].unique(), order)
    color = colors(names)
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for t in names:
        g = df[df["transport"] == t].sort_values("users")
        if g.empty:
            continue
        if g["delivery_p95_ms"].notna().any():
            ax.plot(g["users"], g["delivery_p95_ms"], "o-", color=color[t],
                    label=f"{transport_label(t)} {METRICS['delivery'].shown} p95")
        if g["ttfe_p95_ms"].notna().any():
            ax.plot(g["users"], g["ttfe_p95_ms"], "s--", color=color[t], alpha=0.7,
                    label=f"{transport_label(t)} {METRICS['ttfe'].shown} p95")
    ax.set_xticks(sorted(df["users"].unique()))
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("p95 latency (ms)")
    ax.set_title("p95 latency against users")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def throughput(df: pd.DataFrame, marks: Sequence[tuple[float, str]] = (),
               order: Sequence[str] | None = None) -> bytes | None:
    """Events received per second over the run, per transport; ``marks`` are
    (seconds, label) lines, e.g. where each level of a concurrency sweep began."""
    if df.empty:
        return None
    names = _order(df["transport"].unique(), order)
    color = colors(names)
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    for t_s, text in marks:
        ax.axvline(t_s, color="#999999", lw=0.8, ls="--")
        ax.annotate(text, (t_s, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8, color="#555555")
    for t in names:
        g = df[df["transport"] == t]
        if g.empty:
            continue
        ax.plot(g["t_s"], g["events"], "-", marker=".", color=color[t], label=f"{transport_label(t)} events/s")
    ax.set_xlabel("seconds since the start of the run")
    ax.set_ylabel("events per second")
    ax.set_ylim(0, max(float(df["events"].max()) * 1.18, 1))
    ax.set_title("Throughput over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=max(2, len(names)), frameon=False)
    fig.tight_layout()
    return _png(fig)


def is_png(data: bytes) -> bool:
    """True when ``data`` starts with the PNG signature (a cheap sanity check)."""
    return data[:8] == PNG_SIGNATURE
