"""Validate one stream of events against a profile: schema, order, aggregates, seq.

Pure functions on parsed events: the recorders hand over what crossed the wire,
this module says which rules it breaks and where. Nothing here knows an event
type by name; the profile says what comes first, what must add up to what, and
so on. Used by the conformance suite, the load scenarios (protocol violations by
rule ID) and the project's own tests.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from itertools import compress, repeat
from operator import attrgetter, eq, itemgetter
from dataclasses import dataclass
from typing import Any, Iterable

from jsonschema import ValidationError

from . import pointer as jp
from .fastschema import checker
from .profile import Aggregate, Profile, timestamps_s
from .recording import RecordedEvent, Recording



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


def finding(rule_id: str, message: str, index: int | None = None, pointer: str = "", level: str | None = None) -> Finding:
    """A Finding whose level comes from the rule registry, unless the profile gave
    this check a level of its own (``level``)."""
    from conformance.rules.registry import get  # the registry's modules import this one

    return Finding(rule_id, level or get(rule_id).level, message, index, pointer)


def json_pointer(path: Iterable[Any]) -> str:
    """RFC 6901 pointer for a jsonschema error path."""
    return jp.join(list(path))


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """The value at an RFC 6901 pointer, or a private MISSING marker."""
    return jp.resolve(doc, pointer)


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
    tf = profile.type_field
    fast = checker(profile)
    types_of_valid = fast.types_if_valid(objects) if fast is not None else None
    if types_of_valid is not None:  # the stream of a load run: every event valid
        return [], types_of_valid
    out: list[Finding] = []
    types: list[str | None] = []
    known = set(profile.event_types)
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


def _indices(types: list[str | None], name: str) -> list[int]:
    """Where ``name`` is in ``types``: a type that comes a few times (a full event)
    by ``list.index``, a frequent one (chunks) selected by ``compress``, both in C."""
    if types.count(name) > 4:
        return list(compress(range(len(types)), map(eq, types, repeat(name))))
    out: list[int] = []
    try:
        while True:
            out.append(types.index(name, out[-1] + 1 if out else 0))
    except ValueError:
        return out


def _order_findings(types: list[str | None], profile: Profile, objects: list[Any] | None = None) -> list[Finding]:
    """The ORDER- findings. Each check over the whole stream first asks a question
    answered in C (how often a type comes, which pairs of types follow each other)
    and walks the events only when that answer allows a finding: the streams of a
    load run are almost all in order."""
    out: list[Finding] = []
    order = profile.order
    first, last = order.first, order.last
    n = len(types)
    if n == 0:
        return [finding("ORDER-FIRST-START", f"the stream has no events; expected {_either(first)} first")]
    follows = set(zip(types, types[1:]))  # (type, the type after it), each pair once
    if types[0] not in first:
        out.append(finding("ORDER-FIRST-START", f"first event is {types[0]!r}, expected {_either(first)}", 0))
    if types[-1] not in last:
        out.append(finding("ORDER-LAST-STREAM-END", f"stream ended with {types[-1]!r}, expected {_either(last)}", n - 1))
    elif profile.last_validator is not None and objects is not None:
        for err in profile.last_validator.iter_errors(objects[-1]):
            out.append(finding("ORDER-LAST-STREAM-END", f"the last event ({types[-1]}) does not end the stream: "
                                                        f"{_schema_message(err)}", n - 1, json_pointer(err.absolute_path)))
            break
    for name in order.exactly_once:
        if types.count(name) == 1:
            continue
        where = [i for i, t in enumerate(types) if t == name]
        if len(where) != 1:
            index = where[1] if len(where) > 1 else None
            out.append(finding("ORDER-EXACTLY-ONCE", f"{name!r} appears {len(where)} times, expected exactly once", index))
    for group in order.exactly_one_of:
        if sum(types.count(name) for name in set(group)) == 1:
            continue
        where = [i for i, t in enumerate(types) if t in group]
        if len(where) != 1:
            index = where[1] if len(where) > 1 else None
            names = "/".join(group)
            out.append(finding("ORDER-ONE-TERMINAL", f"{names} appear {len(where)} times in all, expected exactly one", index))
    if profile.end_marked is None:  # else a last type may come before the end
        end = min((types.index(name) for name in last if name in types), default=None)
        if end is not None and end < n - 1:
            out.append(finding("ORDER-NOTHING-AFTER-END", f"{types[end + 1]!r} follows {types[end]!r}", end + 1))
    terminal = set(order.terminal)
    if any(t in terminal and nxt not in last for t, nxt in follows):
        for i, t in enumerate(types[:-1]):
            if t in terminal and types[i + 1] not in last:
                out.append(finding("ORDER-TERMINAL-THEN-END", f"{types[i + 1]!r} follows {t!r}, expected {_either(last)}", i + 1))
    interrupts = set(order.interrupts)
    for agg in profile.aggregates:
        if agg.scope != "run":
            continue
        if not any(t == agg.chunk and nxt not in (agg.chunk, agg.full) and nxt not in interrupts for t, nxt in follows):
            continue
        for i, t in enumerate(types[:-1]):
            nxt = types[i + 1]
            if t == agg.chunk and nxt not in (agg.chunk, agg.full) and nxt not in interrupts:
                out.append(
                    finding("ORDER-CHUNK-RUN", f"{nxt!r} follows {agg.chunk!r}; the run must end with {agg.full!r}", i + 1)
                )
    return out


def _either(names: tuple[str, ...]) -> str:
    return " or ".join(repr(n) for n in names)


def _aggregate_findings(objects: list[Any], types: list[str | None], agg: Aggregate) -> list[Finding]:
    """ORDER-CHUNK-SUM and ORDER-STREAM-SUM of one aggregate: each ``full`` event
    holds the concatenation of its chunks' texts (those since the previous full
    event; of the whole stream; or of its key).

    Only the chunk and full events take part (found by ``_indices``, in C); without
    keys the chunks' texts are read in one comprehension and each full event
    takes the slice since the previous one: most events of a stream are chunks."""
    if agg.full not in types or agg.chunk not in types or agg.chunk == agg.full:
        return []  # a finding is about a full event that has chunks (a type that is both counts as a chunk)
    field = agg.field if agg.field.startswith("/") else jp.join([agg.field])
    chunk_at, full_at = _indices(types, agg.chunk), _indices(types, agg.full)
    if agg.scope == "key":
        return _keyed_aggregate_findings(objects, types, agg, field, sorted(chunk_at + full_at))
    texts = [(i, v) for i, v in zip(chunk_at, jp.resolve_each([objects[i] for i in chunk_at], field))
             if isinstance(v, str)]
    at = [i for i, _ in texts]
    out: list[Finding] = []
    since = 0  # the first text of the current run (always 0 for the stream's aggregate)
    for i in full_at:
        upto = bisect_left(at, i)
        if upto > since:
            found = _sum_finding(agg, objects[i], i, [v for _, v in texts[since:upto]])
            if found is not None:
                out.append(found)
        if agg.scope != "stream":
            since = upto
    return out


def _keyed_aggregate_findings(objects: list[Any], types: list[str | None], agg: Aggregate, field: str,
                              where: list[int]) -> list[Finding]:
    """Scope ``key``: the chunks and full events at ``where`` grouped by their key."""
    out: list[Finding] = []
    by_key: dict[str, list[str]] = {}

    def key_of(obj: Any) -> str:
        return short([jp.resolve(obj, k) if jp.resolve(obj, k) is not jp.MISSING else None for k in agg.key], 1000)

    for i in where:
        obj, t = objects[i], types[i]
        if t == agg.chunk:
            value = jp.resolve(obj, field)
            if isinstance(value, str):
                by_key.setdefault(key_of(obj), []).append(value)
        else:
            pieces = by_key.pop(key_of(obj), [])
            if pieces:
                found = _sum_finding(agg, obj, i, pieces)
                if found is not None:
                    out.append(found)
    return out


def _sum_finding(agg: Aggregate, obj: Any, i: int, pieces: list[str]) -> Finding | None:
    """The finding when full event ``i`` does not hold the concatenation of ``pieces`` (not empty)."""
    value = resolve_pointer(obj, agg.pointer)
    joined = "".join(pieces)
    rule_id = "ORDER-STREAM-SUM" if agg.scope == "stream" else "ORDER-CHUNK-SUM"
    if value is jp.MISSING:
        if not agg.optional:
            return finding(rule_id, f"{agg.full} has no {agg.pointer} to match its {len(pieces)} {agg.chunk} events", i, agg.pointer)
    elif isinstance(value, str):
        if value != joined:
            at = _first_difference(value, joined)
            return finding(
                rule_id,
                f"{agg.full}{agg.pointer} differs from the concatenation of {len(pieces)} "
                f"{agg.chunk} events at character {at}: {short(value[at:at + 30])} vs {short(joined[at:at + 30])}",
                i,
                agg.pointer,
            )
    elif not agg.optional:
        return finding(rule_id, f"{agg.full}{agg.pointer} is not a string", i, agg.pointer)
    return None


def _seq_findings(objects: list[Any], profile: Profile) -> list[Finding]:
    field = profile.seq_field
    if not field:
        return []
    if set(map(type, objects)) == {dict}:  # the stream of a load run: seq 0, 1, 2, ... on every event
        try:
            values = list(map(itemgetter(field), objects))
        except KeyError:
            pass
        else:
            if values == list(range(len(values))) and set(map(type, values)) == {int}:
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


def validate_stream(objects: list[Any], profile: Profile, request_doc: Any = None) -> list[Finding]:
    """Every rule the stream breaks, in rule order. An empty list: a valid stream.
    ``request_doc`` is the request's document (what echoes compare with)."""
    from .lifecycle import lifecycle_findings  # it builds on this module

    out, types = _schema_findings(objects, profile)
    out += _order_findings(types, profile, objects)
    for agg in profile.aggregates:
        out += _aggregate_findings(objects, types, agg)
    out += _seq_findings(objects, profile)
    out += lifecycle_findings(objects, types, profile, request_doc)
    return profile.leveled(out)


