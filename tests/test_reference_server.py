"""The reference server over real sockets: vocabulary, reflection, parity, rejections,
large questions, cancel, disconnect, metrics, drawn questions and the sandbox.

Every stream is recorded with the project's own recorders and judged by the
project's own validator, so these tests also show that the suite accepts the
reference server.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from conformance.profile import load_profile
from conformance.wire import record_sse, record_ws, ws_url
from conformance.recording import Limits, Recording
from conformance.validate import validate_stream
from reference_server.app import create_app
from reference_server.datasets import DATA_DIR, load_frames
from reference_server.embedded import EmbeddedServer
from reference_server.agent import agent_events
from reference_server.datasets import TABLES
from reference_server.params import StreamRequest
from reference_server.planner import AGG_LABELS, Plan, render_code
from reference_server.sandbox import UnsafeCode, run_code
from reference_server.stream import StopSignal, paced_events
from stub_servers import read_head

SSE = "/agent/stream"
WS = "/ws/agent/stream"
LIMITS = Limits(connect=5, first_event=10, idle=10, total=30, end_grace=2)
END = ("stream_end",)
VOCABULARY = {
    "start", "progress", "chain_of_thought", "code_chunk", "code_generated", "reflection_chunk",
    "reflection", "verification", "data_ready", "analysis_chunk", "complete", "stream_end",
}
PROFILE = load_profile()


def sse(base: str, **params: str) -> Recording:
    return record_sse(base + SSE, params=params, limits=LIMITS, end_types=END)


def ws(base: str, **params: str) -> Recording:
    return record_ws(base + WS, params=params, limits=LIMITS, end_types=END)


def types(rec: Recording) -> list[str | None]:
    return [e.type for e in rec.events]


def of_type(rec: Recording, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in rec.events if e.type == kind]


def without_ts(rec: Recording) -> list[Any]:
    return [{k: v for k, v in e.data.items() if k != "ts"} for e in rec.events]


def assert_valid(rec: Recording) -> None:
    assert rec.ok, rec.error
    findings = validate_stream(rec.objects, PROFILE)
    assert findings == [], [str(f) for f in findings]


def metrics(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def active(base: str) -> float:
    return metrics(base)["agent_active_streams"]


def raw_request(base: str, target: str, *, upgrade: bool = False, timeout: float = 5.0) -> bytes:
    """Send one raw GET (the request line as given) and return the response head."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
    if upgrade:
        head += (
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        )
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendall((head + "\r\n").encode("latin-1"))
        except OSError:
            pass  # the server may answer and close before it has read everything
        return read_head(sock)


def recv_until_closed(conn: Any, timeout: float) -> list[Any]:
    """Every JSON message until the server closes (each read bounded by ``timeout``)."""
    got = []
    try:
        while True:
            got.append(json.loads(conn.recv(timeout=timeout)))
    except ConnectionClosed:
        pass
    return got


