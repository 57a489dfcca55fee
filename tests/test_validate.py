"""The stream validator against agent-stream/1: every rule ID fires on a stream
broken in exactly that way (and, where the breakage allows, nothing else fires),
the grammar's allowances are accepted, and generated streams agree with an
independent reading of PROTOCOL section 3."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.profile import Profile, load_profile
from conformance.request import Request
from conformance.recording import RecordedEvent, Recording
from conformance.rules import RULES
from conformance.validate import Finding, json_pointer, resolve_pointer, validate_recording, validate_stream

PROFILE: Profile = load_profile("agent-stream/1")


def ev(etype: str, **fields: Any) -> dict[str, Any]:
    return {"type": etype, **fields}


def numbered(stream: list[Any], ts: bool = True) -> list[Any]:
    """The stream with seq 0, 1, 2, ... (and a ts) on every object."""
    out = []
    for i, e in enumerate(stream):
        if isinstance(e, dict):
            e = {**e, "seq": i}
            if ts:
                e["ts"] = 1_790_000_000.0 + i / 10
        out.append(e)
    return out


START = ev("start", message="Analysing")
END = ev("stream_end")
COMPLETE = ev("complete", data={"rows": 3})
PROGRESS = ev("progress", stage="planner", message="planning")


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def full_stream() -> list[dict[str, Any]]:
    """A valid stream that uses every event type but error."""
    return numbered(
        [
            START,
            ev("progress", stage="router", message="routing"),
            ev("chain_of_thought", content="Group by severity."),
            ev("code_chunk", chunk="import pandas as pd\n"),
            ev("code_chunk", chunk="  "),
            ev("code_chunk", chunk="df = load()"),
            ev("code_generated", code="import pandas as pd\n  df = load()", attempt=1),
            ev("progress", stage="executor", message="running"),
            ev("reflection_chunk", chunk="KeyError: "),
            ev("reflection_chunk", chunk="'sev'"),
            ev("reflection", content="KeyError: 'sev'"),
            ev("code_generated", code="df = load()", attempt=2),
            ev("verification", confidence=0.85, checks=["rows > 0"]),
            ev("data_ready", data={"table": [[1, 2]], "charts": []}),
            ev("analysis_chunk", chunk="# Top"),
            ev("analysis_chunk", chunk=" incidents\n"),
            ev("complete", data={"analysis": "# Top incidents\n", "rows": 2}),
            END,
        ]
    )


def test_full_stream_is_valid() -> None:
    assert validate_stream(full_stream(), PROFILE) == []


# --- one rule at a time -------------------------------------------------------

# (rule that must fire, stream, every rule the stream breaks, index, pointer)
# `index`/`pointer` are those of the first finding of `rule`; None index means
# "no single event is to blame".
BROKEN = [
    ("SCHEMA-JSON", [START, "not an object", COMPLETE, END], ["SCHEMA-JSON"], 1, ""),
    ("SCHEMA-JSON", [START, [1, 2], COMPLETE, END], ["SCHEMA-JSON"], 1, ""),
    ("SCHEMA-JSON", [START, None, COMPLETE, END], ["SCHEMA-JSON"], 1, ""),
    ("SCHEMA-ENVELOPE", [START, {**PROGRESS, "ts": "now"}, COMPLETE, END], ["SCHEMA-ENVELOPE"], 1, "/ts"),
    ("SCHEMA-ENVELOPE", [START, ev(7), COMPLETE, END], ["SCHEMA-ENVELOPE"], 1, "/type"),
    ("SCHEMA-ENVELOPE", [START, {"stage": "x", "message": "y"}, COMPLETE, END], ["SCHEMA-ENVELOPE"], 1, ""),
    # a seq of the wrong type also breaks the seq sequence
    (
        "SCHEMA-ENVELOPE",
        [{**START, "seq": "0"}, {**COMPLETE, "seq": 1}, {**END, "seq": 2}],
        ["SCHEMA-ENVELOPE", "ORDER-SEQ"],
        0,
        "/seq",
    ),
    ("SCHEMA-TYPE-KNOWN", [START, ev("thinking", content="hm"), COMPLETE, END], ["SCHEMA-TYPE-KNOWN"], 1, "/type"),
    ("SCHEMA-TYPE-KNOWN", [START, ev("Complete", data={}), COMPLETE, END], ["SCHEMA-TYPE-KNOWN"], 1, "/type"),
    ("SCHEMA-EVENT", [START, ev("verification", confidence=1.5), COMPLETE, END], ["SCHEMA-EVENT"], 1, "/confidence"),
    ("SCHEMA-EVENT", [START, ev("verification", confidence="high"), COMPLETE, END], ["SCHEMA-EVENT"], 1, "/confidence"),
    (
        "SCHEMA-EVENT",
        [START, ev("code_chunk", chunk=""), ev("code_generated", code=""), COMPLETE, END],
        ["SCHEMA-EVENT"],
        1,
        "/chunk",
    ),
    ("SCHEMA-EVENT", [START, ev("progress", message="no stage"), COMPLETE, END], ["SCHEMA-EVENT"], 1, ""),
    ("SCHEMA-EVENT", [START, ev("data_ready", data=[1]), COMPLETE, END], ["SCHEMA-EVENT"], 1, "/data"),
    ("SCHEMA-EVENT", [START, ev("error", code="boom"), END], ["SCHEMA-EVENT"], 1, ""),
    ("SCHEMA-EVENT", [START, ev("complete", data="done"), END], ["SCHEMA-EVENT"], 1, "/data"),
    ("ORDER-FIRST-START", [PROGRESS, START, COMPLETE, END], ["ORDER-FIRST-START"], 0, ""),
    ("ORDER-FIRST-START", [], ["ORDER-FIRST-START"], None, ""),
    ("ORDER-LAST-STREAM-END", [START, COMPLETE], ["ORDER-LAST-STREAM-END", "ORDER-EXACTLY-ONCE"], 1, ""),
    ("ORDER-EXACTLY-ONCE", [START, START, COMPLETE, END], ["ORDER-EXACTLY-ONCE"], 1, ""),
    ("ORDER-ONE-TERMINAL", [START, PROGRESS, END], ["ORDER-ONE-TERMINAL"], None, ""),
    (
        "ORDER-ONE-TERMINAL",
        [START, COMPLETE, ev("error", message="late"), END],
        ["ORDER-ONE-TERMINAL", "ORDER-TERMINAL-THEN-END"],
        2,
        "",
    ),
    (
        "ORDER-NOTHING-AFTER-END",
        [START, COMPLETE, END, PROGRESS],
        ["ORDER-LAST-STREAM-END", "ORDER-NOTHING-AFTER-END"],
        3,
        "",
    ),
    ("ORDER-TERMINAL-THEN-END", [START, COMPLETE, PROGRESS, END], ["ORDER-TERMINAL-THEN-END"], 2, ""),
    ("ORDER-TERMINAL-THEN-END", [START, ev("error", message="x"), PROGRESS, END], ["ORDER-TERMINAL-THEN-END"], 2, ""),
    (
        "ORDER-CHUNK-RUN",
        [START, ev("code_chunk", chunk="a"), PROGRESS, ev("code_generated", code="a"), COMPLETE, END],
        ["ORDER-CHUNK-RUN"],
        2,
        "",
    ),
    ("ORDER-CHUNK-RUN", [START, ev("reflection_chunk", chunk="a"), COMPLETE, END], ["ORDER-CHUNK-RUN"], 2, ""),
    (
        "ORDER-CHUNK-RUN",
        [START, ev("code_chunk", chunk="a"), ev("reflection_chunk", chunk="b"), ev("reflection", content="b"), ev("code_generated", code="a"), COMPLETE, END],
        ["ORDER-CHUNK-RUN"],
        2,
        "",
    ),
    (
        "ORDER-CHUNK-SUM",
        [START, ev("code_chunk", chunk="a"), ev("code_chunk", chunk="b"), ev("code_generated", code="ba"), COMPLETE, END],
        ["ORDER-CHUNK-SUM"],
        3,
        "/code",
    ),
    (
        "ORDER-CHUNK-SUM",
        [START, ev("code_chunk", chunk="a "), ev("code_generated", code="a"), COMPLETE, END],
        ["ORDER-CHUNK-SUM"],
        2,
        "/code",
    ),
    (
        "ORDER-CHUNK-SUM",
        [START, ev("reflection_chunk", chunk="x"), ev("reflection", content="y"), COMPLETE, END],
        ["ORDER-CHUNK-SUM"],
        2,
        "/content",
    ),
    # the second run is judged on its own chunks, not on the first run's too
    (
        "ORDER-CHUNK-SUM",
        [START, ev("code_chunk", chunk="a"), ev("code_generated", code="a"), ev("code_chunk", chunk="b"), ev("code_generated", code="ab"), COMPLETE, END],
        ["ORDER-CHUNK-SUM"],
        4,
        "/code",
    ),
    (
        "ORDER-STREAM-SUM",
        [START, ev("analysis_chunk", chunk="a"), PROGRESS, ev("analysis_chunk", chunk="b"), ev("complete", data={"analysis": "a"}), END],
        ["ORDER-STREAM-SUM"],
        4,
        "/data/analysis",
    ),
    ("ORDER-SEQ", [{**START, "seq": 0}, {**COMPLETE, "seq": 2}, {**END, "seq": 3}], ["ORDER-SEQ"], 1, "/seq"),
    ("ORDER-SEQ", [{**START, "seq": 1}, {**COMPLETE, "seq": 2}, {**END, "seq": 3}], ["ORDER-SEQ"], 0, "/seq"),
    ("ORDER-SEQ", [{**START, "seq": 0}, {**COMPLETE, "seq": 1}, END], ["ORDER-SEQ"], 2, "/seq"),
    ("ORDER-SEQ", [START, {**COMPLETE, "seq": 1}, {**END, "seq": 2}], ["ORDER-SEQ"], 0, "/seq"),
    ("ORDER-SEQ", [{**START, "seq": 0}, {**COMPLETE, "seq": 0}, {**END, "seq": 1}], ["ORDER-SEQ"], 1, "/seq"),
]


@pytest.mark.parametrize(
    ("rule_id", "stream", "expected", "index", "pointer"),
    BROKEN,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(BROKEN)],
)
def test_rule_fires_on_stream_broken_that_way(rule_id: str, stream: list[Any], expected: list[str], index: int | None, pointer: str) -> None:
    found = validate_stream(stream, PROFILE)
    assert sorted(set(rules(found))) == sorted(expected), "\n".join(map(str, found))
    first = next(f for f in found if f.rule == rule_id)
    assert first.index == index
    assert first.pointer == pointer
    assert first.level == RULES[rule_id].level == "MUST"
    assert first.message


def test_every_validator_rule_has_a_broken_stream() -> None:
    """Each rule the validator can raise is covered by the table above."""
    covered = {case[0] for case in BROKEN}
    validator_rules = {r for r in RULES if r.startswith(("SCHEMA-", "ORDER-"))}
    # SCHEMA-TS-SECONDS needs arrival times: it has tests of its own below
    assert covered == validator_rules - {"SCHEMA-TS-SECONDS"}


def test_schema_message_says_what_is_wrong() -> None:
    found = validate_stream([START, ev("verification", confidence=1.5), COMPLETE, END], PROFILE)
    assert str(found[0]) == "SCHEMA-EVENT: verification: 1.5 breaks 'maximum: 1' (event 1 at /confidence)"
    missing = validate_stream([START, ev("progress", message="no stage"), COMPLETE, END], PROFILE)
    assert "'stage' is a required property" in missing[0].message


def test_chunk_sum_message_points_at_the_first_difference() -> None:
    found = validate_stream(
        [START, ev("code_chunk", chunk="abc"), ev("code_chunk", chunk="def"), ev("code_generated", code="abcdXf"), COMPLETE, END], PROFILE
    )
    assert rules(found) == ["ORDER-CHUNK-SUM"]
    assert "at character 4" in found[0].message and "2 code_chunk events" in found[0].message


def test_seq_reports_only_the_first_break() -> None:
    stream = [{**e, "seq": s} for e, s in zip([START, PROGRESS, PROGRESS, COMPLETE, END], [0, 1, 5, 9, 12])]
    found = validate_stream(stream, PROFILE)
    assert rules(found) == ["ORDER-SEQ"]
    assert found[0].index == 2 and "expected 2" in found[0].message


def test_seq_true_is_not_one() -> None:
    found = validate_stream([{**START, "seq": 0}, {**COMPLETE, "seq": True}, {**END, "seq": 2}], PROFILE)
    assert "ORDER-SEQ" in rules(found) and "SCHEMA-ENVELOPE" in rules(found)


# --- what the grammar allows --------------------------------------------------

VALID = {
    "minimal": [START, COMPLETE, END],
    "start without message": [ev("start"), COMPLETE, END],
    "error right after start": [START, ev("error", message="no dataset", code="bad_request"), END],
    "error inside a code run": [START, ev("code_chunk", chunk="imp"), ev("error", message="cancelled", code="cancelled"), END],
    "error inside a reflection run": [START, ev("reflection_chunk", chunk="Key"), ev("error", message="x"), END],
    "error inside an analysis run": [START, ev("analysis_chunk", chunk="# T"), ev("error", message="x"), END],
    "white-space-only chunks": [
        START,
        ev("code_chunk", chunk=" "),
        ev("code_chunk", chunk="\n\t"),
        ev("code_generated", code=" \n\t"),
        ev("analysis_chunk", chunk="\n"),
        ev("complete", data={"analysis": "\n"}),
        END,
    ],
    "code_generated without chunks": [START, ev("code_generated", code="x = 1"), ev("reflection", content="ok"), COMPLETE, END],
    "two code runs": [
        START,
        ev("code_chunk", chunk="a"),
        ev("code_generated", code="a"),
        ev("code_chunk", chunk="b"),
        ev("code_chunk", chunk="c"),
        ev("code_generated", code="bc"),
        COMPLETE,
        END,
    ],
    "analysis chunks, complete without analysis": [START, ev("analysis_chunk", chunk="a"), ev("complete", data={}), END],
    "analysis chunks, non-string analysis": [START, ev("analysis_chunk", chunk="a"), ev("complete", data={"analysis": {"md": "b"}}), END],
    "analysis string without chunks": [START, ev("complete", data={"analysis": "anything"}), END],
    "analysis chunks interleaved with other events": [
        START,
        ev("analysis_chunk", chunk="a"),
        PROGRESS,
        ev("analysis_chunk", chunk="b"),
        ev("complete", data={"analysis": "ab"}),
        END,
    ],
    "extra fields everywhere": [
        {**START, "run_id": "r1"},
        {**PROGRESS, "percent": 10},
        ev("verification", confidence=0, checks={"a": True}),
        ev("verification", confidence=1),
        {**COMPLETE, "tokens": 12},
        {**END, "reason": "done"},
    ],
    "no seq at all": [START, PROGRESS, COMPLETE, END],
    "ts without seq": [{**START, "ts": 1.5}, {**COMPLETE, "ts": 2}, END],
}


@pytest.mark.parametrize("name", list(VALID))
def test_allowed_stream_is_valid(name: str) -> None:
    assert validate_stream(VALID[name], PROFILE) == []
    assert validate_stream(numbered(VALID[name]), PROFILE) == []


def test_json_pointer_round_trip() -> None:
    doc = {"a/b": {"m~n": [10, 20]}}
    pointer = json_pointer(["a/b", "m~n", 1])
    assert pointer == "/a~1b/m~0n/1"
    assert resolve_pointer(doc, pointer) == 20
    assert resolve_pointer(doc, "") is doc
    missing = resolve_pointer(doc, "/a~1b/nope")
    assert missing is resolve_pointer(doc, "/a~1b/m~0n/9") is resolve_pointer([], "/0")
    assert missing is not None and not isinstance(missing, (str, int, dict, list))


# --- recordings ---------------------------------------------------------------


def recorded(items: list[Any]) -> Recording:
    """A Recording whose events are parsed objects, or ('bad', text) for a parse error."""
    rec = Recording(request=Request("sse", "http://127.0.0.1:1/agent/stream"))
    for i, item in enumerate(items):
        if isinstance(item, tuple):
            rec.events.append(RecordedEvent(index=i, raw=item[1].encode(), text=item[1], parse_error="Expecting value: line 1 column 1 (char 0)"))
        else:
            text = json.dumps(item)
            rec.events.append(RecordedEvent(index=i, raw=text.encode(), text=text, data=item))
    return rec


def test_validate_recording_reports_parse_errors_as_schema_json() -> None:
    rec = recorded([{**START, "seq": 0}, ("bad", "{nope"), {**COMPLETE, "seq": 2}, {**END, "seq": 3}])
    found = validate_recording(rec, PROFILE)
    assert rules(found) == ["SCHEMA-JSON"]
    assert found[0].index == 1
    assert "not JSON" in found[0].message and "{nope" in found[0].message


def test_validate_recording_binary_garbage_does_not_crash() -> None:
    rec = recorded([START, COMPLETE, END])
    rec.events.insert(1, RecordedEvent(index=1, raw=b"\xff\xfe", text=None, parse_error="not UTF-8"))
    for i, e in enumerate(rec.events):
        e.index = i
    found = validate_recording(rec, PROFILE)
    assert rules(found) == ["SCHEMA-JSON"] and found[0].index == 1


def test_validate_recording_unparsed_event_takes_part_in_order() -> None:
    # the only stream_end did not parse: an event of no type follows complete,
    # and the stream does not end with stream_end
    rec = recorded([START, COMPLETE, ("bad", "{\"type\": \"stream_end\"")])
    assert rules(validate_recording(rec, PROFILE)) == [
        "SCHEMA-JSON",
        "ORDER-LAST-STREAM-END",
        "ORDER-EXACTLY-ONCE",
        "ORDER-TERMINAL-THEN-END",
    ]


def test_validate_recording_matches_validate_stream_without_parse_errors() -> None:
    stream = full_stream()
    assert validate_recording(recorded(stream), PROFILE) == validate_stream(stream, PROFILE) == []
    broken = [START, PROGRESS, END]
    assert validate_recording(recorded(broken), PROFILE) == validate_stream(broken, PROFILE)


# --- generated streams --------------------------------------------------------
#
# The generator follows PROTOCOL section 3 literally; the oracle below reads the
# same grammar as a regular expression plus the aggregate rules. The oracle does
# not share code with conformance.validate, so the two can be compared.

LETTER = {
    "start": "S",
    "progress": "m",
    "chain_of_thought": "m",
    "verification": "m",
    "data_ready": "m",
    "analysis_chunk": "a",
    "code_chunk": "c",
    "code_generated": "G",
    "reflection_chunk": "r",
    "reflection": "R",
    "complete": "K",
    "error": "E",
    "stream_end": "Z",
}
GRAMMAR = re.compile(r"S(?:m|a|c*G|r*R)*(?:K|(?:c+|r+)?E)Z")


def grammar_accepts(stream: list[dict[str, Any]]) -> bool:
    """PROTOCOL section 3, read independently of conformance.validate (for
    schema-valid events without seq)."""
    if not GRAMMAR.fullmatch("".join(LETTER[e["type"]] for e in stream)):
        return False
    code: list[str] = []
    reflection: list[str] = []
    analysis: list[str] = []
    for e in stream:
        t = e["type"]
        if t == "code_chunk":
            code.append(e["chunk"])
        elif t == "reflection_chunk":
            reflection.append(e["chunk"])
        elif t == "analysis_chunk":
            analysis.append(e["chunk"])
        elif t == "code_generated":
            if code and "".join(code) != e["code"]:
                return False
            code = []
        elif t == "reflection":
            if reflection and "".join(reflection) != e["content"]:
                return False
            reflection = []
        elif t == "complete":
            value = e["data"].get("analysis")
            if analysis and isinstance(value, str) and value != "".join(analysis):
                return False
    return True


chunk_text = st.text(min_size=1, max_size=6)  # white space and astral characters included
short_text = st.text(max_size=12)


@st.composite
def middle(draw) -> list[dict[str, Any]]:
    kind = draw(st.sampled_from(["progress", "chain_of_thought", "code", "reflect", "verification", "data_ready", "analysis_chunk"]))
    if kind == "progress":
        return [ev("progress", stage=draw(st.sampled_from(["router", "planner", "coder", "executor"])), message=draw(short_text))]
    if kind == "chain_of_thought":
        return [ev("chain_of_thought", content=draw(short_text))]
    if kind == "code":
        chunks = draw(st.lists(chunk_text, max_size=4))
        return [ev("code_chunk", chunk=c) for c in chunks] + [ev("code_generated", code="".join(chunks))]
    if kind == "reflect":
        chunks = draw(st.lists(chunk_text, max_size=4))
        return [ev("reflection_chunk", chunk=c) for c in chunks] + [ev("reflection", content="".join(chunks))]
    if kind == "verification":
        return [ev("verification", confidence=draw(st.floats(0, 1)))]
    if kind == "data_ready":
        return [ev("data_ready", data=draw(st.dictionaries(st.sampled_from(["rows", "chart"]), st.integers(), max_size=2)))]
    return [ev("analysis_chunk", chunk=draw(chunk_text))]


@st.composite
def grammar_stream(draw) -> list[dict[str, Any]]:
    """A stream derived from PROTOCOL section 3, with consistent aggregates; seq
    and ts on every event or on none."""
    events = [ev("start")] if draw(st.booleans()) else [ev("start", message=draw(short_text))]
    for part in draw(st.lists(middle(), max_size=8)):
        events += part
    if draw(st.booleans()):
        analysis = "".join(e["chunk"] for e in events if e["type"] == "analysis_chunk")
        how = draw(st.sampled_from(["joined", "absent", "not a string"]))
        data: dict[str, Any] = {"rows": 1}
        if how == "joined":
            data["analysis"] = analysis
        elif how == "not a string":
            data["analysis"] = None
        events.append(ev("complete", data=data))
    else:
        partial = draw(st.sampled_from(["", "code_chunk", "reflection_chunk"]))
        if partial:
            events += [ev(partial, chunk=c) for c in draw(st.lists(chunk_text, min_size=1, max_size=3))]
        events.append(ev("error", message=draw(short_text), code="agent_error"))
    events.append(ev("stream_end"))
    if draw(st.booleans()):
        events = numbered(events, ts=draw(st.booleans()))
    return events


def without_envelope(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ("seq", "ts")} for e in stream]


FAST = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(grammar_stream())
def test_grammar_streams_are_valid(stream: list[dict[str, Any]]) -> None:
    assert grammar_accepts(without_envelope(stream))
    assert validate_stream(stream, PROFILE) == []


@FAST
@given(grammar_stream(), st.data())
def test_dropping_an_event_is_noticed_unless_the_rest_is_still_a_stream(stream: list[dict[str, Any]], data) -> None:
    """Dropping one event breaks the stream, except when what remains is itself a
    stream the grammar derives: a free middle event (progress, chain_of_thought,
    verification, data_ready); an analysis_chunk when complete carries no string
    analysis or the stream ends in error; a chunk or a full event whose run is
    then cut by an error; the only chunk before its full event; a full event
    that had no chunks. With seq on every event, any drop is noticed (a gap, or
    no stream_end when the last one goes)."""
    i = data.draw(st.integers(0, len(stream) - 1), label="dropped index")
    mutated = stream[:i] + stream[i + 1 :]
    found = validate_stream(mutated, PROFILE)
    assert {f.rule for f in found} <= set(RULES)
    if "seq" in stream[0]:
        assert found, f"dropping event {i} ({stream[i]['type']}) went unnoticed"
        if i < len(stream) - 1:
            assert "ORDER-SEQ" in {f.rule for f in found}
    else:
        assert (found == []) == grammar_accepts(mutated), "\n".join(map(str, found))


@FAST
@given(grammar_stream(), st.data())
def test_duplicating_an_event_agrees_with_the_grammar(stream: list[dict[str, Any]], data) -> None:
    i = data.draw(st.integers(0, len(stream) - 1), label="duplicated index")
    plain = without_envelope(stream)
    mutated = plain[: i + 1] + plain[i:]
    found = validate_stream(mutated, PROFILE)
    assert (found == []) == grammar_accepts(mutated), "\n".join(map(str, found))


def test_known_drops() -> None:
    """The exceptions named above, spelled out."""
    base = [START, ev("code_chunk", chunk="a"), ev("code_generated", code="a"), PROGRESS, COMPLETE, END]
    assert validate_stream(base[:1] + base[2:], PROFILE) == []  # the only chunk before its full event
    assert validate_stream(base[:3] + base[4:], PROFILE) == []  # a free middle event
    assert rules(validate_stream(base[:2] + base[3:], PROFILE)) == ["ORDER-CHUNK-RUN"]  # the full event
    cut = [START, ev("code_chunk", chunk="a"), ev("code_generated", code="a"), ev("error", message="x"), END]
    assert validate_stream(cut[:2] + cut[3:], PROFILE) == []  # full event dropped, the run is cut by error


def _stamped_recording(ts_values: list[float], arrival: float) -> Recording:
    rec = Recording(request=Request("ws", "http://127.0.0.1:1/ws/agent/stream"))
    kinds = ["start", "complete", "stream_end"]
    for i, (kind, ts) in enumerate(zip(kinds, ts_values)):
        obj: dict[str, Any] = {"type": kind, "seq": i, "ts": ts}
        if kind == "complete":
            obj["data"] = {}
        text = json.dumps(obj)
        rec.events.append(RecordedEvent(index=i, raw=text.encode(), text=text, data=obj, t_wall=arrival + i * 0.01))
    return rec


def test_ts_in_seconds_passes_the_clock_check() -> None:
    now = 1_795_500_000.0
    assert validate_recording(_stamped_recording([now - 0.002, now, now + 0.001], now), PROFILE) == []


@pytest.mark.parametrize("scale,offset", [(1000.0, 0.0), (1.0, -7200.0), (0.0, 42.0)],
                         ids=["milliseconds", "two-hours-behind", "a-counter"])
def test_ts_not_in_unix_seconds_is_caught(scale: float, offset: float) -> None:
    now = 1_795_500_000.0
    ts = [now * scale + offset + i for i in range(3)]
    found = [f for f in validate_recording(_stamped_recording(ts, now), PROFILE) if f.rule == "SCHEMA-TS-SECONDS"]
    assert len(found) == 1 and found[0].index == 0 and found[0].pointer == "/ts"


def test_a_ts_too_large_for_a_float_is_a_finding_not_a_crash() -> None:
    """An integer of 400 digits has no float: it is judged off the clock, and it
    gives no delivery latency (it used to raise OverflowError in both)."""
    from load.metrics import stream_figures

    now = 1_795_500_000.0
    rec = _stamped_recording([now, 10**400, now + 0.001], now)
    found = [f for f in validate_recording(rec, PROFILE) if f.rule == "SCHEMA-TS-SECONDS"]
    assert len(found) == 1 and found[0].index == 1 and "+inf s from the client's clock" in found[0].message
    fig = stream_figures(rec, [], timestamp_field="ts")
    assert len(fig.delivery_us) == 2


def test_clock_check_needs_an_arrival_time() -> None:
    """A hand-made recording without arrival times is not judged on its clock."""
    rec = _stamped_recording([1.0, 2.0, 3.0], 0.0)
    assert [f for f in validate_recording(rec, PROFILE) if f.rule == "SCHEMA-TS-SECONDS"] == []


# --- what judge keeps between streams, and what it shares within one ---------------------

def _sse_recording(stream: list[Any]) -> Recording:
    """An accepted SSE recording of ``stream`` (ids equal to seq), arriving now."""
    from conformance.recording import SSEDetail, SSEEventDetail

    rec = Recording(request=Request("sse", "http://127.0.0.1:1/agent/stream"), status=200,
                    response_headers=[("content-type", "text/event-stream"), ("cache-control", "no-cache"),
                                      ("x-accel-buffering", "no")], detail=SSEDetail())
    rec.t_headers, rec.t_end = 0.0, 0.01
    for i, obj in enumerate(stream):
        text = json.dumps(obj)
        rec.events.append(RecordedEvent(index=i, raw=text.encode(), text=text, data=obj, t_perf=i * 1e-4,
                                        t_wall=obj.get("ts", 0.0), detail=SSEEventDetail(id=str(obj.get("seq")),
                                                                                         data_lines=1)))
    return rec


def test_check_stream_runs_each_profiles_own_rules_on_the_same_recording() -> None:
    """The per-stream rules are worked out once per profile object (Profile.derived):
    a second profile, alike but for its seq field, is not judged by the first one's."""
    from conformance.rules import check_stream

    stream = numbered(full_stream())
    stream[3] = {**stream[3], "seq": 7}
    rec = _sse_recording(stream)
    without_seq = Profile(PROFILE.name, PROFILE.path, {k: v for k, v in PROFILE.raw.items() if k != "seq_field"})
    assert "ORDER-SEQ" in rules(check_stream(rec, PROFILE))
    assert "ORDER-SEQ" not in rules(check_stream(rec, without_seq))
    assert "ORDER-SEQ" in rules(check_stream(rec, PROFILE))  # the first profile's rules are still its own
    assert PROFILE.asking(["q"]).__dict__.get("_derived") is None  # a new profile keeps nothing of the old


