"""The reference server's own CPU per event, beside a minimal ASGI app on the same uvicorn.

``python -m reference_server.bench_cost [--streams 300] [--concurrency 10]``

Both servers run at pace 0 in their own child process with the reference
server's uvicorn settings (``serve.uvicorn_options``: the same protocols and
bounds). The minimal app is a bare ASGI callable that sends the very bytes the
reference server sends for one stream (recorded from it first): the SSE frames
one body message each, the WebSocket texts one message each, no agent, no
framework. The client (this process) runs the same streams against each; the
figure is the server process's CPU time (user + system, from the kernel) over the
events the client received. The difference is what the server's agent,
stamping, pacing, metrics and framework cost per event; the goal is within 2x.

``--reference-root DIR`` measures another checkout's ``reference_server`` (the
figures before a change).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from .embedded import PACKAGE_ROOT, free_port

QUESTION = "Show top incidents"


# -- the minimal app ---------------------------------------------------------------------

def minimal_app(frames: list[str]):
    """A bare ASGI app: the recorded events of one stream over SSE and WebSocket."""
    sse_bodies = [f"id: {json.loads(f)['seq']}\ndata: {f}\n\n".encode() for f in frames]
    sse_headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                   (b"x-accel-buffering", b"no")]

    async def app(scope, receive, send):
        if scope["type"] == "http":
            if scope["path"] == "/health":
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
                return
            await send({"type": "http.response.start", "status": 200, "headers": sse_headers})
            for body in sse_bodies:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            for text in frames:
                await send({"type": "websocket.send", "text": text})
            await send({"type": "websocket.close", "code": 1000})

    return app


def serve_minimal(port: int, frames_path: Path) -> None:
    import uvicorn

    from .serve import uvicorn_options

    frames = json.loads(frames_path.read_text())
    uvicorn.run(minimal_app(frames), host="127.0.0.1", port=port, log_level="warning", **uvicorn_options())


# -- the client ---------------------------------------------------------------------------

async def _sse_stream(client: httpx.AsyncClient, url: str) -> int:
    n = 0
    async with client.stream("GET", url, params={"question": QUESTION}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                n += 1
    return n


async def _ws_stream(url: str) -> int:
    from websockets.asyncio.client import connect

    n = 0
    async with connect(url + "?question=" + QUESTION.replace(" ", "+"), max_size=None, compression=None) as ws:
        async for _ in ws:
            n += 1
    return n


async def _run(base: str, transport: str, streams: int, concurrency: int) -> int:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency * 2)) as client:
        async def one() -> int:
            async with sem:
                if transport == "sse":
                    return await _sse_stream(client, base + "/agent/stream")
                return await _ws_stream(base.replace("http", "ws", 1) + "/ws/agent/stream")

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def _time_to_first_event(client: httpx.AsyncClient, base: str, transport: str) -> float:
    """Seconds from opening one stream to its first event; the stream is read to its end."""
    from websockets.asyncio.client import connect

    start = time.perf_counter()
    took = float("nan")
    if transport == "sse":
        async with client.stream("GET", base + "/agent/stream", params={"question": QUESTION}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:") and took != took:
                    took = time.perf_counter() - start
    else:
        async with connect(base.replace("http", "ws", 1) + "/ws/agent/stream?question="
                           + QUESTION.replace(" ", "+"), compression=None) as ws:
            await ws.recv()
            took = time.perf_counter() - start
            async for _ in ws:
                pass
    return took


async def _first_events(base: str, transport: str, streams: int) -> list[float]:
    """Seconds to the first event of ``streams`` streams started at once."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=streams + 5)) as client:
        return list(await asyncio.gather(*(_time_to_first_event(client, base, transport) for _ in range(streams))))


