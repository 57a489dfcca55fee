"""The WebSocket binding [PROTOCOL 5]: frames, the closing handshake, cancel,
permessage-deflate, and client messages that must be ignored."""

import pytest

from .suite import need, options_of, parity_divergence, stream_problems, with_events
from .target import CANCEL_AFTER
from .validate import finding


def _ws(target):
    return target.baseline()["ws"]


def _handshake_ok(rec):
    return rec.status == 101 and rec.error_kind != "connect"


def _opened(target):
    return need([r for r in _ws(target) if _handshake_ok(r)], "completed WebSocket handshake", "WS-HANDSHAKE")


@pytest.mark.parametrize("rule_id", ["WS-HANDSHAKE"])
def test_ws_handshake(rule_id, conformance_target, check):
    items = [(finding(rule_id, f"handshake status {rec.status}" + (f": {rec.error}" if rec.error else "")), rec)
             for rec in _ws(conformance_target) if not _handshake_ok(rec)]
    check(rule_id, items, "ws")


@pytest.mark.parametrize("rule_id", ["WS-TEXT-FRAMES"])
def test_ws_text_frames(rule_id, conformance_target, check):
    recordings = need(with_events(_opened(conformance_target)), "WebSocket frames", "WS-HANDSHAKE")
    items = [(finding(rule_id, f"binary frame of {len(e.raw)} bytes", e.index), rec)
             for rec in recordings for e in rec.events if e.frame == "binary"]
    check(rule_id, items, "ws")


@pytest.mark.parametrize("rule_id", ["WS-JSON-FRAME"])
def test_ws_json_frame(rule_id, conformance_target, check):
    items = []
    for rec in need(with_events(_opened(conformance_target)), "WebSocket frames", "WS-HANDSHAKE"):
        for e in rec.events:
            if e.frame != "text":
                continue
            if e.parse_error:
                items.append((finding(rule_id, f"frame is not one JSON value: {e.parse_error}", e.index), rec))
            elif not isinstance(e.data, dict):
                items.append((finding(rule_id, f"frame holds JSON {type(e.data).__name__}, not an object", e.index), rec))
    check(rule_id, items, "ws")


@pytest.mark.parametrize("rule_id", ["WS-CLOSE-1000"])
def test_ws_close_1000(rule_id, conformance_target, check):
    expected = conformance_target.profile.transport("ws").get("close_normal", 1000)
    items = [(finding(rule_id, f"closed with {rec.close_code} {rec.close_reason or ''}".strip()
                      + (f" ({rec.error})" if rec.error else "")), rec)
             for rec in _opened(conformance_target) if rec.close_code != expected]
    check(rule_id, items, "ws")


@pytest.mark.parametrize("rule_id", ["WS-CLOSE-FRAME"])
def test_ws_close_frame(rule_id, conformance_target, check):
    forbidden = set(conformance_target.profile.transport("ws").get("forbidden_close", [1006, 1011]))
    items = []
    for rec in _opened(conformance_target):
        if not rec.close_frame_received:
            items.append((finding(rule_id, f"no close frame: the connection dropped ({rec.error or 'close code ' + str(rec.close_code)})"), rec))
        elif rec.close_code in forbidden:
            items.append((finding(rule_id, f"closed with {rec.close_code}"), rec))
    check(rule_id, items, "ws")


@pytest.mark.parametrize("rule_id", ["WS-CANCEL"])
def test_ws_cancel(rule_id, conformance_target, check):
    target = conformance_target
    spec = target.profile.transport("ws").get("cancel")
    if not spec:
        pytest.skip("the profile defines no cancel message")
    rec = target.get("ws-cancel")
    options = options_of(cancel_after=CANCEL_AFTER)
    items = stream_problems(rule_id, rec, target.profile, "after cancel")
    expect = spec["expect"]
    last = target.profile.order["last"]
    matches = [e for e in rec.events if isinstance(e.data, dict) and all(e.data.get(k) == v for k, v in expect.items())]
    terminal = set(target.profile.order.get("terminal", []))
    ended_by = next((e for e in rec.events if e.type in terminal), None)
    if not matches:
        late = ended_by is not None and rec.cancel_sent_at is not None and ended_by.t_perf - rec.cancel_sent_at < 0.05
        if late and not items:
            pytest.skip(f"the stream reached {ended_by.type!r} before the cancel could take effect")
        seen = ended_by.data if ended_by is not None else "no terminal event"
        items.append((finding(rule_id, f"no {expect} after the cancel; the stream ended with {seen}",
                              ended_by.index if ended_by else None), rec))
    elif rec.events[-1].type != last or rec.events.index(matches[0]) != len(rec.events) - 2:
        items.append((finding(rule_id, f"{expect} must be followed directly by {last!r}", matches[0].index), rec))
    normal = target.profile.transport("ws").get("close_normal", 1000)
    if rec.close_code != normal:
        items.append((finding(rule_id, f"closed with {rec.close_code} after the cancel, expected {normal}"), rec))
    if not items:
        items, options = _late_cancel_problems(rule_id, target, spec, terminal, normal)
    check(rule_id, items, "ws", options)


def _late_cancel_problems(rule_id, target, spec, terminal, normal):
    """A cancel that arrives after the terminal event changes nothing: the stream
    still ends with its one terminal event and stream_end, and closes normally."""
    full = _ws(target)[0]
    at = next((e.index for e in full.events if e.type in terminal), None)
    if at is None:
        return [], {}
    rec = target.cached(("ws-cancel-late",), lambda: target.record(
        "ws", dict(full.params), cancel_after=at + 1, cancel_message=spec["message"]))
    options = options_of(cancel_after=at + 1)
    items = stream_problems(rule_id, rec, target.profile, f"cancel sent after {full.events[at].type!r}")
    expect = spec["expect"]
    if any(isinstance(e.data, dict) and all(e.data.get(k) == v for k, v in expect.items()) for e in rec.events):
        items.append((finding(rule_id, f"a cancel after {full.events[at].type!r} still produced {expect}"), rec))
    if rec.close_code != normal:
        items.append((finding(rule_id, f"closed with {rec.close_code} after a late cancel, expected {normal}"), rec))
    return items, options



@pytest.mark.parametrize("rule_id", ["WS-DEFLATE"])
def test_ws_deflate(rule_id, conformance_target, check):
    target = conformance_target
    rec = target.get("ws-deflate")
    if _handshake_ok(rec) and not any("permessage-deflate" in x for x in rec.ws_extensions):
        pytest.skip("the server did not negotiate permessage-deflate (optional)")
    items = stream_problems(rule_id, rec, target.profile, "with permessage-deflate")
    if not items:
        mode, divergence = parity_divergence(target, _ws(target)[0], rec)
        if divergence is not None:
            items.append((finding(rule_id, f"differs from the uncompressed stream ({mode}): {divergence.describe()}",
                                  divergence.index), rec))
    check(rule_id, items, "ws", options_of(compression=True))


@pytest.mark.parametrize("rule_id", ["WS-IGNORE-CLIENT-MESSAGES"])
def test_ws_ignores_other_messages(rule_id, conformance_target, check):
    target = conformance_target
    rec = target.get("ws-hello")
    items = stream_problems(rule_id, rec, target.profile, "after an unknown client message")
    if not items:
        mode, divergence = parity_divergence(target, _ws(target)[0], rec)
        if divergence is not None:
            items.append((finding(rule_id, f"the stream changed ({mode}): {divergence.describe()}", divergence.index), rec))
    check(rule_id, items, "ws")
