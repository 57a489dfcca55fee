"""The load scenarios (load/): figures from recordings, exact merges, and real Locust runs.

The unit tests build Recording objects by hand and check the pure core
(load.metrics, load.config, load.results). The integration tests run Locust
headless in a subprocess against real servers on 127.0.0.1: the reference server
(event counts must match its own /metrics counters), a master with two workers
(the merged counts must be the sum of what each worker recorded), a raw socket
server whose stream breaks a rule (the failure must carry the rule ID) and whose
exact bytes are known (the byte figures must match them), and a counting relay
in front of the reference server (the byte totals must match the bytes that
crossed the relay).
"""

from __future__ import annotations

import copy
import csv
import glob
import json
import os
import socket
import subprocess
import sys
import threading
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hdrh.histogram import HdrHistogram
from prometheus_client.parser import text_string_to_metric_families

from conformance.contracts import RECORDED, ErrorKind
from conformance.profile import Profile, check_profile, load_profile
from conformance.recording import RecordedEvent, Recording, SSEDetail, SSEEventDetail, WSDetail, WSFrameDetail
from conformance.request import Request
from load.config import (ConfigError, LoadConfig, check_against_profile, check_loopback, load_config, parse_steps,
                         questions_for)
from load.metrics import (
    CpuStats,
    MetricAccumulator,
    RunAccumulator,
    TransportAccumulator,
    cpu_verdict,
    fine_bucket,
    merge_runs,
    stream_figures,
)
from load.pipeline import judge, request_for
from load.results import build_summary, ordered, write_results
from reference_server.embedded import EmbeddedServer
from stub_servers import SSE_HEAD, CountingRelay, RawServer, chunk, read_head, wait_closed

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "load" / "locustfile.py")
SWEEPFILE = str(ROOT / "load" / "sweep.py")  # also run by `python -m load --sweep`


# --------------------------------------------------------------------------- hand-made recordings


def make_recording(
    transport: str = "sse",
    *,
    n: int = 4,
    t0: float = 100.0,
    gap: float = 0.010,
    delivery: float = 0.002,
    seq_gap_at: int | None = None,
    with_ts: bool = True,
    error_kind: str | None = None,
    status: int | None = None,
) -> Recording:
    """A stream of n valid events (start, progress..., complete, stream_end) with chosen timings."""
    rec = Recording(request=Request(transport, "http://127.0.0.1:1/x"), detail=SSEDetail() if transport == "sse" else WSDetail())
    rec.status = status if status is not None else (200 if transport == "sse" else 101)
    if transport == "sse":
        rec.response_headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                                ("X-Accel-Buffering", "no")]
    rec.wall_start = 1_000_000.0
    rec.t_start = t0
    rec.t_headers = t0 + 0.001
    types = ["start"] + ["progress"] * (n - 3) + ["complete", "stream_end"]
    for i, etype in enumerate(types):
        obj: dict[str, Any] = {"type": etype, "seq": i + (1 if seq_gap_at is not None and i >= seq_gap_at else 0)}
        if etype == "progress":
            obj.update(stage="router", message="m")
        if etype == "complete":
            obj["data"] = {}
        t_perf = t0 + 0.005 + i * gap
        t_wall = rec.wall_start + (t_perf - t0)
        if with_ts:
            obj["ts"] = t_wall - delivery
        text = json.dumps(obj)
        raw = (f"data: {text}\n\n" if transport == "sse" else text).encode()
        detail = SSEEventDetail(data_lines=1) if transport == "sse" else WSFrameDetail()
        rec.events.append(RecordedEvent(index=i, raw=raw, text=text, data=obj, t_perf=t_perf, t_wall=t_wall,
                                        detail=detail))
    rec.t_first_event = rec.events[0].t_perf if rec.events else None
    rec.t_end = t0 + 0.005 + (n - 1) * gap + 0.001
    rec.head_bytes_received = 120
    rec.head_bytes_sent = 90
    framing = 8 if transport == "sse" else 2
    rec.bytes_received = rec.head_bytes_received + rec.payload_bytes + framing * n
    rec.bytes_sent = rec.head_bytes_sent + (0 if transport == "sse" else 8)
    if transport == "ws":
        rec.detail.close_code, rec.detail.close_frame_received = 1000, True
    rec.error_kind = error_kind
    rec.error = "boom" if error_kind else None
    return rec


PROFILE = load_profile()


def figures(rec: Recording, findings: Any = ()) -> Any:
    """``stream_figures`` as a load run of the bundled profile computes them (its timestamp field)."""
    return stream_figures(rec, findings, timestamp_field=PROFILE.timestamp_field)