def status_of(head: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    assert match, f"no HTTP status line in {head[:200]!r}"
    return int(match.group(1))


# --- the whole vocabulary, reflection, real numbers ----------------------------------


def test_sse_stream_has_whole_vocabulary_and_binding(reference_url: str) -> None:
    rec = sse(reference_url, question="incidents by region")
    assert_valid(rec)
    assert rec.status == 200
    assert (rec.header("content-type") or "").startswith("text/event-stream")
    assert "no-cache" in (rec.header("cache-control") or "")
    assert rec.header("x-accel-buffering") == "no"
    assert VOCABULARY <= set(types(rec)), VOCABULARY - set(types(rec))
    stages = {e["stage"] for e in of_type(rec, "progress")}
    assert {"router", "planner", "coder", "executor", "verifier", "analyst"} <= stages
    for event in rec.events:
        assert event.detail.event is None and event.detail.data_lines == 1
        assert event.detail.id == str(event.data["seq"])
        assert isinstance(event.data["ts"], float)
    assert 60 <= len(rec.events) <= 200


def test_reflection_path_really_fails_then_recovers(reference_url: str) -> None:
    rec = sse(reference_url, question="How many incidents by region?", dataset="incidents")
    assert_valid(rec)
    chunks = of_type(rec, "reflection_chunk")
    (reflection,) = of_type(rec, "reflection")
    assert chunks and reflection["content"] == "".join(c["chunk"] for c in chunks)
    assert "KeyError" in reflection["error"] and "region" in reflection["error"]
    first, second = of_type(rec, "code_generated")
    assert "groupby('region')" in first["code"] and "groupby('service')" in second["code"]
    # each code_generated equals the concatenation of the code_chunks before it
    t = types(rec)
    cut = t.index("code_generated")
    assert "".join(e.data["chunk"] for e in rec.events[:cut] if e.type == "code_chunk") == first["code"]
    # the corrected attempt's numbers are the data's numbers
    counts = load_frames()["incidents"].groupby("service").size().sort_values(ascending=False)
    (ready,) = of_type(rec, "data_ready")
    assert {r["service"]: r["incidents"] for r in ready["data"]["rows"]} == counts.to_dict()
    (complete,) = of_type(rec, "complete")
    assert complete["data"]["attempts"] == 2 and complete["data"]["rows"] == len(counts)
    assert "`region`" in complete["data"]["analysis"]
    assert complete["data"]["code"] == second["code"]


def test_no_reflection_when_the_column_exists(reference_url: str) -> None:
    rec = sse(reference_url, question="incidents by severity", dataset="incidents")
    assert_valid(rec)
    assert "reflection" not in types(rec) and len(of_type(rec, "code_generated")) == 1


def test_results_chart_and_analysis_come_from_the_data(reference_url: str) -> None:
    rec = sse(reference_url, question="average duration by team", dataset="incidents")
    assert_valid(rec)
    expected = load_frames()["incidents"].groupby("team")["duration_minutes"].mean().round(1)
    (ready,) = of_type(rec, "data_ready")
    rows = ready["data"]["rows"]
    assert {r["team"]: r["mean_duration_minutes"] for r in rows} == pytest.approx(expected.to_dict())
    assert ready["data"]["columns"] == ["team", "mean_duration_minutes"]
    chart = ready["data"]["chart"]
    assert chart["$schema"].endswith("/vega-lite/v5.json") and chart["data"]["values"] == rows
    assert chart["encoding"]["y"]["field"] == "mean_duration_minutes"
    analysis = of_type(rec, "complete")[0]["data"]["analysis"]
    assert analysis == "".join(c["chunk"] for c in of_type(rec, "analysis_chunk"))
    top = expected.idxmax()
    assert f"**{top}**" in analysis and f"{expected.max():g}" in analysis
    (verification,) = of_type(rec, "verification")
    assert 0 <= verification["confidence"] <= 1


def test_dataset_all_joins_both_tables(reference_url: str) -> None:
    rec = sse(reference_url, question="incidents compared with deployments per service")
    assert_valid(rec)
    frames = load_frames()
    rows = of_type(rec, "data_ready")[0]["data"]["rows"]
    inc = frames["incidents"].groupby("service").size()
    dep = frames["deployments"].groupby("service").size()
    for row in rows:
        assert row["incidents"] == inc[row["service"]] and row["deployments"] == dep[row["service"]]
        assert row["incidents_per_deployment"] == pytest.approx(round(inc[row["service"]] / dep[row["service"]], 2))


# --- parity and determinism ----------------------------------------------------------

PARITY_QUESTIONS = [
    ("incidents by region", "all"),
    ("monthly trend of incidents", "incidents"),
    ("deployment failure rate by team", "deployments"),
    ("top 3 services by total customers affected", "all"),
]


@pytest.mark.parametrize(("question", "dataset"), PARITY_QUESTIONS)
def test_sse_and_ws_send_the_same_events(reference_url: str, question: str, dataset: str) -> None:
    over_sse = sse(reference_url, question=question, dataset=dataset)
    over_ws = ws(reference_url, question=question, dataset=dataset)
    assert_valid(over_sse)
    assert_valid(over_ws)
    assert over_ws.detail.close_code == 1000
    assert all(e.detail.kind == "text" for e in over_ws.events)
    assert without_ts(over_sse) == without_ts(over_ws)


def test_permessage_deflate_changes_nothing(reference_url: str) -> None:
    plain = ws(reference_url, question="incidents by root cause")
    deflated = record_ws(
        reference_url + WS, params={"question": "incidents by root cause"}, compression=True, limits=LIMITS, end_types=END
    )
    assert_valid(deflated)
    assert any("permessage-deflate" in x for x in deflated.detail.extensions)
    assert without_ts(deflated) == without_ts(plain)
    assert deflated.bytes_received < plain.bytes_received


def test_same_request_gives_same_events(reference_url: str) -> None:
    assert without_ts(ws(reference_url, question="weekly deployments")) == without_ts(
        ws(reference_url, question="weekly deployments")
    )


# --- rejections and large requests ---------------------------------------------------

BAD_REQUESTS = [
    pytest.param({}, "question", id="missing"),
    pytest.param({"question": ""}, "question", id="empty"),
    pytest.param({"question": " \t\n "}, "question", id="blank"),
    pytest.param({"question": "x" * 2001}, "question", id="2001-chars"),
    pytest.param({"question": "incidents", "dataset": "nope"}, "dataset", id="unknown-dataset"),
    pytest.param({"question": "incidents", "dataset": ""}, "dataset", id="empty-dataset"),
]


@pytest.mark.parametrize(("params", "param"), BAD_REQUESTS)
def test_bad_request_rejected_over_sse(reference_url: str, params: dict[str, str], param: str) -> None:
    rec = sse(reference_url, **params)
    assert rec.status == 422 and not rec.events
    assert (rec.header("content-type") or "").startswith("application/json")
    body = json.loads(rec.body or b"")
    assert body["error"] == "invalid_request" and body["param"] == param and body["message"]


@pytest.mark.parametrize(("params", "param"), BAD_REQUESTS)
def test_bad_request_rejected_over_ws(reference_url: str, params: dict[str, str], param: str) -> None:
    rec = ws(reference_url, **params)
    assert rec.detail.close_code == 1008
    (event,) = rec.objects
    assert event["type"] == "error" and event["code"] == "invalid_request" and event["param"] == param
    assert "seq" not in event


FOUR_BYTE_QUESTION = "\U0001f600" * 2000  # about 24 KB once percent-encoded


def test_2000_four_byte_characters_accepted_on_both(reference_url: str) -> None:
    assert len(ws_url(reference_url + WS, {"question": FOUR_BYTE_QUESTION})) > 24_000
    for rec in (sse(reference_url, question=FOUR_BYTE_QUESTION), ws(reference_url, question=FOUR_BYTE_QUESTION)):
        assert_valid(rec)
        assert rec.objects[0]["question"] == FOUR_BYTE_QUESTION
        assert rec.objects[-2]["type"] == "complete"


def test_2001_four_byte_characters_rejected_on_both(reference_url: str) -> None:
    assert sse(reference_url, question=FOUR_BYTE_QUESTION + "\U0001f600").status == 422
    assert ws(reference_url, question=FOUR_BYTE_QUESTION + "\U0001f600").detail.close_code == 1008


@pytest.mark.parametrize("size", [70_000, 300_000])
def test_huge_request_line_gets_a_clean_4xx(reference_url: str, size: int) -> None:
    target = "?question=" + "a" * size
    for path, upgrade in ((SSE, False), (WS, True)):
        status = status_of(raw_request(reference_url, path + target, upgrade=upgrade))
        assert 400 <= status < 500, (path, status)
    assert json.loads(urllib.request.urlopen(reference_url + "/health", timeout=5).read()) == {"status": "ok"}


@pytest.mark.parametrize(
    "query",
    ["question=%ED%A0%80", "question=%00%01%1f", "question=%FF%FE%FD", "question=a&dataset=%ED%A0%80", "question=%C0%80"],
)
def test_odd_percent_encodings_never_5xx(reference_url: str, query: str) -> None:
    for path, upgrade in ((SSE, False), (WS, True)):
        status = status_of(raw_request(reference_url, f"{path}?{query}", upgrade=upgrade))
        assert status in ((101,) if upgrade else (200, 422)), (path, query, status)


def test_last_event_id_gets_204_and_no_run(reference_url: str) -> None:
    before = metrics(reference_url)['agent_streams_started_total{transport="sse"}']
    rec = record_sse(reference_url + SSE, params={"question": "incidents"}, last_event_id="7", limits=LIMITS)
    assert rec.status == 204 and not rec.events
    assert metrics(reference_url)['agent_streams_started_total{transport="sse"}'] == before


# --- cancel ---------------------------------------------------------------------------


def test_ws_cancel_ends_with_cancelled_error(reference_url: str) -> None:
    rec = record_ws(reference_url + WS, params={"question": "incidents by region"}, cancel_after=3, limits=LIMITS)
    assert_valid(rec)
    assert rec.detail.close_code == 1000
    assert [e["type"] for e in rec.objects[-2:]] == ["error", "stream_end"]
    assert rec.objects[-2]["code"] == "cancelled"
    assert "complete" not in types(rec)


def test_ws_cancel_right_after_connect(slow_url: str) -> None:
    with ws_connect(ws_url(slow_url + WS, {"question": "incidents by region"}), open_timeout=5) as conn:
        conn.send(json.dumps({"type": "cancel"}))
        got = recv_until_closed(conn, timeout=5)
        assert conn.close_code == 1000
    assert got[0]["type"] == "start" and [e["type"] for e in got[-2:]] == ["error", "stream_end"]
    assert got[-2]["code"] == "cancelled" and len(got) < 10
    assert [e["seq"] for e in got] == list(range(len(got)))


def test_cancel_before_the_first_event_sends_start_first() -> None:
    """Sans-I/O: a cancel already set when the stream begins still gives start, error, stream_end."""

    async def run() -> list[dict[str, Any]]:
        stop = StopSignal()
        stop.stop("cancel")
        return [e async for e in paced_events(StreamRequest("incidents by region"), 0.0, stop)]

    events = asyncio.run(run())
    assert [e["type"] for e in events] == ["start", "error", "stream_end"]
    assert events[1]["code"] == "cancelled" and [e["seq"] for e in events] == [0, 1, 2]


def test_cancel_after_complete_still_ends_with_stream_end_only() -> None:
    """Sans-I/O: a cancel that comes once ``complete`` is out changes nothing."""

    async def run() -> list[dict[str, Any]]:
        stop = StopSignal()
        out = []
        async for event in paced_events(StreamRequest("incidents by region"), 0.0, stop):
            out.append(event)
            if event["type"] == "complete":
                stop.stop("cancel")
        return out

    events = asyncio.run(run())
    assert [e["type"] for e in events[-2:]] == ["complete", "stream_end"]
    assert "error" not in [e["type"] for e in events]


def test_disconnect_stops_without_more_events() -> None:
    async def run() -> list[dict[str, Any]]:
        stop = StopSignal()
        out = []
        async for event in paced_events(StreamRequest("incidents by region"), 0.0, stop):
            out.append(event)
            if len(out) == 4:
                stop.stop("disconnect")
        return out

    assert len(asyncio.run(run())) == 4


def test_ws_cancel_after_complete_changes_nothing(reference_url: str) -> None:
    url = ws_url(reference_url + WS, {"question": "incidents by severity"})
    with ws_connect(url, open_timeout=5) as conn:
        got = []
        while not got or got[-1]["type"] != "complete":
            got.append(json.loads(conn.recv(timeout=10)))
        try:  # the server may already have closed: then the cancel is moot anyway
            conn.send(json.dumps({"type": "cancel"}))
            conn.send("not json, ignored")
        except ConnectionClosed:
            pass
        got.append(json.loads(conn.recv(timeout=10)))
        with pytest.raises(ConnectionClosed):
            conn.recv(timeout=5)
        assert conn.close_code == 1000
    assert got[-1]["type"] == "stream_end" and "error" not in [e["type"] for e in got]


def test_ws_odd_client_messages_are_ignored(reference_url: str) -> None:
    url = ws_url(reference_url + WS, {"question": "incidents by team"})
    with ws_connect(url, open_timeout=5, max_size=None) as conn:
        for message in ("[" * 30_000 + "]" * 30_000, '{"type": "CANCEL"}', "[]", b"\x00\xff", '"cancel"'):
            conn.send(message)
        got = recv_until_closed(conn, timeout=10)
        assert conn.close_code == 1000
    assert [e["type"] for e in got[-2:]] == ["complete", "stream_end"]
    assert validate_stream(got, PROFILE) == []


# --- disconnect and metrics -----------------------------------------------------------


@pytest.fixture(scope="module")
def slow_url() -> Iterator[str]:
    """A server whose streams last several seconds (50 ms per chunk event)."""
    with EmbeddedServer(pace_ms=50) as server:
        yield server.base_url


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_client_leaving_frees_the_stream_within_one_second(slow_url: str, transport: str) -> None:
    key = f'agent_streams_cancelled_total{{transport="{transport}"}}'
    before = metrics(slow_url)[key]
    recorder = record_sse if transport == "sse" else record_ws
    path = SSE if transport == "sse" else WS
    t0 = time.perf_counter()
    rec = recorder(slow_url + path, params={"question": "incidents by region"}, close_after=5, limits=LIMITS)
    assert len(rec.events) == 5 and rec.client_closed
    left = time.perf_counter()
    # the stream would have run on: 5 events took this long, ~80 paced events remain
    assert rec.events[-1].data["type"] != "stream_end"
    while active(slow_url) != 0 and time.perf_counter() - left < 1.0:
        time.sleep(0.02)
    assert active(slow_url) == 0, f"still active {time.perf_counter() - left:.2f} s after the client left"
    assert metrics(slow_url)[key] == before + 1
    assert time.perf_counter() - t0 < 5


def test_clients_dropping_a_fast_stream_leave_no_open_stream(reference_url: str) -> None:
    """Clients that read part of a stream and drop the connection (the server is
    then usually parked at a ``yield``, not at an ``await``) still release it."""
    host, port = reference_url.removeprefix("http://").rsplit(":", 1)
    for wanted in (300, 2000, 6000, 300, 2000, 6000):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"GET {SSE}?question=incidents%20by%20region HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            got = b""
            while len(got) < wanted:
                chunk = sock.recv(wanted - len(got))
                if not chunk:
                    break
                got += chunk
    left = time.perf_counter()
    while active(reference_url) != 0 and time.perf_counter() - left < 1.0:
        time.sleep(0.02)
    assert active(reference_url) == 0


def test_metrics_count_streams_and_events(reference_url: str) -> None:
    before = metrics(reference_url)
    over_sse = sse(reference_url, question="incidents by status")
    over_ws = ws(reference_url, question="incidents by status")
    sse(reference_url, question="")
    after = metrics(reference_url)
    for transport, rec in (("sse", over_sse), ("ws", over_ws)):
        label = f'{{transport="{transport}"}}'
        assert after[f"agent_streams_started_total{label}"] - before[f"agent_streams_started_total{label}"] == 1
        assert after[f"agent_streams_completed_total{label}"] - before[f"agent_streams_completed_total{label}"] == 1
        assert after[f"agent_events_sent_total{label}"] - before[f"agent_events_sent_total{label}"] == len(rec.events)
    label = '{transport="sse"}'
    assert after[f"agent_streams_rejected_total{label}"] - before[f"agent_streams_rejected_total{label}"] == 1
    assert after["agent_active_streams"] == 0


def test_two_apps_in_one_process_have_separate_metrics() -> None:
    first, second = create_app(pace_ms=0), create_app(pace_ms=0)
    first.state.metrics.started.labels(transport="sse").inc()
    assert b'agent_streams_started_total{transport="sse"} 1.0' in first.state.metrics.render()
    assert b'agent_streams_started_total{transport="sse"} 0.0' in second.state.metrics.render()


def test_health_and_datasets(reference_url: str) -> None:
    assert json.loads(urllib.request.urlopen(reference_url + "/health", timeout=5).read()) == {"status": "ok"}
    catalogue = json.loads(urllib.request.urlopen(reference_url + "/datasets", timeout=5).read())
    by_name = {d["name"]: d for d in catalogue}
    for name in ("incidents", "deployments"):
        frame = pd.read_csv(DATA_DIR / f"{name}.csv")
        assert by_name[name]["rows"] == len(frame) and by_name[name]["columns"] == list(frame.columns)
        assert 200 <= len(frame) <= 1000


# --- drawn questions, security --------------------------------------------------------

QUESTIONS = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60) | st.sampled_from(
    ["incidents by region", " \x00\x7f\u2028\u0085 ", "a" * 2000, "\U0001f600" * 1999 + "é", "é" * 2001]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=QUESTIONS, dataset=st.sampled_from(["all", "incidents", "deployments"]))