async def _drain_sse(base: str) -> None:
    """One SSE stream read from a raw socket and thrown away: a background stream
    that costs the client almost nothing (httpx's line reader in this same event
    loop, at 100 streams of 33 events a second, delayed the probes by itself)."""
    from urllib.parse import quote, urlsplit

    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET /agent/stream?question={quote(QUESTION)} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 "Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode("ascii"))
    await writer.drain()
    while await reader.read(65536):
        pass
    writer.close()


async def _steady_first_events(base: str, transport: str, background: int, probes: int) -> list[float]:
    """Seconds to the first event of ``probes`` streams opened one by one (every
    100 ms) while ``background`` other streams run, each started again when it ends
    (SSE ones read from raw sockets, so that the client's own parsing does not
    delay the probes it measures)."""
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=background + probes + 10)) as client:
        async def first_event() -> float:
            return await _time_to_first_event(client, base, transport)

        async def keep_running() -> None:
            while not stop.is_set():
                if transport == "sse":
                    await _drain_sse(base)
                else:
                    await first_event()

        runners = [asyncio.create_task(keep_running()) for _ in range(background)]
        await asyncio.sleep(2.5 if background else 0)  # let the background streams spread out
        probes_done = []
        for _ in range(probes):
            probes_done.append(asyncio.create_task(first_event()))
            await asyncio.sleep(0.1)
        got = list(await asyncio.gather(*probes_done))
        stop.set()
        await asyncio.gather(*runners)
        return got


