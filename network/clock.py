"""Client/server clock offset: estimated from the backend's own timestamps (no I/O here).

Delivery latency is ``arrival wall clock − event ts``: right only when the client
and the server read the same clock. On loopback (and through the shaping relay,
which is on loopback too) they do. When they may not, the offset
``θ = server clock − client clock`` is bounded by causality, as NTP bounds it
from one exchange, using every event of a few probe streams:

* an event cannot leave the server before the request was sent:
  ``ts − θ ≥ t_sent``, so ``θ ≤ ts_first − t_sent`` (tightest on the first
  event), and the answer to a WebSocket cancel not before the cancel was sent
  (tighter still: no connection set-up and no start-up in between);
* nor arrive before it left: ``t_arrival ≥ ts − θ``, so ``θ ≥ max(ts − t_arrival)``
  (the lower envelope of arrival minus ``ts``, over every event).

The estimate is the middle of ``[low, high]`` and its uncertainty half the
width: with a symmetric path that is the true offset within about half a round
trip plus the server's time to its first event. Delivery latency corrected by
it is ``arrival − ts + θ``, and it is an *estimate* whenever the clocks are not
known to be shared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

METHOD = ("causal bounds from the probe streams' own ts: offset ≤ min(ts of the first event − request sent, "
          "ts of the answer to a WebSocket cancel − cancel sent), offset ≥ max(ts − arrival) over every event; "
          "estimate = middle, uncertainty = half the width")


@dataclass(frozen=True)
class StreamTimes:
    """What the bound needs of one stream: when the request left (client wall
    clock) and each event's (ts, arrival wall clock)."""

    sent_wall: float
    events: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Offset:
    low_s: float
    high_s: float
    streams: int
    events: int

    @property
    def estimate_s(self) -> float:
        return (self.low_s + self.high_s) / 2

    @property
    def uncertainty_s(self) -> float:
        return abs(self.high_s - self.low_s) / 2

    @property
    def consistent(self) -> bool:
        """False when the bounds cross (a ts rounded or set after sending, or a clock
        that jumped): the estimate is then the crossing's middle."""
        return self.low_s <= self.high_s

    @property
    def excludes_zero(self) -> bool:
        """The clocks demonstrably differ (0 is outside the bounds)."""
        return self.consistent and (self.low_s > 0 or self.high_s < 0)

    def to_dict(self, shared: bool) -> dict[str, Any]:
        return {
            "method": METHOD,
            "offset_ms": round(self.estimate_s * 1e3, 3),
            "uncertainty_ms": round(self.uncertainty_s * 1e3, 3),
            "low_ms": round(self.low_s * 1e3, 3), "high_ms": round(self.high_s * 1e3, 3),
            "consistent": self.consistent, "streams": self.streams, "events": self.events,
            "latency_is_estimate": latency_is_estimate(shared, self),
        }


def bounds(streams: Iterable[StreamTimes]) -> Offset | None:
    """The offset bounds over ``streams``; None when no event carried a timestamp."""
    low, high = float("-inf"), float("inf")
    n_streams = n_events = 0
    for s in streams:
        if not s.events:
            continue
        n_streams += 1
        n_events += len(s.events)
        high = min(high, s.events[0][0] - s.sent_wall)
        low = max(low, max(ts - arrival for ts, arrival in s.events))
    if not n_streams:
        return None
    return Offset(low, high, n_streams, n_events)


def latency_is_estimate(shared: bool, offset: Offset | None) -> bool:
    """Delivery latency is an estimate unless the clocks are shared and nothing
    says otherwise (no offset known to differ from zero)."""
    return not shared or (offset is not None and offset.excludes_zero)


def from_recordings(recordings: Iterable[Any], ts_field: str) -> list[StreamTimes]:
    """:class:`StreamTimes` of recorded streams (``conformance.recording.Recording``)."""
    out = []
    for rec in recordings:
        events = [(float(e.data[ts_field]), e.t_wall) for e in rec.events
                  if isinstance(e.data, dict) and isinstance(e.data.get(ts_field), (int, float))
                  and not isinstance(e.data.get(ts_field), bool)]
        sent = rec.wall_start
        if rec.t_connected is not None:  # the request leaves once connected: a tighter bound
            sent += rec.t_connected - rec.t_start
        out.append(StreamTimes(sent, events))
    return out
