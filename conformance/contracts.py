"""The contracts between the stages, each written down once.

The suite writes a conformance report, the load scenarios write results, the
reports read both and write a report and a gate baseline: the format names and
versions are here. A recording that is not a complete stream has one error kind
from :class:`ErrorKind`, whoever classified it (a transport, the load figures,
the reports). Nothing in this module does I/O or imports a third-party package:
every stage may import it.
"""

from __future__ import annotations

from enum import Enum


class Format(str, Enum):
    """Document formats (the ``format`` field of each JSON file), name/version."""

    CONFORMANCE = "agentstream-conformance/1"
    """The suite's JSON report (``--conformance-report``)."""
    RESULTS = "agentstream-results/1"
    """A load run's ``summary.json`` (docs/results-format.md)."""
    REPORT = "agentstream-report/1"
    """The comparison report's ``report.json``."""
    BASELINE = "agentstream-baseline/1"
    """A gate baseline."""

    def __str__(self) -> str:
        return self.value


class ErrorKind(str, Enum):
    """Why a recording is not a complete stream: one vocabulary for every stage."""

    CONNECT = "connect"
    """No connection, or the request could not be sent."""
    TIMEOUT = "timeout"
    """A bound of ``Limits`` ran out (head, first event, idle, total, grace)."""
    TOO_LARGE = "too_large"
    """An event, a line or a message grew past its bound."""
    TOO_MANY = "too_many"
    """More events than ``Limits.max_events``."""
    PROTOCOL = "protocol"
    """A framing or HTTP error of the server."""
    CLOSED = "closed"
    """The connection dropped."""
    STATUS = "status"
    """The server answered without a stream (a refusal, or not an event stream)."""
    CLOSE = "close"
    """A WebSocket closed by the server with a code other than normal closure."""

    def __str__(self) -> str:
        return self.value


RECORDER_ERRORS: frozenset[str] = frozenset(
    k.value for k in (ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.TOO_LARGE, ErrorKind.TOO_MANY,
                      ErrorKind.PROTOCOL, ErrorKind.CLOSED))
"""The kinds a transport itself sets on ``Recording.error_kind``; STATUS and CLOSE
are judged from a recording that ended normally (``Transport.incomplete``)."""
