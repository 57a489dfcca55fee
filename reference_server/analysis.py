"""Turn a result table into what the agent shows: rows, a Vega-Lite chart and Markdown.

Every number in the analysis text is read from the result the code produced, so
the text changes when the data or the code change; nothing here is canned. And
every number says what it is computed over: a share "of all incidents" is taken
over the whole table (``population``), a mean or a total over a top-N result says
it is over the groups shown (at filing, "the top two account for 48.0% of all
incidents" was 48.0% of the five rows shown, 36.1% of all incidents).
``tests/test_analysis_figures.py`` checks every figure against pandas.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from .planner import Plan

MAX_ROWS = 60
MAX_BULLETS = 8
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


def table_rows(result: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """JSON-safe rows (numpy scalars to Python, NaN to None) and column names."""
    shown = result.head(MAX_ROWS)
    rows = json.loads(shown.to_json(orient="records", double_precision=6))
    return rows, [str(c) for c in shown.columns]


def chart_spec(plan: Plan, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A Vega-Lite v5 spec with the rows inline: a line over time, else sorted bars."""
    key, value = plan.key_column, plan.value_column
    spec: dict[str, Any] = {
        "$schema": VEGA_LITE_SCHEMA,
        "title": plan.title,
        "data": {"values": rows},
        "width": "container",
    }
    if plan.kind == "trend":
        spec["mark"] = {"type": "line", "point": True, "tooltip": True}
        spec["encoding"] = {
            "x": {"field": key, "type": "ordinal", "title": key},
            "y": {"field": value, "type": "quantitative", "title": value.replace("_", " ")},
        }
    else:
        spec["mark"] = {"type": "bar", "tooltip": True}
        spec["encoding"] = {
            "x": {"field": key, "type": "nominal", "sort": "-y", "title": key.replace("_", " ")},
            "y": {"field": value, "type": "quantitative", "title": value.replace("_", " ")},
        }
    return spec


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _takeaway(plan: Plan, keys: list[str], values: list[Any], population: int | None) -> str:
    """One closing sentence computed from the result's answer column."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return "**Takeaway:** the result has no numbers to compare."
    mean = round(sum(numbers) / len(numbers), 2)
    groups = f"the {len(numbers)} groups shown" if plan.top else "groups"
    if plan.kind == "count" and len(numbers) >= 2 and population:
        top_two = (numbers[0] + numbers[1]) / population * 100.0
        return f"**Takeaway:** the top two ({keys[0]}, {keys[1]}) account for {top_two:.1f}% of all {plan.target}."
    if plan.kind == "rate":
        return f"**Takeaway:** the mean failure rate across {groups} is {_fmt(mean)}%."
    if plan.kind == "joined":
        return f"**Takeaway:** across {groups}, the mean of incidents per deployment is {_fmt(mean)}."
    return f"**Takeaway:** the mean across {groups} is {_fmt(mean)}."


def analysis_markdown(plan: Plan, result: pd.DataFrame, substituted: str | None, population: int | None = None) -> str:
    """A short Markdown report of ``result``; ``substituted`` names a column the
    question asked for that did not exist (the agent grouped by ``plan.group``);
    ``population`` is how many rows the counted table has in all (shares "of all"
    are taken over it; without it a count's shares are over the rows shown)."""
    key, value = plan.key_column, plan.value_column
    lines: list[str] = [f"### {plan.title}", ""]
    if substituted:
        lines += [
            f"> There is no `{substituted}` column in the table analysed, so the results are grouped by "
            f"`{plan.group}` instead.",
            "",
        ]
    if result.empty or key not in result.columns or value not in result.columns:
        lines.append("The analysis returned no rows, so there is nothing to summarise.")
        return "\n".join(lines) + "\n"
    keys = [str(k) for k in result[key].tolist()]
    values = [v.item() if hasattr(v, "item") else v for v in result[value].tolist()]
    label = value.replace("_", " ")
    n = len(result)

    if plan.kind == "trend":
        first, last = values[0], values[-1]
        peak_i = max(range(n), key=lambda i: (values[i] if values[i] is not None else -math.inf))
        low_i = min(range(n), key=lambda i: (values[i] if values[i] is not None else math.inf))
        lines.append(
            f"Over **{n}** {key}s, {label} went from **{_fmt(first)}** ({keys[0]}) to "
            f"**{_fmt(last)}** ({keys[-1]})."
        )
        if first:
            change = (last - first) / first * 100.0
            lines.append(f"That is a change of **{change:+.1f}%** from the first to the last {key}.")
        lines += [
            "",
            f"- Peak: **{keys[peak_i]}** with {_fmt(values[peak_i])}",
            f"- Lowest: **{keys[low_i]}** with {_fmt(values[low_i])}",
        ]
        if plan.metric is None:
            lines.append(f"- Total: {_fmt(sum(v for v in values if v is not None))} {plan.target}")
        numbers = [v for v in values if v is not None]
        if numbers:
            lines += ["", f"**Takeaway:** the average is {_fmt(round(sum(numbers) / len(numbers), 1))} per {key}."]
        return "\n".join(lines) + "\n"

    top_k, top_v = keys[0], values[0]
    low_k, low_v = keys[-1], values[-1]
    shown_total = sum(v for v in values if isinstance(v, (int, float)))
    if plan.kind == "count" and population is None:
        population = shown_total
    if plan.kind == "count":
        share = (top_v / population * 100.0) if population else 0.0
        label_key = key.replace('_', ' ')
        if plan.top and shown_total != population:
            lines.append(
                f"Of **{_fmt(population)}** {plan.target} in all, the top **{n}** {label_key} values hold "
                f"**{_fmt(shown_total)}** ({shown_total / population * 100.0:.1f}%)."
            )
        else:
            lines.append(f"Across **{n}** {label_key} values and **{_fmt(population)}** {plan.target}:")
        lines.append(
            f"**{top_k}** has the most ({_fmt(top_v)}, {share:.1f}% of all {plan.target}) and **{low_k}** "
            f"the fewest{' shown' if plan.top else ''} ({_fmt(low_v)})."
        )
    elif plan.kind == "joined":
        row = result.iloc[0]
        lines.append(
            f"**{top_k}** has the most incidents per deployment ({_fmt(top_v)}: "
            f"{_fmt(int(row['incidents']))} incidents for {_fmt(int(row['deployments']))} deployments); "
            f"**{low_k}** has the fewest{' shown' if plan.top else ''} ({_fmt(low_v)})."
        )
        failed = int(result["failed_deployments"].sum())
        total_dep = int(result["deployments"].sum())
        if total_dep:
            where = f"In the {n} groups shown" if plan.top else "Overall"
            lines.append(
                f"{where}, {_fmt(failed)} of {_fmt(total_dep)} deployments failed or were rolled back "
                f"({failed / total_dep * 100.0:.1f}%)."
            )
    elif plan.kind == "rate":
        lines.append(
            f"**{top_k}** has the highest failure rate ({_fmt(top_v)}% of its deployments failed or were "
            f"rolled back); **{low_k}** the lowest{' shown' if plan.top else ''} ({_fmt(low_v)}%)."
        )
    else:
        spread = (top_v - low_v) if (top_v is not None and low_v is not None) else None
        lines.append(
            f"The {plan.measure_label} is highest for **{top_k}** "
            f"({_fmt(top_v)}) and lowest{' of those shown' if plan.top else ''} for **{low_k}** ({_fmt(low_v)})"
            + (f", a spread of {_fmt(spread)}." if spread is not None else ".")
        )
    lines.append("")
    for k, v in zip(keys[:MAX_BULLETS], values[:MAX_BULLETS]):
        share = f" ({v / population * 100.0:.1f}%)" if plan.kind == "count" and population else ""
        lines.append(f"- **{k}**: {_fmt(v)}{share}")
    if n > MAX_BULLETS:
        lines.append(f"- ... and {n - MAX_BULLETS} more")
    lines += ["", _takeaway(plan, keys, values, population)]
    if plan.top:
        lines += ["", f"_Only the top {plan.top} rows are shown._"]
    return "\n".join(lines) + "\n"