def test_check_stream_sees_a_recording_changed_between_two_calls() -> None:
    """What the rules share on a stream (its findings, its types, its timestamps) is
    kept for one call only: the same recording object, changed, is judged afresh."""
    from conformance.rules import check_stream

    rec = _sse_recording(numbered(full_stream()))
    assert check_stream(rec, PROFILE) == []
    rec.events[1].data["type"] = "no-such-type"
    rec.events[2].data["ts"] = rec.events[2].data["ts"] * 1000
    assert {"SCHEMA-TYPE-KNOWN", "SCHEMA-TS-SECONDS"} <= set(rules(check_stream(rec, PROFILE)))


def test_check_stream_runs_a_rule_registered_after_its_first_call() -> None:
    from conformance.rules import check_stream, stream_rule
    from conformance.validate import finding

    rec = _sse_recording(numbered(full_stream()))
    assert check_stream(rec, PROFILE) == []
    try:
        @stream_rule("TEST-LATE-RULE", "MUST", "2")
        def late(rec, ctx):
            """a rule registered late"""
            return [finding("TEST-LATE-RULE", "always")]

        assert rules(check_stream(rec, PROFILE)) == ["TEST-LATE-RULE"]
    finally:
        RULES.pop("TEST-LATE-RULE", None)
    assert check_stream(rec, PROFILE) == []


