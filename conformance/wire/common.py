"""Pieces both recorders share: the TCP connect, JSON decoding of one event and the read budget."""

from __future__ import annotations

import functools
import ipaddress
import shlex
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from conformance.fastschema import loads
from conformance.recording import Limits

from .sse_lines import TooLarge

if TYPE_CHECKING:
    from conformance.recording import RecordedEvent, Recording


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One default TLS context, built once: loading the CA store takes tens of ms."""
    return ssl.create_default_context()


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """``socket.create_connection((host, port), timeout)``, without a name lookup
    when ``host`` is an IP address: under gevent (Locust) the lookup runs in a
    thread pool, about 0.1 ms of CPU per connection, more than the handshake."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a host name (or a scoped IPv6 address): the resolver decides
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def parse_json(text: str | None) -> tuple[Any, str | None]:
    """The JSON value of an event's text, or (None, a one-line parse error).

    Strict JSON, as a browser parses it: Python's ``json`` would accept ``NaN``
    and ``Infinity`` (which ``json.dumps`` writes for a float nan by default),
    but a client's ``JSON.parse`` throws on them, so they are parse errors here.
    Decoding is :func:`conformance.fastschema.loads` (orjson when it agrees with
    ``json``, else one reused strict decoder).
    """
    if text is None:
        return None, "not UTF-8 text"
    try:
        return loads(text), None
    except ValueError as exc:  # JSONDecodeError and _no_constant
        return None, f"invalid JSON: {exc}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"


@dataclass
class Budget:
    """Turns :class:`Limits` into an absolute deadline for the next read.

    Phases: ``head`` (waiting for the response head / handshake, bounded by
    ``first_event``), ``first_event`` (from the head to the first event),
    ``idle`` (after the first event: ``idle`` from the last complete line or
    message, ``event_idle`` from the last event), ``grace`` (after an end event,
    waiting for the server to end the stream, bounded by ``end_grace``),
    all capped by ``total`` from the start.
    """

    limits: Limits
    t_start: float
    phase: str = "head"
    _fixed: float | None = None
    _progress: float = 0.0
    """perf_counter of the last complete line or message (restarts ``idle``)."""
    _event: float = 0.0
    """perf_counter of the last event (restarts ``event_idle``)."""

    @property
    def t_total(self) -> float:
        return self.t_start + self.limits.total

    def enter(self, phase: str, *, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        self.phase = phase
        if phase == "head":
            self._fixed = now + self.limits.first_event
        elif phase == "first_event":
            self._fixed = now + self.limits.first_event
        elif phase == "grace":
            self._fixed = now + self.limits.end_grace
        else:  # idle: from the last progress and the last event
            self._fixed = None
            self._progress = self._event = now

    def progress(self, now: float | None = None) -> None:
        """A complete line or message arrived: ``idle`` starts again."""
        self._progress = time.perf_counter() if now is None else now

    def event(self, now: float | None = None) -> None:
        """An event arrived: ``idle`` and ``event_idle`` start again."""
        self._progress = self._event = time.perf_counter() if now is None else now

    def deadline(self) -> float:
        if self._fixed is not None:
            return min(self._fixed, self.t_total)
        return min(self._progress + self.limits.idle, self._event + self.limits.event_idle, self.t_total)

    def remaining(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        return max(0.0, self.deadline() - now)

    def describe_timeout(self, now: float | None = None) -> str:
        """One sentence saying which bound ran out."""
        now = time.perf_counter() if now is None else now
        if now >= self.t_total - 1e-3:
            return f"the recording ran past {self.limits.describe('total')}"
        return {
            "head": f"no response head within {self.limits.describe('first_event')}",
            "first_event": f"no event within {self.limits.describe('first_event')} of the response head",
            "idle": (f"no event for {self.limits.describe('event_idle')} (only comments or keep-alives)"
                     if self._event + self.limits.event_idle <= self._progress + self.limits.idle
                     else f"no complete line or message for {self.limits.describe('idle')}"),
            "grace": f"the server did not end the stream within {self.limits.describe('end_grace')}",
        }.get(self.phase, "timed out")


def query_url(url: str, query: Iterable[tuple[str, str]]) -> str:
    """``url`` with ``query`` appended (as httpx sends it: form encoding). A lone
    surrogate (a drawn value no client can send) is percent-encoded as its UTF-8
    bytes, so that a reproduction line can still be printed."""
    pairs = list(query)
    if not pairs:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(pairs, errors="surrogatepass")


def shell_line(parts: Iterable[str]) -> str:
    """A command line a POSIX shell reads back as ``parts``."""
    return " ".join(shlex.quote(p) for p in parts)


def admit(rec: "Recording", event: "RecordedEvent", budget: Budget, limits: Limits, kept: int) -> int:
    """Keep ``event`` on ``rec`` within ``limits.max_recording_bytes`` and restart the
    read bounds; returns the bytes kept so far. Both transports admit events here,
    so that their bounds mean the same. Raises ``TooLarge`` past the cap."""
    kept += len(event.raw) + 2 * len(event.text or "")  # as received, as text, and parsed
    if kept > limits.max_recording_bytes:
        raise TooLarge(f"the events kept exceed {limits.describe('max_recording_bytes')}")
    rec.events.append(event)
    if rec.t_first_event is None:
        rec.t_first_event = event.t_perf
        budget.enter("idle")
    elif budget.phase == "idle":
        budget.event(event.t_perf)
    return kept
