"""Prometheus metrics of one app instance, in its own registry.

Each ``create_app()`` gets its own ``Metrics`` so several apps can live in one
process (tests) without clashing in the global registry. ``agent_active_streams``
is what the disconnect check reads from outside (PROTOCOL.md section 7).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

TRANSPORTS = ("sse", "ws")


class Metrics:
    """Counters per transport ("sse"/"ws") and the gauge of open streams."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.active = Gauge("agent_active_streams", "Open streams (accepted and not finished), both transports.", registry=r)
        self.started = Counter("agent_streams_started", "Streams accepted.", ["transport"], registry=r)
        self.completed = Counter("agent_streams_completed", "Streams that ran to stream_end.", ["transport"], registry=r)
        self.cancelled = Counter(
            "agent_streams_cancelled", "Streams stopped by a client cancel or disconnect.", ["transport"], registry=r
        )
        self.rejected = Counter("agent_streams_rejected", "Requests refused for bad parameters.", ["transport"], registry=r)
        self.events = Counter("agent_events_sent", "Events handed to the transport.", ["transport"], registry=r)
        for transport in TRANSPORTS:
            for counter in (self.started, self.completed, self.cancelled, self.rejected, self.events):
                counter.labels(transport=transport)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
