"""Verdicts a user can trust: one root cause gives one failure, nothing passes on
nothing, a backend that is down is one clear error, and the same backend gets the
same verdicts run after run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import stub_servers as stubs
from backends.serve import serve
from backends.suite_run import run_suite
from conformance.profile import load_profile
from conformance.rules import RULES, default_rules
from conformance.session import Session, Settings, judge_rule, needs, targets


@pytest.mark.parametrize("stack, defect", [("fastapi", "confidence-out-of-range"), ("starlette", "empty-chunk")])
def test_one_wrong_value_fails_one_rule(stack: str, defect: str, tmp_path: Path) -> None:
    """A single wrong value in one event type fails SCHEMA-EVENT, on both
    transports, and no other rule: the rules that need a valid stream say they
    were not judged and name the rule that was broken."""
    with serve(stack, defect) as url:
        run = run_suite(url, tmp_path / "report.json", timeout_s=240)
    assert run.crash() is None, run.explain()
    failed = {(r["id"], r["transport"]) for r in run.report["rules"] if r["verdict"] == "fail"}
    assert failed == {("SCHEMA-EVENT", "sse"), ("SCHEMA-EVENT", "ws")}, run.explain()
    deferred = [r for r in run.report["rules"] if r["verdict"] == "skip" and "not judged" in r["message"]]
    assert deferred and all("breaks SCHEMA-EVENT (see that rule)" in r["message"] for r in deferred), deferred
    totals = run.report["totals"]
    # one event per sample stream breaks the schema the same way on both transports: one cause
    assert totals["unique_causes"] == 1 and totals["findings"] >= 2, totals
    assert f"findings: {totals['findings']}, {totals['unique_causes']} unique cause" in run.stdout


def test_a_backend_that_is_down_is_one_usage_error(tmp_path: Path) -> None:
    with stubs.RawServer(lambda conn: None) as srv:  # bind a port, then free it: nothing listens there
        url = srv.base_url
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-p", "no:cacheprovider",
                           "--base-url", url, "--conformance-report", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"the backend at {url} does not answer" in proc.stderr and "Traceback" not in proc.stderr
    assert " passed" not in proc.stdout


def _not_found(conn) -> None:
    stubs.read_head(conn)
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                 b"not found")


def test_no_rule_passes_on_nothing() -> None:
    """Against a backend that answers every request with 404, every registered
    rule, on every target, fails or is not judged: none passes."""
    with stubs.RawServer(_not_found) as srv:
        session = Session(Settings(srv.base_url, load_profile(), metrics_url=srv.base_url + "/metrics"))
        plan = [(rule, target) for rule in RULES.values() for target in targets(rule, session)]
        session.prefetch([n for rule, target in plan for n in needs(rule, session, target)])
        outcomes = {(rule.id, str(target)): judge_rule(rule, session, target) for rule, target in plan}
    assert {rule.id for rule, _ in plan} == default_rules()  # the BROWSER-* ones: tests/test_browser_conformance.py
    passed = sorted(key for key, o in outcomes.items() if o.verdict == "pass")
    assert passed == [], passed
    assert all(o.message for o in outcomes.values()), "every fail and skip says why"


def test_same_backend_same_verdicts(tmp_path: Path) -> None:
    """Against a backend that crashes on control characters, the drawn-input rule
    fails in every run, on the same requests: the boundary values (NUL and the
    other control characters among them) are always sent, not left to a draw."""
    select = "INPUT-NEVER-5XX or PROPERTY-QUESTIONS"
    with serve("starlette", "control-characters-crash") as url:
        runs = [run_suite(url, tmp_path / f"r{i}.json", select=select) for i in range(3)]
        other = run_suite(url, tmp_path / "other.json", select="INPUT-NEVER-5XX", extra=("--draw-seed", "7"))
    seen = [sorted((r["id"], r["transport"], r["verdict"], json.dumps(r.get("requests"), sort_keys=True))
                   for r in run.report["rules"]) for run in runs]
    assert seen[0] == seen[1] == seen[2], runs[0].explain()
    failing = {(i, t) for i, t, v, _ in seen[0] if v == "fail"}
    assert {("INPUT-NEVER-5XX", "sse"), ("INPUT-NEVER-5XX", "ws")} <= failing, runs[0].explain()
    assert all(run.report["draw_seed"] == 0 for run in runs) and other.report["draw_seed"] == 7


def test_the_seed_chooses_the_drawn_requests() -> None:
    """The drawn requests are a function of --draw-seed, the same on every transport
    for the questions (parity compares them), and hold the boundary values."""
    from conformance.stimuli import STIMULI

    def requests(seed: int, name: str, transport: str) -> list:
        session = Session(Settings("http://127.0.0.1:1", load_profile(), seed=seed))
        return [r.query for r in STIMULI[name].make(session, transport)]

    assert requests(0, "drawn_params", "sse") == requests(0, "drawn_params", "sse")
    assert requests(0, "drawn_params", "sse") != requests(7, "drawn_params", "sse")
    assert requests(3, "drawn_questions", "sse") == requests(3, "drawn_questions", "ws")
    values = [dict(q).get("question") for q in requests(0, "drawn_params", "ws")]
    assert {"", " \t ", "a", "\x00", "x" * 2000, "x" * 2001, "\ud800"} <= set(values)


def test_timeouts_name_the_option_the_user_set(tmp_path: Path) -> None:
    """A stall is reported with --stream-timeout, the option the user knows."""
    def stall(conn) -> None:
        stubs.read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n")
        import time
        time.sleep(5)

    with stubs.RawServer(stall) as srv:
        run = run_suite(srv.base_url, tmp_path / "r.json", select="ORDER-FIRST-START and sse",
                        extra=("--stream-timeout", "1"))
    message = run.entries("ORDER-FIRST-START", "sse")[0]["message"]
    assert "no event within 1 s (--stream-timeout) of the response head" in message, message
    assert "limits." not in message


def test_reproduction_lines_are_whole_in_the_json_report_and_junit(tmp_path: Path) -> None:
    """The 2000-emoji question makes a reproduction line of about 24 KB: neither the
    JSON report nor the JUnit XML cuts it."""
    import xml.etree.ElementTree as ET

    junit = tmp_path / "junit.xml"
    with serve("aiohttp", "default-line-limit") as url:
        run = run_suite(url, tmp_path / "r.json", select="INPUT-ACCEPT and sse", extra=("--junitxml", str(junit)))
    entry = run.entries("INPUT-ACCEPT", "sse")[0]
    assert entry["verdict"] == "fail", run.explain()
    line = next(x for x in entry["reproduce"] if "%F0%9F%98%80" in x)
    assert line.count("%F0%9F%98%80") == 2000 and len(line) > 24_000
    failure = ET.parse(junit).getroot().find(".//failure")
    assert failure is not None and line in (failure.text or "") + (failure.get("message") or "")
