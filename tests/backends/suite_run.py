"""Run the conformance suite against a base URL in a subprocess, as a user runs it.

A subprocess (not pytester) because the suite must be judged from outside: its
exit code, its JSON report, its wall time, and whether it crashed (a traceback
of its own, an INTERNALERROR, an error in fixture setup) or hung (the
subprocess timeout).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SuiteRun:
    args: list[str]
    returncode: int | None
    """None when the subprocess timeout killed the suite (it hung)."""
    wall_s: float
    stdout: str
    stderr: str
    report: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def entries(self, rule_id: str, transport: str | None = None) -> list[dict[str, Any]]:
        return [r for r in (self.report or {}).get("rules", [])
                if r["id"] == rule_id and (transport is None or covers(r["transport"], transport))]

    def verdicts(self, rule_id: str, transport: str | None = None) -> list[str]:
        return [r["verdict"] for r in self.entries(rule_id, transport)]

    def not_passed(self) -> list[dict[str, Any]]:
        return [r for r in (self.report or {}).get("rules", []) if r["verdict"] != "pass"]

    def crash(self) -> str | None:
        """Why this run counts as a crash of the suite itself, or None."""
        summary = self.stdout.strip().splitlines()[-1] if self.stdout.strip() else ""
        if self.returncode is None:
            return f"the suite hung: killed after {self.wall_s:.0f} s"
        if self.returncode not in (0, 1):
            return f"pytest exit code {self.returncode}: {summary}"
        if "INTERNALERROR" in self.stdout + self.stderr:
            return "INTERNALERROR"
        if re.search(r"\b\d+ errors?\b", summary):
            return f"errors (not failures) in the run: {summary}"
        if self.report is None:
            return "no JSON report written"
        raised = [r["id"] for r in self.not_passed()
                  if r["verdict"] == "fail" and not r["message"].startswith(f"[{r['id']}]")]
        if raised:  # a verdict always starts with its rule ID; anything else is an exception in the suite
            return f"the suite raised instead of judging in {sorted(set(raised))}"
        return None

    def explain(self, limit: int = 4000) -> str:
        lines = [f"$ {' '.join(self.args)}", f"exit {self.returncode} after {self.wall_s:.1f} s", *self.notes]
        for r in self.not_passed():
            lines.append(f"--- {r['id']} [{r['transport']}] {r['verdict']}: {r['message'][:600]}")
        lines.append(self.stdout[-1500:])
        lines.append(self.stderr[-1000:])
        return "\n".join(lines)[:limit]


def covers(label: str, transport: str) -> bool:
    """Whether a report entry's transport label (``sse``, ``sse-ws`` for a parity
    pair, ``all`` for the run) covers ``transport``."""
    return label in (transport, "all") or transport in label.split("-")


def run_suite(base_url: str, report: Path, *, select: str | None = None, params: tuple[str, ...] = (),
              extra: tuple[str, ...] = (), timeout_s: float = 180.0, plain_assert: bool = True) -> SuiteRun:
    """``pytest --pyargs conformance --base-url URL [-k select] [--param ...]``, bounded by ``timeout_s``.

    ``plain_assert`` adds ``--assert=plain``: the suite's verdicts come from
    ``pytest.fail`` messages, not from assertion rewriting, and without it pytest
    re-rewrites all of hypothesis (a pytest11 plugin distribution) on every run
    when PYTHONDONTWRITEBYTECODE is set, about 1.5 s of CPU per run."""
    args = [sys.executable, "-m", "pytest", "--pyargs", "conformance", "--base-url", base_url, "-q",
            "-p", "no:cacheprovider", "--conformance-report", str(report)]
    if plain_assert:
        args.append("--assert=plain")
    if select:
        args += ["-k", select]
    for p in params:
        args += ["--param", p]
    args += list(extra)
    start = time.perf_counter()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, cwd=report.parent)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = None
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    run = SuiteRun(args=args, returncode=code, wall_s=time.perf_counter() - start, stdout=out, stderr=err)
    if report.exists():
        run.report = json.loads(report.read_text(encoding="utf-8"))
    return run
