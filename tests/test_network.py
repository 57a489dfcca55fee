"""Network conditions (network/): the condition table and specs, the link model, the
shaping relay on real sockets, its measured accuracy, clock-offset bounds, and a
load run through a condition down to its report."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from network import clock
from network.conditions import CONDITIONS, MSS, ConditionError, parse, parse_list, table
from network.path import clock_probe
from network.probe import measure
from network.relay import RelayProcess
from network.shaper import Link, handshake_hold

ROOT = Path(__file__).resolve().parent.parent


# --- conditions and specs -------------------------------------------------------------

def test_named_conditions_are_the_documented_ones() -> None:
    assert {"loopback", "lan", "wan", "mobile"} <= set(CONDITIONS)
    assert not CONDITIONS["loopback"].shaped
    assert 0.010 <= CONDITIONS["wan"].rtt_s <= 0.100  # tens of milliseconds
    mobile = CONDITIONS["mobile"]
    assert mobile.rate_down_bps and mobile.rate_down_bps <= 2e6 and mobile.rate_up_bps < mobile.rate_down_bps
    docs = (ROOT / "docs" / "networks.md").read_text(encoding="utf-8")
    assert table() in docs, "docs/networks.md: paste the output of python -m network.conditions"


def test_a_custom_spec_sets_each_direction() -> None:
    c = parse("rtt=80ms,down=2mbit,up=500kbit")
    assert (c.delay_up_s, c.delay_down_s, c.rate_down_bps, c.rate_up_bps) == (0.04, 0.04, 2e6, 5e5)
    c = parse("delay_up=5ms,delay_down=30ms,rate=10mbit,buffer=64KiB")
    assert (c.delay_up_s, c.delay_down_s, c.rate_up_bps, c.buffer_bytes) == (0.005, 0.03, 1e7, 65536)
    assert [x.name for x in parse_list("loopback+wan+rtt=10ms")] == ["loopback", "wan", "rtt=10ms"]


@pytest.mark.parametrize("spec, words", [
    ("", "give a condition"), ("satellite", "no such condition"), ("rtt=fast", "not a number"),
    ("rtt=40parsecs", "unknown unit"), ("latency=4ms", "unknown key"), ("rtt=40ms,delay=2ms", "not both"),
    ("rate=1kbit", "below 8 kbit/s"), ("rtt=20s", "out of range"), ("buffer=1B", "out of range"),
    ("rtt=1ms,rtt=2ms", "given twice"), ("rtt=inf", "not a number"),
])
def test_a_bad_spec_is_one_clear_error(spec: str, words: str) -> None:
    with pytest.raises(ConditionError, match=words):
        parse(spec)


@pytest.mark.parametrize("argv", [["-m", "load", "--network", "satellite"], ["-m", "load", "--proxy", "squid"],
                                  ["-m", "network.relay", "--upstream", "http://127.0.0.1:9", "--network", "x=1"],
                                  ["-m", "load", "--network", "wan", "--host", "http://10.1.2.3:80", "--headless"],
                                  ["-m", "network.relay", "--upstream", "http://192.0.2.1:80", "--network", "wan"]])
def test_bad_network_options_exit_2_with_a_message(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert any(w in proc.stderr for w in ("no such condition", "--proxy 'squid'", "unknown key",
                                          "not a loopback address")), proc.stderr


# --- the link model -----------------------------------------------------------------

def test_the_link_delays_serialises_and_is_shared() -> None:
    link = Link(delay_s=0.02, rate_bps=8e6)  # 1 MB/s: a segment of 1448 B takes 1.448 ms
    segs = link.schedule(3000, now=10.0)
    assert [n for n, _ in segs] == [MSS, MSS, 3000 - 2 * MSS]
    assert segs[0][1] == pytest.approx(10.0 + MSS / 1e6 + 0.02)
    assert segs[-1][1] == pytest.approx(10.0 + 3000 / 1e6 + 0.02)
    # a second connection's write queues behind the first on the same link
    assert link.schedule(100, now=10.0)[0][1] == pytest.approx(10.0 + 3100 / 1e6 + 0.02)
    # uncapped: the delay only; the handshake hold comes first
    free = Link(delay_s=0.05)
    assert free.schedule(10, now=1.0, not_before=handshake_hold(1.0, 0.1)) == [(10, pytest.approx(1.15))]


# --- the relay on real sockets --------------------------------------------------------

@pytest.fixture(scope="module")
def paced_url() -> Iterator[str]:
    """Streams of about 0.7 s: long enough that a cancel sent after two events,
    20 ms on its way through the wan relay, still finds the stream running."""
    from reference_server.embedded import EmbeddedServer

    with EmbeddedServer(pace_ms=10) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def wan_relay(paced_url: str) -> Iterator[RelayProcess]:
    with RelayProcess(paced_url, CONDITIONS["wan"]) as relay:
        yield relay


def test_the_relay_comes_within_a_few_ms_of_the_configured_round_trip(paced_url: str,
                                                                       wan_relay: RelayProcess) -> None:
    acc = measure(paced_url, wan_relay.base_url, CONDITIONS["wan"], n=10)
    assert acc["configured_rtt_ms"] == 40.0
    assert 38.0 <= acc["measured_rtt_ms"] <= 52.0, acc  # never early; late by timer resolution and CPU
    # a new connection pays the emulated handshake: two round trips
    assert 78.0 <= acc["new_connection"]["measured_ms"] <= 100.0, acc


def test_a_stream_through_the_relay_shows_the_delay_in_every_figure(paced_url: str,
                                                                     wan_relay: RelayProcess) -> None:
    from conformance.request import Request
    from conformance.wire import get

    direct = get("ws").record(Request.make("ws", paced_url + "/ws/agent/stream",
                                           params={"question": "Show top incidents"}, end_types=("stream_end",)))
    shaped = get("ws").record(Request.make("ws", wan_relay.base_url + "/ws/agent/stream",
                                           params={"question": "Show top incidents"}, end_types=("stream_end",)))
    assert shaped.ok and len(shaped.events) == len(direct.events)
    delivery = sorted(e.t_wall - e.data["ts"] for e in shaped.events)
    assert 0.019 <= delivery[len(delivery) // 2] <= 0.035  # one way down: 20 ms
    assert shaped.connect_s >= 0.078  # handshake + upgrade request/response: two round trips
    strip = lambda rec: [{k: v for k, v in e.data.items() if k != "ts"} for e in rec.events]  # noqa: E731
    assert strip(shaped) == strip(direct)  # the relay carries the bytes, it does not change them


class _Bulk(threading.Thread):
    """A server that sends ``size`` bytes to each client as fast as the socket takes them,
    counting what it managed to send within ``seconds``."""

    def __init__(self, size: int, seconds: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.size, self.seconds, self.sent = size, seconds, 0
        self.start()

    def run(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(0.5)
        deadline = time.monotonic() + self.seconds
        chunk = b"x" * 65536
        try:
            while self.sent < self.size and time.monotonic() < deadline:
                try:
                    self.sent += conn.send(chunk[: self.size - self.sent])
                except TimeoutError:
                    continue
        except OSError:
            pass
        finally:
            conn.close()
            self.listener.close()


def test_the_bandwidth_cap_holds_a_download_to_its_rate() -> None:
    bulk = _Bulk(100_000)
    with RelayProcess(f"http://127.0.0.1:{bulk.port}", parse("delay=1ms,rate=4mbit")) as relay:
        with socket.create_connection(("127.0.0.1", int(relay.base_url.rsplit(":", 1)[1])), timeout=10) as s:
            t0, got = time.perf_counter(), 0
            while got < 100_000:
                data = s.recv(65536)
                if not data:
                    break
                got += len(data)
            elapsed = time.perf_counter() - t0
    assert got == 100_000
    assert 0.19 <= elapsed <= 0.8, elapsed  # 800 kbit at 4 Mbit/s = 0.2 s


def test_a_reader_that_does_not_read_holds_the_sender_back() -> None:
    """Bounded buffers: the relay stops reading from the backend when the client does
    not read, so the backend cannot push 64 MB into the relay's memory."""
    bulk = _Bulk(64 * 1024 * 1024, seconds=3.0)
    with RelayProcess(f"http://127.0.0.1:{bulk.port}", parse("rtt=2ms")) as relay:
        with socket.create_connection(("127.0.0.1", int(relay.base_url.rsplit(":", 1)[1])), timeout=10):
            bulk.join(timeout=10)  # the sender gives up after 3 s
    # relay buffer (256 KiB) + one read + the kernel's socket buffers on both legs
    assert bulk.sent < 24 * 1024 * 1024, bulk.sent


