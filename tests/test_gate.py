"""The latency gate: rule parsing, the three kinds of rule passing and failing,
baselines, and bad input giving exit 2 with a clear message (through the real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports.gate import CI_RULES, GateInputError, load_rules, make_baseline, run_gate
from reports.metrics import MetricError, resolve
from reports.rules import RuleError, evaluate, evaluate_all, parse_rule, parse_rules_text

ROOT = Path(__file__).resolve().parents[1]


def summary(sse_delivery_p50: float = 1.2, ws_delivery_p50: float = 0.9, ws_ttfe_p95: float = 8.0,
            sse_p99: float = 3.0) -> dict:
    """A results summary in the documented layout, small enough to read."""
    def transport(delivery_p50: float, ttfe_p95: float, p99: float, framing: float) -> dict:
        return {
            "streams": 4, "events": 400,
            "metrics": {
                "ttfe": {"count": 4, "p50_ms": ttfe_p95 / 2, "p95_ms": ttfe_p95},
                "delivery": {"count": 400, "p50_ms": delivery_p50, "p99_ms": p99},
                "events_per_stream": {"count": 4, "p50": 100},
            },
            "bytes": {"per_event": {"wire": 120 + framing, "payload": 120.0, "framing": framing},
                      "framing_overhead_pct": 100 * framing / 120},
            "errors": {"connect": 0, "timeout": 0, "protocol": 0, "rules": {}},
        }
    return {
        "format": "agentstream-results/1",
        "config": {"users": 4},
        "transports": {
            "sse": transport(sse_delivery_p50, 10.0, sse_p99, 14.0),
            "ws": transport(ws_delivery_p50, ws_ttfe_p95, 2.0, 2.0),
        },
    }


# ---- parsing -----------------------------------------------------------------

def test_parse_the_three_kinds() -> None:
    a = parse_rule("ws.ttfe.p95_ms <= 50")
    assert (a.kind, a.numerator, a.op, a.limit) == ("absolute", "ws.ttfe.p95_ms", "<=", 50.0)
    b = parse_rule("sse.delivery.p99_ms <= baseline * 1.15 + 2")
    assert (b.kind, b.factor, b.offset) == ("baseline", 1.15, 2.0)
    assert parse_rule("sse.delivery.p99_ms<=baseline").factor == 1.0
    r = parse_rule("ws.delivery.p50_ms / sse.delivery.p50_ms <= 1.2")
    assert (r.kind, r.numerator, r.denominator, r.limit) == ("ratio", "ws.delivery.p50_ms", "sse.delivery.p50_ms", 1.2)
    assert parse_rule("sse.streams > 0").op == ">"
    assert parse_rule("sse.streams >= 1e0").limit == 1.0


@pytest.mark.parametrize("text, words", [
    ("ws.ttfe.p95_ms", "expected 'METRIC OP LIMIT'"),
    ("ws.ttfe.p95_ms <= fifty", "neither a number nor 'baseline"),
    ("ws.ttfe.p95_ms == 50", "operator '==' is not allowed"),
    ("ttfe <= 50", "expected 'METRIC OP LIMIT'"),
    ("ws.ttfe.p95_ms <= baseline * x", "neither a number nor 'baseline"),
    ("ws.ttfe.p95_ms <= baseline * 1e400", "must be finite"),  # a limit of inf never fails
    ("ws.ttfe.p95_ms <= baseline + " + "9" * 400, "must be finite"),
    ("", "empty"),
])
def test_malformed_rules_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(RuleError, match="malformed rule") as exc:
        parse_rule(text)
    assert words in str(exc.value)


def test_rules_file_yaml_forms() -> None:
    rules = parse_rules_text(
        "# comment\nrules:\n  - ws.ttfe.p95_ms <= 50\n"
        "  - rule: ws.delivery.p50_ms / sse.delivery.p50_ms <= 3\n    why: ratio within one run\n")
    assert [r.kind for r in rules] == ["absolute", "ratio"]
    assert rules[1].why == "ratio within one run"
    assert len(parse_rules_text("- sse.streams >= 1\n")) == 1
    with pytest.raises(RuleError, match="rule 2: malformed rule"):
        parse_rules_text("rules:\n  - sse.streams >= 1\n  - nonsense\n")
    with pytest.raises(RuleError, match="not valid YAML"):
        parse_rules_text("rules: [a, b\n")
    with pytest.raises(RuleError, match="expected a 'rules:' list"):
        parse_rules_text("limits:\n  - sse.streams >= 1\n")
    with pytest.raises(RuleError, match="nested too deeply"):
        parse_rules_text("rules: " + "[" * 5000 + "]" * 5000)


# ---- metric paths --------------------------------------------------------------

def test_paths_resolve_under_metrics_then_transport() -> None:
    s = summary()
    assert resolve(s, "ws.ttfe.p95_ms") == 8.0
    assert resolve(s, "sse.bytes.per_event.framing") == 14.0
    assert resolve(s, "sse.streams") == 4.0
    assert resolve(s, "sse.errors.protocol") == 0.0


@pytest.mark.parametrize("path, words", [
    ("ws.ttfe.p59_ms", "ws.ttfe has no 'p59_ms' (known: count, p50_ms, p95_ms)"),
    ("wss.ttfe.p95_ms", "no transport 'wss' in the summary (transports: sse, ws)"),
    ("sse.latency.p50_ms", "sse has no 'latency'"),
    ("sse.bytes", "names a group, not a number"),
    ("sse", "expected TRANSPORT.METRIC"),
])
def test_unknown_metrics_are_named(path: str, words: str) -> None:
    with pytest.raises(MetricError) as exc:
        resolve(summary(), path)
    assert words in str(exc.value)


# ---- evaluation ------------------------------------------------------------------

def test_absolute_rule_passes_and_fails() -> None:
    s = summary(ws_ttfe_p95=8.0)
    assert evaluate(parse_rule("ws.ttfe.p95_ms <= 50"), s).verdict == "pass"
    assert evaluate(parse_rule("ws.ttfe.p95_ms <= 8"), s).verdict == "pass"
    assert evaluate(parse_rule("ws.ttfe.p95_ms < 8"), s).verdict == "fail"
    out = evaluate(parse_rule("ws.ttfe.p95_ms <= 5"), s)
    assert (out.verdict, out.value, out.limit) == ("fail", 8.0, 5.0)
    assert evaluate(parse_rule("sse.streams >= 5"), s).verdict == "fail"


def test_ratio_rule_passes_and_fails() -> None:
    rule = parse_rule("ws.delivery.p50_ms / sse.delivery.p50_ms <= 1.2")
    ok = evaluate(rule, summary(sse_delivery_p50=1.0, ws_delivery_p50=1.1))
    assert ok.verdict == "pass" and ok.value == pytest.approx(1.1)
    assert ok.value_detail == "1.1 / 1"
    bad = evaluate(rule, summary(sse_delivery_p50=1.0, ws_delivery_p50=1.5))
    assert bad.verdict == "fail" and bad.value == pytest.approx(1.5)


def test_baseline_rule_passes_and_fails() -> None:
    rule = parse_rule("sse.delivery.p99_ms <= baseline * 1.15")
    base = make_baseline(summary(sse_p99=10.0), "base")
    assert evaluate(rule, summary(sse_p99=11.4), base).verdict == "pass"
    out = evaluate(rule, summary(sse_p99=11.6), base)
    assert out.verdict == "fail" and out.limit == pytest.approx(11.5)
    assert "baseline 10 × 1.15" in out.limit_detail
    # The slack is a noise floor: it lets a small absolute change through.
    slack = parse_rule("sse.delivery.p99_ms <= baseline * 1.15 + 1")
    assert evaluate(slack, summary(sse_p99=12.4), base).verdict == "pass"
    # A ratio held against the baseline's ratio.
    rr = parse_rule("ws.delivery.p50_ms / sse.delivery.p50_ms <= baseline * 1.1")
    assert evaluate(rr, summary(1.0, 0.8), summary(1.0, 0.75)).verdict == "pass"
    assert evaluate(rr, summary(1.0, 0.9), summary(1.0, 0.75)).verdict == "fail"


def test_a_figure_that_was_not_measured_fails() -> None:
    s = summary()
    s["transports"]["ws"]["metrics"]["delivery"]["p99_ms"] = None
    out = evaluate(parse_rule("ws.delivery.p99_ms <= 1000"), s)
    assert out.verdict == "no data" and not out.ok
    s["transports"]["sse"]["metrics"]["delivery"]["p50_ms"] = 0
    assert evaluate(parse_rule("ws.delivery.p50_ms / sse.delivery.p50_ms <= 9"), s).verdict == "no data"


def test_evaluate_all_reports_every_bad_rule_at_once() -> None:
    rules = [parse_rule("ws.ttfe.p59_ms <= 50"), parse_rule("sse.delivery.p99_ms <= baseline")]
    with pytest.raises(RuleError) as exc:
        evaluate_all(rules, summary(), None)
    assert "p59_ms" in str(exc.value) and "pass --baseline FILE" in str(exc.value)


def test_run_gate_table_and_markdown(tmp_path: Path) -> None:
    md = tmp_path / "step-summary.md"
    md.write_text("earlier step\n")
    result = run_gate(summary(), ["ws.ttfe.p95_ms <= 50", "sse.bytes.per_event.framing <= 10"],
                      markdown_out=md)
    assert not result.ok and len(result.failed) == 1
    table = result.table()
    assert "sse.bytes.per_event.framing <= 10" in table and "FAIL" in table and "PASS" in table
    assert "1 of 2 rules hold" in table
    text = md.read_text()
    assert text.startswith("earlier step\n")  # appended, as $GITHUB_STEP_SUMMARY needs
    assert "| `ws.ttfe.p95_ms <= 50` | 8 | <= 50 | ✅ PASS |" in text
    assert "❌ FAIL" in text


def test_ci_names_the_packaged_rules_even_beside_a_ci_directory(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "ci").mkdir()  # many repositories have one
    monkeypatch.chdir(tmp_path)
    assert [r.text for r in load_rules("ci")] == [r.text for r in load_rules(CI_RULES)]
    (tmp_path / "own").write_text("rules:\n  - sse.streams >= 7\n")
    assert [r.text for r in load_rules("own")] == ["sse.streams >= 7"]


def test_ci_rules_are_valid_and_resolve_on_the_documented_layout() -> None:
    rules = load_rules(CI_RULES)
    kinds = {r.kind for r in rules}
    assert "ratio" in kinds and "absolute" in kinds and "baseline" not in kinds
    for r in rules:
        assert r.why, f"CI rule {r.text!r} should say why"
    # every path names a number in the layout of docs/results-format.md
    stats = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p99_9", "max")
    times = {m: {k if k == "count" else k + "_ms": 1.0 for k in stats}
             for m in ("connect", "ttfe", "gap", "delivery", "duration")}
    counts = {m: {k: 1.0 for k in stats} for m in ("events_per_stream", "events_per_s")}
    transport = {"streams": 1, "streams_ok": 1, "events": 1, "metrics": {**times, **counts},
                 "bytes": {"wire_in": 1, "per_event": {"wire": 1.0, "payload": 1.0, "framing": 1.0, "head": 1.0},
                           "framing_overhead_pct": 1.0},
                 "errors": {"failed_streams": 0, "connect": 0, "timeout": 0}}
    evaluate_all(rules, {"transports": {"sse": transport, "ws": transport}})  # raises RuleError on a bad path


def test_gate_input_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(GateInputError, match="cannot read current summary"):
        run_gate(tmp_path / "missing.json", ["sse.streams >= 1"])
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(GateInputError, match="is not valid JSON"):
        run_gate(tmp_path / "x.json", ["sse.streams >= 1"])
    (tmp_path / "y.json").write_text('{"format": "something"}')
    with pytest.raises(GateInputError, match="has no 'transports' section"):
        run_gate(tmp_path / "y.json", ["sse.streams >= 1"])


# ---- the CLI, as CI runs it ----------------------------------------------------------

def gate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "reports", "gate", *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    cur = tmp_path / "summary.json"
    cur.write_text(json.dumps(summary()))
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n"
                     "  - ws.ttfe.p95_ms <= 50\n"
                     "  - ws.delivery.p50_ms / sse.delivery.p50_ms <= 1.2\n")
    return {"current": cur, "rules": rules, "dir": tmp_path}


def test_cli_pass_and_fail(files: dict[str, Path]) -> None:
    ok = gate("--current", files["current"], "--rules", files["rules"])
    assert ok.returncode == 0, ok.stderr
    assert "ws.delivery.p50_ms / sse.delivery.p50_ms <= 1.2" in ok.stdout and "0.75 (0.9 / 1.2)" in ok.stdout
    assert "PASS: 2 of 2 rules hold" in ok.stdout
    bad = gate("--current", files["current"], "--rules", files["rules"], "--rule", "ws.ttfe.p95_ms <= 5")
    assert bad.returncode == 1
    assert "FAIL: 2 of 3 rules hold" in bad.stdout


def test_cli_baseline_save_and_use(files: dict[str, Path]) -> None:
    base = files["dir"] / "baseline.json"
    saved = gate("--current", files["current"], "--rules", files["rules"], "--save-baseline", base)
    assert saved.returncode == 0, saved.stderr
    data = json.loads(base.read_text())
    assert data["format"] == "agentstream-baseline/1" and data["transports"]["sse"]["streams"] == 4
    same = gate("--current", files["current"], "--baseline", base,
                "--rule", "sse.delivery.p99_ms <= baseline * 1.15")
    assert same.returncode == 0, same.stdout + same.stderr
    worse = files["dir"] / "worse.json"
    worse.write_text(json.dumps(summary(sse_p99=4.0)))
    regressed = gate("--current", worse, "--baseline", base, "--rule", "sse.delivery.p99_ms <= baseline * 1.15",
                     "--save-baseline", files["dir"] / "new-baseline.json")
    assert regressed.returncode == 1
    assert "baseline 3 × 1.15" in regressed.stdout
    assert not (files["dir"] / "new-baseline.json").exists()  # a failing run does not become the baseline


@pytest.mark.parametrize("case, words", [
    ("unknown metric", "unknown metric 'ws.ttfe.p59_ms': ws.ttfe has no 'p59_ms'"),
    ("unreadable current", "cannot read current summary"),
    ("unreadable rules", "cannot read rules file"),
    ("malformed rule", "malformed rule 'ws.ttfe.p95_ms <= fast'"),
    ("invalid yaml", "not valid YAML"),
    ("baseline missing", "compares with a baseline: pass --baseline FILE"),
    ("corrupt baseline", "is not valid JSON"),
    ("no rules", "no rules"),
    ("deeply nested current", "nested too deeply"),
])
def test_cli_bad_input_exits_2(files: dict[str, Path], case: str, words: str) -> None:
    d = files["dir"]
    (d / "bad.yaml").write_text("rules: [ws.ttfe.p95_ms <= 50\n")
    (d / "corrupt.json").write_text("[1, 2")
    (d / "deep.json").write_text("[" * 100_000)
    args = {
        "unknown metric": ["--current", files["current"], "--rule", "ws.ttfe.p59_ms <= 50"],
        "unreadable current": ["--current", d / "nope.json", "--rules", files["rules"]],
        "unreadable rules": ["--current", files["current"], "--rules", d / "nope.yaml"],
        "malformed rule": ["--current", files["current"], "--rule", "ws.ttfe.p95_ms <= fast"],
        "invalid yaml": ["--current", files["current"], "--rules", d / "bad.yaml"],
        "baseline missing": ["--current", files["current"], "--rule", "ws.ttfe.p95_ms <= baseline"],
        "corrupt baseline": ["--current", files["current"], "--baseline", d / "corrupt.json",
                             "--rule", "ws.ttfe.p95_ms <= baseline"],
        "no rules": ["--current", files["current"]],
        "deeply nested current": ["--current", d / "deep.json", "--rules", files["rules"]],
    }[case]
    out = gate(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert words in out.stderr
    assert "Traceback" not in out.stderr


def test_star_rules_follow_the_profile_and_a_gate_that_judged_nothing_fails(tmp_path) -> None:
    """``*`` expands over the run's profile (config.paths): a transport the profile
    has but the run did not measure is no data (a failure), one it lacks is N/A,
    a name that is no transport stays an error, and a gate of only N/A rules fails."""
    from reports.gate import GateResult
    from reports.rules import RuleError, evaluate_all, parse_rule

    figures = {"streams_ok": 3, "metrics": {"ttfe": {"p50_ms": 2.0}}}
    summary = {"config": {"paths": {"sse": "/a", "ws": "/b"}, "timestamp_field": "ts"}, "transports": {"sse": figures}}
    out = evaluate_all([parse_rule("*.streams_ok >= 1")], summary)
    assert [(o.rule.text, o.verdict) for o in out] == [("sse.streams_ok >= 1", "pass"), ("ws.streams_ok >= 1", "no data")]
    sse_only = {"config": {"paths": {"sse": "/a"}}, "transports": {"sse": figures}}
    out = evaluate_all([parse_rule("ws.streams_ok >= 1"), parse_rule("*.ttfe.p50_ms / *.ttfe.p50_ms <= 5")], sse_only)
    assert [o.verdict for o in out] == ["n/a"]
    assert not GateResult(out).ok
    with pytest.raises(RuleError):
        evaluate_all([parse_rule("wss.streams_ok >= 1")], sse_only)
