"""The latency gate: hold a run's summary against rules, print a verdict table.

The rules themselves are parsed and evaluated in :mod:`reports.rules` (pure);
this module reads the files, formats the table and writes the baseline. Exit
codes of ``python -m reports gate``: 0 every rule holds, 1 a rule fails,
2 bad input (unknown metric, unreadable file, malformed rule).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.contracts import Format
from reports.results import read_json_object
from reports.rules import Outcome, Rule, RuleError, evaluate_all, fmt, parse_rule, parse_rules_text

CI_RULES = Path(__file__).with_name("rules") / "ci.yaml"


class GateInputError(ValueError):
    """Bad input to the gate: the message is meant for the user, as is."""


@dataclass
class GateResult:
    """The outcome of every rule; ``ok`` when all of them hold."""

    outcomes: list[Outcome]
    current: str = ""
    baseline: str | None = None

    @property
    def ok(self) -> bool:
        """Every rule holds, and at least one applied: a gate that judged nothing passes nothing."""
        return all(o.ok for o in self.outcomes) and any(o.verdict != "n/a" for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(rule, value, limit, verdict) as strings, the same in text and Markdown."""
        out = []
        for o in self.outcomes:
            value = fmt(o.value) + (f" ({o.value_detail})" if o.value_detail else "")
            limit = f"{o.rule.op} {fmt(o.limit)}" + (f" ({o.limit_detail})" if o.limit_detail else "")
            verdict = {"pass": "PASS", "fail": "FAIL", "no data": "FAIL (no data)", "n/a": "N/A"}[o.verdict]
            out.append((o.rule.text, value, limit, verdict))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The verdicts as JSON-ready data (for a main job that records them)."""
        return {
            "ok": self.ok, "current": self.current, "baseline": self.baseline,
            "rules": [{"rule": o.rule.text, "kind": o.rule.kind, "why": o.rule.why, "value": o.value,
                       "limit": o.limit, "verdict": o.verdict} for o in self.outcomes],
        }

    def summary_line(self) -> str:
        na = sum(1 for o in self.outcomes if o.verdict == "n/a")
        n, bad = len(self.outcomes) - na, len(self.failed)
        tail = f" ({na} not applicable to this run)" if na else ""
        return f"gate: {'PASS' if self.ok else 'FAIL'}: {n - bad} of {n} rules hold{tail}"

    def table(self) -> str:
        """A plain-text table for a terminal or a CI log."""
        head = ("rule", "value", "limit", "verdict")
        rows = [head, *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([*lines, "", self.summary_line()])

    def markdown(self) -> str:
        """The same table in Markdown, for a GitHub Actions job summary."""
        def cell(s: str) -> str:
            return s.replace("|", "\\|")
        icon = {"PASS": "✅ PASS", "FAIL": "❌ FAIL", "FAIL (no data)": "❌ FAIL (no data)", "N/A": "➖ N/A"}
        lines = [
            f"### Latency gate: {'✅ PASS' if self.ok else '❌ FAIL'}",
            "",
            f"Run: `{self.current}`" + (f"; baseline: `{self.baseline}`" if self.baseline else ""),
            "",
            "| rule | value | limit | verdict |",
            "| --- | ---: | --- | --- |",
        ]
        for rule, value, limit, verdict in self.rows():
            lines.append(f"| `{cell(rule)}` | {cell(value)} | {cell(limit)} | {icon[verdict]} |")
        lines += ["", self.summary_line(), ""]
        return "\n".join(lines)


def read_json(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON object from a file, or GateInputError saying why not."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    data = read_json_object(p, what, GateInputError)
    if not isinstance(data.get("transports"), dict):
        raise GateInputError(
            f"{what} {str(p)!r} has no 'transports' section: expected a load run's summary.json, "
            "the summary.json of 'python -m reports compare', or a saved baseline"
        )
    return data


def load_rules(rules: str | Path | Sequence[str | Rule]) -> list[Rule]:
    """Rules from a YAML file (a path; ``"ci"`` names the packaged CI rules) or a list of rule strings."""
    if isinstance(rules, (str, Path)):
        # "ci" names the packaged rules unless a rules FILE of that name is here (a ci/
        # directory, common in repositories, is not one)
        p = CI_RULES if str(rules) == "ci" and not Path("ci").is_file() else Path(rules)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise GateInputError(f"cannot read rules file {str(p)!r}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise GateInputError(f"cannot read rules file {str(p)!r}: not UTF-8 text") from None
        try:
            return parse_rules_text(text, source=str(p))
        except RuleError as exc:
            raise GateInputError(str(exc)) from None
    out: list[Rule] = []
    for r in rules:
        try:
            out.append(r if isinstance(r, Rule) else parse_rule(r))
        except RuleError as exc:
            raise GateInputError(str(exc)) from None
    return out


def make_baseline(summary: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """A baseline: the figures of one run, with enough context to know where they came from."""
    return {
        "format": Format.BASELINE.value,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": source,
        "source_format": summary.get("format"),
        "started_at": summary.get("started_at"),
        "config": summary.get("config"),
        "versions": summary.get("versions"),
        "transports": summary["transports"],
    }


def save_baseline(summary: Mapping[str, Any], path: str | Path, source: str = "") -> Path:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(make_baseline(summary, source), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise GateInputError(f"cannot write baseline {str(p)!r}: {exc.strerror or exc}") from None
    return p


def run_gate(
    current: str | Path | Mapping[str, Any],
    rules: str | Path | Sequence[str | Rule],
    baseline: str | Path | Mapping[str, Any] | None = None,
    markdown_out: str | Path | None = None,
) -> GateResult:
    """Evaluate ``rules`` on ``current`` (a summary dict, a summary.json or a results dir).

    Raises GateInputError for bad input, before anything is written. When
    ``markdown_out`` is given, the Markdown table is appended to it (so that
    ``$GITHUB_STEP_SUMMARY`` works as is).
    """
    cur_name = "" if isinstance(current, Mapping) else str(current)
    cur = dict(current) if isinstance(current, Mapping) else read_json(current, "current summary")
    base_name: str | None = None
    base: dict[str, Any] | None = None
    if baseline is not None:
        base_name = "(dict)" if isinstance(baseline, Mapping) else str(baseline)
        base = dict(baseline) if isinstance(baseline, Mapping) else read_json(baseline, "baseline")
    parsed = load_rules(rules)
    try:
        outcomes = evaluate_all(parsed, cur, base)
    except RuleError as exc:
        raise GateInputError(str(exc)) from None
    result = GateResult(outcomes, current=cur_name, baseline=base_name)
    if markdown_out is not None:
        try:
            with open(markdown_out, "a", encoding="utf-8") as fh:
                fh.write(result.markdown())
        except OSError as exc:
            raise GateInputError(f"cannot write Markdown to {str(markdown_out)!r}: {exc.strerror or exc}") from None
    return result
