"""Strict and structural parity between two streams (PROTOCOL section 6)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.parity import (
    Divergence,
    field_differences,
    is_deterministic,
    same_json,
    strict_divergence,
    structural_divergence,
    structure,
    strip_volatile,
)
from conformance.profile import load_profile

PROFILE = load_profile("agent-stream/1")


def ev(etype: str, **fields: Any) -> dict[str, Any]:
    return {"type": etype, **fields}


def stream(ts0: float = 1_790_000_000.0) -> list[dict[str, Any]]:
    events = [
        ev("start", message="Analysing"),
        ev("progress", stage="coder", message="writing code"),
        ev("code_chunk", chunk="df = "),
        ev("code_chunk", chunk="load()"),
        ev("code_generated", code="df = load()"),
        ev("verification", confidence=0.9, checks={"rows": True}),
        ev("analysis_chunk", chunk="# A"),
        ev("analysis_chunk", chunk="nswer"),
        ev("complete", data={"analysis": "# Answer", "rows": [1, 2, 3]}),
        ev("stream_end"),
    ]
    return [{**e, "seq": i, "ts": ts0 + i * 0.01} for i, e in enumerate(events)]


# --- strict -------------------------------------------------------------------


def test_equal_streams_with_different_ts_are_in_parity() -> None:
    left, right = stream(), stream(ts0=1_800_000_000.5)
    assert left[0]["ts"] != right[0]["ts"]
    assert strict_divergence(left, right, PROFILE) is None
    assert is_deterministic(left, right, PROFILE)


def test_ts_present_on_one_side_only_is_ignored() -> None:
    left = stream()
    right = [{k: v for k, v in e.items() if k != "ts"} for e in stream()]
    assert strict_divergence(left, right, PROFILE) is None


def test_strip_volatile_leaves_the_event_alone() -> None:
    event = {"type": "start", "ts": 1.0, "seq": 0}
    assert strip_volatile(event, ("ts",)) == {"type": "start", "seq": 0}
    assert event == {"type": "start", "ts": 1.0, "seq": 0}
    assert strip_volatile("not a dict", ("ts",)) == "not a dict"


def test_differing_field_gives_its_pointer() -> None:
    left, right = stream(), stream()
    right[5]["confidence"] = 0.8
    d = strict_divergence(left, right, PROFILE)
    assert isinstance(d, Divergence)
    assert d.index == 5
    assert d.left_type == d.right_type == "verification"
    assert d.fields == [("/confidence", 0.9, 0.8)]
    assert (d.left_count, d.right_count) == (10, 10)


def test_nested_differences_are_pointed_at() -> None:
    left, right = stream(), stream()
    right[8]["data"]["rows"][1] = 20
    right[8]["data"]["extra"] = "x"
    d = strict_divergence(left, right, PROFILE)
    assert d is not None and d.index == 8
    assert ("/data/rows/1", 2, 20) in d.fields
    assert ("/data/extra", "<absent>", "x") in d.fields


def test_first_divergence_is_reported() -> None:
    left, right = stream(), stream()
    right[3]["chunk"] = "LOAD()"
    right[4]["code"] = "df = LOAD()"
    d = strict_divergence(left, right, PROFILE)
    assert d is not None and d.index == 3 and d.fields == [("/chunk", "load()", "LOAD()")]


def test_differing_type_is_reported() -> None:
    left, right = stream(), stream()
    right[1] = {**right[1], "type": "chain_of_thought", "content": "x"}
    d = strict_divergence(left, right, PROFILE)
    assert d is not None and (d.left_type, d.right_type) == ("progress", "chain_of_thought")
    assert ("/type", "progress", "chain_of_thought") in d.fields


@pytest.mark.parametrize("cut", [0, 4, 9])
def test_different_lengths(cut: int) -> None:
    full, short = stream(), stream()[:cut]
    d = strict_divergence(full, short, PROFILE)
    assert d is not None
    assert d.index == cut
    assert d.left_type == full[cut]["type"] and d.right_type is None
    assert (d.left_count, d.right_count) == (10, cut)
    assert d.fields == []
    back = strict_divergence(short, full, PROFILE)
    assert back is not None and back.index == cut and back.left_type is None


def test_true_is_not_one_but_one_is_one_point_zero() -> None:
    """JSON true and 1 differ although Python says True == 1; 1 and 1.0 are one number."""
    left, right = stream(), stream()
    right[5]["checks"] = {"rows": 1}
    d = strict_divergence(left, right, PROFILE)
    assert d is not None and d.fields == [("/checks/rows", True, 1)]
    left2, right2 = stream(), stream()
    left2[5]["confidence"], right2[5]["confidence"] = 1, 1.0
    assert strict_divergence(left2, right2, PROFILE) is None


def test_same_json() -> None:
    assert same_json({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not same_json([True], [1])
    assert not same_json({"a": 0}, {"a": False})
    assert not same_json({"a": 1}, {"a": 1, "b": 2})
    assert not same_json("1", 1)
    assert not same_json([1, 2], [1, 2, 3])


def test_field_differences_limit() -> None:
    a = {f"k{i}": i for i in range(10)}
    b = {f"k{i}": -i - 1 for i in range(10)}
    assert len(field_differences(a, b)) == 5
    assert len(field_differences(a, b, limit=2)) == 2
    assert field_differences([1, 2], [1, 2, 3]) == [("", [1, 2], [1, 2, 3])]


def test_unparsed_events_compare() -> None:
    """Recording.objects holds None where an event did not parse."""
    left, right = stream(), stream()
    right[2] = None
    d = strict_divergence(left, right, PROFILE)
    assert d is not None and d.index == 2 and d.right_type is None and d.right_count == 10
    assert "ws has <event without a type>" in d.describe()


# --- structural ---------------------------------------------------------------


def test_structure_merges_runs_of_one_chunk_type() -> None:
    assert structure(stream(), PROFILE) == [
        "start",
        "progress",
        "code_chunk",
        "code_generated",
        "verification",
        "analysis_chunk",
        "complete",
        "stream_end",
    ]
    # runs of different chunk types stay apart; non-chunk repeats are not merged
    events = [ev("start"), ev("progress"), ev("progress"), ev("analysis_chunk"), ev("code_chunk"), ev("code_chunk"), ev("analysis_chunk")]
    assert structure(events, PROFILE) == ["start", "progress", "progress", "analysis_chunk", "code_chunk", "analysis_chunk"]


def test_structural_parity_ignores_how_text_is_chunked() -> None:
    left = stream()
    right = copy.deepcopy(stream())
    # the same code in three chunks, the analysis in one, different words
    right[2:4] = [ev("code_chunk", chunk="d"), ev("code_chunk", chunk="f = l"), ev("code_chunk", chunk="oad()")]
    right[7:9] = [ev("analysis_chunk", chunk="Other text")]
    right[-2]["data"] = {"analysis": "Other text"}
    assert strict_divergence(left, right, PROFILE) is not None
    assert structural_divergence(left, right, PROFILE) is None


def test_structural_divergence() -> None:
    left = stream()
    right = stream()
    del right[1]  # no progress
    d = structural_divergence(left, right, PROFILE)
    assert d is not None and d.index == 1
    assert (d.left_type, d.right_type) == ("progress", "code_chunk")
    assert (d.left_count, d.right_count) == (8, 7)


def test_structural_different_lengths() -> None:
    left = stream()
    right = stream()[:-1]
    d = structural_divergence(left, right, PROFILE)
    assert d is not None and d.index == 7 and d.left_type == "stream_end" and d.right_type is None


def test_structural_interleaving_matters() -> None:
    left = [ev("start"), ev("code_chunk", chunk="a"), ev("code_chunk", chunk="b"), ev("code_generated", code="ab")]
    right = [ev("start"), ev("code_chunk", chunk="a"), ev("progress"), ev("code_chunk", chunk="b"), ev("code_generated", code="ab")]
    d = structural_divergence(left, right, PROFILE)
    assert d is not None and d.index == 2 and (d.left_type, d.right_type) == ("code_generated", "progress")


# --- describe -----------------------------------------------------------------


def test_describe_is_readable() -> None:
    left, right = stream(), stream()
    right[5]["confidence"] = 0.8
    right[5]["checks"] = {"rows": False}
    text = strict_divergence(left, right, PROFILE).describe()
    lines = text.splitlines()
    assert lines[0] == "first divergence at event 5: sse has 'verification', ws has 'verification' (sse: 10 events, ws: 10)"
    assert "  /checks/rows: sse=true ws=false" in lines
    assert "  /confidence: sse=0.9 ws=0.8" in lines


def test_describe_end_of_stream_and_names() -> None:
    d = strict_divergence(stream(), stream()[:3], PROFILE, names=("first run", "second run"))
    assert d is not None
    assert d.describe() == (
        "first divergence at event 3: first run has 'code_chunk', second run has <end of stream> (first run: 10 events, second run: 3)"
    )


def test_describe_cuts_long_values() -> None:
    left, right = stream(), stream()
    right[4]["code"] = "x" * 500
    text = strict_divergence(left, right, PROFILE).describe()
    assert len(max(text.splitlines(), key=len)) < 200
    assert "..." in text
