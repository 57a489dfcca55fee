"""``python -m reports compare``: the transports of load runs side by side.

:func:`build_report` reads results directories, builds the report once as
blocks (:mod:`reports.render`) and writes ``report.md`` (plots beside it in
``plots/``), a self-contained ``report.html`` and ``summary.json``.

``summary.json`` keeps the ``transports`` layout of a results summary, so the
gate reads it like a load run's own summary, plus ``transports[T].derived``
(figures the report computes, e.g. ``sse.derived.header_bytes_per_event``),
the claims, the conformance totals and the sweep.

Several results directories: for each transport, the first directory that ran it
supplies the side-by-side figures. That lets an SSE-only run and a WS-only run
(each alone on the CPU) be compared; every directory is listed, and a
concurrency sweep is drawn from the levels of step runs, or else from runs with
different numbers of users.

Every table and plot has a column or a line per transport of the results, in
their order, and a ratio column per pair (:mod:`reports.transports`); the
first results directory's profile facts (``config.parity``,
``config.timestamp_field``) choose the pairs and name the timestamp.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from conformance.contracts import Format
from conformance.wire import label
from reports import conditions, plots
from reports import stats
from reports.claims import SOURCE as CLAIMS_SOURCE
from reports.claims import Claim, evaluate_claims
from reports.metrics import definitions
from reports.render import Block, Bullets, Code, Heading, Image, Para, Table, to_html, to_markdown
from reports.rules import fmt
from reports.results import ReportInputError, Run, load_conformance, load_run
from reports.tables import (HEADLINE, config_table, conformance_frame, derive, headline_table, latency_table,
                            other_table,
                            sweep_frame, throughput_frame, value_columns)
from reports.transports import columns, listing, pairs, ratio_column

__all__ = ["GateRulesError", "ReportInputError", "build_report", "build", "merged_transports"]


class GateRulesError(ReportInputError):
    """The gate rules (or baseline) given to the report are bad input."""


def merged_transports(runs: Sequence[Run]) -> tuple[dict[str, Any], dict[str, Run]]:
    """The transports of the comparison, each from the first run that ran it, in
    the order the runs list them, with ``derived`` figures added; and which run
    each one came from."""
    out: dict[str, Any] = {}
    source: dict[str, Run] = {}
    for run in runs:
        for t in run.transports():
            if t in out:
                continue
            tr = copy.deepcopy(run.summary["transports"][t])
            tr["derived"] = derive(tr, run.summary.get("duration_s"))
            out[t] = tr
            source[t] = run
    if not out:
        # Nothing ran a stream: keep whatever the first run says, so the tables show zeros.
        for t, tr in (runs[0].summary.get("transports") or {}).items():
            tr = copy.deepcopy(tr)
            tr["derived"] = derive(tr, runs[0].summary.get("duration_s"))
            out[t] = tr
            source[t] = runs[0]
    return out, source


def _sweep_points(runs: Sequence[Run]) -> list[tuple[int, str, Mapping[str, Any], Any]]:
    """(users, source, summary, its time histograms) of every sweep level, or of
    every run when runs with different numbers of users are compared."""
    points = [(users, f"{run.label}/levels/{users}", s, run.level_histograms.get(users))
              for run in runs for users, s in run.levels]
    if points:
        return points
    by_users = [(run.users, run.label, run.summary, run.histograms) for run in runs if run.users is not None]
    if len({p[0] for p in by_users}) >= 2:
        return by_users  # type: ignore[return-value]
    return []


def _iso_seconds(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _level_marks(run: Run) -> list[tuple[float, str]]:
    """Where each level of a sweep began, in seconds since the run's start."""
    start = _iso_seconds(run.summary.get("started_at"))
    marks = []
    for entry in run.summary.get("levels") or []:
        t = _iso_seconds(entry.get("started_at")) if isinstance(entry, Mapping) else None
        if start is not None and t is not None:
            marks.append((t - start, f"{entry.get('users')} users"))
    return marks


