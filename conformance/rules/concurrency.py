"""Several streams at once on each transport: each valid, none mixing into
another (each equals its own question's stream recorded on its own request)."""

from __future__ import annotations

from .common import stream_problems, valid_and_unchanged
from .registry import rule


@rule("CONCURRENCY-ISOLATED", "MUST", "3", needs=["concurrent", "baseline", "repeat"])
def concurrent_streams(ctx):
    """concurrent streams are each valid and never mix into one another"""
    alone = {r.request.question: r for r in ctx.get("baseline")}
    items = []
    for rec in ctx.get("concurrent"):
        question = rec.request.question
        label = f"concurrent stream of {question!r}"
        if question in alone:
            items += valid_and_unchanged("CONCURRENCY-ISOLATED", rec, alone[question], ctx, label,
                                         f"{label} differs from the same question recorded alone")
        else:
            items += stream_problems("CONCURRENCY-ISOLATED", rec, ctx, label) or []
    return items
