"""Which transports a report compares, how it names them, and which pairs it divides.

Every table, plot and claim of a report iterates over the transports the results
hold, in the order the results list them; nothing in the reports names one.
Labels come from the transport registry (``conformance.wire.label``), so a
transport another installation registered is shown by its name. A ratio column
divides the first transport of a pair (the reference) by the second, in every
table, the claims and summary.json alike (SSE / WebSocket: above 1, the
reference's figure is the larger; the seed's claims read so too): the pairs
are the profile's parity pairs when the results record them (``config.parity``),
otherwise the first transport of the results with each other one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conformance.wire import TRANSPORTS, label

Pair = tuple[str, str]


def columns(names: Iterable[str]) -> dict[str, str]:
    """Transport name -> its column title: its label, or ``label (name)`` when two
    transports share a label (a column title must be unique)."""
    names = list(dict.fromkeys(names))
    labels = [label(n) for n in names]
    return {n: (lab if labels.count(lab) == 1 else f"{lab} ({n})") for n, lab in zip(names, labels)}


def ratio_column(pair: Pair, cols: Mapping[str, str]) -> str:
    """The title of the ratio column of ``pair``: ``A / B`` for the reference A divided by B."""
    reference, other = pair
    return f"{cols.get(reference, label(reference))} / {cols.get(other, label(other))}"


def pairs(names: Sequence[str], recorded: Any = None) -> list[Pair]:
    """The pairs whose ratios a report shows: the recorded parity pairs whose two
    transports are both present, else the first transport with each other one."""
    present = set(names)
    out: list[Pair] = []
    if isinstance(recorded, (list, tuple)):
        for p in recorded:
            if isinstance(p, (list, tuple)) and len(p) == 2 and p[0] in present and p[1] in present \
                    and p[0] != p[1] and (p[0], p[1]) not in out:
                out.append((str(p[0]), str(p[1])))
    if out or not names:
        return out
    return [(names[0], other) for other in names[1:]]


def binding(name: str) -> str | None:
    """The binding a transport follows, or None when this installation does not register it."""
    t = TRANSPORTS.get(name)
    return t.binding if t is not None else None


def of_binding(transports: Mapping[str, Any], wanted: str) -> str | None:
    """The transport of the results that stands for a binding (``sse``, ``ws``): the
    first of that binding (or, unregistered, of that name) that ran a stream, else
    the first of it that is present at all; None when the results have none."""
    candidates = [t for t in transports if binding(t) == wanted or (binding(t) is None and t == wanted)]
    ran = [t for t in candidates if isinstance(transports[t], Mapping) and (transports[t].get("streams") or 0)]
    return (ran or candidates or [None])[0]


def listing(names: Iterable[str], joiner: str = " vs ") -> str:
    """``SSE vs WebSocket``: the labels of the transports, for a title."""
    return joiner.join(columns(names).values()) or "no transport"