def test_drawn_questions_never_break_the_protocol(reference_url: str, question: str, dataset: str) -> None:
    accepted = 1 <= len(question.strip()) <= 2000
    over_sse = sse(reference_url, question=question, dataset=dataset)
    over_ws = ws(reference_url, question=question, dataset=dataset)
    assert over_sse.status is not None and over_sse.status < 500
    if accepted:
        assert over_sse.status == 200 and over_ws.detail.close_code == 1000
        assert_valid(over_sse)
        assert_valid(over_ws)
        assert over_sse.objects[0]["question"] == question.strip()
        assert without_ts(over_sse) == without_ts(over_ws)
    else:
        assert over_sse.status == 422 and over_ws.detail.close_code == 1008 and len(over_ws.events) == 1


HOSTILE = [
    "__import__('os').system('touch /tmp/pwned')",
    "open('/etc/passwd').read()",
    "incidents by __builtins__",
    "incidents by x'); import os; os.system('id'); ('",
    "eval(compile('1', 'x', 'exec')) per exec",
]


@pytest.mark.parametrize("question", HOSTILE)
def test_hostile_questions_are_only_data(reference_url: str, question: str) -> None:
    rec = sse(reference_url, question=question)
    assert_valid(rec)
    assert of_type(rec, "complete")
    assert rec.objects[0]["question"] == question
    for code in (e["code"] for e in of_type(rec, "code_generated")):
        assert "import" not in code and "open(" not in code and "system" not in code and "eval" not in code
        assert question not in code
        # every string literal in the code is an identifier-shaped word or a fixed format
        for literal in re.findall(r"'([^']*)'", code):
            assert re.fullmatch(r"[a-z_][a-z0-9_]{0,40}|%Y-%m-%d|M|W", literal), literal