def _claims_table(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([{
        "claim (SSE vs WS)": c.claim,
        "transports": f"{c.sse_transport or '—'} vs {c.ws_transport or '—'}",
        "measured as": f"{c.figure}: {c.method}",
        "SSE measured": c.sse_measured,
        "WS measured": c.ws_measured,
        "unit": c.unit,
        "ratio SSE/WS": c.measured_ratio,
        "95 % interval": (f"{fmt(c.interval.low)} to {fmt(c.interval.high)}" if c.interval is not None else None),
        "streams SSE / WS": (f"{c.interval.n_a} / {c.interval.n_b}" if c.interval is not None else None),
        "claimed ratio": c.claimed_ratio,
        "verdict": c.text,
    } for c in claims])


def _ratio_intervals(transports: Mapping[str, Any], prs: Sequence[tuple[str, str]],
                     samples: Mapping[str, Sequence[Any]] | None) -> pd.DataFrame:
    """Every headline ratio with its bootstrap interval over streams and its sample sizes."""
    cols = columns(list(transports))
    rows = []
    for label_, path, unit in HEADLINE:
        figure = stats.FIGURES.get(path)
        if figure is None:
            continue
        for p in prs:
            a, b = (samples or {}).get(p[0]) or [], (samples or {}).get(p[1]) or []
            iv = stats.ratio_interval(a, b, figure) if a and b else None
            rows.append({"ratio": ratio_column(p, cols), "of": label_,
                         "value (from the samples)": iv.value if iv else None,
                         "95 % interval": f"{fmt(iv.low)} to {fmt(iv.high)}" if iv else "no samples",
                         f"streams ({cols[p[0]]} / {cols[p[1]]})": f"{len(a)} / {len(b)}"})
    return pd.DataFrame(rows)


def _conformance_blocks(report: Mapping[str, Any], transports: Sequence[str]) -> list[Block]:
    rules = report.get("rules") or []
    totals = report.get("totals") or {}
    profile = report.get("profile") or {}
    blocks: list[Block] = [Heading("Conformance"), Para(
        f"Backend `{report.get('backend', '?')}`, profile `{profile.get('name', '?')}`, "
        f"started {report.get('started_at', '?')}, {report.get('duration_s', '?')} s. "
        f"Totals: **{totals.get('pass', 0)} pass, {totals.get('fail', 0)} fail, "
        f"{totals.get('warn', 0)} warn, {totals.get('skip', 0)} skip**. "
        "A broken MUST is a failure, a broken SHOULD a warning.")]
    table = conformance_frame(rules, transports)
    if not table.empty:
        blocks.append(Table(table))
    else:
        blocks.append(Para("The conformance report holds no rules."))
    return blocks + _failure_blocks(report)


def _conformance_summary(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "backend": report.get("backend"),
        "profile": (report.get("profile") or {}).get("name"),
        "totals": report.get("totals"),
        "failed": sorted({str(r.get("id")) for r in report.get("rules") or []
                          if isinstance(r, Mapping) and r.get("verdict") == "fail"}),
    }


def _verdict_blocks(conformance: Mapping[str, Any] | None, gate: Any, claims: Sequence[Claim]) -> list[Block]:
    """What the reader came for, first: conformance, gate and claims in a few lines."""
    items = []
    if conformance is not None:
        t = conformance.get("totals") or {}
        failed = _conformance_summary(conformance)["failed"]  # type: ignore[index]
        word = "FAIL" if t.get("fail") else "PASS"
        items.append(f"**conformance: {word}**: {t.get('pass', 0)} pass, {t.get('fail', 0)} fail, "
                     f"{t.get('warn', 0)} warn, {t.get('skip', 0)} skip"
                     + (f" (failing: {', '.join(failed)})" if failed else ""))
    else:
        items.append("conformance: not run (no `--conformance` report given)")
    if gate is not None:
        items.append(f"**gate: {'PASS' if gate.ok else 'FAIL'}**: {len(gate.outcomes) - len(gate.failed)} of "
                     f"{len(gate.outcomes)} rules hold"
                     + (f" (failing: {', '.join(f'`{o.rule.text}`' for o in gate.failed)})" if gate.failed else ""))
    else:
        items.append("gate: not applied here (no `--rules` given)")
    items.append("**claims**: " + "; ".join(f"{c.claim}: **{c.verdict}**" for c in claims))
    ok = (conformance is None or not (conformance.get("totals") or {}).get("fail")) and (gate is None or gate.ok)
    return [Heading("Verdict"), Bullets(items),
            Para("All green." if ok else "Something failed: see the sections below.", "" if ok else "warn")]


def _gate_blocks(gate: Any) -> list[Block]:
    rows = [{"rule": f"`{rule}`", "value": value, "limit": limit, "verdict": verdict,
             "why": o.rule.why or ""} for (rule, value, limit, verdict), o in zip(gate.rows(), gate.outcomes)]
    return [Heading("Gate"), Para(f"{gate.summary_line()}; the rules as given to `--rules`."),
            Table(pd.DataFrame(rows))]


def _failure_blocks(report: Mapping[str, Any]) -> list[Block]:
    """Every failing or warning check with its whole message and its reproduction lines."""
    out: list[Block] = []
    for r in report.get("rules") or []:
        if not isinstance(r, Mapping) or r.get("verdict") not in ("fail", "warn"):
            continue
        if not out:
            out.append(Heading("Failures and warnings, whole", 3))
        out.append(Para(f"**{r.get('id')}** [{r.get('transport') or 'all'}]: {r.get('verdict')}"))
        message = str(r.get("message") or "")
        if message:
            out.append(Code(message.splitlines()))
        repro = [str(x) for x in r.get("reproduce") or [] if isinstance(x, str)]
        if repro:
            out.append(Para("reproduce:"))
            out.append(Code(repro))
    return out


def build(runs: Sequence[Run], conformance: Mapping[str, Any] | None = None,
          title: str | None = None, gate_rules: Any = None,
          baseline: Any = None) -> tuple[list[Block], dict[str, Any], dict[str, bytes]]:
    """The report's blocks, its summary.json content and its plots (name → PNG).
    ``gate_rules`` (a rules file, ``"ci"``, or rule strings; with ``baseline``)
    puts the gate's verdicts in the report."""
    if not runs:
        raise ReportInputError("no results directory given")
    transports, source = merged_transports(runs)
    primary = runs[0].summary
    config = primary.get("config") or {}
    ts = config.get("timestamp_field") if isinstance(config.get("timestamp_field"), str) else None
    names = list(transports)
    prs = pairs(names, config.get("parity"))
    cols = columns(names)
    numeric = value_columns(transports, prs)
    title = title or f"{listing(names)}: agent stream report"
    claim_summary = {"transports": transports, "clock": primary.get("clock") or {}}
    samples = {t: src.samples[t] for t, src in source.items() if src.samples is not None and t in src.samples}
    claims = evaluate_claims(claim_summary, ts, samples)
    sweep_df = sweep_frame(_sweep_points(runs))
    tl = [throughput_frame(src.timeline, [t]) for t, src in source.items()]
    tl_df = pd.concat(tl, ignore_index=True) if tl else throughput_frame(None)
    histograms = {(t, m): h for t, src in source.items() for (tt, m), h in src.histograms.items() if tt == t}

    png: dict[str, bytes] = {}
    bytes_rows = {t: {"payload": tr.get("bytes", {}).get("per_event", {}).get("payload"),
                      "framing": tr.get("bytes", {}).get("per_event", {}).get("framing"),
                      "headers": tr["derived"].get("header_bytes_per_event")} for t, tr in transports.items()}
    for name, data in (("latency_cdf", plots.latency_cdf(histograms, transports, names)),
                       ("bytes_per_event", plots.bytes_per_event(bytes_rows)),
                       ("p95_vs_users", plots.sweep(sweep_df, names)),
                       ("throughput", plots.throughput(tl_df, _level_marks(runs[0]), names))):
        if data is not None:
            png[f"plots/{name}.png"] = data

    b: list[Block] = [Heading(title, 1)]
    if len({id(src) for src in source.values()}) == 1:
        sources = f"`{next(iter(source.values())).path}`"
    else:
        sources = ", ".join(f"{label(t)} from `{src.path}`" for t, src in source.items())
    b.append(Para(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} from {sources}."))

    gate_result = None
    if gate_rules is not None:
        from reports.gate import GateInputError, run_gate

        try:
            gate_result = run_gate({"transports": transports}, gate_rules, baseline=baseline)
        except GateInputError as exc:
            raise GateRulesError(f"gate: {exc}") from None
    b += _verdict_blocks(conformance, gate_result, claims)

    # At a glance
    b.append(Heading("At a glance"))
    head = headline_table(transports, prs)
    if not head.empty:
        b.append(Table(head, numeric=numeric))
    iv_df = _ratio_intervals(transports, prs, samples)
    if not iv_df.empty:
        b.append(Para("The ratios with their 95 % bootstrap intervals over streams (seeded; each transport's "
                      "streams resampled on their own) and the streams each rests on:"))
        b.append(Table(iv_df, numeric=["value (from the samples)"]))
    b.append(Para("The seed's claims (details below):"))
    b.append(Bullets([f"**{c.claim}**: {c.text}" for c in claims]))
    expected = [*names, *(t for t in (config.get("paths") or {}) if t not in transports)]
    for t in expected:
        if not (transports.get(t) or {}).get("streams"):
            b.append(Para(f"Warning: no {label(t)} stream was measured in these results.", "warn"))
    cpu = primary.get("cpu") or {}
    if cpu.get("saturated") or cpu.get("warning"):
        b.append(Para(f"Warning: {cpu.get('warning') or 'the load generator saturated the CPU'} "
                      f"(max {cpu.get('max_percent')} %): latencies include client queueing.", "warn"))
    if (primary.get("clock") or {}).get("shared") is False:
        b.append(Para("Warning: client and server do not share a clock; delivery latency is not valid.", "warn"))
    b += [Para(f"Warning: {w}.", "warn") for w in conditions.clock_warnings(runs)]

    # Configuration
    b.append(Heading("Configuration and versions"))
    labels = [run.label for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{i}: {run.path}" for i, run in enumerate(runs, 1)]
    b.append(Table(config_table([(run_label, run.summary) for run_label, run in zip(labels, runs)])))

    # Side by side
    b.append(Heading(listing(names, " against ")))
    ratio_words = "; ".join(f"**{ratio_column(p, cols)}** above 1 means {cols[p[1]]} was lower" for p in prs)
    b.append(Para("Latencies in milliseconds over every stream (or event) of the run"
                  + (f"; {ratio_words}" if ratio_words else "") + ". See Definitions at the end."))
    lat = latency_table(transports, prs)
    b.append(Table(lat.drop(columns="path"), numeric=numeric))
    for section, heading in (("throughput", "Throughput"), ("bytes", "Bytes"), ("errors", "Errors")):
        df = other_table(transports, section, prs, ts)
        b.append(Heading(heading, 3))
        b.append(Table(df.drop(columns="path"), numeric=numeric))
    b += conditions.blocks(runs)  # per network path, when the runs recorded one (reports/conditions.py)

    # Plots
    b.append(Heading("Plots"))
    captions = {
        "plots/latency_cdf.png": "Latency distributions (CDF) per transport: delivery, time to first event, "
                                 "connect, and the inter-event gap (which is not a latency).",
        "plots/bytes_per_event.png": "Bytes per event, stacked: payload, framing, and the head/handshake "
                                     "amortised over the events of a stream.",
        "plots/p95_vs_users.png": "p95 latency against the number of concurrent users (concurrency sweep).",
        "plots/throughput.png": "Events received per second over the run, per transport.",
    }
    for name, data in png.items():
        b.append(Image(name, data, captions[name]))
    if "plots/p95_vs_users.png" not in png:
        b.append(Para("No concurrency sweep in these results (run `python -m load` with a step shape, "
                      "or compare runs with different numbers of users) — no p95-against-users plot."))
    if not sweep_df.empty and sweep_df["users"].nunique() >= 2:
        b.append(Heading("Concurrency sweep", 3))
        b.append(Table(sweep_df, numeric=["ttfe_p95_ms", "delivery_p95_ms", "gap_p95_ms", "streams"]))

    # Claims
    b.append(Heading("The seed's claims against the measurements"))
    b.append(Para("Each claim says SSE is some number of times worse than WebSocket; the verdict is on that "
                  "ratio, because absolute figures depend on the backend and the network. **confirmed**: at "
                  "least half the claimed advantage was measured (measured − 1 ≥ (claimed − 1) / 2); "
                  "**contradicted**: WebSocket was worse by more than 10 %; **not confirmed**: in between. "
                  "SSE and WebSocket stand for the first transport of the results of each binding (column "
                  "transports). "
                  "Bytes per 100 events = wire bytes per event × 100 (the response head / handshake excluded); "
                  "duration per 100 events = p50 stream duration × 100 / p50 events per stream — stream "
                  "duration is mostly set by how fast the backend produces events, on both transports."))
    b.append(Para("A verdict is given only when the ratio's whole 95 % interval (bootstrap over streams) is on "
                  "one side of the threshold: otherwise it is **undecided**, with the further streams per "
                  "transport an interval of the same spread would need."))
    b.append(Para("Where the claims come from: " + CLAIMS_SOURCE))
    b.append(Table(_claims_table(claims), numeric=["SSE measured", "WS measured", "ratio SSE/WS",
                                                   "claimed ratio"]))

    if gate_result is not None:
        b += _gate_blocks(gate_result)
    if conformance is not None:
        b += _conformance_blocks(conformance, names)

    if len(runs) > 1:
        b.append(Heading("Every run"))
        for run in runs:
            b.append(Heading(f"`{run.path}`", 3))
            rt = {t: dict(tr, derived=derive(tr, run.summary.get("duration_s")))
                  for t, tr in (run.summary.get("transports") or {}).items()}
            run_pairs = pairs(list(rt), (run.summary.get("config") or {}).get("parity"))
            b.append(Table(latency_table(rt, run_pairs).drop(columns="path"), numeric=value_columns(rt, run_pairs)))

    b.append(Heading("Definitions"))
    b.append(Para("Per stream and per transport; t(...) is `time.perf_counter()` on the client, bytes are counted "
                  "at the socket."))
    b.append(Table(pd.DataFrame([{"metric": n, "formula": f, "meaning": m} for n, f, m in definitions(ts)])))

    warnings = [f"`{run.path}`: {w}" for run in runs
                for w in [*(run.summary.get("warnings") or []), *run.warnings] if isinstance(w, str)]
    if warnings:
        b.append(Heading("Warnings"))
        b.append(Bullets(warnings))

    summary = {
        "format": Format.REPORT.value,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sources": {t: str(src.path) for t, src in source.items()},
        "runs": [{"path": str(run.path), "config": run.summary.get("config"),
                  "started_at": run.summary.get("started_at"), "duration_s": run.summary.get("duration_s"),
                  "levels": [u for u, _ in run.levels]} for run in runs],
        "config": primary.get("config"),
        "versions": primary.get("versions"),
        "started_at": primary.get("started_at"),
        "duration_s": primary.get("duration_s"),
        "clock": primary.get("clock"),
        "cpu": primary.get("cpu"),
        "transports": transports,
        "pairs": [list(p) for p in prs],
        "comparison": {
            "latency": lat.drop(columns=["metric"]).to_dict(orient="records"),
            **{sec: other_table(transports, sec, prs, ts).drop(columns=["metric"]).to_dict(orient="records")
               for sec in ("throughput", "bytes", "errors")},
        },
        "claims": [c.to_dict() for c in claims],
        "ratio_intervals": iv_df.to_dict(orient="records"),
        "gate": gate_result.to_dict() if gate_result is not None else None,
        "conformance": _conformance_summary(conformance),
        "sweep": sweep_df.to_dict(orient="records"),
        "network": conditions.summary(runs),
        "plots": sorted(png),
    }
    return b, summary, png


def _jsonable(x: Any) -> Any:
    """NaN (from pandas) becomes null, so summary.json is strict JSON."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):  # numpy scalar
        return _jsonable(x.item())
    return x


def build_report(results_dirs: Sequence[str | Path] | str | Path, out_dir: str | Path,
                 conformance: str | Path | Mapping[str, Any] | None = None,
                 title: str | None = None, gate_rules: Any = None, baseline: Any = None) -> Path:
    """Write report.md, report.html, summary.json (and plots/) to ``out_dir``;
    return the path of report.html. Bad input raises ReportInputError."""
    if isinstance(results_dirs, (str, Path)):
        results_dirs = [results_dirs]
    runs = [load_run(d) for d in results_dirs]
    conf = conformance if isinstance(conformance, Mapping) or conformance is None else load_conformance(conformance)
    blocks, summary, png = build(runs, conf, title, gate_rules, baseline)
    out = Path(out_dir)
    try:
        (out / "plots").mkdir(parents=True, exist_ok=True)
        for name, data in png.items():
            (out / name).write_bytes(data)
        (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        html_path = out / "report.html"
        page_title = title or next((b.text for b in blocks if isinstance(b, Heading)), "agent stream report")
        html_path.write_text(to_html(blocks, page_title), encoding="utf-8")
        (out / "summary.json").write_text(
            json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ReportInputError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return html_path
