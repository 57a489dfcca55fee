"""The transport recorders: the only code in the project that talks to a backend.

``record_sse`` and ``record_ws`` each open one stream, read it under the bounds
of :class:`conformance.recording.Limits` and return a
:class:`conformance.recording.Recording`. They never raise for network or
protocol trouble; ``Recording.error_kind`` / ``error`` say what happened.
"""

from conformance.recorders.sse import record_sse
from conformance.recorders.ws import record_ws, ws_url

__all__ = ["record_sse", "record_ws", "ws_url"]
