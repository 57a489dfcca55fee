"""Reading results directories (:attr:`Format.RESULTS`, docs/results-format.md).

The only module of the report that reads a results directory: everything after
it works on the plain :class:`Run` objects. A broken directory raises
:class:`ReportInputError` with a message for the user.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conformance.contracts import RECORDED, Format, MetricKind


class ReportInputError(ValueError):
    """A results directory or conformance file the report cannot use (bad input)."""


@dataclass
class Histogram:
    """A decoded HdrHistogram: distinct values (milliseconds) and their counts."""

    values_ms: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, fraction of values <= each value), for a step plot."""
        cum = np.cumsum(self.counts)
        return self.values_ms, cum / cum[-1]


@dataclass
class Run:
    """One results directory, read."""

    path: Path
    summary: dict[str, Any]
    levels: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    timeline: pd.DataFrame | None = None
    histograms: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    samples: dict[str, list[dict[str, Any]]] | None = None
    """Transport -> a uniform sample of its complete streams' figures (``samples.json``;
    ``d`` as an array), for the bootstrap intervals; None when the run has none."""
    level_histograms: dict[int, dict[tuple[str, str], Histogram]] = field(default_factory=dict)
    """Per sweep level, its time histograms (the sweep table merges them)."""

    @property
    def label(self) -> str:
        return self.path.name or str(self.path)

    @property
    def users(self) -> int | None:
        users = (self.summary.get("config") or {}).get("users")
        return users if isinstance(users, int) else None

    def transports(self) -> list[str]:
        """Transports that ran at least one stream in this run."""
        out = []
        for name, t in (self.summary.get("transports") or {}).items():
            if isinstance(t, dict) and (t.get("streams") or 0) > 0:
                out.append(name)
        return out


def read_json_object(path: Path, what: str, error: type[Exception] = ReportInputError) -> dict[str, Any]:
    """A JSON object from a file, or ``error`` saying plainly why not (the gate
    passes its own error class): never a traceback on a bad file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"cannot read {what}: {path} does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise error(f"cannot read {what} {str(path)!r}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} {str(path)!r} is not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{what} {str(path)!r} is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise error(f"{what} {str(path)!r}: expected a JSON object")
    return data


def check_summary(summary: dict[str, Any], where: str) -> None:
    """Raise unless ``summary`` looks like a results summary (:attr:`Format.RESULTS`)."""
    fmt = summary.get("format")
    if fmt != Format.RESULTS.value:
        raise ReportInputError(f"{where}: format is {fmt!r}, expected {Format.RESULTS.value!r}")
    transports = summary.get("transports")
    if not isinstance(transports, dict) or not transports:
        raise ReportInputError(f"{where}: no 'transports' section: the load run recorded nothing")
    for name, t in transports.items():
        if not isinstance(t, dict):
            raise ReportInputError(f"{where}: transports.{name} must be an object")
        for key in ("streams", "events"):
            if t.get(key) is not None and finite(t.get(key)) is None:
                raise ReportInputError(f"{where}: transports.{name}.{key} must be a number, not {t.get(key)!r}")
        for key in ("metrics", "bytes", "errors", "warnings"):
            _check_type(t, key, dict, "an object", f"{where}: transports.{name}")
        for key in ("per_stream", "per_event"):
            _check_type(t.get("bytes") or {}, key, dict, "an object", f"{where}: transports.{name}.bytes")
        for section in ("errors", "warnings"):
            _check_type(t.get(section) or {}, "rules", dict, "an object", f"{where}: transports.{name}.{section}")
    # the other sections the report reads: the wrong type would end in a traceback
    for key in ("config", "clock", "cpu", "versions", "histograms"):
        _check_type(summary, key, dict, "an object", where)
    for key in ("levels", "warnings"):
        _check_type(summary, key, list, "a list", where)
    if summary.get("duration_s") is not None and finite(summary.get("duration_s")) is None:
        raise ReportInputError(f"{where}: duration_s must be a number, not {summary.get('duration_s')!r}")


def _check_type(node: dict[str, Any], key: str, kind: type, name: str, where: str) -> None:
    value = node.get(key)
    if value is not None and not isinstance(value, kind):
        raise ReportInputError(f"{where}: {key} must be {name}, not {type(value).__name__}")


def decode_histogram(encoded: str | bytes, scale: float) -> Histogram:
    """Values as recorded, divided by the metric's ``hdr_scale`` (microseconds to
    milliseconds for a time), with their counts."""
    from hdrh.histogram import HdrHistogram

    if isinstance(encoded, str):
        encoded = encoded.strip().encode("ascii")
    h = HdrHistogram.decode(encoded)
    pairs = [(it.value_iterated_to, it.count_at_value_iterated_to) for it in h.get_recorded_iterator()]
    if not pairs:
        return Histogram(np.array([]), np.array([]))
    values, counts = zip(*pairs)
    return Histogram(np.asarray(values, dtype=float) / scale, np.asarray(counts, dtype=np.int64))


TIME_METRICS: dict[str, float] = {m.name: m.hdr_scale or 1.0 for m in RECORDED if m.kind is MetricKind.TIME}
"""The recorded time metrics (the ones the report plots), with their histogram scale."""


def _histograms(root: Path, summary: dict[str, Any], warnings: list[str]) -> dict[tuple[str, str], Histogram]:
    """Time histograms named in the summary, plus any ``histograms/T.M.hdr`` it does not name."""
    files: dict[tuple[str, str], Path] = {}
    for transport, metrics in (summary.get("histograms") or {}).items():
        if isinstance(metrics, dict):
            for metric, rel in metrics.items():
                if isinstance(rel, str) and metric in TIME_METRICS:
                    files[(transport, metric)] = root / rel
    hdir = root / "histograms"
    if hdir.is_dir():
        for f in sorted(hdir.glob("*.hdr")):
            parts = f.name[: -len(".hdr")].split(".", 1)
            if len(parts) == 2 and parts[1] in TIME_METRICS:
                files.setdefault((parts[0], parts[1]), f)
    out: dict[tuple[str, str], Histogram] = {}
    for key, f in files.items():
        try:
            h = decode_histogram(f.read_text(encoding="ascii"), TIME_METRICS[key[1]])
        except FileNotFoundError:
            warnings.append(f"histogram {f} named in summary.json is missing")
            continue
        except Exception as exc:  # a corrupt histogram costs one plot, not the report
            warnings.append(f"histogram {f} could not be decoded ({type(exc).__name__}: {exc})")
            continue
        if h.total:
            out[key] = h
    return out


def _timeline(root: Path, warnings: list[str]) -> pd.DataFrame | None:
    f = root / "timeline.csv"
    if not f.exists():
        return None
    try:
        df = pd.read_csv(f)
    except Exception as exc:
        warnings.append(f"{f} could not be read ({type(exc).__name__}: {exc})")
        return None
    missing = {"t_s", "transport", "events"} - set(df.columns)
    if missing:
        warnings.append(f"{f} lacks columns {sorted(missing)}")
        return None
    return df


def load_run(path: str | Path) -> Run:
    """Read a results directory (or the path of its summary.json)."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    if not p.is_dir():
        raise ReportInputError(f"results directory {str(path)!r} does not exist")
    summary = read_json_object(p / "summary.json", f"results directory {str(path)!r}")
    check_summary(summary, str(p / "summary.json"))
    warnings: list[str] = []
    levels: list[tuple[int, dict[str, Any]]] = []
    for entry in summary.get("levels") or []:
        try:
            users = int(entry["users"])
            level = read_json_object(p / entry["dir"] / "summary.json", f"level {users}")
            check_summary(level, str(p / entry["dir"] / "summary.json"))
        except (KeyError, TypeError, ValueError) as exc:
            warnings.append(f"level {entry!r} skipped: {exc}")
            continue
        levels.append((users, level))
    levels.sort(key=lambda x: x[0])
    level_hist = {users: _histograms(p / f"levels/{users}", level, warnings) for users, level in levels}
    return Run(p, summary, levels, _timeline(p, warnings), _histograms(p, summary, warnings), warnings,
               _samples(p, warnings), level_hist)


