"""The suite catches what it claims to catch, and passes what is correct.

Each broken backend of ``tests/backends`` (one defect each, on FastAPI, aiohttp
or Starlette + sse-starlette) is served on a free loopback port and the suite
is run against it in a subprocess, selecting the rule that must catch the
defect (``-k RULE``): that rule must fail (pytest exit 1) or, for a SHOULD,
warn (exit 0). The correct backend of every stack must pass the full suite with
no failure and no warning, and the disconnect check with long streams.

The runs are independent, so the selected ones are made three at a time in a
session fixture; each test then asserts on its own run.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.defects import BY_NAME, DEFECTS, LONG
from backends.serve import STACKS, VARIANTS, serve
from backends.suite_run import SuiteRun, run_suite
from conformance.rules import RULES, default_rules

DOC = Path(__file__).resolve().parents[1] / "docs" / "defects.md"
WORKERS = 3

ALLOWED_SKIPS: dict[str, dict[str, str]] = {
    # a 4xx at the handshake is a valid WS rejection; the lone-event rule then has nothing to judge
    "aiohttp": {"INPUT-WS-REJECT-EVENT": "not accepted-then-closed with 1008 (status 400"},
    "starlette": {"INPUT-WS-REJECT-EVENT": "not accepted-then-closed with 1008 (status 403"},
    "fastapi": {},
    "aiohttp-quirks": {"INPUT-WS-REJECT-EVENT": "not accepted-then-closed with 1008 (status 400"},
    "aiohttp-pings": {"INPUT-WS-REJECT-EVENT": "not accepted-then-closed with 1008 (status 400"},
    # every stream differs (texts, chunk counts, lengths): held to structural parity
    "fastapi-variable": {"PARITY-STRICT": "structural parity only (two sse recordings"},
}


@dataclass(frozen=True)
class Job:
    key: str
    stack: str
    defect: str | None
    select: str | None
    params: tuple[str, ...] = ()


JOBS: dict[str, Job] = {
    **{d.name: Job(d.name, d.stack, d.name, d.rule, d.params) for d in DEFECTS},
    **{f"full-{s}": Job(f"full-{s}", s, None, None) for s in STACKS + VARIANTS},
    **{f"disconnect-{s}": Job(f"disconnect-{s}", s, None, "DISCONNECT-STOPS", LONG) for s in STACKS},
}


def _run(job: Job, tmp: Path) -> SuiteRun:
    with serve(job.stack, job.defect) as url:
        return run_suite(url, tmp / f"{job.key}.json", select=job.select, params=job.params, timeout_s=240,
                         plain_assert=job.select is not None)


@pytest.fixture(scope="session")
def suite_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    """The suite run of every selected job, made WORKERS at a time."""
    keys = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("job") in JOBS:
            keys.append(callspec.params["job"])
    keys = sorted(set(keys), key=list(JOBS).index)
    tmp = tmp_path_factory.mktemp("suite-runs")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        runs = dict(zip(keys, pool.map(lambda key: _run(JOBS[key], tmp), keys)))
    return runs


@pytest.mark.parametrize("job", [pytest.param(d.name, marks=pytest.mark.xfail(reason=d.missed, strict=True))
                                 if d.missed else d.name for d in DEFECTS])
def test_defect_is_caught(job: str, suite_runs: dict[str, SuiteRun]) -> None:
    defect, run = BY_NAME[job], suite_runs[job]
    assert run.crash() is None, run.crash() + "\n" + run.explain()
    verdicts = run.verdicts(defect.rule, defect.transport)
    assert defect.verdict in verdicts, f"{defect.rule} gave {verdicts}, expected {defect.verdict}\n{run.explain()}"
    caught = [e for e in run.entries(defect.rule, defect.transport) if e["verdict"] == defect.verdict]
    assert all(f"[{defect.rule}]" in e["message"] for e in caught), "the message must name the rule"
    if defect.verdict == "fail":
        assert run.returncode == 1, run.explain()
    else:  # a broken SHOULD warns and the run still passes
        assert run.returncode == 0, run.explain()
        assert "fail" not in run.verdicts(defect.rule), run.explain()


KNOWN_SUITE_BUGS: dict[str, str] = {}
"""Wrong verdicts of the suite that these tests demonstrate (reported; strict, so a fix shows as XPASS)."""


def _known(key: str) -> pytest.param:
    return pytest.param(key, marks=pytest.mark.xfail(reason=KNOWN_SUITE_BUGS[key], strict=True)) \
        if key in KNOWN_SUITE_BUGS else pytest.param(key)


@pytest.mark.parametrize("job", [_known(f"full-{s}") for s in STACKS + VARIANTS])
def test_correct_backend_passes_full_suite(job: str, suite_runs: dict[str, SuiteRun]) -> None:
    stack, run = JOBS[job].stack, suite_runs[job]
    assert run.crash() is None, run.crash() + "\n" + run.explain()
    assert run.returncode == 0, run.explain()
    judged = {r["id"] for r in run.report["rules"]}
    assert judged == default_rules(), f"rules never judged: {default_rules() - judged}"
    allowed = dict(ALLOWED_SKIPS[stack])
    for entry in run.not_passed():
        assert entry["verdict"] == "skip", run.explain()
        if entry["message"].startswith("the profile "):
            continue  # a rule of other protocols (runs, spans, sentinel): agent-stream/1 defines none
        assert entry["id"] in allowed and allowed[entry["id"]] in entry["message"], \
            f"unexpected skip of {entry['id']}: {entry['message']}"


@pytest.mark.parametrize("job", ["work-continues"])
def test_leak_caught_on_both_transports(job: str, suite_runs: dict[str, SuiteRun]) -> None:
    """``work-continues`` leaks on both transports, so both verdicts must be fail."""
    run = suite_runs[job]
    assert run.verdicts("DISCONNECT-STOPS", "sse") == ["fail"], run.explain()
    assert run.verdicts("DISCONNECT-STOPS", "ws") == ["fail"], run.explain()


@pytest.mark.parametrize("job", [f"disconnect-{s}" for s in STACKS])
def test_correct_backend_stops_on_disconnect(job: str, suite_runs: dict[str, SuiteRun]) -> None:
    run = suite_runs[job]
    assert run.crash() is None, run.crash() + "\n" + run.explain()
    assert run.returncode == 0, run.explain()
    assert run.verdicts("DISCONNECT-STOPS", "sse") == ["pass"], run.explain()
    assert run.verdicts("DISCONNECT-STOPS", "ws") == ["pass"], run.explain()


def test_defects_cover_the_protocol() -> None:
    """At least 20 distinct defects, every area, every stack, only known rules."""
    assert len(DEFECTS) >= 20
    assert {d.stack for d in DEFECTS} == set(STACKS)
    assert {d.area for d in DEFECTS} >= {"schema", "order", "parity", "sse", "ws", "input", "disconnect"}
    for d in DEFECTS:
        rule = RULES[d.rule]
        assert d.verdict == ("fail" if rule.level == "MUST" else "warn"), d
    assert any(d.rule == "WS-CANCEL" for d in DEFECTS)
    from backends import aiohttp_app, fastapi_app, starlette_app

    accepted = {"fastapi": fastapi_app.DEFECTS, "aiohttp": aiohttp_app.DEFECTS, "starlette": starlette_app.DEFECTS}
    assert {d.name for d in DEFECTS if d.name not in accepted[d.stack]} == set()
    assert set().union(*accepted.values()) == set(BY_NAME), "every defect a stack accepts is in the table"


_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|[^|]+\|\s*`([A-Z0-9-]+)`[^|]*\|\s*(\w+)")


def test_docs_table_lists_every_defect() -> None:
    """docs/defects.md has one row per defect, with the same stack, rule and verdict."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2, 3, 4)
    assert rows == {d.name: (d.stack, d.rule, d.verdict) for d in DEFECTS}
