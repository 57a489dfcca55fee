"""Gate rules: parsing and evaluation, as pure functions on text and dicts.

Three kinds of rule, one grammar::

    ws.ttfe.p95_ms <= 3000                          absolute
    sse.delivery.p99_ms <= baseline * 1.15 + 2      relative to a baseline run
    ws.delivery.p50_ms / sse.delivery.p50_ms <= 3   ratio within one run
    *.ttfe.p95_ms <= 3000                           every transport of the run
    *.ttfe.p50_ms / *.ttfe.p50_ms <= 5              the first over each other one

    rule     := value OP limit
    value    := PATH | PATH "/" PATH
    limit    := NUMBER | "baseline" ["*" NUMBER] [("+" | "-") NUMBER]
    OP       := "<=" | ">=" | "<" | ">"

``*`` as the transport stands for each transport the run measured (a profile
with one transport gets no ratio rules; one with three gets six of each), so
one rules file serves every profile. ``baseline`` is the rule's own left-hand
side evaluated on the baseline summary,
so a ratio can be held against a baseline ratio too. The ``+ NUMBER`` slack is a
noise floor: 15 % of a 0.8 ms loopback latency is well inside scheduler jitter.

A rules file is YAML: a list of rules under ``rules:`` (or a bare list); each item
is a rule string or a mapping with ``rule`` and an optional ``why``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import yaml

from reports.metrics import MetricError, resolve

Kind = Literal["absolute", "baseline", "ratio"]


class RuleError(ValueError):
    """A rule or rules file that cannot be understood (bad input: exit 2)."""


_PATH = r"(?:[A-Za-z_][\w-]*|\*)(?:\.[\w-]+)+"
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(
    rf"^\s*(?P<num>{_PATH})\s*(?:/\s*(?P<den>{_PATH})\s*)?"
    r"(?P<op><=|>=|<|>|==|!=|=)\s*(?P<rhs>.*?)\s*$"
)
_RHS_NUM = re.compile(rf"^(?P<n>{_NUM})$")
_RHS_BASE = re.compile(
    rf"^baseline(?:\s*\*\s*(?P<factor>{_NUM}))?(?:\s*(?P<sign>[+-])\s*(?P<offset>\d+(?:\.\d*)?|\.\d+))?$"
)

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}


@dataclass(frozen=True)
class Rule:
    """One parsed rule. ``limit`` is set for absolute and ratio rules,
    ``factor``/``offset`` for baseline rules."""

    text: str
    numerator: str
    denominator: str | None
    op: str
    kind: Kind
    limit: float | None = None
    factor: float = 1.0
    offset: float = 0.0
    why: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.numerator,) if self.denominator is None else (self.numerator, self.denominator)


def parse_rule(text: str, why: str = "") -> Rule:
    """Parse one rule; raise :class:`RuleError` saying what is wrong and what is expected."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError(f"malformed rule {text!r}: empty")
    m = _RULE.match(text)
    if not m:
        raise RuleError(
            f"malformed rule {text!r}: expected 'METRIC OP LIMIT' or 'METRIC / METRIC OP LIMIT', "
            "e.g. 'ws.ttfe.p95_ms <= 50' (OP is one of <=, >=, <, >; METRIC is TRANSPORT.METRIC.STAT)"
        )
    op = m["op"]
    if op not in OPS:
        raise RuleError(f"malformed rule {text!r}: operator {op!r} is not allowed; use <=, >=, < or >")
    rhs = m["rhs"]
    common = dict(text=text.strip(), numerator=m["num"], denominator=m["den"], op=op, why=why)
    if (n := _RHS_NUM.match(rhs)):
        limit = float(n["n"])
        if not math.isfinite(limit):
            raise RuleError(f"malformed rule {text!r}: the limit must be a finite number")
        return Rule(kind="ratio" if m["den"] else "absolute", limit=limit, **common)
    if (b := _RHS_BASE.match(rhs)):
        factor = float(b["factor"]) if b["factor"] else 1.0
        offset = float(b["offset"]) if b["offset"] else 0.0
        if b["sign"] == "-":
            offset = -offset
        if not (math.isfinite(factor) and math.isfinite(offset)):
            # 'baseline * 1e400' would be a limit of inf: a rule that can never fail
            raise RuleError(f"malformed rule {text!r}: the factor and the slack must be finite numbers")
        return Rule(kind="baseline", factor=factor, offset=offset, **common)
    raise RuleError(
        f"malformed rule {text!r}: limit {rhs!r} is neither a number nor "
        "'baseline [* FACTOR] [+ SLACK]' (e.g. 'baseline * 1.15 + 2')"
    )


