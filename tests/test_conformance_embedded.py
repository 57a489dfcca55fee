"""The whole default conformance suite against the embedded reference server:
no failure, no warning, and no skip but those of rules agent-stream/1 does not
define (runs, spans, echoes: other protocols' rules). Run as a user runs it, in
a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def test_default_suite_passes_on_embedded_server(tmp_path: Path) -> None:
    report = tmp_path / "conformance.json"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-p", "no:cacheprovider",
         "-W", "error::conformance.verdict.ConformanceWarning", "--conformance-report", str(report)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    doc = json.loads(report.read_text())
    verdicts = {(r["id"], r["transport"]): r["verdict"] for r in doc["rules"]}
    assert doc["totals"]["fail"] == 0 and doc["totals"]["warn"] == 0, doc["totals"]
    skipped = [r for r in doc["rules"] if r["verdict"] == "skip"]
    assert all(r["message"].startswith("the profile ") for r in skipped), skipped
    # every rule the profile defines was judged (passed) on some transport
    from conformance.profile import load_profile
    from conformance.rules import RULES, default_rules
    from conformance.session import Context

    profile = load_profile()
    applies = {rule.id for rule in RULES.values() if rule.id in default_rules()
               if rule.skip_unless is None or not rule.skip_unless(Context(None, profile, rule, "sse" if rule.binding != "ws" else "ws"))}
    judged = {rule_id for (rule_id, _), v in verdicts.items() if v == "pass"}
    assert judged == applies, applies - judged
    assert {r["id"] for r in skipped} == default_rules() - applies
    assert doc["backend"].startswith("http://127.0.0.1:")
    print(f"default suite on the embedded server: {len(doc['rules'])} rule tests in {elapsed:.1f} s")


def _pytest(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-p", "no:cacheprovider",
                           *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_broken_profile_is_a_usage_error_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: x\ntype_field: kind\nevents: {hello: {type: object}}\norder: {first: hello, lsat: bye}\n")
    proc = _pytest(["--profile", str(bad)], tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "order.lsat: unknown key" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    for args, words in ((["--base-url", "127.0.0.1:8000"], "must start with http"),
                        (["--param", "novalue"], "NAME=VALUE"),
                        (["--stream-timeout", "0"], "positive")):
        proc = _pytest(args, tmp_path)
        assert proc.returncode == 4 and words in proc.stderr, (args, proc.stderr)
