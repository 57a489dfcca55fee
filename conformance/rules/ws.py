"""The WebSocket binding [PROTOCOL 5]: messages, the closing handshake, cancel,
permessage-deflate, and client messages that must be ignored. Each rule
applies to every transport of the profile that follows the ``ws`` binding."""

from __future__ import annotations

from conformance.validate import finding

from conformance.stimuli import CANCEL_AFTER

from .common import stream_problems, valid_and_unchanged

from .registry import NotJudged, Precondition, rule, stream_rule


def handshake_ok(rec) -> bool:
    return rec.status == 101 and rec.error_kind != "connect"


OPENED = Precondition("handshake", lambda rec, ctx: handshake_ok(rec),
                      "no completed {what} handshake to judge (see WS-HANDSHAKE)")
HAS_EVENTS = Precondition("events", lambda rec, ctx: bool(rec.events), "no {what} messages to judge (see WS-HANDSHAKE)")


@stream_rule("WS-HANDSHAKE", "MUST", "5", binding="ws")
def ws_handshake(rec, ctx):
    """an accepted WebSocket request completes the handshake"""
    if handshake_ok(rec):
        return []
    return [finding("WS-HANDSHAKE", f"handshake status {rec.status}" + (f": {rec.error}" if rec.error else ""))]


@stream_rule("WS-TEXT-FRAMES", "MUST", "5", binding="ws", requires=[OPENED, HAS_EVENTS])
def ws_text_frames(rec, ctx):
    """every event is a text frame; no binary frames"""
    if all([e.detail.kind != "binary" for e in rec.events]):  # one comprehension, no call per event
        return []
    return [finding("WS-TEXT-FRAMES", f"binary frame of {len(e.raw)} bytes", e.index)
            for e in rec.events if e.detail.kind == "binary"]


@stream_rule("WS-JSON-FRAME", "MUST", "5", binding="ws", requires=[OPENED, HAS_EVENTS])
def ws_json_frame(rec, ctx):
    """each text frame holds exactly one JSON object"""
    if not any([e.parse_error or not isinstance(e.data, dict) for e in rec.events]):
        return []  # every event an object (one comprehension, no call per event)
    out = []
    for e in rec.events:
        if e.detail.kind != "text":
            continue
        if e.parse_error:
            out.append(finding("WS-JSON-FRAME", f"frame is not one JSON value: {e.parse_error}", e.index))
        elif not isinstance(e.data, dict):
            out.append(finding("WS-JSON-FRAME", f"frame holds JSON {type(e.data).__name__}, not an object", e.index))
    return out


@stream_rule("WS-CLOSE-1000", "MUST", "5", binding="ws", requires=[OPENED])
def ws_close_1000(rec, ctx):
    """after {last} the socket closes with code {ws_close_normal}"""
    expected = ctx.section.close_normal
    d = rec.detail
    if d.close_code == expected:
        return []
    return [finding("WS-CLOSE-1000", f"closed with {d.close_code} {d.close_reason or ''}".strip()
                    + (f" ({rec.error})" if rec.error else ""))]


@stream_rule("WS-CLOSE-FRAME", "MUST", "5", binding="ws", requires=[OPENED])
def ws_close_frame(rec, ctx):
    """the server closes with a real close frame, never a dropped connection"""
    d = rec.detail
    if not d.close_frame_received:
        return [finding("WS-CLOSE-FRAME", f"no close frame: the connection dropped "
                                          f"({rec.error or 'close code ' + str(d.close_code)})")]
    if d.close_code in set(ctx.section.forbidden_close):
        return [finding("WS-CLOSE-FRAME", f"closed with {d.close_code}")]
    return []


def _has_cancel(ctx):
    return None if ctx.section.cancel else "the profile defines no cancel message"


def _answers(event, expect) -> bool:
    return isinstance(event.data, dict) and all(event.data.get(k) == v for k, v in expect.items())