@pytest.mark.parametrize(
    "code",
    ["import os", "result = open('/etc/passwd')", "result = ().__class__", "result = __import__('os')", "result = eval('1')"],
)
def test_sandbox_refuses_escapes(code: str) -> None:
    with pytest.raises(UnsafeCode):
        run_code(code, {"incidents": load_frames()["incidents"]})


@pytest.mark.parametrize(
    "code",
    ["result = pd.io.common.os.getcwd()", "result = pd.read_csv('/etc/passwd')", "result = incidents.to_pickle",
     "result = pd.read_pickle", "result = incidents.query('service == service')"],
)
def test_sandbox_refuses_what_pandas_reaches_beyond_the_frames(code: str) -> None:
    with pytest.raises(UnsafeCode):
        run_code(code, {"incidents": load_frames()["incidents"]})


def _every_template() -> list[Plan]:
    plans = [Plan("deployments", "rate", group="team", top=3), Plan("joined", "joined", group="team", top=3)]
    for target, info in TABLES.items():
        plans += [Plan(target, "count", group="team"), Plan(target, "count", group="service", top=3)]
        for period in ("month", "week"):
            plans.append(Plan(target, "trend", period=period))
            plans += [Plan(target, "trend", period=period, metric=info.numeric[0], agg=agg) for agg in AGG_LABELS]
        plans += [Plan(target, "aggregate", group="team", metric=m, agg=agg, top=3)
                  for m in info.numeric for agg in AGG_LABELS]
    return plans


