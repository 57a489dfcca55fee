"""The SSE binding [PROTOCOL 4]: status and headers, framing, delivery as
produced, the end of the response, and reconnection."""

import pytest

from .suite import need, with_events
from .validate import finding, plausible_ts


def _sse(target):
    return target.baseline()["sse"]


def _per_recording(recordings, rule_id, test):
    """(Finding, Recording) for each recording where ``test`` returns a message."""
    items = []
    for rec in recordings:
        message = test(rec)
        if message:
            items.append((finding(rule_id, message), rec))
    return items


def _streamed(recordings):
    return need([r for r in recordings if r.status == 200], "accepted SSE stream", "SSE-STATUS")


@pytest.mark.parametrize("rule_id", ["SSE-STATUS"])
def test_sse_status(rule_id, conformance_target, check):
    expected = conformance_target.profile.transport("sse").get("status", 200)
    check(rule_id, _per_recording(_sse(conformance_target), rule_id,
                                  lambda r: None if r.status == expected else
                                  f"status {r.status}, expected {expected}" + (f" ({r.error})" if r.error else "")), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-CONTENT-TYPE"])
def test_sse_content_type(rule_id, conformance_target, check):
    expected = conformance_target.profile.transport("sse").get("content_type", "text/event-stream")

    def test(rec):
        return None if rec.media_type == expected else f"Content-Type is {rec.header('content-type')!r}, expected {expected}"

    check(rule_id, _per_recording(_streamed(_sse(conformance_target)), rule_id, test), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-CACHE-CONTROL"])
def test_sse_cache_control(rule_id, conformance_target, check):
    wanted = conformance_target.profile.transport("sse").get("cache_control_any", [])
    if not wanted:
        pytest.skip("the profile sets no cache_control_any")

    def test(rec):
        value = rec.header("cache-control") or ""
        tokens = {t.strip().split("=")[0].lower() for t in value.split(",")}
        return None if tokens & {w.lower() for w in wanted} else f"Cache-Control is {value or 'absent'!r}, expected one of {wanted}"

    check(rule_id, _per_recording(_streamed(_sse(conformance_target)), rule_id, test), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-X-ACCEL-BUFFERING"])
def test_sse_recommended_headers(rule_id, conformance_target, check):
    wanted = conformance_target.profile.transport("sse").get("should_headers", {})
    if not wanted:
        pytest.skip("the profile recommends no headers")

    def test(rec):
        bad = [f"{name}: {rec.header(name)!r} (expected {value!r})" for name, value in wanted.items()
               if (rec.header(name) or "").strip().lower() != value.lower()]
        return "; ".join(bad) or None

    check(rule_id, _per_recording(_streamed(_sse(conformance_target)), rule_id, test), "sse")


def _event_items(recordings, rule_id, test):
    need(with_events(recordings), "SSE events", "SSE-STATUS")
    items = []
    for rec in recordings:
        for event in rec.events:
            message = test(event)
            if message:
                items.append((finding(rule_id, message, event.index), rec))
    return items


@pytest.mark.parametrize("rule_id", ["SSE-JSON-MESSAGE"])
def test_sse_json_message(rule_id, conformance_target, check):
    def test(event):
        if event.parse_error:
            return f"data is not one JSON value: {event.parse_error}"
        if not isinstance(event.data, dict):
            return f"data is JSON {type(event.data).__name__}, not an object"
        return None

    check(rule_id, _event_items(_sse(conformance_target), rule_id, test), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-ONE-DATA-LINE"])
def test_sse_one_data_line(rule_id, conformance_target, check):
    check(rule_id, _event_items(_sse(conformance_target), rule_id,
                                lambda e: f"the event spans {e.data_lines} data: lines" if e.data_lines > 1 else None), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-NO-EVENT-NAME"])
def test_sse_no_event_name(rule_id, conformance_target, check):
    allowed = set(conformance_target.profile.transport("sse").get("allowed_event_names", ["message"]))
    check(rule_id, _event_items(_sse(conformance_target), rule_id,
                                lambda e: f"event: {e.sse_event!r}; EventSource.onmessage never sees it"
                                if e.sse_event is not None and e.sse_event not in allowed else None), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-ID-SEQ"])
def test_sse_id_is_seq(rule_id, conformance_target, check):
    field = conformance_target.profile.transport("sse").get("id_equals")
    if not field:
        pytest.skip("the profile asks for no id")
    recordings = _sse(conformance_target)
    if not any(isinstance(e.data, dict) and field in e.data for r in recordings for e in r.events):
        pytest.skip(f"events carry no {field}")

    def test(event):
        if isinstance(event.data, dict) and field in event.data and event.sse_id != str(event.data[field]):
            return f"id: {event.sse_id!r} but {field} is {event.data[field]!r}"
        return None

    check(rule_id, _event_items(recordings, rule_id, test), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-NOT-BUFFERED"])
def test_sse_not_buffered(rule_id, conformance_target, check):
    profile = conformance_target.profile
    ts = profile.timestamp_field
    min_spread = profile.transport("sse").get("buffering_min_spread_s", 0.1)
    items, judged = [], 0
    for rec in _sse(conformance_target):
        stamped = [e for e in rec.events if isinstance(e.data, dict) and plausible_ts(e.data.get(ts), e.t_wall)]
        if len(stamped) >= 2:
            first, last = stamped[0], stamped[-1]
            spread = last.data[ts] - first.data[ts]
            if spread < min_spread:
                continue
            judged += 1
            if first.t_wall >= last.data[ts]:
                items.append((finding(rule_id,
                    f"the first event arrived {first.t_wall - last.data[ts]:.3f} s after the last one was produced "
                    f"(events produced over {spread:.3f} s arrived within {stamped[-1].t_perf - first.t_perf:.3f} s)",
                    first.index), rec))
        elif rec.events and rec.t_end is not None and rec.t_headers is not None:
            # no usable ts: compare arrival with the stream's own duration
            length = rec.t_end - rec.t_headers
            if length < min_spread:
                continue
            judged += 1
            arrival_spread = rec.events[-1].t_perf - rec.events[0].t_perf
            if rec.events[0].t_perf - rec.t_headers > 0.9 * length and arrival_spread < 0.05 * length:
                items.append((finding(rule_id,
                    f"all {len(rec.events)} events arrived within {arrival_spread:.3f} s at the end of a {length:.3f} s response",
                    0), rec))
    if not judged:
        pytest.skip(f"every stream was produced in under {min_spread} s; buffering cannot be told apart")
    check(rule_id, items, "sse")


@pytest.mark.parametrize("rule_id", ["SSE-ENDS-RESPONSE"])
def test_sse_ends_response(rule_id, conformance_target, check):
    last = conformance_target.profile.order["last"]

    def test(rec):
        if rec.events and rec.events[-1].type == last and rec.error_kind == "timeout":
            return f"the response stayed open after {last!r}: {rec.error}"
        return None

    check(rule_id, _per_recording(_streamed(_sse(conformance_target)), rule_id, test), "sse")


@pytest.mark.parametrize("rule_id", ["SSE-RECONNECT-204"])
def test_sse_reconnect_after_end(rule_id, conformance_target, check):
    target = conformance_target
    expected = target.profile.transport("sse").get("reconnect_status", 204)
    first = target.baseline()["sse"][0]
    seq = target.profile.seq_field
    last_id = first.events[-1].sse_id if first.events and first.events[-1].sse_id else None
    if last_id is None and first.events and isinstance(first.events[-1].data, dict) and seq:
        last_id = str(first.events[-1].data.get(seq, "")) or None
    if last_id is None:
        pytest.skip("the stream carries no event ids, so a browser would not send Last-Event-ID")
    params = target.request_params(target.profile.sample_questions[0])
    rec = target.cached(("sse-reconnect",), lambda: target.record("sse", params, last_event_id=last_id))
    items = []
    if rec.status != expected:
        what = f"{len(rec.events)} events: the question ran again" if rec.status == 200 and rec.events else rec.error or ""
        items.append((finding(rule_id, f"a request with Last-Event-ID: {last_id} got status {rec.status}, expected {expected}; {what}"), rec))
    check(rule_id, items, "sse")
