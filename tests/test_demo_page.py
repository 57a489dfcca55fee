"""The demo page at ``/``, in real headless Chromium (Debian's package).

The page streams a question over each transport and shows what arrived; the
tests compare what it shows with what the project's wire recorders get for the
same request, drive the toggle, Stop and "both", check that the EventSource is
closed on ``stream_end`` (no reconnect), that the page works with every request
to anything but the server aborted (offline, no CDN), and that a page on another
origin reads SSE when that origin is allowed and is refused on the WebSocket when
it is not.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.recording import Limits
from conformance.wire import record_sse
from conformance.wire.browser import launch_chromium
from reference_server.app import STATIC_DIR
from reference_server.embedded import EmbeddedServer

LIMITS = Limits(connect=5, first_event=10, idle=10, total=30, end_grace=2)
QUESTION = "incidents by region"  # the reflection path: a failed attempt, then the fix
DONE_JS = "(n) => window.agentDemo && window.agentDemo.idle && window.agentDemo.runs.length >= n"


@pytest.fixture(scope="module")
def api() -> Iterator[EmbeddedServer]:
    """The backend: fast streams; pages may come from its own origin or localhost."""
    args = ("--allow-origin", "http://localhost:*", "--no-dev-origins")
    with EmbeddedServer(pace_ms=4, args=args) as server:
        yield server


@pytest.fixture(scope="module")
def slow() -> Iterator[EmbeddedServer]:
    """Slow streams (60 ms per chunk), for Stop; also the host of cross-origin pages."""
    with EmbeddedServer(pace_ms=60) as server:
        yield server


@pytest.fixture(scope="module")
def demo_context(chromium: str) -> Iterator[Any]:
    """Debian's Chromium as the suite launches it (the names differ from
    pytest-playwright's ``context`` and ``page`` fixtures, which would use its own
    browser download)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="agentstream-demo-") as profile, sync_playwright() as p:
        ctx = launch_chromium(p, chromium, profile)
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def demo(demo_context: Any) -> Iterator[Any]:
    page = demo_context.new_page()
    page.set_default_timeout(20_000)
    yield page
    page.close()


def open_demo(page: Any, base: str, query: str = "") -> None:
    page.goto(base + "/" + query)
    page.wait_for_function("() => document.body.dataset.ready === '1'")


def ask(page: Any, transport: str, question: str = QUESTION, runs: int = 1) -> list[dict[str, Any]]:
    page.fill("#question", question)
    page.check(f'input[name="transport"][value="{transport}"]')
    page.click("#start")
    page.wait_for_function(DONE_JS, arg=runs)
    return page.evaluate("() => window.agentDemo.runs.map(r => ({transport: r.transport, state: r.state, "
                         "events: r.events, figures: r.figures, sourceState: r.sourceState, closeCode: r.closeCode, "
                         "problems: r.problems}))")


def without_ts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "ts"} for e in events]


def wire_events(base: str, question: str = QUESTION) -> list[dict[str, Any]]:
    rec = record_sse(base + "/agent/stream", params={"question": question, "dataset": "all",
                                                     "model": "x-ai/grok-4-fast:free"},
                     limits=LIMITS, end_types=("stream_end",))
    assert rec.ok, rec.error
    return rec.objects


def test_assets_are_all_in_the_package(api: EmbeddedServer) -> None:
    html = httpx.get(api.base_url + "/", timeout=5)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    for asset in sorted(STATIC_DIR.iterdir()):
        text = asset.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), f"{asset.name} loads from elsewhere"
        assert not re.search(r"""(fetch|import)\(\s*["']https?://""", text), asset.name
        served = httpx.get(f"{api.base_url}/static/{asset.name}", timeout=5)
        assert served.status_code == 200 and served.text == text


def test_sse_stream_shown_as_the_wire_recorder_gets_it(demo: Any, api: EmbeddedServer) -> None:
    page = demo
    # offline: every request to anything but the server fails
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(api.base_url)
               else route.abort())
    open_demo(page, api.base_url)
    (run,) = ask(page, "sse")
    assert run["state"] == "done", run["problems"]
    assert run["sourceState"] == 2, "the EventSource must be closed on stream_end (else it reconnects)"
    events = run["events"]
    assert without_ts(events) == without_ts(wire_events(api.base_url))
    complete = next(e for e in events if e["type"] == "complete")
    # each event type, shown: reasoning steps, code as written, the failed attempt and its reflection,
    # the verification, the result table and chart, the analysis rendered
    steps = page.locator("#steps li").count()
    assert steps == sum(e["type"] in ("start", "progress", "chain_of_thought") for e in events)
    codes = [e for e in events if e["type"] == "code_generated"]
    assert [page.locator(f"#attempts-{c['attempt']} pre").inner_text() for c in codes] == [c["code"] for c in codes]
    assert page.locator("#attempts-1.failed").count() == 1
    reflection = next(e for e in events if e["type"] == "reflection")
    assert page.locator("#reflections-1 pre").inner_text() == reflection["content"]
    assert reflection["error"] in page.locator("#reflections-1 .failure").inner_text()
    verification = next(e for e in events if e["type"] == "verification")
    assert float(page.locator("#confidence").get_attribute("value")) == pytest.approx(verification["confidence"])
    ready = next(e for e in events if e["type"] == "data_ready")["data"]
    assert page.locator("#table tbody tr").count() == len(ready["rows"])
    assert page.locator("#chart svg rect.bar").count() == len(ready["rows"])
    markdown = page.locator("#markdown")
    assert markdown.locator("h4").first.inner_text() == complete["data"]["analysis"].splitlines()[0].lstrip("# ")
    assert markdown.locator("strong").count() >= 3 and markdown.locator("li").count() >= 2
    assert "**" not in markdown.inner_text()
    figures = run["figures"]
    assert figures["events"] == len(events) and figures["bytes"] > sum(len(str(e)) for e in events) * 0.5
    assert 0 < figures["ttfe_ms"] < 5000 and figures["duration_ms"] >= figures["ttfe_ms"]
    assert figures["latency_median_ms"] is not None and -50 < figures["latency_median_ms"] < 1000
    cells = page.locator('#figure-table td[data-col="sse"]').all_inner_texts()
    assert all(c != "–" for c in cells) and cells[2] == str(len(events))


