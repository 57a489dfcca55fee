"""Browser conformance (``--browser chromium``): each BROWSER-* rule passes on the
reference server and fails on a backend broken in exactly that way.

Real headless Chromium (Debian's package, installed by the ``chromium`` fixture),
real backends on free loopback ports, the suite run in a subprocess as a user
runs it. The broken backends are the test stacks of ``tests/backends``: their
correct builds send no CORS headers and do not check ``Origin`` (so a page on
another origin cannot read their SSE, and any page can open their WebSocket);
``reconnect-reruns`` runs the question again for a reconnecting EventSource;
``named-events`` names every SSE message, which ``EventSource.onmessage`` never
sees. A reference server that allows only one other origin proves the WebSocket
side of BROWSER-ALLOWED-ORIGIN.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.serve import serve
from backends.suite_run import SuiteRun, run_suite
from conformance.rules import RULES
from reference_server.embedded import EmbeddedServer

BROWSER_RULES = sorted(r for r in RULES if r.startswith("BROWSER-"))
WORKERS = 2


@dataclass(frozen=True)
class Job:
    stack: str | None
    """A test stack, or None: the reference server (with ``server_args``)."""
    defect: str | None = None
    server_args: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


JOBS = {
    "reference": Job(None),
    "no-cors-no-origin-check": Job("fastapi"),
    "reruns": Job("starlette", "reconnect-reruns"),
    "named-events": Job("starlette", "named-events"),
    "one-origin-only": Job(None, server_args=("--allow-origin", "https://only.example", "--no-dev-origins")),
}


def _run(job: Job, chromium: str, tmp: Path, key: str) -> SuiteRun:
    extra = ("--browser", "chromium", "--browser-executable", chromium, *job.extra)
    report = tmp / f"{key}.json"
    if job.stack is None:
        with EmbeddedServer(pace_ms=2, args=job.server_args) as server:
            return run_suite(server.base_url, report, select="BROWSER", extra=extra, timeout_s=120)
    with serve(job.stack, job.defect) as url:
        return run_suite(url, report, select="BROWSER", extra=extra, timeout_s=120)


@pytest.fixture(scope="module")
def runs(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    tmp = tmp_path_factory.mktemp("browser-runs")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        done = dict(zip(JOBS, pool.map(lambda k: _run(JOBS[k], chromium, tmp, k), JOBS)))
    return done


def _verdicts(run: SuiteRun) -> dict[tuple[str, str], str]:
    return {(e["id"], e["transport"]): e["verdict"] for e in run.report["rules"]} if run.report else {}


def test_every_browser_rule_passes_on_the_reference_server(runs: dict[str, SuiteRun]) -> None:
    run = runs["reference"]
    assert run.crash() is None, run.explain()
    verdicts = _verdicts(run)
    assert sorted({rule for rule, _ in verdicts}) == BROWSER_RULES, run.explain()
    assert set(verdicts.values()) == {"pass"}, run.explain()
    assert run.returncode == 0, run.explain()


@pytest.mark.parametrize(("job", "rule", "transport", "verdict", "words"), [
    ("no-cors-no-origin-check", "BROWSER-ALLOWED-ORIGIN", "sse", "fail", "Access-Control-Allow-Origin"),
    ("no-cors-no-origin-check", "BROWSER-FOREIGN-ORIGIN", "ws", "warn", "does not check Origin"),
    ("reruns", "BROWSER-SSE-NO-RERUN", "sse", "warn", "the question ran again"),
    ("named-events", "BROWSER-SAME-EVENTS", "sse", "fail", "event: name"),
    ("one-origin-only", "BROWSER-ALLOWED-ORIGIN", "sse", "fail", "Access-Control-Allow-Origin"),
    ("one-origin-only", "BROWSER-ALLOWED-ORIGIN", "ws", "fail", "handshake was refused"),
])
def test_a_backend_broken_that_way_breaks_the_rule(runs: dict[str, SuiteRun], job: str, rule: str, transport: str,
                                                   verdict: str, words: str) -> None:
    run = runs[job]
    assert run.crash() is None, run.explain()
    (entry,) = [e for e in run.report["rules"] if e["id"] == rule and e["transport"] == transport]
    assert entry["verdict"] == verdict, run.explain()
    assert words in entry["message"], entry["message"]


@pytest.mark.parametrize(("job", "rule", "transport"), [
    ("no-cors-no-origin-check", "BROWSER-SAME-EVENTS", "sse"),
    ("no-cors-no-origin-check", "BROWSER-SAME-EVENTS", "ws"),
    ("no-cors-no-origin-check", "BROWSER-ALLOWED-ORIGIN", "ws"),
    ("no-cors-no-origin-check", "BROWSER-SSE-NO-RERUN", "sse"),
    ("named-events", "BROWSER-SAME-EVENTS", "ws"),
    ("one-origin-only", "BROWSER-SAME-EVENTS", "sse"),
])
def test_the_rules_a_backend_keeps_still_pass(runs: dict[str, SuiteRun], job: str, rule: str, transport: str) -> None:
    """One defect breaks its own rule, not the others (the same-origin stream is fine)."""
    assert _verdicts(runs[job])[(rule, transport)] == "pass", runs[job].explain()


def test_browser_rules_are_no_items_without_browser() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "--base-url", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "ORDER-SEQ[sse]" in out and "BROWSER-" not in out


def test_headers_the_browser_cannot_send_make_the_rules_not_judged(chromium: str, tmp_path: Path) -> None:
    with EmbeddedServer(pace_ms=2) as server:
        run = run_suite(server.base_url, tmp_path / "h.json", select="BROWSER-SAME-EVENTS",
                        extra=("--browser", "chromium", "--browser-executable", chromium,
                               "--header", "Authorization: Bearer x"), timeout_s=120)
    assert run.crash() is None, run.explain()
    entries = run.report["rules"]
    assert entries and all(e["verdict"] == "skip" and "cannot send --header" in e["message"] for e in entries)


def test_bad_browser_options_are_usage_errors(tmp_path: Path) -> None:
    import subprocess

    for args, words in [(["--browser", "chromium", "--origin-foreign", "ftp://x"], "--origin-foreign 'ftp://x' must be"),
                        (["--browser", "chromium", "--browser-executable", str(tmp_path / "nope")], "no browser binary"),
                        (["--browser", "webkit"], "chromium only")]:
        done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-p",
                               "no:cacheprovider", "--base-url", "http://127.0.0.1:9", *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 4, (args, done.stdout, done.stderr)
        assert words in done.stderr and "Traceback" not in done.stderr, done.stderr
