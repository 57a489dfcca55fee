"""Which web origins may use the stream endpoints: one allowlist for CORS and the WebSocket.

A browser sends ``Origin`` on every cross-origin request and on every WebSocket
handshake. Two very different things follow from it:

* SSE (``EventSource``) is a plain GET: a page on another origin can only *read*
  the response when the server answers with ``Access-Control-Allow-Origin``. Without
  it the browser fires ``error`` at once (the seed's frontend on its own dev port
  could not use SSE at all).
* A WebSocket handshake is never blocked by the browser: CORS does not apply, so
  a server that does not check ``Origin`` itself serves any page on the web with
  the user's cookies (cross-site WebSocket hijacking; OWASP's WebSocket cheat
  sheet and ASVS V4 ask for an Origin allowlist at the handshake).

So the same :class:`OriginPolicy` answers both: ``cors_headers`` for SSE, and
``allows`` for the handshake (refused with 403 otherwise). Pure functions on
strings, no I/O: the transports ask, the tests prove it without a socket.

Patterns: an exact origin (``https://app.example.com``), a port wildcard
(``http://localhost:*``), or ``*`` (any origin: a public, credential-free API).
A request without ``Origin`` is not a browser page (curl, the suite's recorders,
a server-side client) and is always allowed: the check protects browser users,
it is not authentication.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEV_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")
"""Local development origins allowed by default: a frontend dev server on its own
port (Vite's 5173, webpack's 3000, ...) on this machine."""


class OriginError(ValueError):
    """A pattern of the allowlist is not an origin (the message says which and why)."""


def normalize(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case, default ports dropped; None when
    ``origin`` is not a serialised http(s) origin (``null``, a path, garbage)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or (parts.scheme, port) in (("http", 80), ("https", 443)):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _pattern(text: str) -> str:
    text = text.strip()
    if text == "*":
        return text
    if text.endswith(":*"):
        base = normalize(text[:-2])
        if base is None or urlsplit(base).port is not None:
            raise OriginError(f"{text!r} is not an origin with a port wildcard (like http://localhost:*)")
        return base + ":*"
    exact = normalize(text)
    if exact is None:
        raise OriginError(f"{text!r} is not an origin (scheme://host[:port], like https://app.example.com)")
    return exact


@dataclass(frozen=True)
class OriginPolicy:
    """The allowlist, plus the server's own origin (always allowed)."""

    patterns: tuple[str, ...] = DEV_ORIGINS

    @classmethod
    def parse(cls, items: Iterable[str]) -> OriginPolicy:
        """From user input (command line, comma-separated lists); OriginError names a bad one."""
        patterns = []
        for item in items:
            patterns += [_pattern(p) for p in item.split(",") if p.strip()]
        return cls(tuple(dict.fromkeys(patterns)))

    def allows(self, origin: str | None, host: str | None = None, scheme: str = "http") -> bool:
        """Whether a request with this ``Origin`` header may stream. No header: not
        a browser page, allowed. ``host`` (the request's Host) makes the server's
        own origin allowed whatever the list says."""
        if origin is None:
            return True
        found = normalize(origin)
        if found is None:
            return False
        if host and normalize(f"{scheme}://{host}") == found:
            return True
        for pattern in self.patterns:
            if pattern == "*" or pattern == found:
                return True
            if pattern.endswith(":*"):
                base = pattern[:-2]
                if found == base or (found.startswith(base + ":") and found[len(base) + 1:].isdigit()):
                    return True
        return False

    def cors_headers(self, origin: str | None, host: str | None = None, scheme: str = "http") -> dict[str, str]:
        """The CORS headers of a response to a request with this ``Origin``: the
        origin echoed (never ``*`` with credentials, and a cache must key on it,
        hence ``Vary``), or nothing for an origin the list does not allow."""
        if origin is None or not self.allows(origin, host, scheme):
            return {"Vary": "Origin"}
        return {"Access-Control-Allow-Origin": normalize(origin) or origin, "Vary": "Origin"}


def request_origin(headers: Mapping[str, str]) -> str | None:
    """The ``Origin`` header of a request, or None."""
    return headers.get("origin")
