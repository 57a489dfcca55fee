"""What several rules share: how an accepted stream can fail."""

from __future__ import annotations

from conformance.validate import finding
from conformance.wire import get

from .registry import NotJudged


def stream_problems(rule_id: str, recording, ctx, label: str = "") -> list | None:
    """One finding under ``rule_id`` per way a stream that should be complete fails:
    not accepted, cut short, or breaking a MUST of the stream rules.

    None when the stream breaks stream rules that the transport's baseline
    breaks too: those rules report the cause, so this rule does not judge the
    stream (one root cause, one failure); the reason is noted on ``ctx``."""
    prefix = f"{label}: " if label else ""
    transport = get(recording.transport)
    if recording.error_kind is None and not transport.accepted(recording):
        _, message = transport.incomplete(recording) or ("", f"status {recording.status}")
        return [(finding(rule_id, f"{prefix}{message}, expected a stream"), recording)]
    if recording.error_kind == "connect":
        return [(finding(rule_id, f"{prefix}{recording.error}"), recording)]
    broken = [f for f in ctx.findings(recording) if f.level == "MUST"]
    if broken and recording.error_kind is None:
        rules = {f.rule for f in broken}
        if rules <= baseline_breaks(ctx, recording.transport):
            ctx.not_judged.append(f"the stream breaks {', '.join(sorted(rules))} (see {'those rules' if len(rules) > 1 else 'that rule'})")
            return None
    out = [(finding(rule_id, f"{prefix}{f.rule}: {f.message}", f.index, f.pointer), recording) for f in broken]
    problem = transport.incomplete(recording)
    if problem is not None and not out:  # cut short, or ended abnormally (a WS close 1011, ...)
        out.append((finding(rule_id, f"{prefix}{problem[1]}"), recording))
    return out


def baseline_breaks(ctx, transport: str) -> set[str]:
    """The MUST stream rules the sample streams of ``transport`` break (their own
    verdicts report them)."""
    if ctx.session is None:
        return set()
    return {f.rule for rec in ctx.get("baseline", transport) for f in ctx.findings(rec) if f.level == "MUST"}


def require_accepted_baseline(ctx) -> None:
    """NotJudged unless a sample question got a stream on this transport: refusing
    bad input tells nothing about a backend that refuses everything."""
    if not any(get(r.transport).accepted(r) for r in ctx.get("baseline")):
        raise NotJudged(f"no sample question got a {ctx.transport} stream (see the status and handshake rules): "
                        "a refusal of bad input tells nothing")


def valid_and_unchanged(rule_id: str, recording, reference, ctx, label: str, differs: str) -> list:
    """``stream_problems``, or else a finding when the stream diverges from
    ``reference`` (the same request without the change under test) in the
    session's parity mode; ``differs`` says how, e.g. 'the stream changed'."""
    if get(reference.transport).incomplete(reference) is not None:
        ctx.not_judged.append("the stream to compare with is not complete (see the stream rules)")
        return []
    items = stream_problems(rule_id, recording, ctx, label)
    if items is None:
        return []
    if not items:
        mode, divergence = ctx.divergence(reference, recording)
        if divergence is not None:
            items.append((finding(rule_id, f"{differs} ({mode}): {divergence.describe()}", divergence.index), recording))
    return items
