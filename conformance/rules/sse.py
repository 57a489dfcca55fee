"""The SSE binding [PROTOCOL 4]: status and headers, framing, delivery as
produced, the end of the response, and reconnection. Each rule applies to
every transport of the profile that follows the ``sse`` binding."""

from __future__ import annotations

from conformance.validate import CLOCK_TOLERANCE_S, finding

from .registry import NotJudged, Precondition, rule, stream_rule

ACCEPTED = Precondition("accepted", lambda rec, ctx: rec.status == ctx.section.status,
                        "no accepted {what} stream to judge (see SSE-STATUS)")
HAS_EVENTS = Precondition("events", lambda rec, ctx: bool(rec.events), "no {what} events to judge (see SSE-STATUS)")


def _each_event(rule_id, rec, test):
    """A finding for each event ``test`` has a message for. The rules below first
    screen the stream with one comprehension of their condition (no call per event):
    a load run's streams are almost all clean, and then ``test`` never runs. (A chain
    of ``map`` over the fields measured no faster: one pass beats two.)"""
    out = []
    for event in rec.events:
        message = test(event)
        if message:
            out.append(finding(rule_id, message, event.index))
    return out


@stream_rule("SSE-STATUS", "MUST", "4", binding="sse")
def sse_status(rec, ctx):
    """an accepted SSE request is answered with status {sse_status}"""
    expected = ctx.section.status
    if rec.status == expected:
        return []
    return [finding("SSE-STATUS", f"status {rec.status}, expected {expected}" + (f" ({rec.error})" if rec.error else ""))]


@stream_rule("SSE-CONTENT-TYPE", "MUST", "4", binding="sse", requires=[ACCEPTED])
def sse_content_type(rec, ctx):
    """Content-Type is {sse_content_type}"""
    expected = ctx.section.content_type
    if rec.media_type == expected:
        return []
    return [finding("SSE-CONTENT-TYPE", f"Content-Type is {rec.header('content-type')!r}, expected {expected}")]


@stream_rule("SSE-CACHE-CONTROL", "MUST", "4", binding="sse", requires=[ACCEPTED],
             skip_unless=lambda ctx: None if ctx.section.cache_control_any else "the profile sets no cache_control_any")
def sse_cache_control(rec, ctx):
    """Cache-Control contains no-cache or no-store"""
    wanted = ctx.section.cache_control_any
    value = rec.header("cache-control") or ""
    tokens = {t.strip().split("=")[0].lower() for t in value.split(",")}
    if tokens & {w.lower() for w in wanted}:
        return []
    return [finding("SSE-CACHE-CONTROL", f"Cache-Control is {value or 'absent'!r}, expected one of {list(wanted)}")]


@stream_rule("SSE-X-ACCEL-BUFFERING", "SHOULD", "4", binding="sse", requires=[ACCEPTED],
             skip_unless=lambda ctx: None if ctx.section.should_headers else "the profile recommends no headers")
def sse_recommended_headers(rec, ctx):
    """the recommended headers are sent ({sse_should_headers})"""
    bad = [f"{name}: {rec.header(name)!r} (expected {value!r})" for name, value in ctx.section.should_headers.items()
           if (rec.header(name) or "").strip().lower() != value.lower()]
    return [finding("SSE-X-ACCEL-BUFFERING", "; ".join(bad))] if bad else []


@stream_rule("SSE-JSON-MESSAGE", "MUST", "4", binding="sse", requires=[HAS_EVENTS])
def sse_json_message(rec, ctx):
    """each SSE message's data is exactly one JSON object"""
    def test(event):
        if event.parse_error:
            return f"data is not one JSON value: {event.parse_error}"
        if not isinstance(event.data, dict):
            return f"data is JSON {type(event.data).__name__}, not an object"
        return None

    if not any([e.parse_error or not isinstance(e.data, dict) for e in rec.events]):
        return []
    return _each_event("SSE-JSON-MESSAGE", rec, test)


@stream_rule("SSE-ONE-DATA-LINE", "SHOULD", "4", binding="sse", requires=[HAS_EVENTS])
def sse_one_data_line(rec, ctx):
    """each event is on one data: line"""
    if not any([e.detail.data_lines > 1 for e in rec.events]):
        return []
    return _each_event("SSE-ONE-DATA-LINE", rec, lambda e: f"the event spans {e.detail.data_lines} data: lines"
                       if e.detail.data_lines > 1 else None)


