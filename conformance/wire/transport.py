"""The transport interface and its registry: the one place that knows which
transports exist.

A transport turns a :class:`conformance.request.Request` into a
:class:`conformance.recording.Recording` within :class:`Limits`, says whether the
backend accepted the stream, and how a user reproduces the request from a shell.
Everything above the wire (rules, session, load, reports) asks the registry;
nothing outside the transport modules compares a transport's name. A transport
follows a *binding* of the profile (``sse`` or ``ws``: the profile section whose
expectations apply to it), so SSE over HTTP/2 would be a second transport of the
``sse`` binding.

Register a transport by calling :func:`register` at import time of its module
(the built-in ones are imported by ``conformance.wire``; a plug-in is a module
given to pytest with ``-p MODULE``, or imported before the session starts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Callable, ClassVar

from conformance.recording import Limits, RecordedEvent, Recording
from conformance.request import Request

OnEvent = Callable[[RecordedEvent], None]


class Transport:
    """Base class of a transport. Subclasses set the class attributes and
    implement :meth:`record`, :meth:`accepted` and :meth:`reproduce`."""

    name: ClassVar[str]
    """Registry key, also the key of the transport's section in a profile."""
    binding: ClassVar[str]
    """The profile binding this transport follows ('sse' or 'ws')."""
    label: ClassVar[str]
    """How reports and tables name it."""
    embedded_server: ClassVar[str | None] = None
    """The HTTP server the embedded reference server must run on for this
    transport (``reference_server.serve.SERVERS``), or None for its default."""

    def record(self, request: Request, limits: Limits = Limits(), on_event: OnEvent | None = None) -> Recording:
        """Open the stream and record it. Never raises for network or protocol
        trouble (``Recording.error_kind`` says what happened); what ``on_event``
        raises propagates."""
        raise NotImplementedError

    def accepted(self, rec: Recording) -> bool:
        """The server accepted the stream (it did not answer with a refusal)."""
        raise NotImplementedError

    def new_detail(self) -> object:
        """A fresh detail object of this transport's recordings (``Recording.detail``)."""
        return None

    def incomplete(self, rec: Recording) -> tuple[str, str] | None:
        """(error kind, message) when the recording is not a complete stream
        (transport error, refusal, abnormal end); None for a complete one."""
        if rec.error_kind is not None:
            return rec.error_kind, rec.error or rec.error_kind
        if not self.accepted(rec):
            return "status", (f"status {rec.status}" if rec.status is not None else "no response status")
        return None

    def reproduce(self, request: Request) -> str:
        """A one-line shell command that sends the same request."""
        raise NotImplementedError

    def summary(self, rec: Recording) -> list[str]:
        """Transport-specific ``key=value`` words for the recorder's summary line."""
        return []

    def __repr__(self) -> str:
        return f"<transport {self.name} ({self.binding} binding)>"


TRANSPORTS: dict[str, Transport] = {}
"""Every registered transport by name, in registration order."""


def register(transport: Transport) -> Transport:
    """Add a transport to the registry (a second one with the same name replaces it)."""
    TRANSPORTS[transport.name] = transport
    return transport


def get(name: str) -> Transport:
    """The transport of that name; KeyError names the known ones."""
    try:
        return TRANSPORTS[name]
    except KeyError:
        raise KeyError(f"no transport named {name!r} (known: {', '.join(TRANSPORTS) or 'none'})") from None


def record(request: Request, limits: Limits = Limits(), on_event: OnEvent | None = None) -> Recording:
    """Record ``request`` with the transport it names."""
    return get(request.transport).record(request, limits, on_event)


def available(sections: Mapping[str, Any], binding: str | None = None) -> list[str]:
    """The transports of a profile (``profile.transports``: name -> section) that are
    registered, in the profile's order, optionally only those of one binding: what
    the suite and the load run can use."""
    return [name for name, section in sections.items()
            if name in TRANSPORTS and (binding is None or section.binding == binding)]


def label(name: str) -> str:
    """The display name of a transport, or the name itself when it is not registered
    (results written by another installation may name transports this one lacks)."""
    t = TRANSPORTS.get(name)
    return t.label if t is not None else name



def embedded_server(names: Iterable[str]) -> str | None:
    """The server the embedded reference server needs to serve every registered
    transport of ``names`` (None: its default): what the suite, ``python -m load``
    and ``agentstream run`` start it with."""
    for name in names:
        t = TRANSPORTS.get(name)
        if t is not None and t.embedded_server is not None:
            return t.embedded_server
    return None


def unreachable(base_url: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at ``base_url`` (no TCP connection within ``timeout``), or
    None when something accepts connections there. The suite asks this once before
    any rule runs, so that a backend that is down is one clear error, not a
    failure of every rule."""
    import socket
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(base_url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    except ValueError as exc:
        return f"not a URL: {exc}"
    if not host:
        return "the URL names no host"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        return f"{type(exc).__name__}: {exc.strerror or exc}"
