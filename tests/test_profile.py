"""The profile loader: the bundled profile loads, broken profiles are refused with a
message that names the bad key, and a profile with another vocabulary works,
which shows that the checking code hard-codes no event type."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.parity import strict_divergence, structure
from conformance.profile import (
    DEFAULT_PROFILE,
    PROFILE_DIR,
    Profile,
    ProfileError,
    bundled_profiles,
    check_profile,
    expand_value,
    load_profile,
)
from conformance.validate import validate_stream

BUNDLED = PROFILE_DIR / "agent-stream-1.yaml"


def bundled_raw() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(BUNDLED.read_text(encoding="utf-8")))


def write(tmp_path: Path, doc: Any, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def rejected(tmp_path: Path, doc: Any) -> str:
    """Load ``doc`` from a file and return the ProfileError message it must raise."""
    path = write(tmp_path, doc)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return str(info.value)


# --- the bundled profile ----------------------------------------------------


def test_bundled_profile_loads_by_name() -> None:
    profile = load_profile("agent-stream/1")
    assert isinstance(profile, Profile)
    assert profile.name == "agent-stream/1"
    assert profile.path == BUNDLED
    assert load_profile().name == DEFAULT_PROFILE == "agent-stream/1"
    assert bundled_profiles()["agent-stream/1"] == BUNDLED
    assert bundled_profiles()["agent-stream/1+h2"] == BUNDLED.parent / "agent-stream-1-h2.yaml"


def test_bundled_profile_loads_by_path_str_and_path() -> None:
    by_name = load_profile("agent-stream/1")
    for ref in (BUNDLED, str(BUNDLED)):
        by_path = load_profile(ref)
        assert by_path.name == "agent-stream/1"
        assert by_path.raw == by_name.raw


def test_bundled_profile_reads_as_protocol_says() -> None:
    """Spot checks that the data matches PROTOCOL.md sections 2 and 3."""
    p = load_profile()
    assert p.type_field == "type" and p.seq_field == "seq" and p.timestamp_field == "ts"
    assert p.volatile == ("ts",)
    assert len(p.event_types) == 13
    assert p.order.first == ("start",) and p.order.last == ("stream_end",)
    assert p.chunk_types == {"code_chunk", "reflection_chunk", "analysis_chunk"}
    assert {(a.chunk, a.full, a.pointer, a.scope) for a in p.aggregates} == {
        ("code_chunk", "code_generated", "/code", "run"),
        ("reflection_chunk", "reflection", "/content", "run"),
        ("analysis_chunk", "complete", "/data/analysis", "stream"),
    }
    assert p.transport("sse").path == "/agent/stream"
    assert p.transport("ws").close_normal == 1000
    assert p.transport("nope") is None
    assert p.parity == (("sse", "ws"),)
    assert p.disconnect.gauge == "agent_active_streams"
    assert check_profile(p.raw) == []


# --- broken profiles ----------------------------------------------------------


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    doc = bundled_raw()
    doc["evnts"] = doc["events"]  # a typo next to the real key
    message = rejected(tmp_path, doc)
    assert "evnts: unknown key" in message
    assert str(tmp_path / "profile.yaml") in message


def test_unknown_nested_key_is_named_with_its_path(tmp_path: Path) -> None:
    doc = bundled_raw()
    doc["transports"]["sse"]["cache_contol_any"] = ["no-cache"]
    doc["aggregates"][1]["pointr"] = "/content"
    message = rejected(tmp_path, doc)
    assert "transports.sse.cache_contol_any: unknown key" in message
    assert "aggregates[1].pointr: unknown key" in message


def test_missing_order_first_is_named(tmp_path: Path) -> None:
    doc = bundled_raw()
    del doc["order"]["first"]
    assert "order.first: required key is missing" in rejected(tmp_path, doc)


@pytest.mark.parametrize("key", ["profile", "type_field", "events", "order"])
def test_missing_top_level_key_is_named(tmp_path: Path, key: str) -> None:
    doc = bundled_raw()
    del doc[key]
    assert f"{key}: required key is missing" in rejected(tmp_path, doc)


def test_missing_aggregate_key_is_named(tmp_path: Path) -> None:
    doc = bundled_raw()
    del doc["aggregates"][0]["scope"]
    assert "aggregates[0].scope: required key is missing" in rejected(tmp_path, doc)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["order"].__setitem__("first", "begin"), "order.first: 'begin'"),
        (lambda d: d["order"].__setitem__("last", "the_end"), "order.last: 'the_end'"),
        (lambda d: d["order"]["exactly_once"].append("stat"), "order.exactly_once[2]: 'stat'"),
        (lambda d: d["order"]["exactly_one_of"][0].append("done"), "order.exactly_one_of[0][2]: 'done'"),
        (lambda d: d["order"]["terminal"].append("finished"), "order.terminal[2]: 'finished'"),
        (lambda d: d["order"]["interrupts"].append("panic"), "order.interrupts[1]: 'panic'"),
        (lambda d: d["aggregates"][0].__setitem__("chunk", "code_chnk"), "aggregates[0].chunk: 'code_chnk'"),
        (lambda d: d["aggregates"][2].__setitem__("full", "completed"), "aggregates[2].full: 'completed'"),
        (lambda d: d["chunk_types"].append("text_chunk"), "chunk_types[3]: 'text_chunk'"),
        (lambda d: d["transports"]["ws"].__setitem__("reject_event_type", "failure"), "transports.ws.reject_event_type: 'failure'"),
        (lambda d: d["transports"]["ws"]["cancel"]["expect"].__setitem__("type", "cancelled"), "transports.ws.cancel.expect: 'cancelled'"),
    ],
)
def test_reference_to_an_undefined_type_is_named(tmp_path: Path, mutate, key: str) -> None:
    doc = bundled_raw()
    mutate(doc)
    message = rejected(tmp_path, doc)
    assert f"{key} is not an event type of this profile" in message


def test_every_undefined_reference_is_listed_at_once(tmp_path: Path) -> None:
    doc = bundled_raw()
    del doc["events"]["error"]  # referenced from exactly_one_of, terminal, interrupts, ws.reject_event_type, ws.cancel
    message = rejected(tmp_path, doc)
    for key in (
        "order.exactly_one_of[0][1]",
        "order.terminal[1]",
        "order.interrupts[0]",
        "transports.ws.reject_event_type",
        "transports.ws.cancel.expect",
    ):
        assert f"{key}: 'error' is not an event type" in message


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "strng"}, "events.progress: not a valid JSON Schema"),
        ({"type": "object", "required": "stage"}, "events.progress: not a valid JSON Schema"),
        ({"type": "object", "properties": {"stage": {"minLength": -1}}}, "events.progress: not a valid JSON Schema"),
    ],
)
def test_invalid_event_schema_is_named(tmp_path: Path, schema: dict, fragment: str) -> None:
    doc = bundled_raw()
    doc["events"]["progress"] = schema
    assert fragment in rejected(tmp_path, doc)


def test_invalid_envelope_schema_is_named(tmp_path: Path) -> None:
    doc = bundled_raw()
    doc["envelope"]["properties"]["seq"] = {"type": "int"}
    assert "envelope: not a valid JSON Schema" in rejected(tmp_path, doc)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.__setitem__("chunk_types", "code_chunk"), "chunk_types: 'code_chunk' is not of type 'array'"),
        (lambda d: d.__setitem__("volatile", "ts"), "volatile: 'ts' is not of type 'array'"),
        (lambda d: d.__setitem__("events", ["start", "stream_end"]), "events: ['start', 'stream_end'] is not of type 'object'"),
        (lambda d: d.__setitem__("events", {}), "events: {} should be non-empty"),
        (lambda d: d["events"].__setitem__("start", "object"), "events.start: 'object' is not of type 'object'"),
        (lambda d: d.__setitem__("order", "start"), "order: 'start' is not of type 'object'"),
        (lambda d: d["order"].__setitem__("first", 1), "order.first: 1 is not of type 'string' or 'array'"),
        (lambda d: d["order"].__setitem__("exactly_one_of", [[]]), "order.exactly_one_of[0]: [] should be non-empty"),
        (lambda d: d["aggregates"][0].__setitem__("scope", "line"), "aggregates[0].scope: 'line' is not one of"),
        (lambda d: d["aggregates"][0].__setitem__("pointer", "code"), "aggregates[0].pointer: 'code' does not match"),
        (lambda d: d["transports"]["sse"].__setitem__("status", "200"), "transports.sse.status: '200' is not of type 'integer'"),
        (lambda d: d["transports"]["sse"].__setitem__("reject_status", "4XX"), "transports.sse.reject_status"),
        (lambda d: d["transports"]["ws"].__setitem__("path", "ws/agent"), "transports.ws.path: 'ws/agent' does not match"),
        (lambda d: d["disconnect"].__setitem__("within_s", 0), "disconnect.within_s: 0 is less than or equal to the minimum"),
        (lambda d: d["request"].__setitem__("sample_questions", []), "request.sample_questions"),
        (lambda d: d["request"]["params"]["question"].__setitem__("max_length", "2000"), "request.params.question.max_length"),
        (
            lambda d: d["request"]["invalid"][3]["params"].__setitem__("question", {"repeat": "x", "time": 2001}),
            "request.invalid[3].params.question: {'repeat': 'x', 'time': 2001} is not valid",
        ),
        (lambda d: d["request"]["invalid"].append({"omit": "question"}), "request.invalid[5].name: required key is missing"),
        (
            lambda d: d["transports"]["ws"]["cancel"]["expect"].__setitem__("type", ["error"]),
            "transports.ws.cancel.expect.type: must be a string",
        ),
    ],
)
def test_wrong_value_type_is_named(tmp_path: Path, mutate, fragment: str) -> None:
    doc = bundled_raw()
    mutate(doc)
    assert fragment in rejected(tmp_path, doc)


def test_not_yaml(tmp_path: Path) -> None:
    message = rejected(tmp_path, "profile: x\nevents: [start, {\n")
    assert "not valid YAML" in message and "profile.yaml" in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("profile: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(path)


@pytest.mark.parametrize(("text", "kind"), [("- start\n- stream_end\n", "list"), ("just a string\n", "str"), ("", "NoneType")])
def test_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    assert f"a profile must be a mapping, got {kind}" in rejected(tmp_path, text)


def test_unknown_profile_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("agent-stream/9")
    assert "no profile named 'agent-stream/9'" in str(info.value)
    assert "agent-stream/1" in str(info.value)


def test_a_directory_is_not_a_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(tmp_path)


def test_check_profile_is_pure_and_lists_every_problem() -> None:
    doc = bundled_raw()
    doc["evnts"] = {}
    del doc["order"]["last"]
    problems = check_profile(doc, "mine.yaml")
    assert "mine.yaml: evnts: unknown key" in problems
    assert "mine.yaml: order.last: required key is missing" in problems


# --- request parameters -------------------------------------------------------


def test_cases_expand_repeat_and_omit() -> None:
    p = load_profile()
    cases = {c.name: c for c in p.request.invalid + p.request.valid_edge}
    base = {"question": "hi", "dataset": "all"}

    too_long = cases["too long question"].apply(base)
    assert too_long == {"question": "x" * 2001, "dataset": "all"}

    emoji = cases["longest question (4-byte characters)"].apply({})
    assert emoji["question"] == "\U0001F600" * 2000 and len(emoji["question"]) == 2000

    missing = cases["missing question"].apply(base)
    assert missing == {"dataset": "all"}
    assert base == {"question": "hi", "dataset": "all"}, "the base dict must not be changed"

    blank = cases["blank question"].apply(base)
    assert blank["question"] == "   \t  "


def test_expand_value() -> None:
    assert expand_value("abc") == "abc"
    assert expand_value({"repeat": "ab", "times": 3}) == "ababab"
    assert expand_value({"repeat": "ab", "times": 0}) == ""


# --- another vocabulary -------------------------------------------------------

TICKER = """
profile: ticker/1
description: a toy protocol whose names share nothing with agent-stream/1
type_field: kind
seq_field: n
volatile: [at]
events:
  hello:
    type: object
    required: [name]
    properties: {name: {type: string}}
  tick:
    type: object
    required: [part]
    properties: {part: {type: string, minLength: 1}}
  total:
    type: object
    required: [text]
    properties: {text: {type: string}}
  oops:
    type: object
  bye:
    type: object
