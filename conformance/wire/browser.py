"""Streams recorded a second time through a real browser's EventSource and WebSocket.

The wire recorders see every byte; a browser sees less, and differently: an
``EventSource`` drops named events from ``onmessage``, needs CORS to read another
origin's stream, reconnects by itself after the end (with ``Last-Event-ID``), and
a browser's WebSocket sends ``Origin`` and cannot see a refused handshake's status.
What users of a backend get is what the browser gets, so the suite asks it.

The I/O layer is thin: Chromium (Debian's package, never downloaded) driven by
Playwright from one worker thread (Playwright's sync API is bound to the thread
that started it, and pytest's main thread may run an asyncio loop), a blank page
per origin served by Playwright's router (so any origin, even one whose host does
not resolve, is a real page origin, and the backend never sees that request), and
one JavaScript recorder (``RECORDER_JS``) run in the page. What comes back is
plain data (:class:`BrowserRun`); the rules (``conformance.rules.browser``) judge it
without a browser.

Chromium's Local Network Access checks are switched off: a synthetic page has no
IP address space, so Chromium would treat it as public and block its requests to
a loopback backend, which a real frontend on a local dev server is not.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from conformance.browser_options import BrowserSpec
from conformance.recording import Limits, RecordedEvent, Recording
from conformance.request import Request

from .common import query_url
from .ws import ws_url

CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
    "PrivateNetworkAccessSendPreflights",
)
"""Headless (Playwright adds --headless), no sandbox (containers run as root), no
network of its own (updates, sync, QUIC), and a fresh --user-data-dir per run
(Playwright's persistent context takes it as an argument)."""
BLANK_PATH = "/__agentstream_browser_page__"
"""Path of the blank page of each origin; answered by the router, never by the backend."""
RECONNECT_WATCH_S = 4.5
"""How long an EventSource left open is watched after stream_end: Chromium
reconnects 3 s after an ended stream unless the server set another ``retry:``."""

RECORDER_JS = r"""
async (spec) => {
  const out = {opened: false, events: [], afterEnd: [], opens: 0, errors: 0, error: null,
               closeCode: null, readyState: null, truncated: false};
  let bytes = 0, ended = false;
  const keep = (list, text) => {
    bytes += text.length;
    if (list.length >= spec.maxEvents || bytes > spec.maxBytes) { out.truncated = true; return false; }
    list.push([text, Date.now() / 1000]);
    return true;
  };
  const endType = (text) => { try { const v = JSON.parse(text); return v && spec.endTypes.includes(v[spec.typeField]); } catch (e) { return false; } };
  return await new Promise((resolve) => {
    let finished = false, source = null, socket = null;
    const done = (why) => {
      if (finished) return;
      finished = true;
      if (why) out.error = why;
      if (source) { out.readyState = source.readyState; source.close(); }
      if (socket && socket.readyState < 2) socket.close();
      resolve(out);
    };
    setTimeout(() => done(ended ? null : "timeout after " + spec.timeoutMs + " ms"), spec.timeoutMs);
    if (spec.binding === "sse") {
      source = new EventSource(spec.url);
      source.onopen = () => { out.opened = true; out.opens += 1; };
      source.onmessage = (m) => {
        if (ended) { keep(out.afterEnd, m.data); return; }
        if (!keep(out.events, m.data)) { done("more than the recording bounds"); return; }
        if (endType(m.data)) {
          ended = true;
          if (spec.closeOnEnd) done(null);
          else setTimeout(() => done(null), spec.watchMs);
        }
      };
      source.onerror = () => {
        out.errors += 1;
        if (!ended && source.readyState === EventSource.CLOSED) done(out.opened ? "the stream failed" : "EventSource could not open the stream");
        else if (!ended) done("the connection broke before the last event (the browser would reconnect)");
      };
    } else {
      try { socket = new WebSocket(spec.url); } catch (e) { done("WebSocket: " + e); return; }
      socket.onopen = () => { out.opened = true; out.opens += 1; };
      socket.onmessage = (m) => {
        if (typeof m.data !== "string") { keep(out.events, "<binary message>"); return; }
        if (!keep(out.events, m.data)) { done("more than the recording bounds"); return; }
        if (endType(m.data)) ended = true;
      };
      socket.onclose = (c) => { out.closeCode = c.code; done(ended ? null : (out.opened ? "closed with " + c.code + " before the last event" : "the handshake was refused or failed (close " + c.code + ")")); };
    }
  });
}
"""


def launch_chromium(playwright: Any, executable: str, user_data_dir: str) -> Any:
    """Chromium as the suite runs it (headless, ``CHROMIUM_ARGS``, a fresh profile):
    a Playwright persistent context. The demo page's tests and the screenshot
    script launch it through here too."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir, executable_path=executable, headless=True, args=list(CHROMIUM_ARGS))


@dataclass(frozen=True)
class BrowserJob:
    """One stream for the browser: the request, from which origin, and whether the
    EventSource is left open after the end (to see whether it reconnects)."""

    request: Request
    binding: str
    origin: str
    close_on_end: bool = True

    @property
    def url(self) -> str:
        if self.binding == "ws":
            return ws_url(self.request.url, self.request.query)
        return query_url(self.request.url, self.request.query)


@dataclass
class BrowserRun:
    """What the page saw: whether the stream opened, each message's text and arrival
    (wall clock), messages after the end, opens and errors, the close code."""

    job: BrowserJob
    opened: bool = False
    events: list[tuple[str, float]] = field(default_factory=list)
    after_end: list[str] = field(default_factory=list)
    opens: int = 0
    errors: int = 0
    error: str | None = None
    close_code: int | None = None
    truncated: bool = False
    duration_s: float = 0.0

    @property
    def reconnected(self) -> bool:
        return self.opens > 1 or bool(self.after_end)

    def recording(self) -> Recording:
        """As a :class:`Recording` of the job's request, so that the parity
        comparison and the failure messages of the wire recordings apply."""
        events = []
        for i, (text, wall) in enumerate(self.events):
            try:
                data, problem = json.loads(text), None
            except ValueError as exc:
                data, problem = None, str(exc)
            events.append(RecordedEvent(index=i, raw=text.encode("utf-8", "surrogatepass"), text=text, data=data,
                                        parse_error=problem, t_wall=wall))
        rec = Recording(request=self.job.request, events=events)
        rec.status = 200 if self.opened else None
        if self.error:
            rec.error_kind, rec.error = "browser", self.error
        return rec


class BrowserError(RuntimeError):
    """The browser could not be started or driven (the message says how to fix it)."""


class BrowserSession:
    """One headless Chromium for the run, owned by one worker thread."""

    def __init__(self, spec: BrowserSpec) -> None:
        self.spec = spec
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentstream-browser")
        self._playwright: Any = None
        self._context: Any = None
        self._pages: dict[str, Any] = {}
        self._profile_dir: str | None = None

    def _start(self) -> None:
        if self._context is not None:
            return
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise BrowserError(f"--browser needs Playwright ({exc}); pip install playwright") from None
        self._profile_dir = tempfile.mkdtemp(prefix="agentstream-chromium-")
        self._playwright = sync_playwright().start()
        try:
            self._context = launch_chromium(self._playwright, self.spec.executable, self._profile_dir)
        except Exception as exc:  # noqa: BLE001 - Playwright's launch errors say what failed
            self._playwright.stop()
            self._playwright = None
            raise BrowserError(f"{self.spec.executable} did not start: {str(exc).splitlines()[0]}") from None

    def _page(self, origin: str) -> Any:
        page = self._pages.get(origin)
        if page is None:
            self._context.route(origin + BLANK_PATH, lambda route: route.fulfill(
                status=200, content_type="text/html", body="<!doctype html><title>agentstream browser</title>"))
            page = self._context.new_page()
            page.goto(origin + BLANK_PATH)
            self._pages[origin] = page
        return page

    def _record(self, jobs: list[BrowserJob], limits: Limits, type_field: str, end_types: tuple[str, ...]) \
            -> list[BrowserRun]:
        self._start()
        by_origin: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            by_origin.setdefault(job.origin, []).append(i)
        runs: list[BrowserRun | None] = [None] * len(jobs)
        timeout_ms = int(min(limits.total, limits.first_event + limits.idle * 3) * 1000)
        handles = []
        for origin, indexes in by_origin.items():
            page = self._page(origin)
            specs = [{"binding": jobs[i].binding, "url": jobs[i].url, "closeOnEnd": jobs[i].close_on_end,
                      "watchMs": int(RECONNECT_WATCH_S * 1000), "timeoutMs": timeout_ms + int(RECONNECT_WATCH_S * 1000),
                      "maxEvents": limits.max_events, "maxBytes": limits.max_recording_bytes,
                      "typeField": type_field, "endTypes": list(end_types)} for i in indexes]
            # all of this origin's streams at once, in its page, and every page at once: started
            # here, collected below (a browser opens them concurrently)
            page.evaluate("(specs) => { window.__agentstreamDone = null; const one = " + RECORDER_JS + ";"
                          " Promise.all(specs.map(one)).then((r) => { window.__agentstreamDone = r; }); }", specs)
            handles.append((indexes, page))
        started = time.perf_counter()
        bound_ms = timeout_ms + int(RECONNECT_WATCH_S * 1000) + 5000
        for indexes, page in handles:
            page.wait_for_function("() => window.__agentstreamDone !== null", timeout=bound_ms, polling=100)
            results = page.evaluate("() => window.__agentstreamDone")
            took = time.perf_counter() - started
            for i, got in zip(indexes, results):
                runs[i] = BrowserRun(jobs[i], opened=got["opened"], events=[(t, w) for t, w in got["events"]],
                                     after_end=[t for t, _ in got["afterEnd"]], opens=got["opens"],
                                     errors=got["errors"], error=got["error"], close_code=got["closeCode"],
                                     truncated=got["truncated"], duration_s=took)
        return [r for r in runs if r is not None]

    def record(self, jobs: list[BrowserJob], limits: Limits, type_field: str = "type",
               end_types: tuple[str, ...] = ("stream_end",)) -> list[BrowserRun]:
        """Record ``jobs`` in the browser (those of one origin concurrently, in one page)."""
        return self._pool.submit(self._record, jobs, limits, type_field, end_types).result()

    def _close(self) -> None:
        for page in self._pages.values():
            try:
                page.close()
            except Exception:  # noqa: BLE001 - closing what may already be gone
                pass
        self._pages.clear()
        if self._context is not None:
            try:
                self._context.close()
            except Exception:  # noqa: BLE001
                pass
            self._context = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        if self._profile_dir:
            shutil.rmtree(self._profile_dir, ignore_errors=True)
            self._profile_dir = None

    def close(self) -> None:
        try:
            self._pool.submit(self._close).result(timeout=30)
        except RuntimeError:
            pass  # at interpreter exit the worker is gone; Playwright's driver ends with the process
        finally:
            self._pool.shutdown(wait=False)


_SESSIONS: dict[BrowserSpec, BrowserSession] = {}
_LOCK = threading.Lock()


def shared(spec: BrowserSpec) -> BrowserSession:
    """The run's one browser for ``spec`` (started on first use, closed at exit)."""
    with _LOCK:
        session = _SESSIONS.get(spec)
        if session is None:
            session = _SESSIONS[spec] = BrowserSession(spec)
        return session


def close_all() -> None:
    with _LOCK:
        sessions = list(_SESSIONS.values())
        _SESSIONS.clear()
    for session in sessions:
        session.close()


atexit.register(close_all)