def _cancel_problems(rec, ctx, label: str) -> tuple[list, str | None]:
    """What is wrong with a stream cancelled mid-way (``label`` says when), or why
    it cannot be judged (the cancel was not sent, or came too late to matter)."""
    spec, normal, last = ctx.section.cancel, ctx.section.close_normal, ctx.profile.order.last
    sent = rec.detail.messages_sent_at
    if not sent and rec.ok and rec.events:
        return [], f"the {label} was never sent (the stream gave no cue for it)"
    items = stream_problems("WS-CANCEL", rec, ctx, label) or []
    matches = [e for e in rec.events if _answers(e, spec.expect)]
    ended_by = next((e for e in rec.events if e.type in set(ctx.profile.order.terminal)), None)
    if not matches:
        if ended_by is not None and sent and ended_by.t_perf - sent[0] < 0.05 and not items:
            return [], f"the stream reached {ended_by.type!r} before the {label} could take effect"
        seen = ended_by.data if ended_by is not None else "no terminal event"
        items.append((finding("WS-CANCEL", f"{label}: no {spec.expect}; the stream ended with {seen}",
                              ended_by.index if ended_by else None), rec))
    elif rec.events[-1].type not in last or rec.events.index(matches[0]) != len(rec.events) - 2:
        items.append((finding("WS-CANCEL", f"{label}: {spec.expect} must be followed directly by {' or '.join(last)}",
                              matches[0].index), rec))
    elif sent and matches[0].t_perf - sent[0] > spec.within_s:
        items.append((finding("WS-CANCEL", f"{label}: {spec.expect} came {matches[0].t_perf - sent[0]:.2f} s after "
                                           f"the cancel, more than {spec.within_s:g} s", matches[0].index), rec))
    if rec.detail.close_code != normal:
        items.append((finding("WS-CANCEL", f"{label}: closed with {rec.detail.close_code}, expected {normal}"), rec))
    return items, None


@rule("WS-CANCEL", "MUST", "5", binding="ws", needs=["cancel", "cancel_mid", "cancel_late", "baseline"],
      skip_unless=_has_cancel)
def ws_cancel(ctx):
    """after a cancel: {cancel_type} with {cancel_expect}, {last}, close {ws_close_normal}"""
    spec, normal = ctx.section.cancel, ctx.section.close_normal
    items, reasons, judged = [], [], 0
    for name, label in (("cancel", f"cancel after {CANCEL_AFTER} events"), ("cancel_mid", "mid-stream cancel")):
        for rec in ctx.get(name):
            found, why = _cancel_problems(rec, ctx, label)
            items += found
            if why:
                reasons.append(why)
            else:
                judged += 1
    if items:
        return items
    # a cancel sent when the terminal event arrives changes nothing: the stream still
    # ends with its one terminal event and stream_end, and closes normally
    for late in ctx.get("cancel_late"):
        judged += 1
        ended = next((e.type for e in late.events if e.type in set(ctx.profile.order.terminal)), "the terminal event")
        label = f"cancel sent on {ended!r}"
        items += stream_problems("WS-CANCEL", late, ctx, label) or []
        if any(_answers(e, spec.expect) for e in late.events):
            items.append((finding("WS-CANCEL", f"a {label} still produced {spec.expect}"), late))
        if late.detail.close_code != normal:
            items.append((finding("WS-CANCEL", f"closed with {late.detail.close_code} after a late cancel, "
                                               f"expected {normal}"), late))
    if not items and reasons and not judged:
        raise NotJudged("; ".join(reasons))
    return items


@rule("WS-DEFLATE", "MUST", "5", binding="ws", needs=["deflate", "baseline", "repeat"])
def ws_deflate(ctx):
    """with permessage-deflate negotiated the stream is otherwise the same"""
    rec = ctx.get("deflate")[0]
    if handshake_ok(rec) and not any("permessage-deflate" in x for x in rec.detail.extensions):
        raise NotJudged("the server did not negotiate permessage-deflate (optional)")
    return valid_and_unchanged("WS-DEFLATE", rec, ctx.get("baseline")[0], ctx, "with permessage-deflate",
                               "differs from the uncompressed stream")


@rule("WS-IGNORE-CLIENT-MESSAGES", "MUST", "5", binding="ws", needs=["client_hello", "baseline", "repeat"],
      skip_unless=lambda ctx: None if ctx.section.ignores_unknown_messages
      else "the profile answers client messages it does not define (ignores_unknown_messages: false)")
def ws_ignores_other_messages(ctx):
    """client messages other than cancel are ignored"""
    rec = ctx.get("client_hello")[0]
    if not rec.detail.messages_sent_at and not (rec.error_kind or not handshake_ok(rec)):
        raise NotJudged("the unknown client message was never sent (the stream ended before its first event)")
    return valid_and_unchanged("WS-IGNORE-CLIENT-MESSAGES", rec, ctx.get("baseline")[0], ctx,
                               "after an unknown client message", "the stream changed")
