"""What keeps the reference server's CPU per event low, and the benchmark that measures it.

The replay of a question already answered must give the same events as a fresh
run (ts aside) and still obey a cancel; it must skip the pandas work and its
thread hops; the cache is bounded and keeps only whole runs. The benchmark's
minimal ASGI app must send what the reference server sends, or the side-by-side
figure compares different work.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from reference_server.agent import RunCache, agent_events
from reference_server.bench_cost import Server, record_frames
from reference_server.embedded import PACKAGE_ROOT, free_port
from reference_server.params import StreamRequest
from reference_server.stream import StopSignal, _json, dumps, paced_events

REQ = StreamRequest("incidents by region")


def run(runs: RunCache | None, stop: StopSignal | None = None, cancel_at: int | None = None) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        signal = stop or StopSignal()
        out = []
        async for event in paced_events(REQ, 0.0, signal, runs):
            out.append(event)
            if cancel_at is not None and len(out) == cancel_at:
                signal.stop("cancel")
        return out

    return asyncio.run(go())


def bare(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "ts"} for e in events]


def test_a_replayed_run_is_the_same_stream_without_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = RunCache(4)
    fresh = run(runs)
    uncached = run(None)
    hops = []
    real = asyncio.to_thread

    async def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    replay = run(runs)
    assert bare(replay) == bare(fresh) == bare(uncached)
    assert hops == [], "a replay must not run pandas again"
    assert [json.loads(dumps(e)) == json.loads(_json(dict(e))) for e in replay] == [True] * len(replay)
    assert all(dumps(e) == _json(dict(e)) for e in replay)  # the pre-serialised text is the same bytes
    assert [e["seq"] for e in replay] == list(range(len(replay)))


def test_a_replay_still_obeys_a_cancel_and_only_whole_runs_are_kept() -> None:
    runs = RunCache(4)
    stopped = run(runs, cancel_at=3)
    assert [e["type"] for e in stopped[-2:]] == ["error", "stream_end"]
    assert len(runs._runs) == 0, "a stopped run is not a full answer"
    run(runs)
    cancelled = run(runs, cancel_at=5)
    assert [e["type"] for e in cancelled[-2:]] == ["error", "stream_end"] and cancelled[-2]["code"] == "cancelled"
    assert len(cancelled) == 7


def test_the_cache_is_bounded() -> None:
    runs = RunCache(2)
    for q in ("incidents by team", "incidents by service", "deployments by team"):
        for _ in agent_events(StreamRequest(q)):
            pass
        gen = runs.steps(StreamRequest(q))
        for _ in gen:
            pass
    assert list(runs._runs) == [StreamRequest("incidents by service"), StreamRequest("deployments by team")]
    off = RunCache(0)
    for _ in off.steps(REQ):
        pass
    assert len(off._runs) == 0


def test_the_benchmarks_minimal_app_sends_what_the_reference_sends() -> None:
    """Same events, same SSE framing and headers, same WebSocket messages (ts aside)."""
    env = {"PYTHONPATH": str(PACKAGE_ROOT)}
    import os

    env = {**os.environ, **env}
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames.json"
        count = record_frames(env, frames)
        recorded = json.loads(frames.read_text())
        assert count == len(recorded) > 50
        port = free_port()
        server = Server([sys.executable, "-m", "reference_server.bench_cost", "--serve-minimal", str(port),
                         "--frames", str(frames)], env, port)
        try:
            response = httpx.get(server.base + "/agent/stream", params={"question": "Show top incidents"}, timeout=10)
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache"
            blocks = [b for b in response.text.split("\n\n") if b]
            assert blocks == [f"id: {json.loads(f)['seq']}\ndata: {f}" for f in recorded]
            with ws_connect(server.base.replace("http", "ws") + "/ws/agent/stream", open_timeout=5) as conn:
                got = [conn.recv(timeout=5) for _ in recorded]
            assert got == recorded
        finally:
            server.stop()
