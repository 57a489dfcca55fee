"""Named network conditions, and custom ones from a short spec: the one list of them.

A condition is what the shaping relay (:mod:`network.relay`) applies between the
client and the backend: a one-way delay in each direction (half the round trip
each, unless given apart) and a bandwidth cap in each direction, shared by every
connection through the relay as one link is. ``loopback`` is no relay at all, the
condition of a run without ``--network``.

``--network NAME`` takes a name of :data:`CONDITIONS` or a custom spec, a
comma-separated list of ``key=value``::

    rtt=80ms                      80 ms round trip, no bandwidth cap
    rtt=150ms,down=1.6mbit,up=750kbit
    delay=20ms,rate=10mbit        20 ms each way, 10 Mbit/s each way

Keys: ``rtt`` (split evenly), ``delay`` (one way, both directions), ``delay_down``,
``delay_up``, ``rate`` (both directions), ``down``, ``up``, ``buffer`` (bytes a
direction of one connection may hold, default 256 KiB). Times take ``us``,
``ms`` or ``s``; rates ``bit``, ``kbit``, ``mbit`` or ``gbit`` (per second);
sizes ``B``, ``KiB`` or ``MiB``. Bad input raises :class:`ConditionError` with a
message that names the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_BUFFER = 256 * 1024
"""Bytes one direction of one connection may hold in the relay before it stops
reading (the sender then feels back-pressure, as behind a full link)."""
MSS = 1448
"""Segment size the relay schedules data in: a TCP segment's payload on a
1500-byte Ethernet MTU with timestamps, so that a capped link delivers a large
write progressively, not as one burst."""


class ConditionError(ValueError):
    """A --network value that names no condition or has a bad key or value."""


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only hosts a relay or proxy of this
    project forwards to (load is generated against this machine only)."""
    import ipaddress

    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Condition:
    """One network condition. Delays in seconds, rates in bits per second (None: no cap)."""

    name: str
    delay_down_s: float = 0.0
    """Server to client."""
    delay_up_s: float = 0.0
    """Client to server."""
    rate_down_bps: float | None = None
    rate_up_bps: float | None = None
    buffer_bytes: int = DEFAULT_BUFFER
    description: str = ""

    @property
    def rtt_s(self) -> float:
        return self.delay_down_s + self.delay_up_s

    @property
    def shaped(self) -> bool:
        """False for the loopback condition: no relay is needed."""
        return bool(self.delay_down_s or self.delay_up_s or self.rate_down_bps or self.rate_up_bps)

    def describe(self) -> str:
        """``wan: 40 ms RTT (20 + 20), 100 Mbit/s down, 100 Mbit/s up``."""
        if not self.shaped:
            return f"{self.name}: no shaping (direct loopback)"
        parts = [f"{_ms(self.rtt_s)} ms RTT ({_ms(self.delay_up_s)} up + {_ms(self.delay_down_s)} down)"]
        parts.append(f"{_rate(self.rate_down_bps)} down, {_rate(self.rate_up_bps)} up")
        return f"{self.name}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rtt_ms"] = round(self.rtt_s * 1e3, 3)
        return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:g}"


def _rate(bps: float | None) -> str:
    if not bps:
        return "uncapped"
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g} {unit}"
    return f"{bps:g} bit/s"


CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition("loopback", description="no relay: client and backend on loopback, as without --network"),
    Condition("lan", 0.0005, 0.0005, 1e9, 1e9,
              description="a wired office or data-centre LAN"),
    Condition("wan", 0.020, 0.020, 100e6, 100e6,
              description="a good wide-area path to a nearby region"),
    Condition("intercontinental", 0.075, 0.075, 50e6, 50e6,
              description="a path across an ocean"),
    Condition("mobile", 0.075, 0.075, 1.6e6, 0.75e6,
              description="a slow mobile link (3G-like), bandwidth-bound"),
)}
"""Every named condition, by name: ``--network`` choices, docs/networks.md and tests read this."""

_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_RATE = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_SIZE = {"b": 1, "kib": 1024, "mib": 1024 * 1024}
_NUM = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_KEYS = ("rtt", "delay", "delay_down", "delay_up", "rate", "down", "up", "buffer")