order:
  first: hello
  last: bye
  exactly_once: [hello, bye]
  exactly_one_of: [[total, oops]]
  terminal: [oops]
  interrupts: [oops]
aggregates:
  - {chunk: tick, field: part, full: total, pointer: /text, scope: run}
chunk_types: [tick]
"""


@pytest.fixture
def ticker(tmp_path: Path) -> Profile:
    return load_profile(write(tmp_path, TICKER, "ticker.yaml"))


def tk(kind: str, n: int | None = None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"kind": kind, **fields}
    if n is not None:
        event["n"] = n
    return event


def rules(findings) -> list[str]:
    return [f.rule for f in findings]


def test_other_vocabulary_loads(ticker: Profile) -> None:
    assert ticker.name == "ticker/1"
    assert ticker.event_types == ("hello", "tick", "total", "oops", "bye")
    assert ticker.envelope_validator is None
    assert ticker.sample_questions == ("hello",)  # default when the profile has no request section


def test_other_vocabulary_valid_streams(ticker: Profile) -> None:
    stream = [tk("hello", 0, name="x"), tk("tick", 1, part="ab"), tk("tick", 2, part="c"), tk("total", 3, text="abc"), tk("bye", 4)]
    assert validate_stream(stream, ticker) == []
    interrupted = [tk("hello", name="x"), tk("tick", part="ab"), tk("oops"), tk("bye")]
    assert validate_stream(interrupted, ticker) == []


def test_other_vocabulary_broken_streams(ticker: Profile) -> None:
    # agent-stream/1 events mean nothing here: `type` is not this profile's type field
    assert rules(validate_stream([{"type": "start"}, {"type": "stream_end"}], ticker))[:2] == ["SCHEMA-ENVELOPE", "SCHEMA-ENVELOPE"]
    # known field, unknown names
    found = validate_stream([tk("hello", name="x"), tk("start"), tk("total", text=""), tk("bye")], ticker)
    assert rules(found) == ["SCHEMA-TYPE-KNOWN"] and found[0].index == 1 and found[0].pointer == "/kind"
    # aggregate, run and order rules, all driven by the profile
    assert rules(validate_stream([tk("hello", name="x"), tk("tick", part="a"), tk("total", text="b"), tk("bye")], ticker)) == ["ORDER-CHUNK-SUM"]
    assert rules(validate_stream([tk("hello", name="x"), tk("tick", part="a"), tk("hello", name="y"), tk("total", text="a"), tk("bye")], ticker)) == [
        "ORDER-EXACTLY-ONCE",
        "ORDER-CHUNK-RUN",
    ]
    assert rules(validate_stream([tk("hello", name="x"), tk("oops"), tk("tick", part="a"), tk("bye")], ticker)) == [
        "ORDER-TERMINAL-THEN-END",
        "ORDER-CHUNK-RUN",
    ]
    assert rules(validate_stream([tk("hello", name="x"), tk("tick", part="")], ticker)) == [
        "SCHEMA-EVENT",
        "ORDER-LAST-STREAM-END",
        "ORDER-EXACTLY-ONCE",
        "ORDER-ONE-TERMINAL",
    ]
    # the seq field is `n`, not `seq`
    gap = validate_stream([tk("hello", 0, name="x"), tk("total", 2, text=""), tk("bye", 3)], ticker)
    assert rules(gap) == ["ORDER-SEQ"] and gap[0].pointer == "/n"
    assert validate_stream([{**tk("hello", name="x"), "seq": 7}, tk("total", text=""), tk("bye")], ticker) == []


def test_other_vocabulary_parity(ticker: Profile) -> None:
    left = [tk("hello", name="x", at=1.0), tk("tick", part="a", at=2.0), tk("tick", part="b"), tk("total", text="ab"), tk("bye")]
    right = [tk("hello", name="x", at=9.0), tk("tick", part="a", at=3.0), tk("tick", part="b"), tk("total", text="ab"), tk("bye")]
    assert strict_divergence(left, right, ticker) is None  # `at` is this profile's volatile field
    assert structure(left, ticker) == ["hello", "tick", "total", "bye"]


def test_example_profile_in_the_docs_loads(tmp_path: Path) -> None:
    """docs/profiles.md shows a whole profile for another vocabulary; it must load
    and its example stream must validate."""
    doc = (Path(__file__).parent.parent / "docs" / "profiles.md").read_text(encoding="utf-8")
    blocks = [b.split("\n", 1)[1] for b in doc.split("```")[1::2] if b.startswith("yaml\nprofile:")]
    assert len(blocks) == 1
    profile = load_profile(write(tmp_path, blocks[0], "chat.yaml"))
    assert profile.name == "chat-stream/1"
    chat = [
        {"kind": "open", "n": 0, "at": 1.0},
        {"kind": "token", "text": "Hi", "n": 1},
        {"kind": "token", "text": " there", "n": 2},
        {"kind": "message", "content": "Hi there", "n": 3},
        {"kind": "done", "n": 4},
        {"kind": "close", "n": 5},
    ]
    assert validate_stream(chat, profile) == []
    chat[3]["content"] = "Hi"
    assert rules(validate_stream(chat, profile)) == ["ORDER-CHUNK-SUM"]