def parse_rules_document(doc: Any, source: str = "rules") -> list[Rule]:
    """Rules from a parsed YAML document (a list, or a mapping with ``rules:``)."""
    items = doc.get("rules") if isinstance(doc, Mapping) else doc
    if isinstance(doc, Mapping) and "rules" not in doc:
        raise RuleError(f"{source}: expected a 'rules:' list (found keys: {', '.join(map(str, doc))})")
    if not isinstance(items, list) or not items:
        raise RuleError(f"{source}: expected a non-empty list of rules under 'rules:'")
    rules: list[Rule] = []
    errors: list[str] = []
    for i, item in enumerate(items, 1):
        why = ""
        if isinstance(item, Mapping):
            why = str(item.get("why", "") or "")
            item = item.get("rule")
        if not isinstance(item, str):
            errors.append(f"{source}: rule {i}: expected a string like 'ws.ttfe.p95_ms <= 50', got {item!r}")
            continue
        try:
            rules.append(parse_rule(item, why))
        except RuleError as exc:
            errors.append(f"{source}: rule {i}: {exc}")
    if errors:
        raise RuleError("\n".join(errors))
    return rules


def parse_rules_text(text: str, source: str = "rules") -> list[Rule]:
    """Rules from the text of a YAML rules file."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise RuleError(f"{source}: not valid YAML: nested too deeply") from None
    return parse_rules_document(doc, source)


@dataclass(frozen=True)
class Outcome:
    """A rule held against one run: its value, its limit and the verdict."""

    rule: Rule
    value: float | None
    limit: float | None
    verdict: Literal["pass", "fail", "no data", "n/a"]
    value_detail: str = ""
    """For a ratio: its operands, e.g. ``0.95 / 0.84``."""
    limit_detail: str = ""
    """For a baseline rule: how the limit was made, e.g. ``baseline 1.2 × 1.15``."""

    @property
    def ok(self) -> bool:
        """Passed, or not applicable: the rule names a transport this run's profile
        does not define (a WebSocket rule on an SSE-only protocol)."""
        return self.verdict in ("pass", "n/a")


def _value(rule: Rule, summary: Mapping[str, Any]) -> tuple[float | None, str]:
    """The rule's left-hand side on ``summary`` (None if not measured or 0 denominator)."""
    num = resolve(summary, rule.numerator)
    if rule.denominator is None:
        return num, ""
    den = resolve(summary, rule.denominator)
    detail = f"{fmt(num)} / {fmt(den)}"
    if num is None or den is None or den == 0:
        return None, detail
    return num / den, detail


