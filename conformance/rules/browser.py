"""What a real browser gets [PROTOCOL 4, 5, and the seed's browser UI], with ``--browser``.

The wire recorders prove the bytes; these rules prove what a page's
``EventSource`` and ``WebSocket`` make of them. They exist only in a run with
``--browser chromium`` (``only_with="browser"``): without it they are not items.

One active stimulus, ``browser``, per transport: after the baseline, the first
sample question is recorded in Chromium four ways at once (from a page on the
backend's own origin; from ``--origin-allowed``; from ``--origin-foreign``; and,
for SSE, once more with the EventSource left open after ``stream_end``, as a page
that forgets to close it would).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from conformance.stimuli import stimulus
from conformance.validate import finding
from conformance.wire.browser import BrowserError, BrowserJob, BrowserRun, shared

from .registry import NotJudged, rule

if TYPE_CHECKING:
    from conformance.recording import Recording
    from conformance.session import Session

API = {"sse": "EventSource", "ws": "WebSocket"}


@dataclass
class BrowserObservation:
    """The browser's runs of one transport, by role, and the wire baseline they repeat."""

    baseline: "Recording | None" = None
    runs: dict[str, BrowserRun] = field(default_factory=dict)
    """``own`` (backend's origin), ``allowed``, ``foreign``, ``left_open`` (SSE only)."""
    origins: dict[str, str] = field(default_factory=dict)
    not_judged: str | None = None


def own_origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@stimulus("browser", depends=("baseline",), active=True)
def browser_runs(s: "Session", t: str) -> BrowserObservation:
    """The first sample question again, in Chromium: own origin, allowed, foreign, left open."""
    obs = BrowserObservation()
    spec = s.settings.browser
    binding = s.profile.transports[t].binding
    if spec is None:
        obs.not_judged = "no --browser given"
        return obs
    if binding not in API:
        obs.not_judged = f"a browser has no API for the {binding!r} binding"
        return obs
    if s.settings.headers:
        obs.not_judged = (f"a browser's {API[binding]} cannot send --header values ({', '.join(s.settings.headers)}); "
                          "the browser rules need a backend that streams without them")
        return obs
    baseline = s.recordings("baseline", t)
    if not baseline:
        obs.not_judged = "no baseline stream to repeat"
        return obs
    obs.baseline = base = baseline[0]
    obs.origins = {"own": own_origin(s.base_url), "allowed": spec.origin_allowed, "foreign": spec.origin_foreign}
    roles = [("own", obs.origins["own"], True), ("allowed", spec.origin_allowed, True),
             ("foreign", spec.origin_foreign, True)]
    if binding == "sse":
        roles.append(("left_open", obs.origins["own"], False))
    jobs = [BrowserJob(base.request, binding, origin, close_on_end) for _, origin, close_on_end in roles]
    try:
        runs = shared(spec).record(jobs, s.settings.limits, s.profile.type_field, tuple(s.profile.end_types))
    except BrowserError as exc:
        obs.not_judged = str(exc)
        return obs
    obs.runs = {role: run for (role, _, _), run in zip(roles, runs)}
    return obs


def _observation(ctx: Any) -> BrowserObservation:
    obs = ctx.get("browser")
    if obs.not_judged:
        raise NotJudged(obs.not_judged)
    return obs


def _binding(ctx: Any) -> str:
    return ctx.profile.transports[ctx.transport].binding


def _reached_end(run: BrowserRun, ctx: Any) -> bool:
    rec = run.recording()
    return bool(rec.events) and rec.events[-1].type in ctx.profile.order.last


