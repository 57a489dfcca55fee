"""When each byte may leave the relay: the link model, without I/O.

A direction of the emulated path is a :class:`Link`: a FIFO that serialises
bytes at ``rate_bps`` (shared by every connection that crosses it, as one
access link is) and then holds them for the one-way ``delay_s`` (propagation).
A write is cut into segments of at most :data:`network.conditions.MSS` bytes,
each released at ``max(arrival, link free) + size / rate + delay``: a capped link
delivers a large write progressively, an uncapped one after the delay only.

The relay asks :meth:`Link.schedule` for release times and sleeps until them;
these functions are pure (the clock is passed in), so the model is tested on
numbers, not on sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conditions import MSS


@dataclass
class Link:
    """One direction of the path."""

    delay_s: float = 0.0
    rate_bps: float | None = None
    busy_until: float = 0.0
    """When the link has finished serialising what it was given so far."""

    def schedule(self, size: int, now: float, not_before: float = 0.0) -> list[tuple[int, float]]:
        """Segments ``(bytes, release time)`` for ``size`` bytes written at ``now``.
        ``not_before`` holds the data back until then (the emulated TCP handshake
        of a new connection)."""
        out = []
        start = max(now, not_before)
        left = size
        while left > 0:
            seg = min(MSS, left)
            left -= seg
            if self.rate_bps:
                begin = max(start, self.busy_until)
                self.busy_until = begin + seg * 8 / self.rate_bps
                done = self.busy_until
            else:
                done = start
            out.append((seg, done + self.delay_s))
        return out


def handshake_hold(accepted_at: float, rtt_s: float) -> float:
    """The earliest time the client's first bytes may start across the path.

    The kernel completes the client's TCP handshake with the relay at once, on
    loopback; over a real path ``connect()`` returns one round trip later, and the
    request can leave only then. Holding the first bytes until ``accepted_at +
    rtt`` puts that round trip back into connect and time to first event."""
    return accepted_at + rtt_s
