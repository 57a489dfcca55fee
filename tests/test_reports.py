"""The comparison report: built from a results directory recorded by a real short
load run against the reference server, plus small hand-written directories for
what a short run cannot show (a concurrency sweep, separate SSE and WS runs)."""

from __future__ import annotations

import base64
import io
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from conformance.wire import TRANSPORTS
from conformance.wire.sse import SSETransport
from reports.claims import evaluate_claims, verdict
from reports.cli import _parser, load_command
from reports.compare import ReportInputError, build_report
from reports.gate import CI_RULES, run_gate
from reports.plots import PALETTE, colors, is_png, latency_cdf
from reports.rules import fmt
from reports.transports import columns, pairs

ROOT = Path(__file__).resolve().parents[1]
RUN_SECONDS = 4


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


# ---- a real short run ------------------------------------------------------------

@pytest.fixture(scope="session")
def real_results(reference_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results directory written by ``python -m load``: 2 users (one SSE, one WS)
    for a few seconds against the session's reference server."""
    out = tmp_path_factory.mktemp("load") / "results"
    cmd = [sys.executable, "-m", "load", "--host", reference_url, "--headless", "-u", "2", "-r", "2",
           "-t", f"{RUN_SECONDS}s", "--results-dir", str(out), "--only-summary", "--loglevel", "WARNING"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert (out / "summary.json").exists(), f"load run wrote no results:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="session")
def real_report(real_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    conf = out / "conformance.json"
    conf.write_text(json.dumps(CONFORMANCE))
    env = _env()
    proc = subprocess.run([sys.executable, "-m", "reports", "compare", str(real_results), "-o", str(out),
                           "--conformance", str(conf)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(out / "report.html") in proc.stdout
    return out


CONFORMANCE = {
    "format": "agentstream-conformance/1", "backend": "http://127.0.0.1:8000",
    "profile": {"name": "agent-stream/1", "path": "conformance/profiles/agent-stream-1.yaml"},
    "versions": {"python": "3.11"}, "started_at": "2026-11-24T06:00:00Z", "duration_s": 12.3,
    "rules": [
        {"id": "ORDER-SEQ", "level": "MUST", "verdict": "pass", "transport": "both", "message": "",
         "duration_s": 0.01, "nodeid": "a"},
        {"id": "SSE-NO-BUFFERING", "level": "MUST", "verdict": "fail", "transport": "sse",
         "message": "all 100 events arrived after the last ts", "duration_s": 1.0, "nodeid": "b"},
        {"id": "SSE-X-ACCEL", "level": "SHOULD", "verdict": "warn", "transport": "sse",
         "message": "no X-Accel-Buffering: no", "duration_s": 0.1, "nodeid": "c"},
    ],
    "totals": {"pass": 1, "fail": 1, "warn": 1, "skip": 0},
}


def test_report_files_exist(real_report: Path) -> None:
    for name in ("report.md", "report.html", "summary.json"):
        assert (real_report / name).stat().st_size > 0, name
    summary = json.loads((real_report / "summary.json").read_text())
    assert summary["format"] == "agentstream-report/1"
    assert set(summary["transports"]) == {"sse", "ws"}
    assert {"plots/latency_cdf.png", "plots/bytes_per_event.png", "plots/throughput.png"} <= set(summary["plots"])


def test_tables_carry_the_measured_figures(real_results: Path, real_report: Path) -> None:
    measured = json.loads((real_results / "summary.json").read_text())["transports"]
    md = (real_report / "report.md").read_text()
    page = (real_report / "report.html").read_text()
    for label, key in (("time to first event", "ttfe"), ("delivery latency", "delivery"),
                       ("connect", "connect"), ("inter-event gap (not a latency)", "gap")):
        for p in ("p50", "p95", "p99"):
            sse = measured["sse"]["metrics"][key][f"{p}_ms"]
            ws = measured["ws"]["metrics"][key][f"{p}_ms"]
            assert sse is not None and ws is not None, (key, p)
            assert f"| {label} | {p} | {fmt(sse)} | {fmt(ws)} |" in md, (label, p)
            assert f"<td>{label}</td><td>{p}</td><td class=\"num\">{fmt(sse)}</td>" in page
    for t in ("sse", "ws"):
        assert measured[t]["streams"] > 0 and measured[t]["events"] > 0
        framing = measured[t]["bytes"]["per_event"]["framing"]
        assert framing is not None and framing > 0
    row = (f"| framing bytes per event | B | {fmt(measured['sse']['bytes']['per_event']['framing'])} | "
           f"{fmt(measured['ws']['bytes']['per_event']['framing'])} |")
    assert row in md
    # The report's summary.json keeps the measured figures, for the gate.
    summary = json.loads((real_report / "summary.json").read_text())
    assert summary["transports"]["ws"]["metrics"]["ttfe"] == measured["ws"]["metrics"]["ttfe"]


def test_claims_use_measured_figures(real_results: Path, real_report: Path) -> None:
    measured = json.loads((real_results / "summary.json").read_text())["transports"]
    claims = {c["id"]: c for c in json.loads((real_report / "summary.json").read_text())["claims"]}
    assert set(claims) == {"latency", "bytes-per-100", "overhead", "duration-100"}
    assert claims["latency"]["sse_measured"] == measured["sse"]["metrics"]["delivery"]["p50_ms"]
    assert claims["overhead"]["ws_measured"] == measured["ws"]["bytes"]["per_event"]["framing"]
    assert claims["bytes-per-100"]["sse_measured"] == pytest.approx(measured["sse"]["bytes"]["per_event"]["wire"] * 100)
    for c in claims.values():
        # every ratio gets its interval over the run's streams, and a verdict only when it is clear
        assert c["interval"] is not None and c["interval"]["n"] == [measured["sse"]["streams_ok"],
                                                                    measured["ws"]["streams_ok"]], c
        assert c["interval"]["low"] <= c["measured_ratio"] * 1.01 and c["measured_ratio"] <= c["interval"]["high"] * 1.01
        assert c["verdict"] in {"confirmed", "not confirmed", "contradicted", "undecided"}, c
        if c["verdict"] == "undecided":
            assert c["text"].startswith("undecided: needs about ") and c["more_streams"] > 0
        else:
            assert c["text"].startswith(c["verdict"] + ": measured SSE ")
    md = (real_report / "report.md").read_text()
    assert claims["latency"]["text"] in md


def test_plots_are_valid_images(real_report: Path) -> None:
    page = (real_report / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    files = sorted((real_report / "plots").glob("*.png"))
    assert len(files) >= 3 and len(embedded) == len(files)
    for f in files:
        data = f.read_bytes()
        assert is_png(data), f
        img = matplotlib.image.imread(io.BytesIO(data), format="png")
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, (f, img.shape)
        assert img.std() > 0.01, f"{f} is blank"
        assert base64.b64encode(data).decode() in embedded, f"{f} is not embedded in report.html"


def test_html_is_self_contained(real_report: Path) -> None:
    page = (real_report / "report.html").read_text()
    assert "<style>" in page
    for needle in ("<link", "<script", "src=\"http", "src='http", "href=", "@import", "url("):
        assert needle not in page, needle
    assert 'src="plots/' not in page


def test_conformance_table(real_report: Path) -> None:
    md = (real_report / "report.md").read_text()
    assert "## Conformance" in md
    assert "| SSE-NO-BUFFERING | MUST | fail |  |  | fail | 1 fail | all 100 events arrived after the last ts |" in md
    assert "| ORDER-SEQ | MUST |  |  | pass | pass | 1 pass |  |" in md
    assert "1 pass, 1 fail, 1 warn, 0 skip" in md
    # Failures first.
    assert md.index("SSE-NO-BUFFERING") < md.index("SSE-X-ACCEL") < md.index("| ORDER-SEQ |")
    summary = json.loads((real_report / "summary.json").read_text())
    assert summary["conformance"]["failed"] == ["SSE-NO-BUFFERING"]


def test_definitions_are_formulas(real_report: Path) -> None:
    md = (real_report / "report.md").read_text()
    defs = md[md.index("## Definitions"):]
    assert "| inter-event gap | t(event i received) − t(event i−1 received), i ≥ 1 |" in defs
    assert "| delivery latency | wall clock at arrival of event i − ts of event i |" in defs
    assert "framing bytes per event | wire bytes per event − payload bytes per event" in defs


def test_ci_rules_hold_on_a_real_run(real_report: Path) -> None:
    """The committed CI rules pass on a healthy run of the reference server."""
    result = run_gate(real_report / "summary.json", CI_RULES)
    assert result.ok, result.table()


# ---- hand-written results directories ------------------------------------------------

def _stats(values: list[float], suffix: str = "_ms") -> dict:
    v = sorted(values)

    def q(f: float) -> float:
        return v[min(len(v) - 1, int(f * len(v)))]
    return {"count": len(v), f"min{suffix}": v[0], f"mean{suffix}": sum(v) / len(v), f"p50{suffix}": q(.5),
            f"p90{suffix}": q(.9), f"p95{suffix}": q(.95), f"p99{suffix}": q(.99), f"p99_9{suffix}": q(.999),
            f"max{suffix}": v[-1]}


def write_results_dir(root: Path, users: int = 2, transports: tuple[str, ...] = ("sse", "ws"),
                      latency_ms: float = 1.0, levels: tuple[int, ...] = (), config: dict | None = None) -> Path:
    """A small results directory in the documented format (docs/results-format.md)."""
    (root / "histograms").mkdir(parents=True, exist_ok=True)
    body, hists = {}, {}
    for i, t in enumerate(transports):
        lat = latency_ms * (1.5 if t == "sse" else 1.0) * (1 + users / 10)
        data = {"connect": [0.5 + k / 10 for k in range(5)], "ttfe": [lat * 3 + k for k in range(5)],
                "delivery": [lat * (1 + k / 50) for k in range(100)], "gap": [10 + k % 7 for k in range(95)],
                "duration": [1000.0 + k for k in range(5)]}
        metrics = {k: _stats(v) for k, v in data.items()}
        metrics["events_per_stream"] = _stats([20.0] * 5, "")
        metrics["events_per_s"] = _stats([20.0] * 5, "")
        hists[t] = {}
        for k, v in data.items():
            h = HdrHistogram(1, 3_600_000_000, 3)
            for x in v:
                h.record_value(int(x * 1000))
            (root / "histograms" / f"{t}.{k}.hdr").write_text(h.encode().decode() + "\n")
            hists[t][k] = f"histograms/{t}.{k}.hdr"
        framing = 20.0 if t == "sse" else 2.0
        body[t] = {"streams": 5, "events": 100, "metrics": metrics,
                   "bytes": {"wire_in": 5 * 200 + 100 * (150 + framing), "wire_out": 5 * 300, "payload": 15000,
                             "head_in": 1000, "head_out": 1500,
                             "per_stream": {"wire_in": 200 + 20 * (150 + framing), "wire_out": 300.0,
                                            "payload": 3000.0, "head_in": 200.0, "head_out": 300.0},
                             "per_event": {"wire": 150 + framing, "payload": 150.0, "framing": framing},
                             "framing_overhead_pct": 100 * framing / 150},
                   "errors": {"connect": 0, "timeout": 0, "protocol": 0, "rules": {}}}
    summary = {"format": "agentstream-results/1",
               "config": {"host": "http://127.0.0.1:8000", "users": users, "pace_s": 0.0,
                          "user_classes": ["SSEUser", "WSUser"], **(config or {})},
               "versions": {"python": "3.11"}, "started_at": "2026-11-24T06:00:00Z", "duration_s": 5.0,
               "clock": {"shared": True}, "cpu": {"max_percent": 50.0, "saturated": False, "warning": None},
               "transports": body, "histograms": hists, "levels": []}
    for n in levels:
        write_results_dir(root / "levels" / str(n), users=n, transports=transports, latency_ms=latency_ms,
                          config=config)
        summary["levels"].append({"users": n, "dir": f"levels/{n}"})
    with open(root / "timeline.csv", "w") as f:
        f.write("t_s,transport,streams,events\n")
        for s in range(5):
            for t in transports:
                f.write(f"{s},{t},1,{20 + s}\n")
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def test_sweep_plot_from_levels(tmp_path: Path) -> None:
    res = write_results_dir(tmp_path / "step", levels=(1, 5, 10))
    build_report([res], tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "plots/p95_vs_users.png" in summary["plots"]
    assert is_png((tmp_path / "out" / "plots" / "p95_vs_users.png").read_bytes())
    sweep = {(r["users"], r["transport"]): r for r in summary["sweep"]}
    assert set(sweep) == {(u, t) for u in (1, 5, 10) for t in ("sse", "ws")}
    # p95 of the 100 delivery values written for level 10, SSE, read from its histogram as
    # HdrHistogram reads one (the 95th of 100 values): 1.5 * 2 * (1 + 94/50), within HDR's 0.1 %
    assert sweep[(10, "sse")]["delivery_p95_ms"] == pytest.approx(1.5 * 2 * (1 + 94 / 50), rel=2e-3)
    assert "### Concurrency sweep" in (tmp_path / "out" / "report.md").read_text()


def test_runs_at_one_level_are_merged_as_histograms_not_averaged(tmp_path: Path) -> None:
    """Two runs of 2 users, one ten times slower: the sweep's p95 at 2 users is the
    p95 of all their events together (from the slow run), not the mean of two p95s."""
    fast = write_results_dir(tmp_path / "fast", users=2, latency_ms=1.0)
    slow = write_results_dir(tmp_path / "slow", users=2, latency_ms=10.0)
    other = write_results_dir(tmp_path / "four", users=4)
    build_report([fast, slow, other], tmp_path / "out")
    sweep = {(r["users"], r["transport"]): r for r in json.loads((tmp_path / "out" / "summary.json").read_text())["sweep"]}
    union = sorted([1.5 * 1.2 * (1 + k / 50) for k in range(100)] + [15 * 1.2 * (1 + k / 50) for k in range(100)])
    assert sweep[(2, "sse")]["delivery_p95_ms"] == pytest.approx(union[189], rel=2e-3)
    mean_of_p95 = (1.5 * 1.2 * (1 + 95 / 50) + 15 * 1.2 * (1 + 95 / 50)) / 2
    assert abs(sweep[(2, "sse")]["delivery_p95_ms"] - mean_of_p95) > 5
    assert sweep[(2, "sse")]["streams"] == 10


def test_no_sweep_no_sweep_plot(tmp_path: Path) -> None:
    build_report([write_results_dir(tmp_path / "r")], tmp_path / "out")
    assert not (tmp_path / "out" / "plots" / "p95_vs_users.png").exists()
    assert "No concurrency sweep" in (tmp_path / "out" / "report.md").read_text()


def test_separate_sse_and_ws_runs_are_compared(tmp_path: Path) -> None:
    sse = write_results_dir(tmp_path / "sse-only", transports=("sse",), latency_ms=2.0)
    ws = write_results_dir(tmp_path / "ws-only", transports=("ws",), latency_ms=1.0)
    build_report([sse, ws], tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sources"] == {"sse": str(sse), "ws": str(ws)}
    claims = {c["id"]: c for c in summary["claims"]}
    # SSE written at 2 ms * 1.5 * 1.2, WS at 1 ms * 1.2 (p50 of the 100 values: index 50).
    assert claims["latency"]["measured_ratio"] == pytest.approx(3.0)
    assert claims["overhead"]["sse_measured"] == 20.0 and claims["overhead"]["ws_measured"] == 2.0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Every run" in md
    assert "| setting | sse-only | ws-only |" in md


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="does not exist"):
        build_report([tmp_path / "nope"], tmp_path / "out")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "summary.json").write_text('{"format": "other/1"}')
    with pytest.raises(ReportInputError, match="expected 'agentstream-results/1'"):
        build_report([tmp_path / "odd"], tmp_path / "out")
    res = write_results_dir(tmp_path / "r")
    (tmp_path / "c.json").write_text('{"format": "x"}')
    with pytest.raises(ReportInputError, match="conformance report"):
        build_report([res], tmp_path / "out", conformance=tmp_path / "c.json")
    proc = subprocess.run([sys.executable, "-m", "reports", "compare", str(tmp_path / "nope"), "-o",
                           str(tmp_path / "out")], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


# ---- any number of transports ------------------------------------------------------------

THREE = ("sse", "ws", "sse2")  # sse2: a transport this installation does not register


def _table(md: str, first_column: str) -> list[str]:
    """The header row of every Markdown table whose first column is ``first_column``."""
    return [line for line in md.splitlines() if line.startswith(f"| {first_column} |")]


def test_three_transports_render_three_columns(tmp_path: Path) -> None:
    res = write_results_dir(tmp_path / "r", transports=THREE, levels=(1, 5))
    conf = dict(CONFORMANCE, rules=[*CONFORMANCE["rules"], {"id": "ORDER-SEQ", "level": "MUST", "verdict": "fail",
                                                            "transport": "sse2", "message": "seq 3 after 1"}])
    build_report([res], tmp_path / "out", conformance=conf)
    md = (tmp_path / "out" / "report.md").read_text()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["transports"]) == list(THREE)
    assert summary["pairs"] == [["sse", "ws"], ["sse", "sse2"]]  # the first transport is the reference
    figures = "SSE | WebSocket | sse2 | SSE / WebSocket | SSE / sse2 |"
    assert _table(md, "metric | stat") and all(h.endswith(figures) for h in _table(md, "metric | stat"))
    assert _table(md, "figure") == [f"| figure | unit | {figures}"]
    assert _table(md, "metric | unit") == [f"| metric | unit | {figures}"] * 3  # throughput, bytes, errors
    assert md.startswith("# SSE vs WebSocket vs sse2: agent stream report")
    delivery = summary["transports"]["sse2"]["metrics"]["delivery"]["p50_ms"]
    sse = summary["transports"]["sse"]["metrics"]["delivery"]["p50_ms"]
    row = next(r for r in summary["comparison"]["latency"] if r["path"] == "delivery.p50_ms")
    assert row["sse2"] == delivery and row["SSE / sse2"] == pytest.approx(sse / delivery)  # as the claims: SSE / other
    # the conformance table has a column per transport, sse2's verdict in its own
    header = _table(md, "rule")[0]
    assert header.startswith("| rule | level | SSE | WebSocket | sse2 | all / pairs | verdict |")
    assert "| ORDER-SEQ | MUST |  |  | fail | pass | fail | 1 fail, 1 pass | seq 3 after 1 |" in md
    # every plot is drawn, with a line, bar or curve per transport
    assert {"plots/latency_cdf.png", "plots/bytes_per_event.png", "plots/throughput.png",
            "plots/p95_vs_users.png"} <= set(summary["plots"])
    for name in summary["plots"]:
        assert is_png((tmp_path / "out" / name).read_bytes()), name
    assert {(r["users"], r["transport"]) for r in summary["sweep"]} == {(u, t) for u in (1, 5) for t in THREE}
    assert len(set(colors(THREE).values())) == 3


def test_plots_draw_every_transport_in_its_own_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    transports = {t: {"metrics": {"ttfe": {"min_ms": 1.0 + i, "p50_ms": 2.0 + i, "max_ms": 3.0 + i}}}
                  for i, t in enumerate(THREE)}
    lines: dict[str, str] = {}
    original = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):  # the colour each transport's line gets
        lines[kwargs["label"].split(" ")[0]] = kwargs["color"]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    assert is_png(latency_cdf({}, transports, list(THREE)))
    assert lines == {"SSE": PALETTE[0], "WebSocket": PALETTE[1], "sse2": PALETTE[2]}


def test_recorded_parity_pairs_choose_the_ratios(tmp_path: Path) -> None:
    res = write_results_dir(tmp_path / "r", transports=THREE, config={"parity": [["ws", "sse"], ["sse", "gone"]]})
    build_report([res], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert _table(md, "figure") == ["| figure | unit | SSE | WebSocket | sse2 | WebSocket / SSE |"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["pairs"] == [["ws", "sse"]]
    assert pairs(["a"]) == [] and pairs([]) == []
    assert columns(["sse", "sse2"]) == {"sse": "SSE", "sse2": "sse2"}


def test_the_timestamp_field_the_run_recorded_is_named(tmp_path: Path) -> None:
    res = write_results_dir(tmp_path / "r", config={"timestamp_field": "emitted_at"})
    build_report([res], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| delivery latency | wall clock at arrival of event i − emitted_at of event i |" in md
    assert "| events carrying emitted_at (for delivery latency) |" in md


def test_claims_look_the_transports_up_by_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The claims compare the bindings: a registered transport of the sse binding
    stands for SSE; an unregistered one with another name does not."""
    def tr(delivery: float) -> dict:
        return {"streams": 3, "metrics": {"delivery": {"p50_ms": delivery}}, "bytes": {"per_event": {"framing": 2.0}}}

    s = {"transports": {"sse-h3": tr(1.2), "ws": tr(0.9)}}
    assert {c.text for c in evaluate_claims(s)} == {"not measured: no SSE stream was measured"}

    class H3(SSETransport):
        name, label = "sse-h3", "SSE over h3"

    monkeypatch.setitem(TRANSPORTS, "sse-h3", H3())
    latency = evaluate_claims(s)[0]
    assert (latency.sse_transport, latency.ws_transport) == ("sse-h3", "ws")
    # no stream samples, no interval: no verdict either
    assert latency.sse_measured == 1.2 and latency.verdict == "undecided" and "no interval" in latency.text
    assert {c.text for c in evaluate_claims({"transports": {"sse-h3": tr(1.0)}})} == {
        "not measured: no WebSocket stream was measured"}


def test_agentstream_run_gives_the_profile_to_the_load_run(tmp_path: Path) -> None:
    args = _parser().parse_args(["run", "--profile", "my.yaml", "--users", "2", "--param", "dataset=sales"])
    cmd, users = load_command(args, ["sse", "ws", "sse2"], "http://127.0.0.1:9", tmp_path)
    assert users == 3  # one user per transport at least
    assert cmd[cmd.index("--profile-name") + 1] == "my.yaml" and cmd[cmd.index("--param") + 1] == "dataset=sales"
    plain, _ = load_command(_parser().parse_args(["run"]), ["sse", "ws"], "http://127.0.0.1:9", tmp_path)
    assert "--profile-name" not in plain


# ---- claim verdicts (pure) ------------------------------------------------------------

@pytest.mark.parametrize("claimed, measured, expected", [
    (4.0, 4.0, "confirmed"), (4.0, 2.5, "confirmed"), (4.0, 2.4, "not confirmed"),
    (4.0, 1.0, "not confirmed"), (4.0, 0.95, "not confirmed"), (4.0, 0.8, "contradicted"),
    (41.7, 7.0, "not confirmed"), (1.83, 1.0, "not confirmed"), (1.83, 1.5, "confirmed"),
    (4.0, None, "not measured"),
])
def test_claim_verdicts(claimed: float, measured: float | None, expected: str) -> None:
    assert verdict(claimed, measured) == expected


def same_stream(delivery_ms: float, events: int = 20) -> dict:
    """A stream sample whose every event arrived ``delivery_ms`` late."""
    return {"d": np.full(events, delivery_ms * 1000.0), "w": events * 150.0, "p": events * 140.0, "e": events,
            "u": 2e6, "t": 5000.0, "c": 1000.0}


def test_claim_text_is_plain() -> None:
    s = {"transports": {
        "sse": {"streams": 3, "metrics": {"delivery": {"p50_ms": 1.2}},
                "bytes": {"per_event": {"framing": 14.0, "wire": 134.0}}},
        "ws": {"streams": 3, "metrics": {"delivery": {"p50_ms": 0.9}},
               "bytes": {"per_event": {"framing": 2.0, "wire": 122.0}}},
    }}
    samples = {"sse": [same_stream(1.2)] * 3, "ws": [same_stream(0.9)] * 3}
    claims = {c.id: c for c in evaluate_claims(s, samples=samples)}
    assert claims["latency"].text == ("not confirmed: measured SSE p50 delivery 1.2 ms vs WS 0.9 ms "
                                      "(ratio 1.33x, 95 % interval 1.33x to 1.33x over 3 SSE and 3 WS streams; "
                                      "claim was 4x, confirmed from 2.5x)")
    assert claims["duration-100"].verdict == "not measured"
    s["clock"] = {"shared": False}
    assert "do not share a clock" in {c.id: c for c in evaluate_claims(s)}["latency"].text
    s["transports"]["ws"]["streams"] = 0
    assert {c.text for c in evaluate_claims(s)} == {"not measured: no WebSocket stream was measured"}


def test_claim_text_with_a_zero_or_tiny_figure() -> None:
    """A WS figure of 0 (or a negative framing figure) was measured: the text must not
    say that nothing was, nor call it a contradiction; a tiny ratio must not read "0x"."""
    s = {"transports": {
        "sse": {"streams": 3, "metrics": {"delivery": {"p50_ms": 0.4}}, "bytes": {"per_event": {"framing": 14.0}}},
        "ws": {"streams": 3, "metrics": {"delivery": {"p50_ms": 0.0}}, "bytes": {"per_event": {"framing": 2.0}}},
    }}
    latency = evaluate_claims(s)[0]
    assert latency.verdict == "not measured" and "no event carried" not in latency.text
    assert latency.text == ("not measured: SSE p50 delivery 0.4 ms vs WS 0 ms: "
                            "no ratio from a zero or negative figure to hold against the claim")
    # permessage-deflate: fewer bytes on the wire than in the payload, so WS framing is negative;
    # that is no sign that WebSocket is worse ("contradicted")
    s["transports"]["ws"]["bytes"]["per_event"]["framing"] = -50.0
    overhead = evaluate_claims(s)[2]
    assert overhead.verdict == "not measured" and "WS -50 B" in overhead.text
    s["transports"]["sse"]["metrics"]["delivery"]["p50_ms"] = 0.001
    s["transports"]["ws"]["metrics"]["delivery"]["p50_ms"] = 0.5
    latency = evaluate_claims(s, samples={"sse": [same_stream(0.001)] * 3, "ws": [same_stream(0.5)] * 3})[0]
    assert latency.verdict == "contradicted" and "(ratio 0.002x, 95 % interval 0.002x to 0.002x" in latency.text


@pytest.mark.parametrize("where, key, value, words", [
    ("sse", "streams", "5", "transports.sse.streams must be a number"),
    ("sse", "bytes", [1], "transports.sse: bytes must be an object"),
    ("sse", "errors", [1], "transports.sse: errors must be an object"),
    ("", "clock", "shared", "clock must be an object"),
    ("", "cpu", [1], "cpu must be an object"),
    ("", "histograms", "x", "histograms must be an object"),
    ("", "warnings", "oops", "warnings must be a list"),
    ("", "duration_s", "x", "duration_s must be a number"),
])
def test_malformed_summary_is_a_clear_error(tmp_path: Path, where: str, key: str, value, words: str) -> None:
    """A section of the wrong type is bad input, not a traceback deep in the report."""
    res = write_results_dir(tmp_path / "r")
    summary = json.loads((res / "summary.json").read_text())
    (summary["transports"][where] if where else summary)[key] = value
    (res / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ReportInputError, match=re.escape(words)):
        build_report([res], tmp_path / "out")


def test_deeply_nested_json_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "summary.json").write_text("[" * 100_000)
    with pytest.raises(ReportInputError, match="nested too deeply"):
        build_report([tmp_path / "deep"], tmp_path / "out")


@pytest.mark.parametrize("lo_ms, hi_ms", [(0.45, 0.52), (0.3, 5.0), (0.8, 12.0), (0.2, 40.0), (100.0, 104.0), (0.31, 0.9)])
def test_cdf_tick_labels_do_not_overlap(lo_ms: float, hi_ms: float) -> None:
    """The connect panel has every value close together: its labels must still not
    run into each other (nor on a log axis, nor with long figures)."""
    from reports.plots import latency_cdf_figure
    from reports.results import Histogram

    values = np.linspace(lo_ms, hi_ms, 50)
    hists = {(t, m): Histogram(values * (1.1 if t == "ws" else 1.0), np.ones(50, dtype=np.int64))
             for t in ("sse", "ws") for m in ("connect", "ttfe", "delivery", "gap")}
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = latency_cdf_figure(hists, {"sse": {}, "ws": {}})
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels(which="both") if t.get_visible() and t.get_text()]
        assert len(boxes) >= 2, ax.get_title()
        boxes.sort(key=lambda b: b.x0)
        for left, right in zip(boxes, boxes[1:]):
            assert left.x1 <= right.x0, (ax.get_title(), [t.get_text() for t in ax.get_xticklabels(which="both")])


def test_the_report_opens_with_the_verdict_and_holds_the_gate_and_whole_failures(tmp_path: Path) -> None:
    res = write_results_dir(tmp_path / "r")
    long_message = ("[ORDER-CHUNK-SUM] MUST: the full event's value equals the concatenation of its chunks\n"
                    "  seen (sse, event 7 at /code): " + "x" * 400 + "\n  last events on the wire: ...")
    repro = "curl -N -H 'Accept: text/event-stream' 'http://127.0.0.1:8000/agent/stream?question=" + "q" * 600 + "'"
    conf = dict(CONFORMANCE, rules=[*CONFORMANCE["rules"], {
        "id": "ORDER-CHUNK-SUM", "level": "MUST", "verdict": "fail", "transport": "sse", "message": long_message,
        "reproduce": [repro], "duration_s": 0.2, "nodeid": "d"}])
    build_report([res], tmp_path / "out", conformance=conf,
                 gate_rules=["sse.streams >= 1", "sse.ttfe.p95_ms <= 0.001"])
    page = (tmp_path / "out" / "report.html").read_text()
    md = (tmp_path / "out" / "report.md").read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[0] == "Verdict"
    verdict = page[page.index("<h2>Verdict</h2>"):page.index("<h2>", page.index("<h2>Verdict</h2>") + 5)]
    assert "conformance: FAIL" in verdict and "ORDER-CHUNK-SUM" in verdict
    assert "gate: FAIL" in verdict and "1 of 2 rules hold" in verdict and "claims" in verdict
    assert "Gate" in headings and "<code>sse.ttfe.p95_ms &lt;= 0.001</code>" in page
    # whole message and uncut reproduction line, in HTML and Markdown
    assert html.escape(long_message) in page and html.escape(repro) in page
    assert long_message in md and repro in md
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["gate"]["ok"] is False and [r["verdict"] for r in summary["gate"]["rules"]] == ["pass", "fail"]
    assert "seed document" in md  # where the claims come from


def test_bad_gate_rules_in_the_report_are_bad_input(tmp_path: Path) -> None:
    from reports.compare import GateRulesError

    with pytest.raises(GateRulesError, match="gate: "):
        build_report([write_results_dir(tmp_path / "r")], tmp_path / "out", gate_rules=["sse.nope.p9 <= 1"])
