"""The seed's claims about SSE and WebSocket, held against measured figures.

The seed document claimed, for the same agent stream:

* latency ~200 ms over SSE against ~50 ms over WebSocket;
* 25 KB against 600 bytes per 100 messages;
* ~250 against ~6 bytes of overhead per message;
* 10-12 s against 5-7 s for 100 events.

Each claim says SSE is some number of times worse than WebSocket. Absolute
figures depend on the backend and the network, the ratio is what a claim about
the transport really says, so the verdict is on the ratio SSE / WS:

* **confirmed**: at least half the claimed advantage was measured,
  ``measured − 1 >= (claimed − 1) / 2`` (for a 4x claim: at least 2.5x);
* **contradicted**: WebSocket measured worse than SSE by more than 10 %
  (``measured < 1 / 1.1``);
* **not confirmed**: anything between (including no difference at all);
* **not measured**: a figure is missing (no timestamp on events, a transport absent),
  or no ratio can be formed (WS measured 0, or a negative framing figure when
  compression puts fewer bytes on the wire than the payload holds).

**Intervals.** Each ratio comes with a 95 % bootstrap interval over streams
(:mod:`reports.stats`, seeded) and the number of streams of each side, and the
verdict is given only when the whole interval is on one side of the threshold
it needs (confirmed: at or above ``1 + (claimed − 1) / 2``; contradicted: below
``1 / 1.1``; not confirmed: below the first threshold otherwise); an interval
that straddles the confirmation threshold is **undecided**, with the number of
further streams per transport an interval of the same spread would need. No
interval (results without per-stream samples) is undecided too.

The claims are about the two bindings, not about transport names: the figures
of "SSE" are those of the results' first transport of the ``sse`` binding
(:func:`reports.transports.of_binding`), those of "WS" of the first of the ``ws``
binding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from reports import stats
from reports.metrics import get
from reports.rules import fmt
from reports.transports import of_binding

SOURCE = ("The claims come from the seed document this project started from, which quotes them as common "
          "knowledge about SSE against WebSocket without a measurement of its own. The published comparisons "
          "those figures trace back to measured WebSocket against HTTP polling — a new request, with its "
          "headers, per message — not against SSE, which keeps one response open and frames an event with a "
          "few bytes. They are held here as ratios SSE / WebSocket, the part of a claim about the transport "
          "that does not depend on the network or the backend.")
"""Where the claims come from, for the report (one place)."""

CONFIRM_SHARE = 0.5
CONTRADICT_RATIO = 1 / 1.1

SSE, WS = "sse", "ws"
"""The bindings the seed's claims compare."""


@dataclass(frozen=True)
class Claim:
    """One claim, the figures measured for it, and the verdict in plain words."""

    id: str
    claim: str
    figure: str
    """What was measured for it, in words (short)."""
    method: str
    """How that figure was obtained."""
    unit: str
    sse_claimed: float
    ws_claimed: float
    sse_measured: float | None
    ws_measured: float | None
    verdict: str
    text: str
    sse_transport: str | None = None
    """The transport whose figures stand for SSE (None: none in the results)."""
    ws_transport: str | None = None
    """The transport whose figures stand for WebSocket."""
    interval: stats.Interval | None = None
    """The ratio's bootstrap interval over streams (None: no ratio, or no samples)."""
    more_streams: int | None = None
    """Undecided: further streams per transport an interval of the same spread needs."""

    @property
    def claimed_ratio(self) -> float:
        return self.sse_claimed / self.ws_claimed

    @property
    def measured_ratio(self) -> float | None:
        """SSE / WS; None when a figure is missing, WS is 0, or a figure is negative
        (framing with compression: fewer bytes on the wire than in the payload),
        since no ratio then says which transport is worse."""
        if self.sse_measured is None or self.ws_measured is None or self.ws_measured <= 0 or self.sse_measured < 0:
            return None
        return self.sse_measured / self.ws_measured

    @property
    def confirm_at(self) -> float:
        """The ratio from which the claim counts as confirmed."""
        return 1 + (self.claimed_ratio - 1) * CONFIRM_SHARE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["claimed_ratio"] = self.claimed_ratio
        d["measured_ratio"] = self.measured_ratio
        d["confirm_at"] = self.confirm_at
        d["interval"] = self.interval.to_dict() if self.interval is not None else None
        return d


def verdict(claimed_ratio: float, measured_ratio: float | None) -> str:
    """confirmed / not confirmed / contradicted / not measured (see module doc)."""
    if measured_ratio is None:
        return "not measured"
    if measured_ratio - 1 >= (claimed_ratio - 1) * CONFIRM_SHARE:
        return "confirmed"
    if measured_ratio < CONTRADICT_RATIO:
        return "contradicted"
    return "not confirmed"


def _ratio_words(r: float) -> str:
    # fmt keeps 3 significant digits below 1: a ratio of 0.002 must not read "0x"
    return f"{fmt(r)}x" if r < 10 else f"{r:.0f}x"