CLOCK_TOLERANCE_S = 3600.0
"""How far a ``ts`` may be from the client's clock at arrival and still count as
Unix seconds: wide enough for any clock skew, narrow enough to catch a ts in
milliseconds (a factor of 1000 off) or a counter."""


_DATA, _PARSE_ERROR, _NAMED_TYPE = attrgetter("data"), attrgetter("parse_error"), attrgetter("named_type")


def timestamps(events: list[RecordedEvent], profile: Profile) -> list[float | None]:
    """``profile.timestamp_s(e.data)`` of every event, in one pass
    (:func:`conformance.profile.timestamps_s`): the clock check here and the
    buffering check of the SSE binding read them on every stream of a load run."""
    return timestamps_s(events, profile.timestamp_field, profile.timestamp_scale)


def all_plausible(stamps: list[float], events: list[RecordedEvent]) -> bool:
    """Whether every timestamp (floats, one per event, as :func:`timestamps` gives
    them) is within :data:`CLOCK_TOLERANCE_S` of its event's arrival, in one
    comprehension (``<=`` is false for NaN, so a NaN is never plausible)."""
    return all([abs(ts - e.t_wall) <= CLOCK_TOLERANCE_S for ts, e in zip(stamps, events)])


@dataclass(frozen=True)
class Stamps:
    """A stream's timestamps, as the clock check here and the SSE buffering check
    read them: computed once per stream for both (``Context.stamps``)."""

    values: list[float | None]
    """:func:`timestamps` of the events."""
    plausible: bool
    """Every event has one, each within the clock tolerance of its arrival."""