def test_stream_figures_from_a_recording():
    rec = make_recording("sse", n=5, gap=0.010, delivery=0.002)
    fig = figures(rec)
    assert fig.ok and not fig.failed
    assert fig.connect_us == 1000
    assert fig.ttfe_us == 5000
    assert fig.gaps_us == [10_000] * 4
    assert fig.delivery_us == [2000] * 5
    assert fig.events == 5
    assert fig.duration_us == 5000 + 4 * 10_000 + 1000
    assert fig.events_per_s == pytest.approx(5 / 0.046)
    assert fig.payload == rec.payload_bytes
    assert fig.wire_in == rec.bytes_received and fig.head_in == 120
    assert fig.framing_per_event == pytest.approx(8.0)
    assert sum(fig.events_by_second.values()) == 5


def test_stream_figures_without_ts_has_no_delivery_and_clamps_clock_skew():
    assert figures(make_recording(with_ts=False)).delivery_us == []
    fig = figures(make_recording(delivery=-0.003))  # ts in the future: clocks differ
    assert fig.delivery_us == [0] * 4 and fig.delivery_negative == 4


def test_stream_figures_error_kinds():
    fig = figures(make_recording(error_kind="timeout"), findings=[_Finding("ORDER-SEQ")])
    assert fig.error_kind == "timeout" and fig.rules == []  # the transport error, not its echo
    assert fig.failure_message().startswith("timeout:")
    assert figures(make_recording(status=503)).error_kind == "status"
    not_a_stream = make_recording()
    not_a_stream.events, not_a_stream.body = [], b'{"ok": true}'
    not_a_stream.response_headers = [("Content-Type", "application/json")]
    fig = figures(not_a_stream)
    assert fig.error_kind == "status" and "application/json" in fig.error
    ws = make_recording("ws")
    ws.detail.close_code = 1011
    assert figures(ws).error_kind == "close"


class _Finding:
    def __init__(self, rule: str, level: str = "MUST") -> None:
        self.rule, self.level, self.message = rule, level, "x"


def test_violations_are_counted_by_rule_id():
    from conformance.profile import load_profile
    from conformance.validate import validate_stream

    rec = make_recording(n=5, seq_gap_at=2)
    findings = validate_stream(rec.objects, load_profile())
    fig = figures(rec, findings)
    assert fig.rules == ["ORDER-SEQ"] and fig.failed and fig.ok
    assert fig.failure_message() == "protocol violation ORDER-SEQ"
    acc = TransportAccumulator()
    acc.add_stream(fig)
    acc.add_stream(figures(make_recording(), [_Finding("SSE-ID-SEQ", "SHOULD")]))
    s = acc.summary()
    assert s["errors"]["rules"] == {"ORDER-SEQ": 1}
    assert s["errors"]["violations"] == 1 and s["errors"]["failed_streams"] == 1
    assert s["warnings"]["rules"] == {"SSE-ID-SEQ": 1}


def test_accumulator_summary_and_bytes():
    acc = TransportAccumulator()
    recs = [make_recording("ws", n=4, gap=0.001 * (i + 1)) for i in range(10)]
    for r in recs:
        acc.add_stream(figures(r))
    s = acc.summary()
    assert s["streams"] == 10 and s["events"] == 40
    assert s["metrics"]["gap"]["count"] == 30
    assert s["metrics"]["gap"]["min_ms"] == pytest.approx(1.0)
    assert s["metrics"]["gap"]["max_ms"] == pytest.approx(10.0)
    assert s["metrics"]["delivery"]["p50_ms"] == pytest.approx(2.0, rel=1e-3)
    assert s["metrics"]["events_per_stream"]["p99"] == 4
    wire_in = sum(r.bytes_received for r in recs)
    head_in = sum(r.head_bytes_received for r in recs)
    payload = sum(r.payload_bytes for r in recs)
    assert s["bytes"]["wire_in"] == wire_in and s["bytes"]["payload"] == payload
    assert s["bytes"]["per_event"]["wire"] == pytest.approx((wire_in - head_in) / 40, rel=1e-6)
    assert s["bytes"]["per_event"]["framing"] == pytest.approx(2.0, rel=1e-6)
    assert s["errors"]["failed_streams"] == 0
    # A failed stream adds bytes and errors but no timing figures.
    acc.add_stream(figures(make_recording("ws", error_kind="connect")))
    s2 = acc.summary()
    assert s2["errors"]["connect"] == 1 and s2["metrics"]["ttfe"]["count"] == 10


def test_percentiles_keep_microsecond_resolution():
    acc = MetricAccumulator()
    for v in range(1, 1001):  # 1 µs .. 1 ms
        acc.record(v)
    st = acc.stats(1000.0, "_ms")
    assert st["count"] == 1000
    assert st["p50_ms"] == pytest.approx(0.5, abs=0.001)
    assert st["p99_ms"] == pytest.approx(0.99, abs=0.001)
    assert st["min_ms"] == 0.001 and st["max_ms"] == 1.0 and st["mean_ms"] == pytest.approx(0.5005)


