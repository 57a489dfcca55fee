"""The wire stage: transports, the only code in the project that talks to a backend.

A transport (:mod:`.transport`) records a :class:`conformance.request.Request`
into a :class:`conformance.recording.Recording` under the bounds of
:class:`conformance.recording.Limits`, counting bytes at the socket. The built-in
ones register here on import: ``sse`` (:mod:`.sse`), ``ws`` (:mod:`.ws`) and,
when the ``http2`` extra (h2) is installed, ``sse-h2`` (:mod:`.sse_h2`).
They never raise for network or protocol trouble; ``Recording.error_kind`` /
``error`` say what happened.
"""

from conformance.wire.sse import SSE, record_sse
from conformance.wire.transport import TRANSPORTS, Transport, get, label, record, register
from conformance.wire.ws import WS, record_ws, ws_url

try:  # SSE over HTTP/2 needs h2 (the http2 extra); without it the transport is not registered
    from conformance.wire import sse_h2  # noqa: F401
except ImportError:
    pass

__all__ = ["SSE", "TRANSPORTS", "Transport", "WS", "get", "label", "record", "record_sse", "record_ws", "register", "ws_url"]