MAX_SAMPLES = 100_000
"""Streams read from samples.json per transport at most (the load run writes at most 1000)."""


def _samples(root: Path, warnings: list[str]) -> dict[str, list[dict[str, Any]]] | None:
    """samples.json of a results directory, checked; None when absent or unusable (then
    the claims are undecided for want of an interval, and a warning says why)."""
    f = root / "samples.json"
    if not f.exists():
        return None
    try:
        data = read_json_object(f, "stream samples")
        out: dict[str, list[dict[str, Any]]] = {}
        for t, part in (data.get("transports") or {}).items():
            items = part.get("items") if isinstance(part, dict) else None
            if not isinstance(items, list):
                raise ReportInputError(f"{f}: transports.{t}.items must be a list")
            rows = []
            for item in items[:MAX_SAMPLES]:
                if not isinstance(item, dict):
                    raise ReportInputError(f"{f}: transports.{t}: a stream sample must be an object")
                row = {k: finite(item.get(k)) for k in ("w", "p", "e", "u", "t", "c")}
                d = item.get("d") or []
                if not isinstance(d, list) or any(finite(v) is None for v in d):
                    raise ReportInputError(f"{f}: transports.{t}: 'd' must be a list of numbers")
                row["d"] = np.asarray(d, dtype=float)
                rows.append(row)
            out[str(t)] = rows
        return out
    except ReportInputError as exc:
        warnings.append(f"stream samples not used: {exc}")
        return None


def load_conformance(path: str | Path) -> dict[str, Any]:
    """A conformance report JSON (:attr:`Format.CONFORMANCE`)."""
    data = read_json_object(Path(path), "conformance report")
    if data.get("format") != Format.CONFORMANCE.value:
        raise ReportInputError(
            f"conformance report {path}: format is {data.get('format')!r}, expected {Format.CONFORMANCE.value!r}"
        )
    if not isinstance(data.get("rules"), list):
        raise ReportInputError(f"conformance report {path}: no 'rules' list")
    return data


def finite(x: Any) -> float | None:
    """A float, or None for anything that is not a finite number."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None