def _value(key: str, text: str, units: dict[str, float], default_unit: str) -> float:
    m = _NUM.match(text)
    if not m:
        raise ConditionError(f"--network {key}={text!r}: not a number with a unit ({', '.join(units)})")
    number, unit = float(m.group(1)), (m.group(2) or default_unit).lower()
    if unit not in units:
        raise ConditionError(f"--network {key}={text!r}: unknown unit {unit!r} (one of {', '.join(units)})")
    value = number * units[unit]
    if not math.isfinite(value):
        raise ConditionError(f"--network {key}={text!r}: not a finite value")
    return value


def parse(spec: str) -> Condition:
    """The condition a ``--network`` value names: a key of :data:`CONDITIONS`, or a custom spec."""
    text = (spec or "").strip()
    if not text:
        raise ConditionError(f"--network: give a condition ({', '.join(CONDITIONS)}) or a spec such as rtt=80ms")
    if text in CONDITIONS:
        return CONDITIONS[text]
    if "=" not in text:
        raise ConditionError(f"--network {text!r}: no such condition (known: {', '.join(CONDITIONS)}; "
                             "or a custom spec such as rtt=80ms,down=2mbit)")
    fields: dict[str, float] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or key not in _KEYS:
            raise ConditionError(f"--network {item.strip()!r}: unknown key (keys: {', '.join(_KEYS)})")
        if key in fields:
            raise ConditionError(f"--network: {key} given twice")
        if key in ("rate", "down", "up"):
            fields[key] = _value(key, value, _RATE, "bit")
        elif key == "buffer":
            fields[key] = _value(key, value, _SIZE, "b")
        else:
            fields[key] = _value(key, value, _TIME, "ms")
    if "rtt" in fields and ({"delay", "delay_down", "delay_up"} & fields.keys()):
        raise ConditionError("--network: give rtt or delay(_down/_up), not both")
    if "rate" in fields and ({"down", "up"} & fields.keys()):
        raise ConditionError("--network: give rate or down/up, not both")
    half = fields.get("rtt", 2 * fields.get("delay", 0.0)) / 2
    cond = Condition(
        name=text,
        delay_down_s=fields.get("delay_down", half),
        delay_up_s=fields.get("delay_up", half),
        rate_down_bps=fields.get("down", fields.get("rate")) or None,
        rate_up_bps=fields.get("up", fields.get("rate")) or None,
        buffer_bytes=int(fields.get("buffer", DEFAULT_BUFFER)),
        description="custom",
    )
    if cond.rtt_s > 10:
        raise ConditionError(f"--network {text!r}: a round trip of {cond.rtt_s:g} s is out of range (at most 10 s)")
    for rate in (cond.rate_down_bps, cond.rate_up_bps):
        if rate is not None and rate < 8_000:
            raise ConditionError(f"--network {text!r}: a rate below 8 kbit/s is out of range")
    if not 4 * MSS <= cond.buffer_bytes <= 64 * 1024 * 1024:
        raise ConditionError(f"--network buffer: {cond.buffer_bytes} B is out of range ({4 * MSS} B to 64 MiB)")
    return cond


def parse_list(spec: str) -> list[Condition]:
    """``loopback+wan+mobile`` or ``wan`` -> the conditions, in order (agentstream run
    measures each in turn). ``+`` separates them, because a custom spec has commas."""
    items = [s for s in (spec or "").split("+") if s.strip()]
    if not items:
        return [parse(spec)]
    conds = [parse(s) for s in items]
    names = [c.name for c in conds]
    if len(set(names)) < len(names):
        raise ConditionError(f"--network {spec!r}: a condition is named twice")
    return conds


def table() -> str:
    """The conditions as a Markdown table (docs/networks.md holds this output)."""
    lines = ["| name | round trip | down | up | what it stands for |", "| --- | ---: | ---: | ---: | --- |"]
    for c in CONDITIONS.values():
        lines.append(f"| `{c.name}` | {_ms(c.rtt_s)} ms | {_rate(c.rate_down_bps)} | {_rate(c.rate_up_bps)} | "
                     f"{c.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
