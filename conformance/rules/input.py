"""Bad input on every transport [PROTOCOL 1, 4, 5]: every invalid request is
rejected properly, every valid one accepted, and no input at all gives a 5xx,
a 1011, a dropped connection or a hang. What a proper rejection is depends on
the binding (PROTOCOL 4 and 5), so these rules read the transport's section."""

from __future__ import annotations

import json

from conformance.validate import finding

from conformance.wire import get

from .common import require_accepted_baseline, stream_problems
from .registry import NotJudged, rule


def _value_label(name: str, value: str) -> str:
    return f"{name}={value[:40]!r}{'...' if len(value) > 40 else ''}"


def rejection_problems(rule_id: str, rec, ctx, label: str) -> list:
    """Findings when a request that must be rejected was not rejected properly."""
    section = ctx.profile.transports[rec.transport]
    if rec.error_kind == "timeout":
        return [(finding(rule_id, f"{label}: no answer: {rec.error}"), rec)]
    if section.binding == "sse":
        reject_class = section.reject_class
        if rec.status is None or rec.status // 100 != reject_class:
            return [(finding(rule_id, f"{label}: status {rec.status}, expected {reject_class}xx"
                             + (f" with {len(rec.events)} events" if rec.events else "")), rec)]
        if rec.events:
            return [(finding(rule_id, f"{label}: a rejection must carry no event stream, got {len(rec.events)} events"), rec)]
        return []
    if rec.status is not None and rec.status // 100 == 4:
        return []
    if rec.status == 101:
        if section.client_closes and _lone_reject_event(rec, section):
            return []  # the protocol answers with its error event and keeps the socket for the next request
        if rec.detail.close_code == section.close_reject:
            return []
        return [(finding(rule_id, f"{label}: accepted and closed with {rec.detail.close_code} after {len(rec.events)} "
                                  f"events, expected a 4xx handshake or close {section.close_reject}"), rec)]
    return [(finding(rule_id, f"{label}: handshake status {rec.status}" + (f" ({rec.error})" if rec.error else "")), rec)]


def _lone_reject_event(rec, section) -> bool:
    """A rejection on a socket that stays open: one event of the rejection type."""
    return len(rec.events) == 1 and (section.reject_event_type is None or rec.events[0].type == section.reject_event_type)


def _rejected_on_ws(rec, section) -> bool:
    """Accepted at the handshake, then refused: closed with close_reject, or (where
    the socket stays open) answered with one lone rejection event."""
    if rec.status != 101:
        return False
    return rec.detail.close_code == section.close_reject or (section.client_closes and len(rec.events) >= 1
                                                             and rec.events[0].type == section.reject_event_type)


def _cases(ctx, stimulus: str, cases) -> list:
    require_accepted_baseline(ctx)
    recordings = ctx.get(stimulus)
    if not recordings:
        raise NotJudged(f"the profile lists no request.{stimulus} cases")
    return list(zip(cases, recordings))


@rule("INPUT-REJECT", "MUST", "1", needs=["invalid", "baseline"])
def invalid_rejected(ctx):
    """invalid requests are rejected: SSE {sse_reject_status}, WS 4xx at the handshake or close {ws_close_reject}"""
    items = []
    for case, rec in _cases(ctx, "invalid", ctx.profile.request.invalid):
        items += rejection_problems("INPUT-REJECT", rec, ctx, case.name)
    return items


@rule("INPUT-SSE-JSON-ERROR", "MUST", "4", binding="sse", needs=["invalid", "baseline"])
def sse_rejection_is_json(ctx):
    """an SSE rejection has a JSON body (Content-Type application/json)"""
    wanted = ctx.section.reject_content_type
    items, judged = [], 0
    for case, rec in _cases(ctx, "invalid", ctx.profile.request.invalid):
        if rec.status is None or rec.status // 100 != 4:
            continue
        judged += 1
        if rec.media_type != wanted:
            items.append((finding("INPUT-SSE-JSON-ERROR", f"{case.name}: Content-Type {rec.header('content-type')!r}, "
                                                          f"expected {wanted}"), rec))
            continue
        try:
            json.loads(rec.body or b"")
        except ValueError as exc:
            items.append((finding("INPUT-SSE-JSON-ERROR", f"{case.name}: the body is not JSON ({exc}): "
                                                          f"{(rec.body or b'')[:80]!r}"), rec))
    if not judged:
        raise NotJudged("no invalid request was rejected with a 4xx: see INPUT-REJECT")
    return items


