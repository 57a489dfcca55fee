"""What several rules share: how an accepted stream can fail."""

from __future__ import annotations

from conformance.validate import finding
from conformance.wire import get


def stream_problems(rule_id: str, recording, ctx, label: str = "") -> list:
    """One finding under ``rule_id`` per way a stream that should be complete fails:
    not accepted, cut short, or breaking a MUST of the stream rules."""
    prefix = f"{label}: " if label else ""
    transport = get(recording.transport)
    if recording.error_kind is None and not transport.accepted(recording):
        _, message = transport.incomplete(recording) or ("", f"status {recording.status}")
        return [(finding(rule_id, f"{prefix}{message}, expected a stream"), recording)]
    if recording.error_kind == "connect":
        return [(finding(rule_id, f"{prefix}{recording.error}"), recording)]
    out = [(finding(rule_id, f"{prefix}{f.rule}: {f.message}", f.index, f.pointer), recording)
           for f in ctx.findings(recording) if f.level == "MUST"]
    if recording.error_kind and not out:
        out.append((finding(rule_id, f"{prefix}{recording.error}"), recording))
    return out


def valid_and_unchanged(rule_id: str, recording, reference, ctx, label: str, differs: str) -> list:
    """``stream_problems``, or else a finding when the stream diverges from
    ``reference`` (the same request without the change under test) in the
    session's parity mode; ``differs`` says how, e.g. 'the stream changed'."""
    items = stream_problems(rule_id, recording, ctx, label)
    if not items:
        mode, divergence = ctx.divergence(reference, recording)
        if divergence is not None:
            items.append((finding(rule_id, f"{differs} ({mode}): {divergence.describe()}", divergence.index), recording))
    return items
