"""Bad input on both transports [PROTOCOL 1, 4, 5]: every invalid request is
rejected properly, every valid one accepted, and no input at all gives a 5xx,
a 1011, a dropped connection or a hang."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .suite import TRANSPORTS, stream_problems
from .target import Target
from .validate import finding


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the request cases from the profile chosen with --profile."""
    from .profile import ProfileError, load_profile

    for kind in ("invalid", "valid_edge"):
        if f"{kind}_case" in metafunc.fixturenames:
            try:
                cases = load_profile(metafunc.config.getoption("profile")).request.get(kind, [])
            except ProfileError:
                cases = []  # the session fixture reports the broken profile
            names = [c["name"] for c in cases]
            metafunc.parametrize(f"{kind}_case", names, ids=[_slug(n) for n in names])


def _base_params(target: Target) -> dict[str, str]:
    return target.request_params(target.profile.sample_questions[0])


def rejection_problems(rule_id: str, rec, target: Target, label: str) -> list:
    """Findings when a request that must be rejected was not rejected properly."""
    ws = target.profile.transport("ws")
    sse = target.profile.transport("sse")
    reject_class = int(sse.get("reject_status", "4xx")[0])
    if rec.error_kind == "timeout":
        return [(finding(rule_id, f"{label}: no answer: {rec.error}"), rec)]
    if rec.transport == "sse":
        if rec.status is None or rec.status // 100 != reject_class:
            return [(finding(rule_id, f"{label}: status {rec.status}, expected {reject_class}xx"
                             + (f" with {len(rec.events)} events" if rec.events else "")), rec)]
        if rec.events:
            return [(finding(rule_id, f"{label}: a rejection must carry no event stream, got {len(rec.events)} events"), rec)]
        return []
    if rec.status is not None and rec.status // 100 == 4:
        return []
    if rec.status == 101:
        if rec.close_code == ws.get("close_reject", 1008):
            return []
        return [(finding(rule_id, f"{label}: accepted and closed with {rec.close_code} after {len(rec.events)} events, "
                         f"expected a {reject_class}xx handshake or close {ws.get('close_reject', 1008)}"), rec)]
    return [(finding(rule_id, f"{label}: handshake status {rec.status}" + (f" ({rec.error})" if rec.error else "")), rec)]


def _invalid_record(target: Target, name: str, transport: str):
    return target.get("invalid", name, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule_id", ["INPUT-REJECT"])
def test_invalid_rejected(rule_id, transport, invalid_case, conformance_target, check):
    case = invalid_case
    rec = _invalid_record(conformance_target, case, transport)
    check(rule_id, rejection_problems(rule_id, rec, conformance_target, case), transport)


@pytest.mark.parametrize("rule_id", ["INPUT-SSE-JSON-ERROR"])
def test_sse_rejection_is_json(rule_id, invalid_case, conformance_target, check):
    case = invalid_case
    rec = _invalid_record(conformance_target, case, "sse")
    if rec.status is None or rec.status // 100 != 4:
        pytest.skip(f"not rejected with a 4xx (status {rec.status}): see INPUT-REJECT")
    wanted = conformance_target.profile.transport("sse").get("reject_content_type", "application/json")
    items = []
    if rec.media_type != wanted:
        items.append((finding(rule_id, f"{case}: Content-Type {rec.header('content-type')!r}, expected {wanted}"), rec))
    else:
        try:
            json.loads(rec.body or b"")
        except ValueError as exc:
            items.append((finding(rule_id, f"{case}: the body is not JSON ({exc}): {(rec.body or b'')[:80]!r}"), rec))
    check(rule_id, items, "sse")


@pytest.mark.parametrize("rule_id", ["INPUT-WS-REJECT-EVENT"])
def test_ws_rejection_event(rule_id, invalid_case, conformance_target, check):
    case = invalid_case
    target = conformance_target
    rec = _invalid_record(target, case, "ws")
    if rec.status != 101 or rec.close_code != target.profile.transport("ws").get("close_reject", 1008):
        pytest.skip(f"not accepted-then-closed with 1008 (status {rec.status}, close {rec.close_code})")
    event_type = target.profile.transport("ws").get("reject_event_type")
    items = []
    if len(rec.events) > 1:
        items.append((finding(rule_id, f"{case}: {len(rec.events)} events before close 1008; at most one lone event", 1), rec))
    for e in rec.events[:1]:
        if event_type and e.type != event_type:
            items.append((finding(rule_id, f"{case}: the lone event is {e.type!r}, expected {event_type!r}", 0), rec))
        seq = target.profile.seq_field
        if seq and isinstance(e.data, dict) and seq in e.data:
            items.append((finding(rule_id, f"{case}: the lone event carries {seq}: it is not a stream", 0, f"/{seq}"), rec))
    check(rule_id, items, "ws")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule_id", ["INPUT-ACCEPT"])
def test_valid_accepted(rule_id, transport, valid_edge_case, conformance_target, check):
    case = valid_edge_case
    target = conformance_target
    rec = target.get("valid", case, transport)
    check(rule_id, stream_problems(rule_id, rec, target.profile, case), transport)


# Values drawn for any parameter: unicode, control characters, long strings.
_values = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.text(st.characters(max_codepoint=0x1F), max_size=20),
    st.text(alphabet="x", min_size=1990, max_size=2010),
    st.sampled_from(["%", "%00", "\x00", "\u2028", "\ufeff", "../../etc/passwd", "' OR 1=1 --", "{}", "null"]),
)


def never_5xx_problems(rule_id: str, rec, target: Target, label: str) -> list:
    """Findings when a drawn request got neither a proper rejection nor a valid stream."""
    forbidden = set(target.profile.transport("ws").get("forbidden_close", [1006, 1011]))
    if rec.status is not None and rec.status >= 500:
        return [(finding(rule_id, f"{label}: status {rec.status}"), rec)]
    if rec.error_kind == "timeout":
        return [(finding(rule_id, f"{label}: hang: {rec.error}"), rec)]
    if rec.transport == "ws" and rec.close_code in forbidden:
        return [(finding(rule_id, f"{label}: closed with {rec.close_code}"), rec)]
    accepted = rec.status == 200 if rec.transport == "sse" else (
        rec.status == 101 and rec.close_code != target.profile.transport("ws").get("close_reject", 1008))
    if accepted:
        return stream_problems(rule_id, rec, target.profile, label)
    return rejection_problems(rule_id, rec, target, label)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule_id", ["INPUT-NEVER-5XX"])
def test_drawn_values_never_5xx(rule_id, transport, conformance_target, check):
    target = conformance_target
    names = list(target.profile.request.get("params", {})) or [target.profile.question_param]

    @settings(max_examples=2, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(st.tuples(st.sampled_from(names), _values), min_size=4, max_size=4))
    def run(batch):
        jobs = []
        for i, (name, value) in enumerate(batch):
            params = _base_params(target)
            params[name] = value
            jobs.append((("drawn", transport, name, value, i), lambda p=params: target.record(transport, p)))
        recordings = target.record_many(jobs)
        items = []
        for (name, value), rec in zip(batch, recordings):
            items += never_5xx_problems(rule_id, rec, target, f"{name}={value[:40]!r}{'...' if len(value) > 40 else ''}")
        check(rule_id, items, transport)

    run()