@stream_rule("SSE-NO-EVENT-NAME", "MUST", "4", binding="sse", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: "the profile names each message's type in event: (see SSE-EVENT-TYPE)"
             if ctx.section.event_name_is_type else None)
def sse_no_event_name(rec, ctx):
    """messages carry no event: field other than message"""
    allowed = set(ctx.section.allowed_event_names)
    if all([e.detail.event is None or e.detail.event in allowed for e in rec.events]):
        return []
    return _each_event("SSE-NO-EVENT-NAME", rec, lambda e: f"event: {e.detail.event!r}; EventSource.onmessage never sees it"
                       if e.detail.event is not None and e.detail.event not in allowed else None)


@stream_rule("SSE-EVENT-TYPE", "MUST", "4", binding="sse", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: None if ctx.section.event_name_is_type else "the profile does not name types in event:")
def sse_event_type(rec, ctx):
    """each message's event: field equals its JSON type"""
    def test(event):
        if event.type is None or event.named_type is not None:
            return None  # no type (SCHEMA-ENVELOPE reports it), or the name is the only type
        if event.detail.event != event.type:
            return f"event: {event.detail.event!r} but the type is {event.type!r}" if event.detail.event is not None \
                else f"no event: field; the type is {event.type!r} (an EventSource listening for it never fires)"
        return None

    return _each_event("SSE-EVENT-TYPE", rec, test)


def _sentinel_reason(ctx) -> str | None:
    return None if ctx.section.done_sentinel else "the profile names no end sentinel"


@stream_rule("SSE-DONE-SENTINEL", "MUST", "4", binding="sse", requires=[ACCEPTED, HAS_EVENTS],
             skip_unless=_sentinel_reason)
def sse_done_sentinel(rec, ctx):
    """the stream ends with the protocol's sentinel message (data: [DONE]), and nothing follows it"""
    sentinel, at = ctx.section.done_sentinel, rec.detail.sentinel_at
    if at is None:
        how = f" ({rec.error})" if rec.error else ""
        return [finding("SSE-DONE-SENTINEL", f"the response ended after {len(rec.events)} events without data: "
                                             f"{sentinel}{how}: a client cannot tell it from a cut connection",
                        len(rec.events) - 1)]
    if at < len(rec.events):
        return [finding("SSE-DONE-SENTINEL", f"{len(rec.events) - at} events follow data: {sentinel}", at)]
    return []


@stream_rule("SSE-LINE-ENDINGS", "MUST", "4", binding="sse", requires=[ACCEPTED, HAS_EVENTS],
             skip_unless=lambda ctx: None if ctx.section.line_endings else "the profile allows every SSE line ending")
def sse_line_endings(rec, ctx):
    """lines end only as the protocol allows (AG-UI's client splits on LF alone)"""
    bad = sorted(set(rec.detail.line_endings) - set(ctx.section.line_endings))
    if bad:
        return [finding("SSE-LINE-ENDINGS", f"lines end with {', '.join(bad)}; the protocol allows only "
                                            f"{', '.join(ctx.section.line_endings)}")]
    return []


def _carries_id_field(rec, ctx) -> bool:
    field = ctx.section.id_equals
    return any(isinstance(e.data, dict) and field in e.data for e in rec.events)


@stream_rule("SSE-ID-SEQ", "SHOULD", "4", binding="sse",
             requires=[HAS_EVENTS, Precondition("id field", _carries_id_field, "no {what} event carries the id field")],
             skip_unless=lambda ctx: None if ctx.section.id_equals else "the profile asks for no id")
def sse_id_is_seq(rec, ctx):
    """each message carries id: <{seq}> when events have {seq}"""
    field = ctx.section.id_equals

    def test(event):
        if isinstance(event.data, dict) and field in event.data and event.detail.id != str(event.data[field]):
            return f"id: {event.detail.id!r} but {field} is {event.data[field]!r}"
        return None

    if all([type(e.data) is dict and (field not in e.data or e.detail.id == str(e.data[field])) for e in rec.events]):
        return []
    return _each_event("SSE-ID-SEQ", rec, test)


