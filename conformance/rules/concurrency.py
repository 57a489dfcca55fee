"""Several streams at once on each transport: each valid, none mixing into
another (each equals its own question's stream recorded on its own request)."""

from __future__ import annotations

from conformance.validate import finding

from .common import stream_problems
from .registry import rule


@rule("CONCURRENCY-ISOLATED", "MUST", "3", needs=["concurrent", "baseline", "repeat"])
def concurrent_streams(ctx):
    """concurrent streams are each valid and never mix into one another"""
    qp = ctx.profile.question_param
    alone = {r.request.params.get(qp): r for r in ctx.get("baseline")}
    items = []
    for rec in ctx.get("concurrent"):
        question = rec.request.params.get(qp)
        problems = stream_problems("CONCURRENCY-ISOLATED", rec, ctx, f"concurrent stream of {question!r}")
        items += problems
        if not problems and question in alone:
            mode, divergence = ctx.divergence(alone[question], rec)
            if divergence is not None:
                items.append((finding("CONCURRENCY-ISOLATED", f"concurrent stream of {question!r} differs from the same "
                                      f"question recorded alone ({mode}): {divergence.describe()}", divergence.index), rec))
    return items