def test_every_code_template_runs_in_the_sandbox() -> None:
    """The sandbox's attribute allow-list covers every template the planner can render."""
    frames = dict(load_frames())
    for plan in _every_template():
        result = run_code(render_code(plan, plan.group), frames)
        assert not result.empty and plan.value_column in result.columns, plan


def test_rate_question_grouping_by_a_name_the_code_defines_still_reflects() -> None:
    """'by failed': the first attempt must fail on the missing column (it once
    grouped by a column the code itself had added, and the run ended in error)."""
    events = list(agent_events(StreamRequest("deployment failure rate by failed", "deployments")))
    kinds = [e["type"] for e in events]
    assert "error" not in kinds and kinds[-1] == "complete", [e for e in events if e["type"] == "error"]
    (reflection,) = [e for e in events if e["type"] == "reflection"]
    assert reflection["error"] == "KeyError: 'failed'"
    assert events[-1]["data"]["attempts"] == 2


def test_non_finite_pace_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An infinite pace made every stream stall after two events; NaN silently meant 0."""
    from reference_server import __main__ as cli

    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="pace_ms"):
            create_app(pace_ms=bad)

    def never(**_: Any) -> None:
        raise AssertionError("the server was started with a bad --pace-ms")

    monkeypatch.setattr(cli, "run", never)
    for bad in ("inf", "nan", "-1"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["--pace-ms", bad])
        assert exit_info.value.code == 2


def test_sandbox_has_no_dangerous_builtins() -> None:
    with pytest.raises(NameError):
        run_code("result = print('x')", {})


def test_bundled_data_are_what_make_data_writes() -> None:
    import numpy as np

    from reference_server import make_data

    rng = np.random.default_rng(make_data.SEED)
    incidents, deployments = make_data._incidents(rng), make_data._deployments(rng)
    assert incidents.to_csv(index=False, lineterminator="\n") == (DATA_DIR / "incidents.csv").read_text()
    assert deployments.to_csv(index=False, lineterminator="\n") == (DATA_DIR / "deployments.csv").read_text()


def test_server_logged_no_traceback(reference_server: EmbeddedServer) -> None:
    """Clients leaving mid-stream and bad requests leave no traceback in the log
    (FastAPI once logged 'Exception in ASGI application' on SSE disconnects). The
    test makes those requests itself, so it proves something in any order; run
    last, it also covers everything above."""
    base = reference_server.base_url
    question = {"question": "incidents by region"}
    for close_after in (1, 3):
        assert len(record_sse(base + SSE, params=question, close_after=close_after).events) == close_after
        assert len(record_ws(base + WS, params=question, close_after=close_after).events) == close_after
    assert record_sse(base + SSE, params={"question": ""}).status == 422
    assert record_ws(base + WS, params={"dataset": "nope", "question": "x"}).detail.close_code == 1008
    deadline = time.monotonic() + 2.0
    while active(base) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert active(base) == 0
    log = reference_server.stderr_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