def test_toggle_to_websocket_gives_the_same_events_and_analysis(demo: Any, api: EmbeddedServer) -> None:
    page = demo
    open_demo(page, api.base_url)
    (run,) = ask(page, "ws")
    assert run["state"] == "done" and run["closeCode"] == 1000, run["problems"]
    assert without_ts(run["events"]) == without_ts(wire_events(api.base_url))
    analysis = run["events"][-2]["data"]["analysis"]
    assert page.locator("#markdown h4").first.inner_text() == analysis.splitlines()[0].lstrip("# ")


def test_both_mode_runs_each_transport_in_turn_side_by_side(demo: Any, api: EmbeddedServer) -> None:
    page = demo
    open_demo(page, api.base_url)
    runs = ask(page, "both", runs=2)
    assert [r["transport"] for r in runs] == ["sse", "ws"]
    assert all(r["state"] == "done" for r in runs)
    assert without_ts(runs[0]["events"]) == without_ts(runs[1]["events"])
    for col in ("sse", "ws"):
        cells = page.locator(f'#figure-table td[data-col="{col}"]').all_inner_texts()
        assert all(c != "–" for c in cells), (col, cells)
    assert page.locator('tr[data-figure="events"] td[data-col="sse"]').inner_text() == \
        page.locator('tr[data-figure="events"] td[data-col="ws"]').inner_text()


def _active(base: str) -> float:
    text = httpx.get(base + "/metrics", timeout=5).text
    return float(re.search(r"^agent_active_streams (\S+)$", text, re.M).group(1))


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_stop_ends_the_stream(demo: Any, slow: EmbeddedServer, transport: str) -> None:
    page = demo
    open_demo(page, slow.base_url)
    page.check(f'input[name="transport"][value="{transport}"]')
    page.click("#start")
    page.wait_for_function("() => window.agentDemo.current && window.agentDemo.current.events.length >= 6")
    page.click("#stop")
    page.wait_for_function(DONE_JS, arg=1)
    run = page.evaluate("() => { const r = window.agentDemo.runs[0]; return {state: r.state, events: r.events, "
                        "closeCode: r.closeCode, sourceState: r.sourceState}; }")
    assert run["state"] in ("stopped", "done")
    if transport == "ws":  # cancel: the server ends the stream properly
        assert [e["type"] for e in run["events"][-2:]] == ["error", "stream_end"]
        assert run["events"][-2]["code"] == "cancelled" and run["closeCode"] == 1000
    else:
        assert run["sourceState"] == 2
        assert all(e["type"] not in ("complete", "stream_end") for e in run["events"])
    deadline = time.monotonic() + 2
    while _active(slow.base_url) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _active(slow.base_url) == 0, "the server still runs the stopped stream"


def test_allowed_cross_origin_page_reads_sse(demo: Any, api: EmbeddedServer, slow: EmbeddedServer) -> None:
    """A frontend on its own origin (http://localhost:PORT, allowed) with ?api= pointing at the backend."""
    page = demo
    open_demo(page, f"http://localhost:{slow.port}", f"?api={api.base_url}")
    (run,) = ask(page, "sse")
    assert run["state"] == "done", run["problems"]
    assert without_ts(run["events"]) == without_ts(wire_events(api.base_url))


def test_foreign_origin_page_is_refused_on_the_websocket(demo: Any, api: EmbeddedServer,
                                                         slow: EmbeddedServer) -> None:
    """A page on http://127.0.0.1:PORT, which this backend does not allow: refused at the handshake."""
    page = demo
    open_demo(page, slow.base_url, f"?api={api.base_url}")
    (run,) = ask(page, "ws")
    assert run["state"] == "failed" and run["events"] == []
    assert run["closeCode"] == 1006 and "refused" in " ".join(run["problems"])
    page.evaluate("() => { window.agentDemo.runs.length = 0; }")
    (run,) = ask(page, "sse")
    assert run["state"] == "failed" and run["events"] == [] and run["sourceState"] == 2
