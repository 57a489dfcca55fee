"""Validate one stream of events against a profile: schema, order, aggregates, seq.

Pure functions on parsed events: the recorders hand over what crossed the wire,
this module says which rules it breaks and where. Nothing here knows an event
type by name; the profile says what comes first, what must add up to what, and
so on. Used by the conformance suite, the load scenarios (protocol violations by
rule ID) and the project's own tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from jsonschema import ValidationError

from .fastschema import checker
from .profile import Aggregate, Profile
from .recording import Recording

_MISSING = object()


@dataclass(frozen=True)
class Finding:
    """One broken rule: which, how bad, what was seen, and where."""

    rule: str
    level: str
    message: str
    index: int | None = None
    pointer: str = ""

    def where(self) -> str:
        parts = []
        if self.index is not None:
            parts.append(f"event {self.index}")
        if self.pointer:
            parts.append(f"at {self.pointer}")
        return " ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{self.rule}: {self.message}" + (f" ({where})" if where else "")


def finding(rule_id: str, message: str, index: int | None = None, pointer: str = "") -> Finding:
    """A Finding whose level comes from the rule registry."""
    from conformance.rules.registry import get  # the registry's modules import this one

    return Finding(rule_id, get(rule_id).level, message, index, pointer)


def json_pointer(path: Iterable[Any]) -> str:
    """RFC 6901 pointer for a jsonschema error path."""
    out = ""
    for part in path:
        out += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return out


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """The value at an RFC 6901 pointer, or a private MISSING marker."""
    if pointer == "":
        return doc
    current = doc
    for raw in pointer.lstrip("/").split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return _MISSING
    return current


def short(value: Any, limit: int = 80) -> str:
    """A value as compact JSON, cut to ``limit`` characters, for messages. Never
    raises: a value JSON cannot encode (the placeholder for an event that did not
    parse) is shown by its repr."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def _schema_findings(objects: list[Any], profile: Profile) -> tuple[list[Finding], list[str | None]]:
    """Per-event checks; also returns each event's type (None when it has no usable one)."""
    out: list[Finding] = []
    types: list[str | None] = []
    tf = profile.type_field
    known = set(profile.event_types)
    fast = checker(profile)
    for i, obj in enumerate(objects):
        if fast is not None and fast.valid(obj):  # the fast path: nothing to report (conformance/fastschema.py)
            types.append(obj[tf])
            continue
        if not isinstance(obj, dict):
            out.append(finding("SCHEMA-JSON", f"event is JSON {type(obj).__name__} {short(obj)}, not an object", i))
            types.append(None)
            continue
        env = profile.envelope_validator
        env_errors = list(env.iter_errors(obj)) if env else []
        for err in env_errors:
            out.append(finding("SCHEMA-ENVELOPE", _schema_message(err), i, json_pointer(err.absolute_path)))
        etype = obj.get(tf)
        if not isinstance(etype, str):
            types.append(None)
            if not env_errors:
                out.append(finding("SCHEMA-ENVELOPE", f"no string '{tf}' field", i, f"/{tf}"))
            continue
        types.append(etype)
        if etype not in known:
            out.append(finding("SCHEMA-TYPE-KNOWN", f"unknown type {etype!r}", i, f"/{tf}"))
            continue
        for err in sorted(profile.validators[etype].iter_errors(obj), key=lambda e: list(e.absolute_path)):
            out.append(finding("SCHEMA-EVENT", f"{etype}: {_schema_message(err)}", i, json_pointer(err.absolute_path)))
    return out, types


def _schema_message(err: ValidationError) -> str:
    if err.validator == "required":
        return err.message
    return f"{short(err.instance, 60)} breaks '{err.validator}: {short(err.validator_value, 40)}'"


def _order_findings(types: list[str | None], profile: Profile) -> list[Finding]:
    out: list[Finding] = []
    order = profile.order
    first, last = order.first, order.last
    n = len(types)
    if n == 0:
        return [finding("ORDER-FIRST-START", f"the stream has no events; expected {first!r} first")]
    if types[0] != first:
        out.append(finding("ORDER-FIRST-START", f"first event is {types[0]!r}, expected {first!r}", 0))
    if types[-1] != last:
        out.append(finding("ORDER-LAST-STREAM-END", f"stream ended with {types[-1]!r}, expected {last!r}", n - 1))
    for name in order.exactly_once:
        where = [i for i, t in enumerate(types) if t == name]
        if len(where) != 1:
            index = where[1] if len(where) > 1 else None
            out.append(finding("ORDER-EXACTLY-ONCE", f"{name!r} appears {len(where)} times, expected exactly once", index))
    for group in order.exactly_one_of:
        where = [i for i, t in enumerate(types) if t in group]
        if len(where) != 1:
            index = where[1] if len(where) > 1 else None
            names = "/".join(group)
            out.append(finding("ORDER-ONE-TERMINAL", f"{names} appear {len(where)} times in all, expected exactly one", index))
    if last in types:
        end = types.index(last)
        if end < n - 1:
            out.append(finding("ORDER-NOTHING-AFTER-END", f"{types[end + 1]!r} follows {last!r}", end + 1))
    terminal = set(order.terminal)
    for i, t in enumerate(types[:-1]):
        if t in terminal and types[i + 1] != last:
            out.append(finding("ORDER-TERMINAL-THEN-END", f"{types[i + 1]!r} follows {t!r}, expected {last!r}", i + 1))
    interrupts = set(order.interrupts)
    for agg in profile.aggregates:
        if agg.scope != "run":
            continue
        for i, t in enumerate(types[:-1]):
            nxt = types[i + 1]
            if t == agg.chunk and nxt not in (agg.chunk, agg.full) and nxt not in interrupts:
                out.append(
                    finding("ORDER-CHUNK-RUN", f"{nxt!r} follows {agg.chunk!r}; the run must end with {agg.full!r}", i + 1)
                )
    return out


