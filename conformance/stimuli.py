"""What the suite sends: named stimuli, each a function from the session to requests.

A rule names the stimuli it judges (``needs=``); the session records exactly the
stimuli the selected rules need, once each, concurrently. A stimulus is a plain
function ``(session, transport) -> [Request]`` built from the profile and the
options, so every recording keeps the value it was made from. A few need more:
``depends`` names a stimulus whose recordings it reads first (the reconnect
request carries the last event id of a baseline stream), and an *active*
stimulus (the disconnect probe) drives the wire itself and returns an
observation instead of recordings; the session runs those one at a time, after
the others, since they read a backend-wide gauge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from . import draw
from .request import ClientMessage, Request

if TYPE_CHECKING:
    from .recording import Recording
    from .session import Session

COPIES = 2
"""How many copies of each sample question the concurrency stimulus runs at once."""
CANCEL_AFTER = 2
"""The mid-stream cancel is sent after this many events."""
LEAVE_AFTER = 2
"""The disconnect probe leaves its stream after this many events."""
DRAWN_VALUES = 8
"""Drawn parameter values per transport (INPUT-NEVER-5XX)."""
DRAWN_QUESTIONS = 6
"""Drawn questions, the same on every transport (PROPERTY-QUESTIONS)."""


@dataclass(frozen=True)
class Stimulus:
    name: str
    make: Callable[..., Any] = field(repr=False)
    binding: str | None = None
    """Recorded only on transports of this binding (None: on every transport)."""
    depends: tuple[str, ...] = ()
    active: bool = False
    """``make`` drives the wire and returns an observation (run alone, after the others)."""
    doc: str = ""


STIMULI: dict[str, Stimulus] = {}


def stimulus(name: str, *, binding: str | None = None, depends: tuple[str, ...] = (), active: bool = False) -> Callable:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        STIMULI[name] = Stimulus(name, fn, binding, depends, active, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return decorate


@stimulus("baseline")
def baseline(s: "Session", t: str) -> list[Request]:
    """Each sample question of the profile, once."""
    return [s.request(t, question=q) for q in s.profile.sample_questions]


@stimulus("repeat")
def repeat(s: "Session", t: str) -> list[Request]:
    """The first sample question again: does the backend repeat itself exactly?"""
    return [s.request(t, question=s.profile.sample_questions[0])]


@stimulus("invalid")
def invalid(s: "Session", t: str) -> list[Request]:
    """Each of the profile's invalid requests (one per ``request.invalid`` case)."""
    return [s.request(t, question=s.profile.sample_questions[0], case=case) for case in s.profile.request.invalid]


@stimulus("valid_edge")
def valid_edge(s: "Session", t: str) -> list[Request]:
    """Each of the profile's valid edge-case requests (``request.valid_edge``)."""
    return [s.request(t, question=s.profile.sample_questions[0], case=case) for case in s.profile.request.valid_edge]


def _cancel(s: "Session", t: str) -> Any:
    section = s.profile.transport(t)
    return getattr(section, "cancel", None)


@stimulus("cancel", binding="ws")
def cancel(s: "Session", t: str) -> list[Request]:
    """A stream cancelled mid-way: the profile's cancel message after a few events."""
    spec = _cancel(s, t)
    if spec is None:
        return []
    msg = ClientMessage.json(spec.message, after_events=CANCEL_AFTER)
    return [s.request(t, question=s.profile.sample_questions[0], messages=(msg,))]


@stimulus("cancel_mid", binding="ws")
def cancel_mid(s: "Session", t: str) -> list[Request]:
    """A cancel sent mid-stream, when this stream's first chunk of its last streamed
    text arrives (the profile's last aggregate: the analysis, in agent-stream/1)."""
    spec = _cancel(s, t)
    if spec is None or not s.profile.aggregates:
        return []
    msg = ClientMessage.json(spec.message, on_type=s.profile.aggregates[-1].chunk)
    return [s.request(t, question=s.profile.sample_questions[0], messages=(msg,))]


@stimulus("cancel_late", binding="ws")
def cancel_late(s: "Session", t: str) -> list[Request]:
    """A cancel sent when this stream's terminal event arrives: it must change nothing."""
    spec = _cancel(s, t)
    terminal = s.profile.order.terminal
    if spec is None or not terminal:
        return []
    msgs = tuple(ClientMessage.json(spec.message, on_type=name) for name in terminal)
    return [s.request(t, question=s.profile.sample_questions[0], messages=msgs)]


@stimulus("deflate", binding="ws")
def deflate(s: "Session", t: str) -> list[Request]:
    """The first sample question with permessage-deflate offered."""
    return [s.request(t, question=s.profile.sample_questions[0], compression=True)]


@stimulus("client_hello", binding="ws")
def client_hello(s: "Session", t: str) -> list[Request]:
    """The first sample question with an unknown client message after the first event."""
    hello = {s.profile.type_field: "conformance-suite-hello", "note": "servers ignore unknown client messages"}
    return [s.request(t, question=s.profile.sample_questions[0], messages=(ClientMessage.json(hello, after_events=1),))]