def test_recording_many_values_at_once_is_recording_each():
    import random

    rng = random.Random(7)
    cases = [[], [0] * 50, [rng.randint(0, 3_000) for _ in range(500)],
             [rng.choice([0, 0, 1, 17, 2**40, -5, 10**13]) for _ in range(300)], [1.6, 2.4, 3_000_000.5]]
    for values in cases:
        one, many = MetricAccumulator(), MetricAccumulator()
        one.record(11)
        many.record(11)
        for v in values:
            one.record(v)
        many.record_many(values)
        assert (many.count, many.total, many.min, many.max) == (one.count, one.total, one.min, one.max), values[:5]
        assert many.encode() == one.encode()


def test_merge_is_exact_and_survives_the_wire():
    a, b, both = RunAccumulator(), RunAccumulator(), RunAccumulator()
    for i in range(30):
        fig = figures(make_recording("sse" if i % 3 else "ws", n=4 + i % 5, gap=0.0003 * (i + 1),
                                            delivery=0.0001 * i))
        (a if i % 2 else b).add_stream(fig, level=1 if i < 15 else 10)
        both.add_stream(fig, level=1 if i < 15 else 10)
    shipped = [RunAccumulator.from_wire(json.loads(json.dumps(x.to_wire()))) for x in (a, b)]
    merged = merge_runs(shipped)
    assert merged.levels() == [1, 10]
    for t in ("sse", "ws"):
        m, ref = merged.total()[t], both.total()[t]
        assert m.summary() == ref.summary()
        for name, acc in ref.metrics.items():
            assert m.metrics[name].count == acc.count
            h = HdrHistogram.decode(m.metrics[name].encode().encode())
            assert h.get_total_count() == acc.count
            for q in (50, 90, 99, 99.9):
                assert h.get_value_at_percentile(q) == acc.hist.get_value_at_percentile(q)


def test_cpu_verdict():
    idle = CpuStats(node="w1")
    for _ in range(10):
        idle.add_sample(30.0, 40.0)
    busy = CpuStats(node="w2")
    for p in [99.0, 100.0, 97.0, 20.0, 30.0]:
        busy.add_sample(p, 60.0)
    assert cpu_verdict([idle])["saturated"] is False and cpu_verdict([idle])["warning"] is None
    v = cpu_verdict([idle, busy])
    assert v["saturated"] is True and "w2" in v["warning"] and "not trustworthy" in v["warning"]
    machine = CpuStats(node="local")
    for _ in range(5):
        machine.add_sample(50.0, 97.0)
    assert cpu_verdict([machine])["saturated"] is True