def ttfe_steady_table(env: dict[str, str], levels: list[int], pace_ms: float, probes: int = 30) -> None:
    """p50 / p99 time to first event of a new stream among N running paced ones."""
    port = free_port()
    server = Server([sys.executable, "-m", "reference_server", "--port", str(port), "--pace-ms", str(pace_ms),
                     "--log-level", "warning"], env, port)
    try:
        asyncio.run(_first_events(server.base, "sse", 2))
        print(f"time to first event of a new stream among N running ones, {pace_ms:g} ms pace, "
              f"{probes} probes 100 ms apart (p50 / p99)")
        print(f"{'running':>8} {'sse':>22} {'ws':>22}")
        for n in levels:
            cells = []
            for t in ("sse", "ws"):
                got = sorted(asyncio.run(_steady_first_events(server.base, t, n, probes)))
                p50, p99 = got[len(got) // 2], got[min(len(got) - 1, int(len(got) * 0.99))]
                cells.append(f"{p50 * 1e3:8.1f} / {p99 * 1e3:7.1f} ms")
            print(f"{n:>8} {cells[0]:>22} {cells[1]:>22}")
    finally:
        server.stop()


def ttfe_table(env: dict[str, str], levels: list[int], pace_ms: float) -> None:
    """p99 time to first event at each level of concurrent paced streams."""
    port = free_port()
    server = Server([sys.executable, "-m", "reference_server", "--port", str(port), "--pace-ms", str(pace_ms),
                     "--log-level", "warning"], env, port)
    try:
        asyncio.run(_first_events(server.base, "sse", 2))
        print(f"time to first event, {pace_ms:g} ms pace, streams started at once (p50 / p99)")
        print(f"{'streams':>8} {'sse':>22} {'ws':>22}")
        for n in levels:
            cells = []
            for t in ("sse", "ws"):
                got = sorted(asyncio.run(_first_events(server.base, t, n)))
                p50, p99 = got[len(got) // 2], got[min(len(got) - 1, int(len(got) * 0.99))]
                cells.append(f"{p50 * 1e3:8.1f} / {p99 * 1e3:7.1f} ms")
            print(f"{n:>8} {cells[0]:>22} {cells[1]:>22}")
    finally:
        server.stop()


def _wait_ready(base: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not come up")


class Server:
    """A server child process whose CPU time is read from the kernel."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_ready(self.base, self.proc)
        self.ps = psutil.Process(self.proc.pid)

    def cpu_per_event(self, transport: str, streams: int, concurrency: int) -> float:
        """µs of this server's CPU per event the client received."""
        before = self.ps.cpu_times()
        events = asyncio.run(_run(self.base, transport, streams, concurrency))
        after = self.ps.cpu_times()
        return ((after.user - before.user) + (after.system - before.system)) / max(1, events) * 1e6

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def record_frames(base_env: dict[str, str], path: Path) -> int:
    """One stream of the reference server (pace 0), as the minimal app will send it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "reference_server", "--port", str(port), "--pace-ms", "0",
                             "--log-level", "warning"], env=base_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        frames = []
        with httpx.stream("GET", f"http://127.0.0.1:{port}/agent/stream", params={"question": QUESTION}) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    frames.append(line[6:])
        path.write_text(json.dumps(frames))
        return len(frames)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_server.bench_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurements of each server, alternating (the median is shown; the machine is shared)")
    parser.add_argument("--reference-root", type=Path, default=PACKAGE_ROOT,
                        help="directory holding the reference_server package to measure (default: this one)")
    parser.add_argument("--ttfe", default=None, metavar="N,N,...",
                        help="instead: p99 time to first event for N paced streams started at once (e.g. 1,10,50,100)")
    parser.add_argument("--ttfe-running", default=None, metavar="N,N,...",
                        help="instead: time to first event of new streams among N running paced ones (e.g. 0,10,50,100)")
    parser.add_argument("--pace-ms", type=float, default=30.0, help="pace of the --ttfe streams (default 30)")
    parser.add_argument("--serve-minimal", type=int, default=None, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_minimal is not None:
        serve_minimal(args.serve_minimal, args.frames)
        return 0
    for option, value, least in (("--ttfe", args.ttfe, 1), ("--ttfe-running", args.ttfe_running, 0)):
        if not value:
            continue
        try:
            levels = [int(x) for x in value.split(",")]
        except ValueError:
            parser.error(f"{option} takes numbers separated by commas, like 1,10,50,100")
        if not levels or min(levels) < least:
            parser.error(f"{option} levels must be >= {least}")
        env = {**os.environ, "PYTHONPATH": str(args.reference_root.resolve())}
        (ttfe_table if option == "--ttfe" else ttfe_steady_table)(env, levels, args.pace_ms)
        return 0
    if args.streams < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--streams, --concurrency and --rounds must be >= 1")
    import tempfile

    env_ref = {**os.environ, "PYTHONPATH": str(args.reference_root.resolve())}
    env_min = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames.json"
        n = record_frames(env_ref, frames)
        p1, p2 = free_port(), free_port()
        servers = {
            "reference": Server([sys.executable, "-m", "reference_server", "--port", str(p1), "--pace-ms", "0",
                                 "--log-level", "warning"], env_ref, p1),
            "minimal": Server([sys.executable, "-m", "reference_server.bench_cost", "--serve-minimal", str(p2),
                               "--frames", str(frames)], env_min, p2),
        }
        samples: dict[tuple[str, str], list[float]] = {}
        try:
            for server in servers.values():  # warm up (the reference server's first run fills its cache)
                for t in ("sse", "ws"):
                    server.cpu_per_event(t, max(5, args.streams // 10), args.concurrency)
            for _ in range(args.rounds):
                for t in ("sse", "ws"):
                    for name, server in servers.items():
                        samples.setdefault((name, t), []).append(server.cpu_per_event(t, args.streams, args.concurrency))
        finally:
            for server in servers.values():
                server.stop()
        ref = {t: statistics.median(samples[("reference", t)]) for t in ("sse", "ws")}
        mini = {t: statistics.median(samples[("minimal", t)]) for t in ("sse", "ws")}
    print(f"server CPU per event, pace 0, {args.streams} streams of {n} events, {args.concurrency} at a time, "
          f"median of {args.rounds} alternating rounds (reference_server from {args.reference_root})")
    print(f"{'transport':<10} {'reference':>12} {'minimal ASGI':>14} {'ratio':>7}")
    for t in ("sse", "ws"):
        print(f"{t:<10} {ref[t]:>9.1f} µs {mini[t]:>11.1f} µs {ref[t] / mini[t]:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