def _claim(id_: str, claim: str, figure: str, method: str, unit: str, sse_c: float, ws_c: float,
           sse_m: float | None, ws_m: float | None, missing: str = "",
           transports: tuple[str | None, str | None] = (None, None),
           interval: stats.Interval | None = None) -> Claim:
    c = Claim(id_, claim, figure, method, unit, sse_c, ws_c, sse_m, ws_m, "", "")
    point = verdict(c.claimed_ratio, c.measured_ratio)
    more = None
    measured = f"measured SSE {figure} {fmt(sse_m)} {unit} vs WS {fmt(ws_m)} {unit}"
    if point == "not measured" and sse_m is not None and ws_m is not None:
        # both figures were measured: only the ratio cannot be formed
        v, interval = "not measured", None
        text = (f"not measured: SSE {figure} {fmt(sse_m)} {unit} vs WS {fmt(ws_m)} {unit}: "
                "no ratio from a zero or negative figure to hold against the claim")
    elif point == "not measured":
        v, interval = "not measured", None
        text = f"not measured: {missing or 'a figure is missing from the run'}"
    elif interval is None:
        v = "undecided"
        text = (f"undecided: {measured} (ratio {_ratio_words(c.measured_ratio)}, claim was "
                f"{_ratio_words(c.claimed_ratio)}), but no interval: these results hold no per-stream samples "
                "(samples.json, written by load runs of this version)")
    else:
        v, more = stats.decide(interval, c.confirm_at, CONTRADICT_RATIO)
        spread = (f"ratio {_ratio_words(c.measured_ratio)}, 95 % interval {_ratio_words(interval.low)} to "
                  f"{_ratio_words(interval.high)} over {interval.n_a} SSE and {interval.n_b} WS streams; claim was "
                  f"{_ratio_words(c.claimed_ratio)}, confirmed from {_ratio_words(c.confirm_at)}")
        if v == "undecided":
            need = (f"needs about {more} more streams per transport" if more is not None
                    else "the ratio sits on the threshold")
            text = f"undecided: {need}: {measured} ({spread})"
        else:
            text = f"{v}: {measured} ({spread})"
    return Claim(id_, claim, figure, method, unit, sse_c, ws_c, sse_m, ws_m, v, text, *transports,
                 interval=interval, more_streams=more)


def evaluate_claims(summary: Mapping[str, Any], timestamp_field: str | None = None,
                    samples: Mapping[str, Sequence[stats.Sample]] | None = None) -> list[Claim]:
    """The four claims against a summary whose ``transports`` hold a transport of
    each binding (and, for the duration claim, ``derived.duration_per_100_events_ms``);
    ``timestamp_field`` names the events' timestamp in the texts; ``samples``
    (transport -> its streams' figures, ``samples.json``) give the intervals."""
    transports = summary.get("transports") if isinstance(summary.get("transports"), Mapping) else {}
    sse, ws = of_binding(transports, SSE), of_binding(transports, WS)

    def g(t: str | None, path: str) -> float | None:
        return None if t is None else get(summary, f"{t}.{path}")

    ts = f"`{timestamp_field}`" if timestamp_field else "timestamp"
    shared = (summary.get("clock") or {}).get("shared", True)
    sse_lat, ws_lat = g(sse, "delivery.p50_ms"), g(ws, "delivery.p50_ms")
    lat_missing = f"no event carried {ts if timestamp_field else 'a timestamp'}, so there is no delivery latency"
    if shared is False:
        sse_lat = ws_lat = None
        lat_missing = "client and server do not share a clock, so delivery latency is not valid"

    absent = [name for t, name in ((sse, "SSE"), (ws, "WebSocket")) if not g(t, "streams")]
    if absent:
        gone = f"no {' or '.join(absent)} stream was measured"
        return [_claim(c.id, c.claim, c.figure, c.method, c.unit, c.sse_claimed, c.ws_claimed, None, None, gone,
                       (sse, ws)) for c in _claims(g, sse, ws, None, None, "", ts)]
    return _claims(g, sse, ws, sse_lat, ws_lat, lat_missing, ts, samples)


def _claims(g: Callable[[str | None, str], float | None], sse: str | None, ws: str | None,
            sse_lat: float | None, ws_lat: float | None, lat_missing: str, ts: str,
            samples: Mapping[str, Sequence[stats.Sample]] | None = None) -> list[Claim]:
    def interval(figure: stats.Figure) -> stats.Interval | None:
        if samples is None or sse is None or ws is None:
            return None
        return stats.ratio_interval(samples.get(sse) or [], samples.get(ws) or [], figure)

    def per100(t: str | None) -> float | None:
        v = g(t, "derived.duration_per_100_events_ms")
        return v / 1000.0 if v is not None else None

    def wire100(t: str | None) -> float | None:
        v = g(t, "bytes.per_event.wire")
        return v * 100.0 if v is not None else None

    pair = (sse, ws)
    return [
        _claim("latency", "latency ~200 ms over SSE against ~50 ms over WebSocket",
               "p50 delivery", f"p50 of (arrival wall clock − event {ts}) over all events", "ms",
               200.0, 50.0, sse_lat, ws_lat, lat_missing, pair,
               interval(stats.p50_delivery_ms) if sse_lat is not None else None),
        _claim("bytes-per-100", "25 KB against 600 bytes per 100 messages",
               "wire bytes per 100 events", "wire bytes per event × 100 (response head / handshake excluded)",
               "B", 25_000.0, 600.0, wire100(sse), wire100(ws), "wire bytes per event missing", pair,
               interval(stats.per_event("w"))),
        _claim("overhead", "~250 against ~6 bytes of overhead per message",
               "framing per event", "wire bytes per event − payload bytes per event", "B", 250.0, 6.0,
               g(sse, "bytes.per_event.framing"), g(ws, "bytes.per_event.framing"),
               "framing bytes per event missing", pair, interval(stats.framing_per_event)),
        _claim("duration-100", "10-12 s against 5-7 s for 100 events",
               "duration per 100 events", "p50 stream duration × 100 / p50 events per stream", "s",
               11.0, 6.0, per100(sse), per100(ws), "stream duration or events per stream missing", pair,
               interval(stats.duration_per_100_s)),
    ]