def stamps_of(events: list[RecordedEvent], profile: Profile) -> Stamps:
    values = timestamps(events, profile)
    return Stamps(values, None not in values and all_plausible(values, events))


def _clock_findings(recording: Recording, profile: Profile, stamps: Stamps | None = None) -> list[Finding]:
    field = profile.timestamp_field
    if not field:
        return []
    unit = "Unix milliseconds" if profile.timestamp_scale == 1000 else "Unix seconds"
    events = recording.events
    stamps = stamps or stamps_of(events, profile)
    if stamps.plausible:
        return []
    # the comparison of all_plausible, written so that NaN fails it too
    off = [(e, ts) for e, ts in zip(events, stamps.values)
           if ts is not None and e.t_wall > 0 and not abs(ts - e.t_wall) <= CLOCK_TOLERANCE_S]
    if not off:
        return []
    e, ts = off[0]
    return [finding("SCHEMA-TS-SECONDS", f"{field} is {short(e.data[field])}, {ts - e.t_wall:+.3g} s from the "
                    f"client's clock at arrival: not {unit}", e.index, f"/{field}")]


def validate_recording(recording: Recording, profile: Profile, *, stamps: Stamps | None = None) -> list[Finding]:
    """``validate_stream`` on a recording's events, with JSON parse errors reported
    as SCHEMA-JSON (an event that did not parse takes part in the order checks as
    an event of no type), and ``ts`` held against the arrival clock (``stamps``:
    ``stamps_of(recording.events, profile)``, when the caller has them already)."""
    events = recording.events
    if set(map(_PARSE_ERROR, events)) <= {None} and set(map(_NAMED_TYPE, events)) <= {None}:
        # every event parsed, none with a type only its transport named (a load run's
        # streams): the objects are the data as they are, and no finding is set aside
        doc = profile.document(recording.request)
        return profile.leveled(_clock_findings(recording, profile, stamps)) + validate_stream(list(map(_DATA, events)), profile, doc)
    out = _clock_findings(recording, profile, stamps) + [
        finding("SCHEMA-JSON", f"not JSON: {e.parse_error}; raw {short(e.text if e.text is not None else e.raw.decode('latin-1'))}", e.index)
        for e in recording.events
        if e.parse_error is not None
    ]
    out = profile.leveled(out)
    objects = [e.typed_data if e.parse_error is None else _Unparsed() for e in recording.events]
    doc = profile.document(recording.request)
    return out + [f for f in validate_stream(objects, profile, doc)
                  if not (f.rule == "SCHEMA-JSON" and isinstance(objects[f.index], _Unparsed))]


class _Unparsed:
    """Stands for an event that did not parse (already reported)."""

    def __repr__(self) -> str:
        return "<unparsed>"