# --- clocks -------------------------------------------------------------------------

def test_the_offset_bounds_come_from_causality() -> None:
    shared = clock.bounds([clock.StreamTimes(100.0, [(100.004, 100.005), (100.030, 100.0302)])])
    assert shared.low_s == pytest.approx(-0.0002) and shared.high_s == pytest.approx(0.004)
    assert not shared.excludes_zero and not clock.latency_is_estimate(True, shared)
    skewed = clock.bounds([clock.StreamTimes(100.0, [(102.004, 100.005), (102.030, 100.0302)])])
    assert skewed.estimate_s == pytest.approx(2.0019) and skewed.uncertainty_s == pytest.approx(0.0021)
    assert skewed.excludes_zero and clock.latency_is_estimate(True, skewed)
    assert clock.latency_is_estimate(False, shared)  # not shared: always an estimate
    assert clock.bounds([clock.StreamTimes(1.0, [])]) is None


class _SkewedSSE(BaseHTTPRequestHandler):
    """An SSE backend whose clock runs 2 s ahead: its ts are 2 s in the future."""

    protocol_version = "HTTP/1.0"
    SKEW = 2.0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        types = ["start", "progress", "progress", "complete", "stream_end"]
        for seq, kind in enumerate(types):
            event = {"type": kind, "seq": seq, "ts": time.time() + self.SKEW}
            self.wfile.write(f"id: {seq}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.01)

    def log_message(self, *args: object) -> None:
        pass


def test_a_backend_with_another_clock_is_found_and_its_latency_marked_an_estimate(reference_url: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SkewedSSE)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        skewed = clock_probe(f"http://127.0.0.1:{server.server_address[1]}", None)["offset"]
    finally:
        server.shutdown()
        server.server_close()
    assert skewed["offset_ms"] == pytest.approx(2000, abs=30) and skewed["uncertainty_ms"] < 30, skewed
    assert skewed["latency_is_estimate"] is True
    same = clock_probe(reference_url, None)["offset"]
    assert same["low_ms"] <= 0 <= same["high_ms"] and same["latency_is_estimate"] is False, same
    # the answer to a WebSocket cancel is the third bound: within a few ms on loopback
    assert same["streams"] == 3 and same["uncertainty_ms"] < 5, same


def test_over_a_path_the_uncertainty_is_about_half_the_round_trip(wan_relay: RelayProcess) -> None:
    off = clock_probe(wan_relay.base_url, None)["offset"]
    assert off["low_ms"] <= 0 <= off["high_ms"], off
    assert off["cancel_bound"] is True, off
    assert 19 <= off["uncertainty_ms"] <= 30, off  # 40 ms RTT: ± 20 ms, as NTP from one exchange


# --- a load run through a condition, down to the report ------------------------------

def test_a_load_run_over_wan_reports_each_transport_under_it(tmp_path: Path) -> None:
    results = tmp_path / "wan"
    proc = subprocess.run([sys.executable, "-m", "load", "--network", "wan", "--pace-ms", "5", "--headless",
                           "-u", "2", "-r", "2", "-t", "3s", "--results-dir", str(results), "--only-summary"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((results / "summary.json").read_text())
    net = summary["network"]
    assert net["label"] == "wan" and net["condition"]["rtt_ms"] == 40.0
    assert 38 <= net["accuracy"]["measured_rtt_ms"] <= 52 and net["relay"]["connections"] >= 2
    assert summary["clock"]["offset"]["latency_is_estimate"] is False
    for t in ("sse", "ws"):
        m = summary["transports"][t]["metrics"]
        assert m["delivery"]["p50_ms"] >= 19.0 and m["ttfe"]["p50_ms"] >= 78.0, (t, m["delivery"], m["ttfe"])

    from reports.compare import build_report

    md = (build_report([results], tmp_path / "report").parent / "report.md").read_text()
    section = md.split("## Network paths", 1)[1].split("\n## ", 1)[0]
    assert "| wan | SSE |" in section and "| wan | WebSocket |" in section
    assert "configured RTT" in section and "shaping relay" in section and "Client and server clocks" in section
    assert "(estimate)" not in section

    # the same results, as if the probe had found the backend's clock 2 s ahead: estimates, said up front
    from reports import conditions
    from reports.results import load_run

    summary["clock"]["offset"].update(offset_ms=2000.0, uncertainty_ms=3.0, latency_is_estimate=True)
    (results / "summary.json").write_text(json.dumps(summary))
    run = load_run(results)
    assert conditions.clock_warnings([run]) == [
        "on `wan` the backend's clock is 2000.0 ± 3.0 ms off the client's: every delivery latency of that run "
        "is an estimate (corrected figures under Network paths)"]
    delivery = [r["delivery latency p50 (ms)"] for r in conditions.rows([run])]
    assert all(d.startswith("≈20") and d.endswith("± 3.000 (estimate)") for d in delivery), delivery
    # and clocks not shared at all: the same marking, without the offset's warning
    summary["clock"].update(shared=False)
    summary["clock"]["offset"]["latency_is_estimate"] = False
    (results / "summary.json").write_text(json.dumps(summary))
    run = load_run(results)
    assert conditions.clock_warnings([run]) == []
    assert all("(estimate)" in r["delivery latency p50 (ms)"] for r in conditions.rows([run]))