@rule("INPUT-WS-REJECT-EVENT", "MUST", "5", binding="ws", needs=["invalid", "baseline"])
def ws_rejection_event(ctx):
    """a WS rejection sends at most one lone error event, then close {ws_close_reject}"""
    section = ctx.section
    seq = ctx.profile.seq_field
    items, judged, statuses = [], 0, set()
    for case, rec in _cases(ctx, "invalid", ctx.profile.request.invalid):
        if not _rejected_on_ws(rec, section):
            statuses.add(f"status {rec.status}" + (f", close {rec.detail.close_code}" if rec.status == 101 else ""))
            continue
        judged += 1
        if len(rec.events) > 1:
            items.append((finding("INPUT-WS-REJECT-EVENT", f"{case.name}: {len(rec.events)} events in the rejection; "
                                                           f"at most one lone event", 1), rec))
        for e in rec.events[:1]:
            if section.reject_event_type and e.type != section.reject_event_type:
                items.append((finding("INPUT-WS-REJECT-EVENT", f"{case.name}: the lone event is {e.type!r}, "
                                                               f"expected {section.reject_event_type!r}", 0), rec))
            if seq and isinstance(e.data, dict) and seq in e.data:
                items.append((finding("INPUT-WS-REJECT-EVENT", f"{case.name}: the lone event carries {seq}: "
                                                               f"it is not a stream", 0, f"/{seq}"), rec))
    if not judged:
        raise NotJudged(f"not accepted-then-closed with {section.close_reject} ({'; '.join(sorted(statuses))})")
    return items


@rule("INPUT-ACCEPT", "MUST", "1", needs=["valid_edge", "baseline"])
def valid_accepted(ctx):
    """every valid request is accepted (the profile's edge cases)"""
    items = []
    for case, rec in _cases(ctx, "valid_edge", ctx.profile.request.valid_edge):
        items += stream_problems("INPUT-ACCEPT", rec, ctx, case.name) or []
    return items


def never_5xx_problems(rule_id: str, rec, ctx, label: str) -> list:
    """Findings when a drawn request got neither a proper rejection nor a valid stream."""
    section = ctx.profile.transports[rec.transport]
    if rec.status is not None and rec.status >= 500:
        return [(finding(rule_id, f"{label}: status {rec.status}"), rec)]
    if rec.error_kind == "timeout":
        return [(finding(rule_id, f"{label}: hang: {rec.error}"), rec)]
    if section.binding == "ws" and rec.detail.close_code in set(section.forbidden_close):
        return [(finding(rule_id, f"{label}: closed with {rec.detail.close_code}"), rec)]
    accepted = get(rec.transport).accepted(rec)
    if section.binding == "ws":
        accepted = accepted and not _rejected_on_ws(rec, section)
    if accepted:
        return stream_problems(rule_id, rec, ctx, label) or []
    return rejection_problems(rule_id, rec, ctx, label)


@rule("INPUT-NEVER-5XX", "MUST", "1", needs=["drawn_params", "baseline"])
def drawn_values_never_5xx(ctx):
    """no input gives a 5xx, a close 1011/1006, or a hang"""
    require_accepted_baseline(ctx)
    items = []
    for rec in ctx.get("drawn_params"):
        changed = _changed_param(rec, ctx)
        items += never_5xx_problems("INPUT-NEVER-5XX", rec, ctx, changed)
    return items


def _changed_param(rec, ctx) -> str:
    """'name=value' of the drawn parameter of a request (the one that differs from the session's own)."""
    own = dict(ctx.session.settings.params) if ctx.session else {}
    own[ctx.profile.question_param] = ctx.profile.sample_questions[0]
    for name, value in rec.request.query:
        if own.get(name) != value:
            return _value_label(name, value)
    return _value_label("question", rec.request.question or "")
