"""The fast path and the slow path give the same verdicts (conformance/fastschema.py).

The fast validators (jsonschema-rs, fastjsonschema) only filter: an event they
call invalid is judged by jsonschema. So the paths could only disagree where a
fast engine calls valid an event jsonschema rejects. These tests run, for each
engine, every event schema of the bundled profiles against instances on each
side of each keyword, and the events of every broken backend of
``tests/backends`` (both transports) through ``validate_stream`` with and
without the fast path, and assert identical findings. The JSON decoder is held
to the standard library's the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from backends.canned import Request, Stamper, plan
from backends.defects import DEFECTS
from conformance import fastschema
from conformance.profile import load_profile
from conformance.validate import validate_stream
from conformance.wire.sse_lines import Line, MessageAssembler

PROFILES = sorted((Path(fastschema.__file__).parent / "profiles").glob("*.yaml"))
ENGINES = [e for e, mod in (("jsonschema-rs", fastschema._rs), ("fastjsonschema", fastschema._fjs)) if mod]


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Select one fast engine for the test (and forget compiled checkers)."""
    monkeypatch.setattr(fastschema, "ENGINE", request.param)
    monkeypatch.setattr(fastschema, "_CHECKERS", {})
    return request.param


def slow_findings(events, profile, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(fastschema, "ENGINE", None)
        m.setattr(fastschema, "_CHECKERS", {})
        assert fastschema.checker(profile) is None  # really the slow path
        return validate_stream(events, profile)


def test_an_engine_is_installed_with_the_test_extra():
    """Without one every other test here compares the slow path with itself."""
    assert ENGINES, "install the 'fast' extra (jsonschema-rs or fastjsonschema)"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_schema_compiles_to_a_fast_check(path, engine):
    profile = load_profile(str(path))
    fast = fastschema.checker(profile)
    assert fast is not None and set(fast.types) == set(profile.event_types)


WRONG_VALUES = [None, True, False, 0, 1, -1, 0.5, 1.5, -0.5, 2**70, "", " ", "x", [], [1], {}, {"a": 1}]


def _instances(profile):
    """For each event type: a valid-looking event, then each property set to every
    wrong value, each required field dropped, and envelope fields spoiled."""
    tf = profile.type_field
    for name, schema in profile.raw["events"].items():
        props = dict(schema.get("properties") or {})
        base = {tf: name}
        for key, sub in props.items():
            kind = sub.get("type")
            kind = kind[0] if isinstance(kind, list) else kind  # [string, "null"]: a string
            base[key] = {"string": "text", "number": 0.5, "integer": 1, "object": {}, "array": [],
                         "boolean": True}.get(kind, "text")
        yield base
        for key in [*props, "seq", "ts", tf]:
            for value in WRONG_VALUES:
                yield {**base, key: value}
        for key in schema.get("required") or []:
            yield {k: v for k, v in base.items() if k != key}
    yield {tf: "no-such-type"}
    yield {}
    yield [1, 2]
    yield "just a string"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_event_schema_gets_the_same_answer_on_both_paths(path, engine):
    profile = load_profile(str(path))
    fast = fastschema.checker(profile)
    env = Draft202012Validator(profile.raw["envelope"]) if profile.raw.get("envelope") else None
    compared = rejected = 0
    for obj in _instances(profile):
        slow_valid = (isinstance(obj, dict) and isinstance(obj.get(profile.type_field), str)
                      and obj[profile.type_field] in profile.validators
                      and (env is None or env.is_valid(obj))
                      and profile.validators[obj[profile.type_field]].is_valid(obj))
        assert fast.valid(obj) == slow_valid, (engine, obj)
        compared += 1
        rejected += not slow_valid
    assert compared > 50 and rejected > compared // 2  # the instances reach both answers (one type: 78)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_a_whole_stream_is_valid_exactly_when_each_event_is(path, engine):
    """``all_valid`` (one loop, the envelope and the type's schema in one check) says
    what ``valid`` says of every event."""
    profile = load_profile(str(path))
    fast = fastschema.checker(profile)
    instances = list(_instances(profile))
    good = [obj for obj in instances if fast.valid(obj)]
    assert fast.all_valid(good) and fast.all_valid([])  # (no instance of a profile may be valid: then [])
    for obj in instances:
        assert fast.all_valid(good + [obj]) == fast.valid(obj), obj


def test_schemas_with_references_keep_their_own_checks(engine):
    """A schema with ``$ref``/``$defs`` would resolve differently nested under the
    envelope's ``allOf``: its events are checked by the two schemas one after the other."""
    from conformance.profile import Profile

    base = load_profile("agent-stream/1")
    events = {**base.raw["events"],
              "progress": {"$defs": {"text": {"type": "string", "minLength": 1}}, "type": "object",
                           "required": ["stage"], "properties": {"stage": {"$ref": "#/$defs/text"}}}}
    profile = Profile(base.name, base.path, {**base.raw, "events": events})
    fast = fastschema.checker(profile)
    assert fast.whole["progress"] is not fast.types["progress"]  # not one compiled schema
    assert fast.valid({"type": "progress", "stage": "x"})
    assert not fast.valid({"type": "progress", "stage": ""})
    assert not fast.valid({"type": "progress", "stage": "x", "seq": -1})  # the envelope still applies
    assert not fastschema._self_contained(events["progress"]) and fastschema._self_contained(events["start"])


@pytest.mark.parametrize("transport", ["sse", "ws"])
@pytest.mark.parametrize("defect", [None, *sorted({d.name for d in DEFECTS})])
def test_every_broken_backend_gets_the_same_findings_on_both_paths(defect, transport, engine, monkeypatch):
    profile = load_profile("agent-stream/1")
    stamper = Stamper(defect)
    events = [stamper.stamp(e) for e in plan(Request("Show top incidents", "all", 0.0), transport, defect)]
    fast = validate_stream(events, profile)
    assert fastschema.checker(profile) is not None
    assert fast == slow_findings(events, profile, monkeypatch)


def test_the_schema_defects_are_found_through_the_fast_path(engine):
    """The fast path rejects what it must (else the comparison above is on valid streams only)."""
    profile = load_profile("agent-stream/1")
    seen = set()
    for defect in ("confidence-out-of-range", "unknown-type", "empty-chunk", "seq-as-string"):
        stamper = Stamper(defect)
        events = [stamper.stamp(e) for e in plan(Request("q", "all", 0.0), "sse", defect)]
        seen |= {f.rule for f in validate_stream(events, profile)}
    assert {"SCHEMA-EVENT", "SCHEMA-TYPE-KNOWN", "SCHEMA-ENVELOPE"} <= seen


TEXTS = ['{"a": 1}', '[1, 2.5, -0, 1e400, -1e400]', '123456789012345678901234567890',
         '{"n": [18446744073709551616, -9223372036854775809, 9223372036854775807]}', '"\\ud800"',
         '"\\ud83d\\ude00"', 'NaN', '[Infinity]', '-Infinity', '{"a": 1,}', "\ufeff{}", '{"a": 1, "a": 2}',
         ' \n{"x": "y"} \t', '"\x01"', '', '[' * 3000 + ']' * 3000, '1.7976931348623157e308', '5e-324',
         '0.1', '{"ts": 1764636000.123456}', '{"k": "\u00e9\u4e2d"}', 'true', 'null', '01', '1.', '.5',
         '{"id": "12345678901234567890123", "n": 1e20}', '[{"deep": [[-18446744073709551617]]}, "\u00e9"]',
         '{"s": "\ud800", "n": 123456789012345678901}', '9223372036854775808', '-9223372036854775808', '-9223372036854775809', '1e20']


@pytest.mark.parametrize("text", TEXTS)
def test_json_decoding_matches_the_standard_library(text):
    def no_constant(name):
        raise ValueError(name)

    def outcome(fn):
        try:
            return "ok", repr(fn(text))  # repr: 1 and 1.0 differ, nan compares unequal
        except (ValueError, RecursionError) as exc:
            return "error", type(exc).__name__

    assert outcome(fastschema.loads) == outcome(lambda t: json.loads(t, parse_constant=no_constant))


def test_assembler_reads_fields_as_httpx_sse_does():
    """The assembler interprets fields on bytes; the reference reads decoded text."""
    from httpx_sse._decoders import SSEDecoder

    lines = [b"data: a", b"data:b", b"data:  c", b"data", b"id: 7", b"id: x\x00y", b"event: e", b"event:",
             b"retry: 15", b"retry: x", b"retry: +20", b"retry:  3 ", b": comment", b"unknown: z", b"data: \xff\xfe",
             b"data: \xe2\x82", b"id:", b"data:\xc3\xa9:x", b"dat", b":"]
    import random

    rng = random.Random(7)
    for _ in range(400):
        block = [rng.choice(lines) for _ in range(rng.randint(1, 6))]
        asm, dec = MessageAssembler(10_000), SSEDecoder()
        got = None
        for content in block + [b""]:
            got = asm.feed_line(Line(content, "LF"))
            want = dec.decode(content.decode("utf-8", errors="replace"))
        has_data = any(c.decode("utf-8", "replace").partition(":")[0] == "data" for c in block)
        assert (got is not None) == has_data
        if got is not None:
            assert got.data == want.data and got.retry == want.retry
            own_ids = [c for c in block if c.partition(b":")[0] == b"id" and b"\x00" not in c]
            assert got.id == (want.id if own_ids else None)
            own_event = any(c.partition(b":")[0] == b"event" for c in block)
            assert got.event == (want.event if own_event else None)