def test_summary_and_results_directory(tmp_path):
    run = RunAccumulator()
    for i in range(5):
        run.add_stream(figures(make_recording("sse", n=6)), level=2)
        run.add_stream(figures(make_recording("ws", n=6)), level=4)
    cpu = CpuStats()
    cpu.add_sample(10.0, 20.0)
    summary = write_results(tmp_path, run, config={"host": "http://127.0.0.1:1", "users": 4}, started_wall=1e6,
                            duration_s=2.0, cpu=[cpu], levels={2: (1e6, 1e6 + 1), 4: (1e6 + 1, 1e6 + 2)})
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary and summary["format"] == "agentstream-results/1"
    assert summary["transports"]["sse"]["run_events_per_s"] == 15.0
    assert [lv["users"] for lv in summary["levels"]] == [2, 4]
    level2 = json.loads((tmp_path / "levels" / "2" / "summary.json").read_text())
    assert level2["transports"]["sse"]["streams"] == 5 and "ws" not in level2["transports"]
    for t in ("sse", "ws"):
        for metric, rel in summary["histograms"][t].items():
            h = HdrHistogram.decode((tmp_path / rel).read_text().strip().encode())
            assert h.get_total_count() == summary["transports"][t]["metrics"][metric]["count"]
    rows = list(csv.DictReader(open(tmp_path / "timeline.csv")))
    assert sum(int(r["events"]) for r in rows) == 60
    # No ts anywhere: the summary says why there is no delivery latency.
    s = build_summary({"sse": TransportAccumulator()}, config={}, started_wall=0.0, duration_s=1.0)
    assert "no event carried ts" in s["clock"]["note"]
    assert s["transports"]["sse"]["metrics"]["delivery"]["p50_ms"] is None


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("host", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:9", "http://127.5.6.7"])
def test_loopback_hosts_are_accepted(host):
    assert check_loopback(host + "/") == host


@pytest.mark.parametrize("host", ["http://10.0.0.1:8000", "http://example.com", "ftp://127.0.0.1", "", None,
                                  "http://127.0.0.1:notaport"])
def test_other_hosts_are_refused(host):
    with pytest.raises(ConfigError):
        check_loopback(host)


def test_load_config_reads_locust_options(tmp_path):
    qfile = tmp_path / "q.txt"
    qfile.write_text("# comment\nFirst question?\n\nSecond question?\n")

    class Opts:
        question = ["Inline?"]
        questions_file = str(qfile)
        param = ["dataset=incidents", "model=m"]
        sse_path = "/s"
        ws_path = "/w"
        ws_compression = True
        pace = "0.5"
        results_dir = "out"
        stream_timeout = 5
        no_validate = False
        stream_log = False
        profile_name = "agent-stream/1"
        steps = "1, 5,20"
        step_time = 2

    cfg = load_config(Opts(), "http://127.0.0.1:8000")
    assert cfg.questions == ["Inline?", "First question?", "Second question?"]
    assert cfg.params == {"dataset": "incidents", "model": "m"}
    assert cfg.pace_s == 0.5 and cfg.ws_compression and cfg.steps == [1, 5, 20]
    Opts.param = ["nonsense"]
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(Opts(), "http://127.0.0.1:8000")
    Opts.param, Opts.pace = None, "-1"
    with pytest.raises(ConfigError, match="--pace"):
        load_config(Opts(), "http://127.0.0.1:8000")
    with pytest.raises(ConfigError):
        parse_steps("1,x")


# --------------------------------------------------------------------------- the profile shapes the requests


def other_profile(tmp_path: Path | None = None) -> Profile:
    """The bundled profile with another question parameter, other paths, another
    terminal type and another timestamp field: what load must take from a profile."""
    raw = copy.deepcopy(PROFILE.raw)
    raw["request"]["question_param"] = "q"
    raw["request"]["params"]["q"] = raw["request"]["params"].pop("question")
    raw["transports"]["sse"]["path"] = "/v2/events"
    raw["transports"]["ws"]["path"] = "/v2/socket"
    raw["order"]["last"] = "complete"
    raw["timestamp_field"] = "emitted_at"
    problems = check_profile(raw)
    assert problems == [], problems
    return Profile("other", None, raw)


def test_requests_follow_the_profile():
    profile = other_profile()
    cfg = LoadConfig(host="http://127.0.0.1:9", params={"dataset": "sales"}, ws_compression=True)
    sse = request_for("sse", cfg, profile, "Why?")
    ws = request_for("ws", cfg, profile, "Why?")
    assert (sse.url, ws.url) == ("http://127.0.0.1:9/v2/events", "http://127.0.0.1:9/v2/socket")
    assert sse.params == ws.params == {"dataset": "sales", "q": "Why?"}
    assert sse.end_types == ws.end_types == ("complete",)
    assert ws.compression and not sse.compression  # --ws-compression is about the ws binding
    # the bundled profile: the old defaults, from the profile
    default = request_for("sse", LoadConfig(host="http://127.0.0.1:9"), PROFILE, "Why?")
    assert default.url == "http://127.0.0.1:9/agent/stream" and default.params == {"question": "Why?"}
    assert default.end_types == ("stream_end",)
    # --sse-path / --ws-path override the profile's path of every transport of that binding
    class Opts:
        sse_path = "/mine"
        ws_path = None

    cfg = load_config(Opts(), "http://127.0.0.1:9")
    assert cfg.paths == {"sse": "/mine"}
    assert request_for("sse", cfg, profile, "x").url == "http://127.0.0.1:9/mine"
    assert request_for("ws", cfg, profile, "x").url == "http://127.0.0.1:9/v2/socket"
    assert questions_for(cfg, profile) == [profile.sample_questions[0]]


def test_options_are_held_against_the_profile():
    profile = other_profile()
    check_against_profile(LoadConfig(host="h", params={"question": "fine here"}), profile)
    with pytest.raises(ConfigError, match="--param q=...: use --question"):
        check_against_profile(LoadConfig(host="h", params={"q": "x"}), profile)
    with pytest.raises(ConfigError, match="--param question=...: use --question"):
        check_against_profile(LoadConfig(host="h", params={"question": "x"}), PROFILE)
    only_sse = Profile("sse-only", None, {**PROFILE.raw, "transports": {"sse": {}}, "parity": []})
    with pytest.raises(ConfigError, match="--ws-path: profile 'sse-only' has no transport of the ws binding"):
        check_against_profile(LoadConfig(host="h", paths={"ws": "/w"}), only_sse)


def test_stream_figures_use_the_profiles_timestamp_field():
    rec = make_recording(n=4, delivery=0.002)
    for ev in rec.events:  # the server stamps emitted_at; ts means something else here
        ev.data["emitted_at"] = ev.data.pop("ts")
        ev.data["ts"] = "not a time"
    assert stream_figures(rec, timestamp_field="emitted_at").delivery_us == [2000] * 4
    assert stream_figures(rec, timestamp_field="ts").delivery_us == []
    assert stream_figures(rec, timestamp_field=None).delivery_us == []
    # judge reads the field from the profile
    assert judge(rec, other_profile(), validate=False).delivery_us == [2000] * 4
    assert judge(rec, PROFILE, validate=False).delivery_us == []


def test_judge_runs_the_per_stream_rules_of_the_profile():
    fig = judge(make_recording(n=5, seq_gap_at=2), PROFILE)
    assert "ORDER-SEQ" in fig.rules
    assert judge(make_recording(n=5), PROFILE).rules == judge(make_recording("ws", n=5), PROFILE).rules == []
    assert judge(make_recording(n=5, seq_gap_at=2), PROFILE, validate=False).rules == []
    assert judge(make_recording(n=5, seq_gap_at=2, error_kind="timeout"), PROFILE).rules == []


def test_results_list_transports_in_the_profiles_order():
    assert ordered(["ws", "zz", "sse", "aa"]) == ["sse", "ws", "aa", "zz"]
    assert ordered(["ws", "sse"], order=["ws", "sse"]) == ["ws", "sse"]
    run = RunAccumulator()
    for t in ("ws", "sse"):
        run.add_stream(figures(make_recording(t)))
    s = build_summary(run.total(), config={}, started_wall=0.0, duration_s=1.0, order=["ws", "sse"])
    assert list(s["transports"]) == ["ws", "sse"] and list(s["histograms"]) == ["ws", "sse"]
    assert list(s["units"]["histograms"]) == [m.name for m in RECORDED]
    assert set(s["transports"]["ws"]["errors"]) >= {k.value for k in ErrorKind}


def test_user_classes_come_from_the_registry(tmp_path):
    """One class per registered transport (a plug-in one too), named as before for
    sse and ws; a run keeps those of the profile's transports. In a subprocess:
    importing the locustfile monkey-patches the process."""
    code = textwrap.dedent("""
        import json
        from conformance.profile import Profile, load_profile
        from conformance.wire import register
        from conformance.wire.sse import SSETransport

        class H2(SSETransport):
            name, label = "sse-h2", "SSE over h2"

        register(H2())
        import load.locustfile as lf

        p = load_profile()
        only_sse = Profile("sse-only", None, {**p.raw, "transports": {"sse": {}}, "parity": []})
        out = {"classes": {n: [c.transport, c.request_type] for n, c in lf.USER_CLASSES.items()},
               "module": [n for n in ("SSEUser", "WSUser", "SSE_H2User") if hasattr(lf, n)],
               "default": [c.__name__ for c in lf.select_user_classes(list(lf.USER_CLASSES.values()), p, None)],
               "sse_only": [c.__name__ for c in lf.select_user_classes(list(lf.USER_CLASSES.values()), only_sse, None)]}
        try:
            lf.select_user_classes([lf.WSUser], only_sse, ["WSUser"])
        except lf.ConfigError as e:
            out["refused"] = str(e)
        print(json.dumps(out))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["classes"] == {"SSEUser": ["sse", "SSE"], "WSUser": ["ws", "WS"], "SSE_H2User": ["sse-h2", "SSE-H2"]}
    assert out["module"] == ["SSEUser", "WSUser", "SSE_H2User"]
    assert out["default"] == ["SSEUser", "WSUser"] and out["sse_only"] == ["SSEUser"]
    assert "WSUser: profile 'sse-only' defines no such transport" in out["refused"]


def test_fine_bucket_keeps_sub_millisecond_times():
    assert fine_bucket(0.3456) == 0.346
    assert fine_bucket(12.345) == 12.3
    assert fine_bucket(147.2) == 147
    assert fine_bucket(58760) == 58800
    assert fine_bucket(0) == 0


# --------------------------------------------------------------------------- Locust runs


def locust(args: list[str], *, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "locust", "--only-summary", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_counters(base_url: str) -> dict[str, dict[str, float]]:
    text = httpx.get(base_url + "/metrics", timeout=5).text
    out: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_total") and "transport" in s.labels:
                out.setdefault(s.name, {})[s.labels["transport"]] = s.value
    return out


def delta(after: dict, before: dict, name: str, transport: str) -> int:
    return int(after[name][transport] - before.get(name, {}).get(transport, 0))


@pytest.fixture(scope="module")
def ref_server():
    """A reference server of this module's own: the event counters must not move under other tests."""
    with EmbeddedServer(pace_ms=1) as server:
        yield server.base_url


def read_summary(results: Path) -> dict[str, Any]:
    return json.loads((results / "summary.json").read_text())


def test_headless_run_matches_the_server_counters(ref_server, tmp_path):
    before = server_counters(ref_server)
    results = tmp_path / "results"
    proc = locust([
        "-f", LOCUSTFILE, "--host", ref_server, "--headless", "-u", "4", "-r", "4", "-t", "3s",
        "--results-dir", str(results), "--question", "How many incidents did each service have?",
        "--question", "What is the average duration of deployments per team?",
    ], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = server_counters(ref_server)
    summary = read_summary(results)
    assert set(summary["transports"]) == {"sse", "ws"}
    for t, s in summary["transports"].items():
        assert s["streams"] > 0 and s["errors"]["failed_streams"] == 0, s["errors"]
        assert s["streams"] == s["streams_ok"]
        assert s["events"] == delta(after, before, "agent_events_sent_total", t)
        assert s["streams"] == delta(after, before, "agent_streams_completed_total", t)
        assert s["metrics"]["ttfe"]["count"] == s["streams"]
        assert s["metrics"]["gap"]["count"] == s["events"] - s["streams"]
        assert s["metrics"]["delivery"]["count"] == s["events"]  # the reference server stamps ts
        assert 0 < s["metrics"]["delivery"]["p50_ms"] < 1000
        assert s["bytes"]["per_event"]["framing"] > 0
    assert summary["clock"]["shared"] is True and "ts" in summary["clock"]["note"]
    assert summary["config"]["users"] == 4 and summary["config"]["user_classes"] == ["SSEUser", "WSUser"]
    assert summary["config"]["stop_timeout_s"] == 60.0  # streams in flight at the end run to their end
    assert summary["versions"]["locust"] and summary["cpu"]["processes"][0]["samples"] >= 1
    assert "saturated" in summary["cpu"]
    for t in ("sse", "ws"):
        for metric, rel in summary["histograms"][t].items():
            h = HdrHistogram.decode((results / rel).read_text().strip().encode())
            assert h.get_total_count() == summary["transports"][t]["metrics"][metric]["count"]


def test_distributed_merge_equals_the_sum_of_the_workers(ref_server, tmp_path):
    before = server_counters(ref_server)
    results = tmp_path / "results"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]  # a file: a full pipe would block
    workers = [
        subprocess.Popen([sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--worker", "--master-host", "127.0.0.1",
                          "--master-port", str(port)], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=log)
        for log in logs
    ]
    try:
        master = locust([
            "-f", LOCUSTFILE, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", "2", "--expect-workers-max-wait", "20", "--host", ref_server, "--headless",
            "-u", "4", "-r", "4", "-t", "3s", "--results-dir", str(results),
        ], cwd=tmp_path, timeout=90)
        for w in workers:
            w.wait(timeout=30)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(timeout=10)
        for log in logs:
            log.close()
    assert master.returncode == 0, master.stderr[-3000:]
    assert all(w.returncode == 0 for w in workers), [(tmp_path / f"worker{i}.log").read_text()[-2000:] for i in range(2)]
    after = server_counters(ref_server)
    summary = read_summary(results)
    parts = [json.loads(Path(p).read_text()) for p in glob.glob(str(results / "workers" / "*" / "summary.json"))]
    assert len(parts) == 2 and summary["config"]["workers"] == 2
    assert sum(p["transports"].get(t, {}).get("streams", 0) for p in parts for t in ("sse", "ws")) > 0
    for t in ("sse", "ws"):
        merged = summary["transports"][t]
        mine = [p["transports"][t] for p in parts if t in p["transports"]]
        assert mine, f"no worker ran {t}"
        assert merged["streams"] == sum(m["streams"] for m in mine)
        assert merged["events"] == sum(m["events"] for m in mine)
        assert merged["bytes"]["wire_in"] == sum(m["bytes"]["wire_in"] for m in mine)
        for metric in merged["metrics"]:
            assert merged["metrics"][metric]["count"] == sum(m["metrics"][metric]["count"] for m in mine), metric
        # The merged histogram on disk is the exact sum of the workers' histograms.
        for metric, rel in summary["histograms"][t].items():
            total = HdrHistogram.decode((results / rel).read_text().strip().encode())
            parts_h = [HdrHistogram.decode((Path(p) / rel).read_text().strip().encode())
                       for p in glob.glob(str(results / "workers" / "*"))
                       if (Path(p) / rel).exists()]
            assert total.get_total_count() == sum(h.get_total_count() for h in parts_h)
        assert merged["events"] == delta(after, before, "agent_events_sent_total", t)
        assert merged["errors"]["failed_streams"] == 0


# --------------------------------------------------------------------------- raw servers


def sse_events(seq_gap: bool = False) -> list[bytes]:
    types = [("start", {}), ("progress", {"stage": "router", "message": "m"}), ("complete", {"data": {}}),
             ("stream_end", {})]
    out = []
    for i, (t, extra) in enumerate(types):
        seq = i + 1 if seq_gap and i >= 2 else i
        out.append(json.dumps({"type": t, "seq": seq, "ts": time.time(), **extra}).encode())
    return out


class SentLog:
    """What the raw server sent, per connection: the independent byte count."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.head = self.body = self.payload = self.events = self.streams = 0

    def add(self, head: int, body: int, payload: int, events: int) -> None:
        with self.lock:
            self.head += head
            self.body += body
            self.payload += payload
            self.events += events
            self.streams += 1


def raw_sse_handler(log: SentLog, *, seq_gap: bool = False):
    def handler(conn: socket.socket) -> None:
        read_head(conn)
        events = sse_events(seq_gap)
        body = b"".join(chunk(b"id: %d\ndata: %s\n\n" % (i, e)) for i, e in enumerate(events)) + b"0\r\n\r\n"
        conn.sendall(SSE_HEAD)
        conn.sendall(body)
        log.add(len(SSE_HEAD), len(body), sum(len(e) for e in events), len(events))
        wait_closed(conn, 2)

    return handler


def test_broken_stream_fails_with_its_rule_id(tmp_path):
    log = SentLog()
    with RawServer(raw_sse_handler(log, seq_gap=True)) as server:
        results = tmp_path / "results"
        proc = locust(["-f", LOCUSTFILE, "SSEUser", "--host", server.base_url, "--headless", "-u", "1", "-r", "1",
                       "-t", "1s", "--pace", "0.05", "--results-dir", str(results)], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]  # Locust's exit code when requests failed
    s = read_summary(results)["transports"]["sse"]
    assert s["streams"] == log.streams > 0
    assert s["errors"]["rules"] == {"ORDER-SEQ": s["streams"]}
    assert s["errors"]["violations"] == s["errors"]["failed_streams"] == s["streams"]
    # Locust's own error report (the same table as in its web UI) names the rule.
    report = proc.stdout + proc.stderr
    assert "Error report" in report and "StreamFailure('protocol violation ORDER-SEQ')" in report


def test_byte_figures_equal_the_bytes_on_the_socket(tmp_path):
    log = SentLog()
    with RawServer(raw_sse_handler(log)) as server:
        results = tmp_path / "results"
        proc = locust(["-f", LOCUSTFILE, "SSEUser", "--host", server.base_url, "--headless", "-u", "1", "-r", "1",
                       "-t", "1s", "--pace", "0.05", "--results-dir", str(results), "--stream-log"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = read_summary(results)["transports"]["sse"]
    b = s["bytes"]
    assert s["streams"] == log.streams > 0 and s["events"] == log.events
    assert b["head_in"] == log.head
    assert b["wire_in"] == log.head + log.body
    assert b["payload"] == log.payload
    assert b["per_event"]["wire"] == pytest.approx(log.body / log.events, rel=1e-6)
    assert b["per_event"]["payload"] == pytest.approx(log.payload / log.events, rel=1e-6)
    assert b["per_event"]["framing"] == pytest.approx((log.body - log.payload) / log.events, rel=1e-6)
    # The per-stream log carries the recorder's counts; the summary is their sum.
    rows = [json.loads(line) for line in (results / "streams" / "local.jsonl").read_text().splitlines()]
    assert len(rows) == s["streams"]
    for key in ("wire_in", "wire_out", "head_in", "head_out", "payload"):
        assert sum(r[key] for r in rows) == b[key]


def test_byte_totals_match_a_counting_relay(ref_server, tmp_path):
    port = int(ref_server.rsplit(":", 1)[1])
    with CountingRelay(port) as relay:
        results = tmp_path / "results"
        proc = locust(["-f", LOCUSTFILE, "--host", relay.base_url, "--headless", "-u", "2", "-r", "2", "-t", "2s",
                       "--results-dir", str(results)], cwd=tmp_path)
        relay.wait_idle()
        up, down = relay.up, relay.down
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = read_summary(results)["transports"]
    assert set(t) == {"sse", "ws"}
    assert sum(x["bytes"]["wire_in"] for x in t.values()) == down
    assert sum(x["bytes"]["wire_out"] for x in t.values()) == up


# --------------------------------------------------------------------------- sweep and refusals


def test_step_shape_keeps_results_per_level_on_the_embedded_server(tmp_path):
    """``python -m load --sweep`` without --host: its own reference server, the step shape, per-level results."""
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "load", "--sweep", "--pace-ms", "1", "--headless", "--only-summary",
                           "--steps", "2,4", "--step-time", "1.5", "--results-dir", str(results)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "embedded reference server at http://127.0.0.1:" in proc.stderr
    summary = read_summary(results)
    assert summary["config"]["host"].startswith("http://127.0.0.1:")
    assert summary["config"]["shape"] == "step" and [lv["users"] for lv in summary["levels"]] == [2, 4]
    total = {t: s["streams"] for t, s in summary["transports"].items()}
    per_level = {}
    for lv in summary["levels"]:
        level = json.loads((results / lv["dir"] / "summary.json").read_text())
        assert level["config"]["users"] == lv["users"]
        # every level ran streams of its own (a stream counted toward the wrong level would empty one)
        assert level["transports"] and all(s["streams"] > 0 for s in level["transports"].values()), lv
        for t, s in level["transports"].items():
            per_level[t] = per_level.get(t, 0) + s["streams"]
    assert per_level == total and all(v > 0 for v in total.values())


def test_helper_arguments():
    from load.__main__ import locust_command, split_args

    assert split_args(["--sweep", "--pace-ms", "5", "-u", "3"]) == (True, 5.0, ["-u", "3"])
    assert split_args(["--pace-ms=0"]) == (False, 0.0, [])
    for bad in ("-1", "inf", "nan"):  # inf: the embedded server's streams would never end
        with pytest.raises(ValueError, match="--pace-ms"):
            split_args(["--pace-ms", bad])
    cmd = locust_command(["--headless"], sweep=True, host="http://127.0.0.1:9")
    assert cmd[1:3] == ["-m", "locust"]
    assert cmd[3:] == ["-f", SWEEPFILE, "--host", "http://127.0.0.1:9", "--headless"]
    assert locust_command(["-f", "x.py"], sweep=False, host=None)[3:] == ["-f", "x.py"]


def test_a_profile_chooses_the_transports_and_the_request(ref_server, tmp_path):
    """--profile-name reaches the load run: a profile with only the sse transport
    runs SSEUser alone, and the results record the profile's request shape."""
    raw = {**copy.deepcopy(PROFILE.raw), "transports": {"sse": PROFILE.raw["transports"]["sse"]}, "parity": []}
    path = tmp_path / "sse-only.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")
    results = tmp_path / "results"
    proc = locust(["-f", LOCUSTFILE, "--host", ref_server, "--headless", "-u", "2", "-r", "2", "-t", "2s",
                   "--results-dir", str(results), "--profile-name", str(path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = read_summary(results)
    assert list(summary["transports"]) == ["sse"] and summary["transports"]["sse"]["streams"] > 0
    assert summary["config"]["user_classes"] == ["SSEUser"]
    config = summary["config"]
    assert config["paths"] == {"sse": "/agent/stream"} and config["question_param"] == "question"
    assert config["timestamp_field"] == "ts" and config["end_types"] == ["stream_end"] and config["parity"] == []
    assert config["questions"] == [PROFILE.sample_questions[0]]
    refused = locust(["-f", LOCUSTFILE, "WSUser", "--host", ref_server, "--headless", "-u", "1", "-t", "1s",
                      "--results-dir", str(tmp_path / "r2"), "--profile-name", str(path)], cwd=tmp_path, timeout=30)
    assert refused.returncode == 2 and "WSUser: profile" in refused.stderr and "Traceback" not in refused.stderr


def test_non_loopback_host_is_refused(tmp_path):
    proc = locust(["-f", LOCUSTFILE, "--host", "http://192.0.2.1:8000", "--headless", "-u", "1", "-t", "1s",
                   "--results-dir", str(tmp_path / "r")], cwd=tmp_path, timeout=30)
    assert proc.returncode == 2
    assert "not a loopback address" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_backoff_doubles_and_is_capped():
    from load.pipeline import backoff

    assert [backoff(n, 0.1, 2.0) for n in range(7)] == [0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]


def test_a_dead_backend_is_backed_off_and_fails_the_gate(tmp_path):
    """Connection refused: the attempts back off (no busy loop) and are counted as
    connect errors; the gate counts complete streams, so it fails."""
    from reports.gate import CI_RULES, run_gate

    dead = f"http://127.0.0.1:{free_port()}"
    proc = locust(["-f", LOCUSTFILE, "--host", dead, "--headless", "-u", "2", "-r", "2", "-t", "4s",
                   "--results-dir", str(tmp_path / "res"), "--stop-timeout", "5"], cwd=tmp_path, timeout=90)
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    for name in ("sse", "ws"):
        t = summary["transports"][name]
        assert t["streams_ok"] == 0 and t["errors"]["connect"] == t["streams"], t
        # one user per transport over 4 s, pausing 0.1, 0.2, 0.4, 0.8, 1.6 s: at most 6 attempts
        assert 1 <= t["streams"] <= 8, (t["streams"], proc.stderr[-2000:])
    gate = run_gate(tmp_path / "res" / "summary.json", CI_RULES)
    assert {"sse.streams_ok >= 1", "ws.streams_ok >= 1"} <= {o.rule.text for o in gate.failed}, gate.rows()
