"""One report, two renderings: Markdown (plots as files beside it) and a
self-contained HTML page (plots as base64 data URIs, CSS inline, no external link).

The report is built once as a list of blocks; both renderers walk the same list,
so report.md and report.html cannot disagree.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reports.rules import fmt


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str
    """Markdown inline syntax: `code` and **bold** only."""
    cls: str = ""


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    df: pd.DataFrame
    numeric: list[str] = field(default_factory=list)
    """Columns to format as figures (right-aligned)."""
    cls: str = ""


@dataclass
class Image:
    name: str
    """File name of the PNG beside report.md, e.g. ``plots/latency_cdf.png``."""
    png: bytes
    alt: str


@dataclass
class Code:
    """Lines shown whole and as they are (a failure message, reproduction commands):
    never cut; a long line wraps on screen and copies as one line."""

    lines: list[str]


Block = Heading | Para | Bullets | Table | Image | Code


def cell(v: Any) -> str:
    """A table cell: figures via :func:`fmt`, None/NaN as a dash."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "—"
        return fmt(v)
    if isinstance(v, int):
        return fmt(float(v))
    return str(v)


def _rows(t: Table) -> tuple[list[str], list[list[str]]]:
    cols = [str(c) for c in t.df.columns]
    rows = [[cell(v) for v in rec] for rec in t.df.itertuples(index=False, name=None)]
    return cols, rows


# ---- Markdown ---------------------------------------------------------------

def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            cols, rows = _rows(b)
            out.append("| " + " | ".join(_md_cell(c) for c in cols) + " |")
            out.append("| " + " | ".join("---:" if c in b.numeric else "---" for c in cols) + " |")
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("")
        elif isinstance(b, Image):
            out += [f"![{b.alt}]({b.name})", ""]
        elif isinstance(b, Code):
            fence = "````" if any("```" in line for line in b.lines) else "```"
            out += [fence, *b.lines, fence, ""]
    return "\n".join(out).rstrip() + "\n"


# ---- HTML -------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{border-bottom:1px solid #eee;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .6em;vertical-align:top}th{background:#f5f5f5;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafafa}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px;font-size:.92em}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em .8em}
.v-confirmed,.v-pass{color:#1a7f37;font-weight:600}.v-fail,.v-contradicted{color:#cf222e;font-weight:600}
.v-not-confirmed,.v-warn,.v-undecided{color:#9a6700;font-weight:600}.v-not-measured,.v-skip{color:#777}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:.6em .8em;white-space:pre-wrap;overflow-wrap:anywhere;
font-size:.88em}
.verdict{border:2px solid #ddd;padding:.4em 1em;margin:1em 0}.verdict.ok{border-color:#1a7f37}
.verdict.bad{border-color:#cf222e}
"""

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")


def inline_html(text: str) -> str:
    """Escape ``text`` and turn `code` and **bold** into HTML."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(f"<code>{html.escape(m.group(1))}</code>")
        else:
            out.append(f"<strong>{html.escape(m.group(2))}</strong>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


_VERDICT_WORDS = ("confirmed", "not confirmed", "contradicted", "not measured", "undecided", "pass", "fail", "warn",
                  "skip")


def _td(col: str, value: str, numeric: bool) -> str:
    cls = []
    if numeric:
        cls.append("num")
    low = value.lower()
    for w in _VERDICT_WORDS:
        if low == w or low.startswith(w + ":"):
            cls.append("v-" + w.replace(" ", "-"))
            break
    attr = f' class="{" ".join(cls)}"' if cls else ""
    return f"<td{attr}>{inline_html(value)}</td>"


def to_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{inline_html(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            cls = f' class="{b.cls}"' if b.cls else ""
            body.append(f"<p{cls}>{inline_html(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            cols, rows = _rows(b)
            head = "".join(f"<th>{inline_html(c)}</th>" for c in cols)
            trs = "".join("<tr>" + "".join(_td(c, v, c in b.numeric) for c, v in zip(cols, r)) + "</tr>"
                          for r in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{inline_html(b.alt)}</figcaption></figure>")
        elif isinstance(b, Code):
            body.append("<pre>" + html.escape("\n".join(b.lines)) + "</pre>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
