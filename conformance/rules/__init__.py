"""The rules stage: every rule the suite checks, each a registered function.

Importing this package registers them all (``RULES``, by stable ID, in the
order below). ``check_stream(recording, profile)`` runs every per-stream rule on
one recorded stream without pytest or a session.
"""

from . import stream, sse, ws, input, parity, concurrency, disconnect, browser  # noqa: F401 - each module registers its rules
from .registry import RULES, NotJudged, Precondition, Rule, default_rules, get, rule, stream_rule


def check_stream(recording, profile):
    """Every per-stream rule ``recording`` breaks (see :func:`conformance.session.check_stream`)."""
    from conformance.session import check_stream as run

    return run(recording, profile)


__all__ = ["RULES", "NotJudged", "Precondition", "Rule", "check_stream", "default_rules", "get", "rule", "stream_rule"]