def _stamp(rec, ctx) -> list[tuple[float, object]]:
    stamps = ctx.stamps(rec)
    if stamps.plausible:  # every one
        return list(zip(stamps.values, rec.events))
    # each ts is a float: plausible_ts(ts, e.t_wall) is the comparison alone
    return [(ts, e) for e, ts in zip(rec.events, stamps.values)
            if ts is not None and abs(ts - e.t_wall) <= CLOCK_TOLERANCE_S]


def _stamped(rec, ctx) -> list[tuple[float, object]]:
    """(timestamp in Unix seconds, event) for each event with a plausible timestamp;
    once per stream, for the precondition and the rule."""
    return ctx.once(rec, "stamped", _stamp)


def _long_enough(rec, ctx) -> bool:
    """Whether the stream was produced over long enough to tell buffering apart."""
    min_spread = ctx.section.buffering_min_spread_s
    stamped = _stamped(rec, ctx)
    if len(stamped) >= 2:
        return stamped[-1][0] - stamped[0][0] >= min_spread
    return bool(rec.events) and rec.t_end is not None and rec.t_headers is not None \
        and rec.t_end - rec.t_headers >= min_spread


@stream_rule("SSE-NOT-BUFFERED", "MUST", "4", binding="sse",
             requires=[ACCEPTED, Precondition("long enough", _long_enough,
                                              "every {what} stream was produced too fast to tell buffering apart "
                                              "(see buffering_min_spread_s)")])
def sse_not_buffered(rec, ctx):
    """events are delivered as produced, not held back to the end"""
    stamped = _stamped(rec, ctx)
    if len(stamped) >= 2:
        (first_ts, first), (last_ts, last) = stamped[0], stamped[-1]
        spread = last_ts - first_ts
        if first.t_wall >= last_ts:
            return [finding("SSE-NOT-BUFFERED",
                            f"the first event arrived {first.t_wall - last_ts:.3f} s after the last one was produced "
                            f"(events produced over {spread:.3f} s arrived within {last.t_perf - first.t_perf:.3f} s)",
                            first.index)]
        return []
    # no usable ts: compare arrival with the stream's own duration
    length = rec.t_end - rec.t_headers
    arrival_spread = rec.events[-1].t_perf - rec.events[0].t_perf
    if rec.events[0].t_perf - rec.t_headers > 0.9 * length and arrival_spread < 0.05 * length:
        return [finding("SSE-NOT-BUFFERED",
                        f"all {len(rec.events)} events arrived within {arrival_spread:.3f} s at the end of a "
                        f"{length:.3f} s response", 0)]
    return []


REACHED_END = Precondition("reached end", lambda rec, ctx: bool(rec.events) and (
    rec.events[-1].type in ctx.profile.order.last or rec.detail.sentinel_at is not None),
    "no {what} stream reached the last event (see ORDER-LAST-STREAM-END)")


@stream_rule("SSE-ENDS-RESPONSE", "MUST", "4", binding="sse", requires=[ACCEPTED, REACHED_END])
def sse_ends_response(rec, ctx):
    """after {last} the server ends the response"""
    if rec.error_kind == "timeout":
        return [finding("SSE-ENDS-RESPONSE", f"the response stayed open after {rec.events[-1].type!r}: {rec.error}")]
    return []


@rule("SSE-RECONNECT-204", "SHOULD", "4", binding="sse", needs=["reconnect"])
def sse_reconnect_after_end(ctx):
    """a request with Last-Event-ID after {last} is answered {sse_reconnect_status}"""
    recordings = ctx.get("reconnect")
    if not recordings:
        raise NotJudged("the stream carries no event ids, so a browser would not send Last-Event-ID")
    rec = recordings[0]
    expected = ctx.section.reconnect_status
    if rec.status == expected:
        return []
    what = f"{len(rec.events)} events: the question ran again" if rec.status == 200 and rec.events else rec.error or ""
    return [(finding("SSE-RECONNECT-204", f"a request with Last-Event-ID: {rec.request.last_event_id} got status "
                                          f"{rec.status}, expected {expected}; {what}"), rec)]
