"""The reference agent's planner: a few rules that turn a question into pandas code.

There is no model. The question only *chooses* among fixed code templates: which
table, which kind of analysis, which column to group by, which measure. The one
thing the question can put into code is a column name, and only as the
``repr()`` of a word matching ``^[a-z_][a-z0-9_]{0,40}$``: so a question can make
the first attempt fail (a column the table lacks, which the agent then reflects
on) but can never make the server run anything of its own.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from .datasets import ALL, JOIN_KEYS, TABLES, TableInfo

IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
WORD_RE = re.compile(r"[a-z_][a-z0-9_]*|\d+")
TOP_RE = re.compile(r"\btop[\s-]*(\d{1,3})\b")

PHRASES = {
    "root cause": "root_cause",
    "lines changed": "lines_changed",
    "lines of code": "lines_changed",
    "customers affected": "customers_affected",
    "affected customers": "customers_affected",
    "time to resolve": "mttr",
    "time to recover": "mttr",
    "over time": "over_time",
    "rolled back": "rolled_back",
    "grouped by": "by",
    "broken down by": "by",
    "split by": "by",
    "for each": "each",
}
GROUP_SYNONYMS = {
    "service": "service", "svc": "service",
    "team": "team", "owner": "team",
    "severity": "severity", "severitie": "severity", "sev": "severity", "priority": "severity", "prioritie": "severity",
    "root_cause": "root_cause", "cause": "root_cause", "reason": "root_cause",
    "status": "status", "statuse": "status", "state": "status",
    "environment": "environment", "env": "environment",
    "outcome": "outcome",
}
MEASURE_SYNONYMS = {
    "incidents": {
        "duration": "duration_minutes", "duration_minutes": "duration_minutes", "minute": "duration_minutes",
        "mttr": "duration_minutes", "resolution": "duration_minutes", "long": "duration_minutes",
        "longest": "duration_minutes", "customers_affected": "customers_affected", "customer": "customers_affected",
        "user": "customers_affected", "affected": "customers_affected", "impact": "customers_affected",
    },
    "deployments": {
        "duration": "duration_seconds", "duration_seconds": "duration_seconds", "second": "duration_seconds",
        "long": "duration_seconds", "longest": "duration_seconds", "slow": "duration_seconds",
        "lines_changed": "lines_changed", "line": "lines_changed", "loc": "lines_changed", "size": "lines_changed",
    },
}
ENTITY_WORDS = {
    "incident": "incidents", "outage": "incidents", "incidents": "incidents",
    "deploy": "deployments", "deployment": "deployments", "deployments": "deployments",
    "release": "deployments", "rollout": "deployments",
}
COUNT_WORDS = {"count", "number", "many", "volume", "frequency", "amount"}
TIME_WORDS = {
    "month": "month", "monthly": "month", "trend": "month", "over_time": "month", "timeline": "month",
    "history": "month", "date": "month", "week": "week", "weekly": "week", "day": "week", "daily": "week",
}
AGG_WORDS = {
    "average": "mean", "mean": "mean", "avg": "mean", "typical": "mean",
    "median": "median", "total": "sum", "sum": "sum",
    "max": "max", "maximum": "max", "worst": "max", "peak": "max",
    "min": "min", "minimum": "min", "shortest": "min",
}
AGG_LABELS = {"mean": "mean", "median": "median", "sum": "total", "max": "maximum", "min": "minimum"}
RATE_WORDS = {"fail", "failure", "failed", "rollback", "rolled_back", "success", "successful", "reliability", "rate"}
GROUP_MARKERS = {"by", "per", "across", "each", "every"}
STOPWORDS = {
    "the", "a", "an", "each", "every", "their", "its", "our", "my", "your", "all", "individual", "single",
    "what", "which", "who", "when", "where", "why", "how", "far", "default", "now", "then", "name",
    "value", "me", "us", "it", "this", "that", "these", "those", "and", "or", "of", "in", "on", "to",
    "for", "with", "is", "are", "was", "were", "be", "please", "show", "give", "list", "percent",
}
STOPWORDS |= COUNT_WORDS
MAX_TOP = 50


@dataclass(frozen=True)
class Plan:
    """What the agent will compute. ``group`` is the column that works;
    ``requested_group`` is a column named in the question that the table lacks
    (the first attempt uses it and fails)."""

    target: str  # a table name, or "joined" for dataset=all across both tables
    kind: str  # "count" | "aggregate" | "rate" | "trend" | "joined"
    group: str | None = None
    requested_group: str | None = None
    metric: str | None = None
    agg: str = "mean"
    period: str | None = None
    top: int | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def value_column(self) -> str:
        """The result column that holds the answer."""
        if self.kind == "rate":
            return "failure_rate_pct"
        if self.kind == "joined":
            return "incidents_per_deployment"
        if self.metric is not None:
            return f"{self.agg}_{self.metric}"
        return self.target

    @property
    def key_column(self) -> str:
        """The result column that labels each row."""
        if self.kind == "trend":
            return self.period or "month"
        return self.group or "service"

    @property
    def measure_label(self) -> str:
        """e.g. "total customers affected" for the sum of customers_affected."""
        if self.metric is None:
            return self.value_column.replace("_", " ")
        return f"{AGG_LABELS.get(self.agg, self.agg)} {self.metric.replace('_', ' ')}"

    @property
    def title(self) -> str:
        value = self.measure_label
        if self.kind == "trend":
            return f"{'Monthly' if self.period == 'month' else 'Weekly'} {value}"
        if self.kind == "joined":
            return f"Incidents per deployment by {self.key_column.replace('_', ' ')}"
        return f"{value[:1].upper()}{value[1:]} by {self.key_column.replace('_', ' ')}"


def words_of(question: str) -> list[str]:
    """Lower-case ASCII words of the question, with known phrases joined."""
    text = question.lower()
    for phrase, joined in PHRASES.items():
        text = re.sub(rf"\b{phrase}\b", joined, text)
    return WORD_RE.findall(text)


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _group_of(word: str) -> str | None:
    return GROUP_SYNONYMS.get(word) or GROUP_SYNONYMS.get(_singular(word))


def _measure_of(word: str, table: str) -> str | None:
    synonyms = MEASURE_SYNONYMS.get(table, {})
    return synonyms.get(word) or synonyms.get(_singular(word))


def _entity_of(word: str) -> str | None:
    return ENTITY_WORDS.get(word) or ENTITY_WORDS.get(_singular(word))


def _tables_named(words: list[str]) -> set[str]:
    """Tables the question points at, by entity words or columns only one table has."""
    hits: set[str] = set()
    for word in words:
        entity = _entity_of(word)
        if entity:
            hits.add(entity)
            continue
        group = _group_of(word)
        owners = {t for t, info in TABLES.items() if group in info.categorical}
        owners |= {t for t in TABLES if _measure_of(word, t)}
        if word in RATE_WORDS:
            owners.add("deployments")
        if len(owners) == 1:
            hits |= owners
    return hits


def _explicit_group(words: list[str]) -> str | None:
    """The word after the first grouping marker ("by", "per", ...), stop words skipped."""
    for i, word in enumerate(words):
        if word not in GROUP_MARKERS:
            continue
        for nxt in words[i + 1 : i + 4]:
            if nxt in STOPWORDS or nxt in AGG_WORDS or nxt.isdigit():
                continue
            return nxt
    return None


def _columns(info: TableInfo) -> set[str]:
    return {info.id_column, info.time_column, *info.categorical, *info.numeric}


def fallback_group(requested: str, allowed: tuple[str, ...], default: str = "service") -> str:
    """The column the corrected attempt groups by: the closest allowed name, else ``default``."""
    close = difflib.get_close_matches(requested, allowed, n=1, cutoff=0.6)
    return close[0] if close else default


def make_plan(question: str, dataset: str) -> Plan:
    """Choose table, analysis and columns for ``question`` over ``dataset``."""
    words = words_of(question)
    reasons: list[str] = []
    if dataset == ALL:
        named = _tables_named(words)
        has_measure = any(_measure_of(w, "incidents") or w in AGG_WORDS for w in words)
        if len(named) == 1:
            target = named.pop()
            reasons.append(f"The question is about {target}, so I use the {target} table.")
        elif not named and has_measure:
            target = "incidents"
            reasons.append("The question asks for a measure without naming a table; incidents is the primary table.")
        else:
            target = "joined"
            reasons.append("The question spans incidents and deployments, so I join both tables on their shared key.")
    else:
        target = dataset
        reasons.append(f"The request is limited to the {dataset} data set.")

    top: int | None = None
    match = TOP_RE.search(question.lower())
    if match:
        top = max(1, min(MAX_TOP, int(match.group(1))))
    elif "top" in words:
        top = 5

    explicit = _explicit_group(words)
    period = next((TIME_WORDS[w] for w in words if w in TIME_WORDS), None)
    if explicit is not None and _singular(explicit) in TIME_WORDS:
        period = TIME_WORDS[_singular(explicit)]
        explicit = None

    if target == "joined":
        group, requested = "service", None
        if explicit is not None and not _entity_of(explicit):
            resolved = _group_of(explicit) or (explicit if IDENT_RE.match(explicit) else None)
            if resolved in JOIN_KEYS:
                group = resolved
            elif resolved is not None:
                requested = resolved
                group = fallback_group(resolved, JOIN_KEYS)
        reasons.append(f"For each {group} I compare the number of incidents with the number of deployments.")
        return Plan(target, "joined", group=group, requested_group=requested, top=top, reasons=tuple(reasons))

    info = TABLES[target]
    metric = next((m for m in (_measure_of(w, target) for w in words) if m), None)
    agg = next((AGG_WORDS[w] for w in words if w in AGG_WORDS), "mean")
    if metric is None and agg != "mean":
        metric = info.numeric[0]

    if period is not None:
        reasons.append(f"The question is about change over time, so I count by {period} of {info.time_column}.")
        return Plan(target, "trend", metric=metric, agg=agg, period=period, top=None, reasons=tuple(reasons))

    group, requested = info.default_group, None
    if explicit is not None and not _entity_of(explicit) and not _measure_of(explicit, target):
        resolved = _group_of(explicit)
        if resolved is None and IDENT_RE.match(explicit):
            resolved = explicit
        if resolved is not None and resolved in info.categorical:
            group = resolved
        elif resolved is not None and resolved not in _columns(info):
            requested = resolved
            group = fallback_group(resolved, info.categorical, info.default_group)
    else:
        mentioned = next((g for g in (_group_of(w) for w in words) if g in info.categorical), None)
        if mentioned:
            group = mentioned

    if target == "deployments" and any(w in RATE_WORDS for w in words) and metric is None:
        reasons.append(f"Reliability is the share of deployments that did not succeed, per {group}.")
        return Plan(target, "rate", group=group, requested_group=requested, top=top, reasons=tuple(reasons))
    if metric is not None:
        reasons.append(f"I take the {agg} of {metric} for each {group}.")
        return Plan(target, "aggregate", group=group, requested_group=requested, metric=metric, agg=agg, top=top, reasons=tuple(reasons))
    reasons.append(f"I count {target} for each {group}.")
    return Plan(target, "count", group=group, requested_group=requested, top=top, reasons=tuple(reasons))


def render_code(plan: Plan, group: str | None) -> str:
    """The pandas code for ``plan`` grouped by ``group`` (a repr() literal in the code).

    The code reads only the frames in reach (``incidents``, ``deployments``) and
    ``pd``, and leaves its answer in ``result``.
    """
    g = repr(group)
    value = repr(plan.value_column)
    tail = f"    .head({int(plan.top)})\n" if plan.top else ""
    if plan.kind == "joined":
        return (
            f"inc = incidents.groupby({g}).size().rename('incidents')\n"
            f"dep = deployments.groupby({g}).size().rename('deployments')\n"
            "failed = deployments['outcome'] != 'success'\n"
            f"bad = deployments[failed].groupby({g}).size().rename('failed_deployments')\n"
            "result = (\n"
            f"    pd.concat([inc, dep, bad], axis=1)\n"
            "    .fillna(0)\n"
            "    .astype(int)\n"
            "    .rename_axis(" + g + ")\n"
            "    .reset_index()\n"
            ")\n"
            "result['incidents_per_deployment'] = (\n"
            "    result['incidents'] / result['deployments']\n"
            ").round(2)\n"
            "result = (\n"
            "    result.sort_values('incidents_per_deployment', ascending=False)\n"
            f"{tail}"
            ")\n"
        )
    table = plan.target
    if plan.kind == "trend":
        info = TABLES[table]
        when = f"pd.to_datetime(df[{info.time_column!r}])"
        if plan.period == "week":
            key = f"{when}.dt.to_period('W').dt.start_time.dt.strftime('%Y-%m-%d')"
        else:
            key = f"{when}.dt.to_period('M').astype(str)"
        measure = (
            f"    [{plan.metric!r}]\n    .{plan.agg}()\n    .round(1)\n" if plan.metric else "    .size()\n"
        )
        return (
            f"df = {table}\n"
            f"period = {key}.rename({plan.period!r})\n"
            "result = (\n"
            "    df.groupby(period)\n"
            f"{measure}"
            f"    .reset_index(name={value})\n"
            f"    .sort_values({plan.period!r})\n"
            ")\n"
        )
    if plan.kind == "rate":
        # Group the flag by the table's own column: a column the code itself
        # added (``df.assign(failed=...)``) would make a question "... by
        # failed" succeed where the plan expects a missing column.
        return (
            f"df = {table}\n"
            "failed = df['outcome'] != 'success'\n"
            "result = (\n"
            f"    failed.groupby(df[{g}])\n"
            "    .mean()\n"
            "    .mul(100)\n"
            "    .round(1)\n"
            f"    .reset_index(name={value})\n"
            f"    .sort_values({value}, ascending=False)\n"
            f"{tail}"
            ")\n"
        )
    if plan.kind == "aggregate":
        return (
            f"df = {table}\n"
            "result = (\n"
            f"    df.groupby({g})[{plan.metric!r}]\n"
            f"    .{plan.agg}()\n"
            "    .round(1)\n"
            f"    .reset_index(name={value})\n"
            f"    .sort_values({value}, ascending=False)\n"
            f"{tail}"
            ")\n"
        )
    return (
        f"df = {table}\n"
        "result = (\n"
        f"    df.groupby({g})\n"
        "    .size()\n"
        f"    .reset_index(name={value})\n"
        f"    .sort_values({value}, ascending=False)\n"
        f"{tail}"
        ")\n"
    )
