"""The pure pieces under the protocol profiles: JSON Pointer, JSON Patch (RFC
6902's own examples), request templates, and the cross-event checks on
hand-written event lists (no server: these are functions on data)."""

from __future__ import annotations

import pytest

from conformance import pointer as jp
from conformance.jsonpatch import PatchError, apply
from conformance.lifecycle import lifecycle_findings
from conformance.profile import load_profile
from conformance.template import dumps, edit, render
from conformance.validate import validate_stream

# --- RFC 6902, Appendix A -----------------------------------------------------------

RFC6902 = [
    ("A.1", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ("A.2", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ("A.4", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ("A.5", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ("A.6", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7", {"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ("A.16", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
]


@pytest.mark.parametrize("name, doc, patch, expected", RFC6902, ids=[c[0] for c in RFC6902])
def test_json_patch_follows_rfc6902_appendix_a(name, doc, patch, expected) -> None:
    before = repr(doc)
    assert apply(doc, patch) == expected
    assert repr(doc) == before, "the document passed in is never changed"


@pytest.mark.parametrize("name, doc, patch, index", [
    ("A.9 test error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], 0),
    ("A.12 add to a nonexistent target", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], 0),
    ("A.15 a string is not a number", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], 0),
    ("replace of nothing", {"a": 1}, [{"op": "add", "path": "/b", "value": 2}, {"op": "replace", "path": "/c", "value": 1}], 1),
    ("index out of range", {"a": [1]}, [{"op": "add", "path": "/a/5", "value": 2}], 0),
    ("move into itself", {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], 0),
    ("unknown op", {}, [{"op": "merge", "path": "/a"}], 0),
    ("not a list", {}, {"op": "add"}, 0),
])
def test_a_patch_that_does_not_apply_names_its_operation(name, doc, patch, index) -> None:
    with pytest.raises(PatchError) as info:
        apply(doc, patch)
    assert info.value.index == index


def test_pointers_escape_and_expand() -> None:
    doc = {"a/b": {"~": 1}, "list": [{"id": 1}, {"id": 2}]}
    assert jp.resolve(doc, "/a~1b/~0") == 1
    assert jp.resolve(doc, "/list/5") is jp.MISSING
    assert list(jp.expand(doc, "/list/*/id")) == ["/list/0/id", "/list/1/id"]
    assert jp.join(["a/b", "~"]) == "/a~1b/~0"


# --- request templates -----------------------------------------------------------------

def test_templates_fill_the_question_and_fresh_ids() -> None:
    doc = render({"q": "{question}", "ids": ["{uuid}", "{uuid}"], "text": "ask: {question}", "n": 1}, "why?")
    assert doc["q"] == "why?" and doc["text"] == "ask: why?" and doc["n"] == 1
    assert len(set(doc["ids"])) == 2 and all(len(i) == 36 for i in doc["ids"])
    edited = edit(doc, [("/q", 5), ("/new", [1])], ["/text", "/absent"])
    assert edited["q"] == 5 and edited["new"] == [1] and "text" not in edited and doc["q"] == "why?"
    assert dumps({"q": "\udc80"}) == '{"q":"\\udc80"}'  # a lone surrogate still makes valid UTF-8 JSON


# --- cross-event checks on event lists ----------------------------------------------------

AGUI = load_profile("ag-ui/1.0")


def _run(*inner, thread="t", run="r"):
    return [{"type": "RUN_STARTED", "threadId": thread, "runId": run}, *inner,
            {"type": "RUN_FINISHED", "threadId": thread, "runId": run}]


def rules(events, request=None):
    return sorted({f.rule for f in validate_stream(events, AGUI, request or {"threadId": "t", "runId": "r"})})


def test_spans_interleave_reopen_and_close_by_id() -> None:
    start = lambda i: {"type": "TEXT_MESSAGE_START", "messageId": i, "role": "assistant"}  # noqa: E731
    content = lambda i: {"type": "TEXT_MESSAGE_CONTENT", "messageId": i, "delta": "x"}  # noqa: E731
    end = lambda i: {"type": "TEXT_MESSAGE_END", "messageId": i}  # noqa: E731
    assert rules(_run(start("a"), start("b"), content("a"), content("b"), end("a"), end("b"))) == []
    assert rules(_run(start("a"), end("a"), start("a"), end("a"))) == []  # an id may open again after its end
    assert rules(_run(start("a"), content("b"), end("a"))) == ["LIFECYCLE-SPAN"]
    assert rules(_run(start("a"))) == ["LIFECYCLE-SPAN"]


def test_chunks_open_their_span_and_the_next_other_event_closes_it() -> None:
    chunk = {"type": "TEXT_MESSAGE_CHUNK", "messageId": "c", "delta": "a"}
    assert rules(_run(chunk, {"type": "TEXT_MESSAGE_CHUNK", "delta": "b"}, {"type": "STEP_STARTED", "stepName": "s"},
                      {"type": "STEP_FINISHED", "stepName": "s"})) == []
    # a first chunk without its id names nothing
    assert rules(_run({"type": "TEXT_MESSAGE_CHUNK", "delta": "b"})) == ["LIFECYCLE-SPAN"]


def test_echoes_hold_within_each_run() -> None:
    two_runs = _run() + _run(run="r2")
    found = [f for f in lifecycle_findings(two_runs, [e["type"] for e in two_runs], AGUI, {"threadId": "t", "runId": "r"})]
    # the second run's RUN_FINISHED matches its own RUN_STARTED, and only the first run has the request's runId
    assert found == []
    other_thread = _run() + _run(thread="t2", run="r2")
    found = lifecycle_findings(other_thread, [e["type"] for e in other_thread], AGUI, {"threadId": "t", "runId": "r"})
    assert [(f.rule, f.index, f.pointer) for f in found] == [("ECHO-REQUEST", 2, "/threadId")]


def test_runs_do_not_nest_and_only_an_error_comes_between_them() -> None:
    assert rules(_run() + [{"type": "RUN_ERROR", "message": "late"}]) == []
    assert rules(_run() + [{"type": "STEP_STARTED", "stepName": "s"}]) == ["LIFECYCLE-RUN", "ORDER-LAST-STREAM-END"]


def test_a_tool_result_may_name_a_call_of_the_conversation_so_far() -> None:
    result = {"type": "TOOL_CALL_RESULT", "messageId": "m9", "toolCallId": "call_old", "content": "sunny"}
    history = {"threadId": "t", "runId": "r", "messages": [
        {"id": "a1", "role": "assistant", "toolCalls": [{"id": "call_old", "type": "function",
                                                          "function": {"name": "get_weather", "arguments": "{}"}}]}]}
    assert rules(_run(result), history) == []
    assert rules(_run(result)) == ["REF-KNOWN-ID"]


def test_an_error_ends_the_run_with_whatever_is_open() -> None:
    events = [{"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
              {"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"},
              {"type": "TOOL_CALL_START", "toolCallId": "c", "toolCallName": "f"},
              {"type": "RUN_ERROR", "message": "overloaded"}]
    assert rules(events) == []
    assert rules(events[:-1] + [{"type": "RUN_FINISHED", "threadId": "t", "runId": "r"}]) == ["LIFECYCLE-SPAN"]


def test_a_check_keeps_its_own_level_and_the_profile_can_set_a_rules() -> None:
    from conformance.profile import Profile
    from conformance.rules import RULES
    from conformance.verdict import outcome

    raw = dict(AGUI.raw)
    raw["echoes"] = [{**e, "level": "SHOULD"} if e.get("request") == "/threadId" else e for e in raw["echoes"]]
    soft = Profile(AGUI.name, AGUI.path, raw)
    events = _run(thread="other")
    found = validate_stream(events, soft, {"threadId": "t", "runId": "r"})
    assert [(f.rule, f.level) for f in found if f.rule == "ECHO-REQUEST"] == [("ECHO-REQUEST", "SHOULD")]
    assert outcome(RULES["ECHO-REQUEST"], [(f, None) for f in found], "sse", soft).verdict == "warn"
    hard = Profile(AGUI.name, AGUI.path, {**raw, "levels": {**raw["levels"], "ECHO-REQUEST": "MUST"}})
    found = validate_stream(events, hard, {"threadId": "t", "runId": "r"})
    assert outcome(RULES["ECHO-REQUEST"], [(f, None) for f in found], "sse", hard).verdict == "fail"