def _aggregate_findings(objects: list[Any], types: list[str | None], agg: Aggregate) -> list[Finding]:
    out: list[Finding] = []
    pieces: list[str] = []
    for i, (obj, t) in enumerate(zip(objects, types)):
        if t == agg.chunk:
            value = obj.get(agg.field)
            if isinstance(value, str):
                pieces.append(value)
        elif t == agg.full:
            value = resolve_pointer(obj, agg.pointer)
            if pieces:
                joined = "".join(pieces)
                rule_id = "ORDER-CHUNK-SUM" if agg.scope == "run" else "ORDER-STREAM-SUM"
                if value is _MISSING:
                    if not agg.optional:
                        out.append(finding(rule_id, f"{agg.full} has no {agg.pointer} to match its {len(pieces)} {agg.chunk} events", i, agg.pointer))
                elif isinstance(value, str):
                    if value != joined:
                        at = _first_difference(value, joined)
                        out.append(
                            finding(
                                rule_id,
                                f"{agg.full}{agg.pointer} differs from the concatenation of {len(pieces)} "
                                f"{agg.chunk} events at character {at}: {short(value[at:at + 30])} vs {short(joined[at:at + 30])}",
                                i,
                                agg.pointer,
                            )
                        )
                elif not agg.optional:
                    out.append(finding(rule_id, f"{agg.full}{agg.pointer} is not a string", i, agg.pointer))
            if agg.scope == "run":
                pieces = []
    return out


def _seq_findings(objects: list[Any], profile: Profile) -> list[Finding]:
    field = profile.seq_field
    if not field:
        return []
    dicts = [(i, o) for i, o in enumerate(objects) if isinstance(o, dict)]
    present = [i for i, o in dicts if field in o]
    if not present:
        return []
    for i, o in dicts:
        if field not in o:
            return [finding("ORDER-SEQ", f"{field} is missing here but present on event {present[0]}", i, f"/{field}")]
    for i, o in dicts:
        value = o[field]
        if type(value) is not int or value != i:
            return [finding("ORDER-SEQ", f"{field} is {short(value)}, expected {i}", i, f"/{field}")]
    return []


def validate_stream(objects: list[Any], profile: Profile) -> list[Finding]:
    """Every rule the stream breaks, in rule order. An empty list: a valid stream."""
    out, types = _schema_findings(objects, profile)
    out += _order_findings(types, profile)
    for agg in profile.aggregates:
        out += _aggregate_findings(objects, types, agg)
    out += _seq_findings(objects, profile)
    return out


CLOCK_TOLERANCE_S = 3600.0
"""How far a ``ts`` may be from the client's clock at arrival and still count as
Unix seconds: wide enough for any clock skew, narrow enough to catch a ts in
milliseconds (a factor of 1000 off) or a counter."""


def plausible_ts(value: Any, arrival_wall: float) -> bool:
    """Whether a timestamp looks like Unix seconds from a clock close to ours."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value - arrival_wall) <= CLOCK_TOLERANCE_S


def _clock_findings(recording: Recording, profile: Profile) -> list[Finding]:
    field = profile.timestamp_field
    if not field:
        return []
    for e in recording.events:
        if e.t_wall > 0 and isinstance(e.data, dict) and isinstance(e.data.get(field), (int, float)) \
                and not isinstance(e.data.get(field), bool) and not plausible_ts(e.data[field], e.t_wall):
            off = e.data[field] - e.t_wall
            return [finding("SCHEMA-TS-SECONDS", f"{field} is {short(e.data[field])}, {off:+.3g} s from the client's clock "
                            f"at arrival: not Unix seconds", e.index, f"/{field}")]
    return []


def validate_recording(recording: Recording, profile: Profile) -> list[Finding]:
    """``validate_stream`` on a recording's events, with JSON parse errors reported
    as SCHEMA-JSON (an event that did not parse takes part in the order checks as
    an event of no type), and ``ts`` held against the arrival clock."""
    out = _clock_findings(recording, profile) + [
        finding("SCHEMA-JSON", f"not JSON: {e.parse_error}; raw {short(e.text if e.text is not None else e.raw.decode('latin-1'))}", e.index)
        for e in recording.events
        if e.parse_error is not None
    ]
    objects = [e.data if e.parse_error is None else _Unparsed() for e in recording.events]
    return out + [f for f in validate_stream(objects, profile) if not (f.rule == "SCHEMA-JSON" and isinstance(objects[f.index], _Unparsed))]


class _Unparsed:
    """Stands for an event that did not parse (already reported)."""

    def __repr__(self) -> str:
        return "<unparsed>"