@rule("BROWSER-SAME-EVENTS", "MUST", "6", needs=["baseline", "repeat", "browser"], only_with="browser")
def browser_same_events(ctx):
    """a browser receives the same events as the wire recorders"""
    obs = _observation(ctx)
    run, wire = obs.runs["own"], obs.baseline
    api = API[_binding(ctx)]
    if not wire.events:
        raise NotJudged(f"the wire recording of {ctx.transport} has no events (see the stream rules)")
    if not run.events:
        hint = " (EventSource.onmessage never sees a message that carries an event: name)" \
            if api == "EventSource" and run.opened else ""
        return [(finding("BROWSER-SAME-EVENTS", f"the browser's {api} on the backend's own origin "
                                                f"({obs.origins['own']}) received no event{hint}: {run.error}"), wire)]
    mode, divergence = ctx.divergence(wire, run.recording())
    if divergence is None:
        return []
    divergence.left_name, divergence.right_name = "wire", "browser"
    why = ""
    if api == "EventSource" and divergence.right_count < divergence.left_count:
        why = " (EventSource.onmessage never sees messages with an event: name)"
    return [(finding("BROWSER-SAME-EVENTS", f"{api} ({mode} parity){why}: {divergence.describe()}",
                     divergence.index), wire)]


@rule("BROWSER-SSE-NO-RERUN", "SHOULD", "4", binding="sse", needs=["baseline", "browser"], only_with="browser")
def browser_sse_no_rerun(ctx):
    """an EventSource left open after {last} does not make the backend run the question again"""
    obs = _observation(ctx)
    run = obs.runs["left_open"]
    if not _reached_end(run, ctx):
        raise NotJudged(f"the EventSource left open did not reach {' or '.join(ctx.profile.order.last)}: {run.error}")
    if not run.after_end:
        return []
    first = run.after_end[0][:120]
    return [(finding("BROWSER-SSE-NO-RERUN",
                     f"after {run.recording().events[-1].type!r}, the browser's EventSource (left open, as a page that does "
                     f"not close it) reconnected with Last-Event-ID and received {len(run.after_end)} more events, "
                     f"the first {first!r}: the question ran again; answer a request with Last-Event-ID with 204, "
                     "or resume after that id"), obs.baseline)]


@rule("BROWSER-ALLOWED-ORIGIN", "MUST", "4", needs=["baseline", "browser"], only_with="browser")
def browser_allowed_origin(ctx):
    """a page on an allowed origin can read the SSE stream (CORS) and open the WebSocket"""
    obs = _observation(ctx)
    run = obs.runs["allowed"]
    if _reached_end(run, ctx):
        return []
    origin = obs.origins["allowed"]
    if _binding(ctx) == "sse":
        what = ("EventSource could not read the stream: the response lacks Access-Control-Allow-Origin for this "
                "origin (CORS)" if not run.events else f"the stream broke after {len(run.events)} events")
    else:
        what = ("the WebSocket handshake was refused" if not run.opened
                else f"the WebSocket closed after {len(run.events)} events (code {run.close_code})")
    return [(finding("BROWSER-ALLOWED-ORIGIN", f"a page on {origin} (--origin-allowed): {what}; {run.error}"),
             obs.baseline)]


@rule("BROWSER-FOREIGN-ORIGIN", "SHOULD", "5", binding="ws", needs=["baseline", "browser"], only_with="browser")
def browser_foreign_origin(ctx):
    """a page on a foreign origin is refused at the WebSocket handshake"""
    obs = _observation(ctx)
    run = obs.runs["foreign"]
    allowed = obs.runs["allowed"]
    if not allowed.opened:
        raise NotJudged("the WebSocket does not open from the allowed origin either (see BROWSER-ALLOWED-ORIGIN)")
    if not run.opened:
        return []
    return [(finding("BROWSER-FOREIGN-ORIGIN",
                     f"a page on {obs.origins['foreign']} (--origin-foreign) opened the WebSocket and received "
                     f"{len(run.events)} events: the handshake does not check Origin, so any site can use it with "
                     "its visitors' cookies (cross-site WebSocket hijacking); refuse origins outside an allowlist "
                     "with 403"), obs.baseline)]