def check(rules: list[Rule], current: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> None:
    """Raise RuleError listing every rule that cannot be evaluated (unknown metric,
    relative rule without a baseline), so bad input is reported all at once."""
    errors: list[str] = []
    for rule in rules:
        for path in rule.paths:
            try:
                resolve(current, path)
            except MetricError as exc:
                errors.append(f"rule '{rule.text}': {exc}")
        if rule.kind == "baseline":
            if baseline is None:
                errors.append(f"rule '{rule.text}' compares with a baseline: pass --baseline FILE")
                continue
            for path in rule.paths:
                try:
                    resolve(baseline, path)
                except MetricError as exc:
                    errors.append(f"rule '{rule.text}': in the baseline: {exc}")
    if errors:
        raise RuleError("\n".join(dict.fromkeys(errors)))


def evaluate(rule: Rule, current: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> Outcome:
    """Hold one rule against a run. A figure that was not measured fails the rule
    ("no data"): a gate must not pass a run that produced nothing."""
    value, detail = _value(rule, current)
    if rule.kind == "baseline":
        if baseline is None:
            raise RuleError(f"rule '{rule.text}' compares with a baseline: pass --baseline FILE")
        base, _ = _value(rule, baseline)
        limit = None if base is None else base * rule.factor + rule.offset
        parts = [f"baseline {fmt(base)}"]
        if rule.factor != 1.0:
            parts.append(f"× {fmt(rule.factor)}")
        if rule.offset:
            parts.append(f"{'+' if rule.offset > 0 else '−'} {fmt(abs(rule.offset))}")
        limit_detail = " ".join(parts)
    else:
        limit, limit_detail = rule.limit, ""
    if value is None or limit is None:
        return Outcome(rule, value, limit, "no data", detail, limit_detail)
    verdict = "pass" if OPS[rule.op](value, limit) else "fail"
    return Outcome(rule, value, limit, verdict, detail, limit_detail)


def run_transports(summary: Mapping[str, Any]) -> list[str]:
    """The transports the run was to measure: those of its profile (the load run
    writes them as ``config.paths``), else those the summary holds. A transport of
    the profile with no figures is then a rule with no data, not one that does not
    apply."""
    config = summary.get("config") if isinstance(summary, Mapping) else None
    paths = config.get("paths") if isinstance(config, Mapping) else None
    if isinstance(paths, Mapping) and paths:
        return [str(t) for t in paths]
    transports = summary.get("transports") if isinstance(summary, Mapping) else None
    return [str(t) for t in transports] if isinstance(transports, Mapping) else []


def expand(rules: list[Rule], summary: Mapping[str, Any]) -> list[Rule]:
    """Each rule with ``*`` as its transport, once per transport of the run
    (:func:`run_transports`; a ratio of two ``*``: once per ordered pair of
    different transports)."""
    names = run_transports(summary)
    out: list[Rule] = []
    for rule in rules:
        starred = [p.startswith("*.") for p in rule.paths]
        if not any(starred):
            out.append(rule)
            continue
        if rule.denominator is None or all(starred):
            # a ratio reads the run's first transport (the reference) over each other one
            pairs = [(names[0], b) for b in names[1:]] if rule.denominator is not None else [(a, a) for a in names]
        else:  # one side starred: every transport but the named one
            named = rule.paths[starred.index(False)].split(".")[0]
            pairs = [(a, named) if starred[0] else (named, a) for a in names if a != named]
        for a, b in pairs:
            num = a + rule.numerator[1:] if rule.numerator.startswith("*.") else rule.numerator
            den = None if rule.denominator is None else (
                b + rule.denominator[1:] if rule.denominator.startswith("*.") else rule.denominator)
            text = f"{num} / {den}" if den else num
            out.append(replace(rule, numerator=num, denominator=den,
                               text=f"{text} {rule.text[rule.text.index(rule.op):]}"))
    return out


def _absent(rule: Rule, summary: Mapping[str, Any]) -> str | None:
    """Why a rule does not apply to this run, or None: it names a transport the run
    did not measure but that exists (a registered transport), or a figure measured
    against event timestamps when the run's profile has none. A name that is no
    transport at all stays an error: a typo must not pass as 'not applicable'."""
    from conformance.contracts import METRICS
    from conformance.wire import TRANSPORTS

    defined = run_transports(summary)
    config = summary.get("config") if isinstance(summary, Mapping) else None
    untimed = isinstance(config, Mapping) and "timestamp_field" in config and config["timestamp_field"] is None
    for path in rule.paths:
        name, _, rest = path.partition(".")
        if name not in defined and name in TRANSPORTS:
            return f"the run's profile has no {name}"
        metric = METRICS.get(rest.split(".")[0])
        if untimed and metric is not None and metric.needs_timestamp:
            return "the profile's events carry no timestamp"
    return None


def evaluate_all(rules: list[Rule], current: Mapping[str, Any],
                 baseline: Mapping[str, Any] | None = None) -> list[Outcome]:
    """Check every rule first (bad input raises RuleError), then evaluate them all
    (``*`` rules expanded over the run's transports; a rule about a transport the
    run did not measure is not applicable)."""
    rules = expand(rules, current)
    absent = {rule.text: _absent(rule, current) for rule in rules}
    transports = current.get("transports") if isinstance(current, Mapping) else None
    measured = set(transports) if isinstance(transports, Mapping) else set()
    defined = set(run_transports(current))
    unmeasured = {rule.text: next((p.split(".")[0] for p in rule.paths
                                   if p.split(".")[0] in defined and p.split(".")[0] not in measured), None)
                  for rule in rules if not absent[rule.text]}
    check([r for r in rules if not absent[r.text] and not unmeasured[r.text]], current, baseline)
    out = []
    for rule in rules:
        if absent[rule.text]:
            out.append(Outcome(rule, None, rule.limit, "n/a", absent[rule.text]))
        elif unmeasured[rule.text]:  # the profile has it, the run measured nothing on it
            out.append(Outcome(rule, None, rule.limit, "no data", f"no {unmeasured[rule.text]} figures in this run"))
        else:
            out.append(evaluate(rule, current, baseline))
    return out


def fmt(value: float | None) -> str:
    """A figure for a table: enough digits to compare, no more."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    a = abs(value)
    if a == 0:
        return "0"
    if float(value).is_integer() and a < 1e15:
        return f"{value:,.0f}"
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return f"{value:.3g}"