@pytest.mark.parametrize("mutate", ["seq-bool", "seq-float", "seq-missing", "chunk-not-text", "ts-text", "ts-nan",
                                    "two-terminals", "terminal-mid"])
def test_the_quick_answers_of_a_clean_stream_still_see_each_breakage(mutate: str) -> None:
    """The validator answers a clean stream from counts and pairs of types; one
    event off in any of these ways still gets its finding."""
    stream = numbered(full_stream())
    code = next(i for i, e in enumerate(stream) if e["type"] == "code_chunk")
    done = next(i for i, e in enumerate(stream) if e["type"] == "complete")
    expected = {"seq-bool": "ORDER-SEQ", "seq-float": "ORDER-SEQ", "seq-missing": "ORDER-SEQ",
                "chunk-not-text": "SCHEMA-EVENT", "ts-text": "SCHEMA-ENVELOPE", "ts-nan": "SCHEMA-TS-SECONDS",
                "two-terminals": "ORDER-ONE-TERMINAL", "terminal-mid": "ORDER-TERMINAL-THEN-END"}[mutate]
    if mutate == "seq-bool":
        stream[1]["seq"] = True
    elif mutate == "seq-float":
        stream[2]["seq"] = 2.0
    elif mutate == "seq-missing":
        del stream[4]["seq"]
    elif mutate == "chunk-not-text":
        stream[code]["chunk"] = 5
    elif mutate == "ts-text":
        stream[3]["ts"] = "now"
    elif mutate == "ts-nan":
        stream[3]["ts"] = float("nan")
    elif mutate == "two-terminals":
        stream.insert(done, {**stream[done]})
    elif mutate == "terminal-mid":
        stream.insert(done - 1, {**stream[done]})
    rec = _sse_recording(numbered(stream) if mutate.startswith("two") or mutate == "terminal-mid" else stream)
    for e in rec.events:
        e.t_wall = 1_790_000_000.0
    assert expected in rules(validate_recording(rec, PROFILE))


def test_validation_rules_report_their_share_of_the_pass_and_nothing_else() -> None:
    """check_stream does not run a ``validation`` rule whose ID the pass did not find
    (Rule.validation): so each must return exactly the pass's findings under its ID."""
    from conformance.session import Context

    stream = numbered(full_stream())
    stream[2] = {**stream[2], "seq": "2", "type": "no-such-type"}
    stream[5] = {**stream[5], "chunk": ""}
    stream.insert(1, {**stream[-1]})
    rec = _sse_recording(stream)
    shares = [r for r in RULES.values() if r.validation]
    assert len(shares) >= 20 and all(r.per_stream and r.binding is None for r in shares)
    found = 0
    for rule in shares:
        ctx = Context(None, PROFILE, rule, "sse")
        own = [f for f in ctx.findings(rec) if f.rule == rule.id]
        assert list(rule.check(rec, ctx)) == own, rule.id
        found += bool(own)
    assert found >= 4
