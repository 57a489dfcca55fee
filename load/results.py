"""Build summary.json from accumulated figures, and write a results directory.

The layout and every key are the contract in docs/results-format.md
(:attr:`conformance.contracts.Format.RESULTS`): the reports read what is written here.
:func:`build_summary` is pure; :func:`write_results` is the only function that
touches the file system.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from conformance.contracts import Format
from conformance.wire import TRANSPORTS

from .metrics import METRICS, UNITS, CpuStats, RunAccumulator, TransportAccumulator, cpu_verdict

CLOCK_NOTE = ("delivery latency = arrival wall clock - event ts; valid only when client and server "
              "share a clock (loopback: same machine, same clock)")


def versions() -> dict[str, str | None]:
    """Python and library versions, for the record (None when a package is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name, dist in (("locust", "locust"), ("httpx", "httpx"), ("websockets", "websockets"),
                       ("hdrhistogram", "hdrhistogram"), ("gevent", "gevent"), ("agentstream", "agentstream")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def histogram_path(transport: str, metric: str) -> str:
    return f"histograms/{transport}.{metric}.hdr"


def ordered(names: Iterable[str], order: Sequence[str] = ()) -> list[str]:
    """``names`` in a stable order: first as in ``order`` (the profile's), then as in
    the transport registry, then by name. The results list transports so, and the
    first one is the reports' reference."""
    rank = {n: i for i, n in enumerate([*order, *(t for t in TRANSPORTS if t not in order)])}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def build_summary(
    transports: Mapping[str, TransportAccumulator],
    *,
    config: Mapping[str, Any],
    started_wall: float,
    duration_s: float,
    cpu: Iterable[CpuStats] = (),
    clock_shared: bool = True,
    extra: Mapping[str, Any] | None = None,
    order: Sequence[str] = (),
) -> dict[str, Any]:
    """summary.json as a dict (pure). ``transports`` holds only the transports that
    ran; they are listed as :func:`ordered` puts them."""
    cpu_section = cpu_verdict(cpu)
    body: dict[str, Any] = {}
    negative = 0
    with_ts = 0
    for t in ordered(transports, order):
        s = transports[t].summary()
        if duration_s > 0:
            s["run_events_per_s"] = round(s["events"] / duration_s, 3)
            s["run_streams_per_s"] = round(s["streams"] / duration_s, 3)
        else:
            s["run_events_per_s"] = s["run_streams_per_s"] = None
        body[t] = s
        negative += s["delivery_negative"]
        with_ts += s["events_with_ts"]
    note = CLOCK_NOTE
    if with_ts == 0:
        note += "; no event carried ts, so there is no delivery latency"
    elif negative:
        note += (f"; {negative} of {with_ts} events arrived before their ts (counted as 0): "
                 "the clocks differ or ts is rounded")
    warnings = [w for w in [cpu_section.get("warning")] if w]
    summary = {
        "format": Format.RESULTS.value,
        "config": dict(config),
        "versions": versions(),
        "started_at": iso(started_wall),
        "duration_s": round(duration_s, 3),
        "clock": {"shared": clock_shared, "note": note},
        "cpu": cpu_section,
        "warnings": warnings,
        "units": {"histograms": dict(UNITS), "summary": "times in ms (keys *_ms), bytes in bytes"},
        "transports": body,
        "histograms": {t: {m: histogram_path(t, m) for m in METRICS} for t in body},
    }
    if extra:
        summary.update(extra)
    return summary


def timeline_rows(transports: Mapping[str, TransportAccumulator], started_wall: float) -> list[list[Any]]:
    """Rows ``t_s, transport, streams, events`` (t_s: whole seconds since the start)."""
    base = int(started_wall)
    rows = []
    for t, acc in transports.items():
        for sec in sorted(acc.timeline):
            s, e = acc.timeline[sec]
            rows.append([sec - base, t, s, e])
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120] or "node"


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


SAMPLES_FILE = "samples.json"
"""Per transport: ``seen`` complete streams and a uniform sample of at most
``load.metrics.SAMPLE_CAP`` of them (``items``: each stream's own figures)."""


def write_summary_dir(
    directory: Path,
    transports: Mapping[str, TransportAccumulator],
    summary: Mapping[str, Any],
    started_wall: float,
) -> None:
    """summary.json, the histograms and timeline.csv of one summary into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for t, acc in transports.items():
        for m in METRICS:
            p = directory / histogram_path(t, m)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(acc.metrics[m].encode() + "\n", encoding="ascii")
    with open(directory / "timeline.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "transport", "streams", "events"])
        w.writerows(timeline_rows(transports, started_wall))
    # the streams the report's bootstrap intervals resample (docs/results-format.md)
    _write_json(directory / SAMPLES_FILE, {"transports": {t: acc.samples.to_wire() for t, acc in transports.items()}})
    _write_json(directory / "summary.json", summary)


def write_results(
    directory: str | Path,
    run: RunAccumulator,
    *,
    config: Mapping[str, Any],
    started_wall: float,
    duration_s: float,
    cpu: Iterable[CpuStats] = (),
    levels: Mapping[int, tuple[float, float]] | None = None,
    extra: Mapping[str, Any] | None = None,
    order: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the whole results directory and return the top summary.

    ``levels`` maps a sweep level (users) to its (start, end) wall clock; each
    level gets ``levels/<users>/`` with its own summary, histograms and timeline.
    ``order`` is the profile's order of the transports (see :func:`ordered`).
    """
    out = Path(directory)
    cpu = list(cpu)
    total = run.total()
    level_rows = []
    for n in sorted(set(run.levels()) | set(levels or {})):
        start, end = (levels or {}).get(n, (started_wall, started_wall + duration_s))
        lconfig = {**config, "users": n}
        lsum = build_summary(run.level(n), config=lconfig, started_wall=start, duration_s=max(0.0, end - start),
                             cpu=cpu, extra={"level": n}, order=order)
        write_summary_dir(out / "levels" / str(n), run.level(n), lsum, start)
        level_rows.append({"users": n, "dir": f"levels/{n}", "started_at": iso(start),
                           "duration_s": round(max(0.0, end - start), 3)})
    summary = build_summary(total, config=config, started_wall=started_wall, duration_s=duration_s, cpu=cpu,
                            extra={**(extra or {}), "levels": level_rows}, order=order)
    write_summary_dir(out, total, summary, started_wall)
    return summary


def print_brief(summary: Mapping[str, Any], file: Any = None) -> None:
    """A few lines on stderr at the end of a run: where the results are and the main figures."""
    file = file or sys.stderr
    for t, s in summary.get("transports", {}).items():
        m = s["metrics"]
        pe = s["bytes"]["per_event"]
        print(f"[agentstream] {t}: {s['streams']} streams, {s['events']} events, errors "
              f"{s['errors']['failed_streams']}; ttfe p50 {m['ttfe']['p50_ms']} ms p99 {m['ttfe']['p99_ms']} ms; "
              f"delivery p50 {m['delivery']['p50_ms']} ms p99 {m['delivery']['p99_ms']} ms; "
              f"framing {pe['framing']} B/event", file=file)
    for w in summary.get("warnings", []):
        print(f"[agentstream] WARNING: {w}", file=file)