@stimulus("reconnect", binding="sse", depends=("baseline",))
def reconnect(s: "Session", t: str) -> list[Request]:
    """A reconnect after the end, as EventSource makes it: Last-Event-ID of the last event."""
    first = s.recordings("baseline", t)[0]
    last_id = last_event_id(first, s.profile.seq_field)
    if last_id is None:
        return []
    return [first.request.but(last_event_id=last_id)]


def last_event_id(rec: "Recording", seq_field: str | None) -> str | None:
    """The id a browser would send after this stream: its last event's SSE id, or
    else its ``seq`` (None when the stream carries neither)."""
    if not rec.events:
        return None
    last = rec.events[-1]
    sse_id = getattr(last.detail, "id", None)
    if sse_id:
        return sse_id
    if isinstance(last.data, dict) and seq_field and last.data.get(seq_field, "") != "":
        return str(last.data[seq_field])
    return None


@stimulus("concurrent")
def concurrent(s: "Session", t: str) -> list[Request]:
    """Every sample question, COPIES times, all at once."""
    return [s.request(t, question=q) for _ in range(COPIES) for q in s.profile.sample_questions]


@stimulus("drawn_params")
def drawn_params(s: "Session", t: str) -> list[Request]:
    """The question's boundary values, then values drawn from the seed (unicode,
    control characters, long strings) in each request parameter."""
    qp = s.profile.question_param
    spec = s.profile.request.params.get(qp)
    boundary = draw.boundary_values(spec.min_length if spec else None, spec.max_length if spec else None)
    drawn = list(draw.drawn_values(s.seed, DRAWN_VALUES))
    if s.profile.request.body is not None:  # a request document: the values go where the question goes
        return [s.request(t, question=v) for v in boundary + [value for _, value in drawn]]
    names = list(s.profile.request.params) or [qp]
    base = s.request(t, question=s.profile.sample_questions[0])
    return [base.with_params(qp, **{name: value}) for name, value in
            [(qp, v) for v in boundary] + [(names[slot % len(names)], value) for slot, value in drawn]]


@stimulus("drawn_questions")
def drawn_questions(s: "Session", t: str) -> list[Request]:
    """Drawn questions, the same ones on every transport (for parity)."""
    return [s.request(t, question=q) for q in draw.drawn_questions(s.seed, DRAWN_QUESTIONS)]


@dataclass
class DisconnectObservation:
    """What the disconnect probe saw: the open-streams gauge before a stream, while
    it was open, and after the client left it."""

    gauge: str
    recording: "Recording | None" = None
    before: float | None = None
    while_open: float | None = None
    after: float | None = None
    waited_s: float = 0.0
    left_after: int = LEAVE_AFTER
    full_duration_s: float | None = None
    """How long the same request ran when nobody left (the longest baseline stream)."""
    not_judged: str | None = None
    """Why the probe could not tell (no gauge, no stream, ...)."""

    @property
    def remaining_s(self) -> float | None:
        """How much longer the stream would have run when the client left."""
        rec = self.recording
        if rec is None or self.full_duration_s is None or len(rec.events) < self.left_after:
            return None
        return self.full_duration_s - (rec.events[self.left_after - 1].t_perf - rec.t_start)


@stimulus("disconnect", depends=("baseline",), active=True)
def disconnect(s: "Session", t: str) -> DisconnectObservation:
    """Leave a stream after a few events and watch the backend's open-streams gauge."""
    spec = s.profile.disconnect
    obs = DisconnectObservation(gauge=spec.gauge or "")
    if not spec.gauge:
        obs.not_judged = "the profile names no open-streams gauge"
        return obs
    if s.metrics_url is None:
        obs.not_judged = f"no metrics endpoint exposes {spec.gauge} (give --metrics-url)"
        return obs
    from .wire import get

    done = [r for r in s.recordings("baseline", t)
            if r.events and r.duration_s is not None and get(t).incomplete(r) is None]
    if not done:
        obs.not_judged = "no baseline stream completed; see the stream rules"
        return obs
    full = max(done, key=lambda r: r.duration_s or 0.0)
    obs.full_duration_s = full.duration_s
    obs.left_after = min(LEAVE_AFTER, len(full.events))
    # let streams left over by earlier recordings end first: one ending while the
    # probe waits would hide a leak
    obs.before, _ = s.wait_for_gauge(0, (full.duration_s or 0.0) + spec.within_s)
    if obs.before is None:
        obs.not_judged = f"{s.metrics_url} stopped exposing {spec.gauge}"
        return obs

    def during(event: Any) -> None:
        if event.index == obs.left_after - 1:
            obs.while_open = s.gauge()

    obs.recording = s.record(full.request.but(close_after=obs.left_after), on_event=during)
    obs.after, obs.waited_s = s.wait_for_gauge(obs.before, spec.within_s)
    return obs
