"""The transports send the same events [PROTOCOL 6], for each pair of transports
the profile names (``parity``), on the sample questions and on drawn ones.

With ``--parity auto`` the suite records the first sample twice on each
transport: a backend that repeats itself exactly is held to strict parity,
another one to structural parity (and PARITY-STRICT is not judged, saying why).
"""

from __future__ import annotations

from conformance.parity import strict_divergence, structural_divergence
from conformance.validate import finding

from .common import stream_problems
from .registry import NotJudged, rule


def _pairs(ctx, name: str) -> list:
    left, right = ctx.pair
    a, b = ctx.get(name, left), ctx.get(name, right)
    if not any(r.events for r in a) and not any(r.events for r in b):
        raise NotJudged(f"neither {left} nor {right} received any event: nothing to compare (see the stream rules)")
    return list(zip(a, b))


def _parity(ctx, rule_id: str, compare) -> list:
    items = []
    for left, right in _pairs(ctx, "baseline"):
        divergence = compare(left.objects, right.objects, ctx.profile, ctx.pair)
        if divergence is not None:
            question = (left.request.question or "")
            items.append((finding(rule_id, f"question {question!r}: {divergence.describe()}", divergence.index), left))
    return items


@rule("PARITY-STRICT", "MUST", "6", scope="pair", needs=["baseline", "repeat"])
def parity_strict(ctx):
    """a deterministic backend sends the same events on both transports, volatile fields aside"""
    mode = ctx.session.parity_mode(ctx.pair)
    if mode != "strict":
        why = "--parity structural" if ctx.session.settings.parity != "auto" else ctx.session.deterministic(ctx.pair)[1]
        raise NotJudged(f"structural parity only ({why})")
    return _parity(ctx, "PARITY-STRICT", strict_divergence)


@rule("PARITY-STRUCTURAL", "MUST", "6", scope="pair", needs=["baseline"])
def parity_structural(ctx):
    """both transports send the same sequence of types once chunk runs are merged"""
    return _parity(ctx, "PARITY-STRUCTURAL", structural_divergence)


@rule("PROPERTY-QUESTIONS", "MUST", "6", scope="pair", needs=["drawn_questions", "baseline", "repeat"])
def drawn_questions(ctx):
    """for any drawn question both transports give valid streams in parity"""
    items = []
    for left, right in _pairs(ctx, "drawn_questions"):
        q = (left.request.question or "")
        on_left = stream_problems("PROPERTY-QUESTIONS", left, ctx, f"question {q!r}")
        on_right = stream_problems("PROPERTY-QUESTIONS", right, ctx, f"question {q!r}")
        if on_left is None or on_right is None:
            continue  # noted on ctx: the stream rules report it
        problems = on_left + on_right
        items += problems
        if not problems:
            mode, divergence = ctx.divergence(left, right)
            if divergence is not None:
                items.append((finding("PROPERTY-QUESTIONS", f"question {q!r} ({mode} parity): {divergence.describe()}",
                                      divergence.index), left))
    return items
