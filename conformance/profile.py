"""Load and check a protocol profile: the event protocol written down as data.

The checking code never names an event type; everything it knows about
agent-stream/1 (or any other protocol) comes from a profile. A broken profile
would make every verdict meaningless, so a profile is checked against a
meta-schema and for consistency before anything uses it, and rejected with a
message that names the bad key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Hashable, TypeVar

import jsonschema
import yaml
from jsonschema import Draft202012Validator

from .request import ClientMessage, Request
from .template import edit, encode, holds_question, render

T = TypeVar("T")

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "agent-stream/1"


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the bad key."""


_STR_LIST = {"type": "array", "items": {"type": "string"}}
# A parameter value: a string, or {repeat: s, times: n} for long values (a typo such
# as `time:` would otherwise silently build a one-character value).
_REPEAT = {
    "type": "object",
    "required": ["repeat", "times"],
    "additionalProperties": False,
    "properties": {"repeat": {"type": "string"}, "times": {"type": "integer", "minimum": 0}},
}
_PARAMS = {"type": "object", "additionalProperties": {"anyOf": [{"type": "string"}, _REPEAT]}}
_POINTER = {"type": "string", "pattern": "^(/.*)?$"}
_CASE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "omit": {"type": "string"},
        "params": _PARAMS,
        # edits of the JSON body (or of the WebSocket's first message)
        "set": {"type": "object", "propertyNames": {"pattern": "^/"}},
        "remove": {"type": "array", "items": {"type": "string", "pattern": "^/"}},
        "raw": {"type": "string"},
        "content_type": {"type": "string"},
    },
}
_ONE_OR_MORE = {"anyOf": [{"type": "string"}, {**_STR_LIST, "minItems": 1}]}
_AT = {  # a value in an event: its type and a JSON pointer
    "type": "object",
    "required": ["event", "pointer"],
    "additionalProperties": False,
    "properties": {"event": _ONE_OR_MORE, "pointer": _POINTER},
}
_KNOWN = {  # ids introduced by earlier events, or carried by the request (a resumed conversation)
    **_AT, "properties": {**_AT["properties"], "request": _POINTER},
}
_LEVEL = {"enum": ["MUST", "SHOULD"]}
RULE_ID = {"type": "string", "pattern": "^[A-Z][A-Z0-9-]*$"}

# The shape of a profile. additionalProperties: false catches misspelt keys.
META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["profile", "type_field", "events", "order"],
    "additionalProperties": False,
    "properties": {
        "profile": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "type_field": {"type": "string", "minLength": 1},
        "seq_field": {"type": ["string", "null"]},
        "timestamp_field": {"type": ["string", "null"]},
        "timestamp_unit": {"enum": ["s", "ms"]},
        "volatile": _STR_LIST,
        "source": {
            "type": "object",
            "required": ["title", "url"],
            "additionalProperties": False,
            "properties": {"title": {"type": "string"}, "version": {"type": "string"}, "url": {"type": "string"}},
        },
        "sections": {"type": "object", "propertyNames": RULE_ID, "additionalProperties": {"type": "string"}},
        "levels": {"type": "object", "propertyNames": RULE_ID, "additionalProperties": _LEVEL},
        "envelope": {"type": "object"},
        "events": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "object"}},
        "order": {
            "type": "object",
            "required": ["first", "last"],
            "additionalProperties": False,
            "properties": {
                "first": _ONE_OR_MORE,
                "last": _ONE_OR_MORE,
                "last_schema": {"type": "object"},
                "exactly_once": _STR_LIST,
                "exactly_one_of": {"type": "array", "items": {**_STR_LIST, "minItems": 1}},
                "terminal": _STR_LIST,
                "interrupts": _STR_LIST,
            },
        },
        "aggregates": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["chunk", "field", "full", "pointer", "scope"],
                "additionalProperties": False,
                "properties": {
                    "chunk": {"type": "string"},
                    "field": {"type": "string"},
                    "full": {"type": "string"},
                    "pointer": {"type": "string", "pattern": "^/"},
                    "scope": {"enum": ["run", "stream", "key"]},
                    "key": {"type": "array", "items": {"type": "string", "pattern": "^/"}, "minItems": 1},
                    "optional": {"type": "boolean"},
                },
            },
        },
        "chunk_types": _STR_LIST,
        "runs": {
            "type": "object",
            "required": ["open", "close"],
            "additionalProperties": False,
            "properties": {"open": _ONE_OR_MORE, "close": _ONE_OR_MORE, "outside": _STR_LIST,
                           "after": {"type": "object", "additionalProperties": _STR_LIST}},
        },
        "spans": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "start", "end", "key"],
                "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "start": {"type": "string"}, "end": _ONE_OR_MORE,
                               "content": _STR_LIST, "chunk": {"type": "string"}, "key": _POINTER},
            },
        },
        "echoes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event", "pointer"],
                "additionalProperties": False,
                "properties": {"event": _ONE_OR_MORE, "pointer": _POINTER, "request": _POINTER, "same_as": _AT,
                               "first_only": {"type": "boolean"}, "level": _LEVEL},
                "oneOf": [{"required": ["request"]}, {"required": ["same_as"]}],
            },
        },
        "references": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event", "pointer", "known"],
                "additionalProperties": False,
                "properties": {"event": _ONE_OR_MORE, "pointer": _POINTER, "known": _KNOWN, "level": _LEVEL},
            },
        },
        "state": {
            "type": "object",
            "required": ["delta"],
            "additionalProperties": False,
            "properties": {"snapshot": _AT, "delta": _AT, "initial": _POINTER, "level": _LEVEL},
        },
        "request": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "params": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "required": {"type": "boolean"},
                            "strip": {"type": "boolean"},
                            "min_length": {"type": "integer", "minimum": 0},
                            "max_length": {"type": "integer", "minimum": 1},
                            "default": {"type": "string"},
                            "must_accept": _STR_LIST,
                        },
                    },
                },
                "question_param": {"type": "string", "minLength": 1},
                "method": {"enum": ["GET", "POST"]},
                "body": {},
                "content_type": {"type": "string"},
                "sample_questions": {**_STR_LIST, "minItems": 1},
                "invalid": {"type": "array", "items": _CASE},
                "valid_edge": {"type": "array", "items": _CASE},
            },
        },
        "transports": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z][a-z0-9-]*$"},
            "additionalProperties": {"type": "object"},
        },
        "parity": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
        },
        "disconnect": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"gauge": {"type": "string"}, "within_s": {"type": "number", "exclusiveMinimum": 0}},
        },
    },
}


# Each binding's section: the shape of transports.NAME for a transport that
# follows it. "binding" names the binding (default: the transport's own name).
BINDING_SCHEMAS: dict[str, dict[str, Any]] = {
    "sse": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "binding": {"const": "sse"},
            "path": {"type": "string", "pattern": "^/"},
            "status": {"type": "integer"},
            "content_type": {"type": "string"},
            "cache_control_any": _STR_LIST,
            "should_headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "allowed_event_names": _STR_LIST,
            "id_equals": {"type": ["string", "null"]},
            "reconnect_status": {"type": "integer"},
            "reject_status": {"type": "string", "pattern": "^[1-5]xx$"},
            "reject_content_type": {"type": "string"},
            "buffering_min_spread_s": {"type": "number", "minimum": 0},
            "event_name_is_type": {"type": "boolean"},
            "type_from_event_name": {"type": "boolean"},
            "done_sentinel": {"type": "string"},
            "line_endings": {"type": "array", "items": {"enum": ["LF", "CRLF", "CR"]}, "minItems": 1},
        },
    },
    "ws": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "binding": {"const": "ws"},
            "path": {"type": "string", "pattern": "^/"},
            "close_normal": {"type": "integer"},
            "close_reject": {"type": "integer"},
            "reject_event_type": {"type": "string"},
            "forbidden_close": {"type": "array", "items": {"type": "integer"}},
            "first_message": {},
            "client_closes": {"type": "boolean"},
            "ignores_unknown_messages": {"type": "boolean"},
            "cancel": {
                "type": "object",
                "required": ["message", "expect"],
                "additionalProperties": False,
                "properties": {"message": {"type": "object"}, "expect": {"type": "object"},
                               "within_s": {"type": "number", "exclusiveMinimum": 0}},
            },
        },
    },
}


# -- the typed sections: every default of a profile is here, and only here --

@dataclass(frozen=True)
class Aggregate:
    """Chunks of type ``chunk`` (text in ``field``) that must add up to the value at
    ``pointer`` in the next ``full`` event (scope ``run``) or in the stream's
    ``full`` event (scope ``stream``)."""

    chunk: str
    field: str
    full: str
    pointer: str
    scope: str
    optional: bool = False
    key: tuple[str, ...] = ()
    """Scope ``key``: the chunks and the full event of one id (pointers whose values
    together name it, e.g. ``/item_id`` and ``/content_index``) add up."""


@dataclass(frozen=True)
class Order:
    """PROTOCOL section 3: which type comes first and last, and what appears how often.
    ``first`` and ``last`` list the types allowed there (AG-UI: a run may end with
    RUN_FINISHED or RUN_ERROR); ``last_schema`` is a JSON Schema the last event must
    also match (Chat Completions: the last chunk carries a finish_reason)."""

    first: tuple[str, ...]
    last: tuple[str, ...]
    last_schema: dict[str, Any] | None = None
    exactly_once: tuple[str, ...] = ()
    exactly_one_of: tuple[tuple[str, ...], ...] = ()
    terminal: tuple[str, ...] = ()
    interrupts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParamSpec:
    """One request parameter as the protocol defines it."""

    required: bool = False
    strip: bool = False
    min_length: int | None = None
    max_length: int | None = None
    default: str | None = None
    must_accept: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """An ``invalid`` or ``valid_edge`` request: query parameters set or one
    omitted, or edits of the JSON document (members set or removed by pointer, a
    raw body instead of it, another Content-Type)."""

    name: str
    params: tuple[tuple[str, str], ...] = ()
    omit: str | None = None
    set: tuple[tuple[str, Any], ...] = ()
    remove: tuple[str, ...] = ()
    raw: str | None = None
    content_type: str | None = None

    def apply(self, base: dict[str, str]) -> dict[str, str]:
        """Concrete request parameters: ``base`` with this case's edits."""
        out = dict(base)
        out.update(self.params)
        if self.omit is not None:
            out.pop(self.omit, None)
        return out


@dataclass(frozen=True)
class RequestSpec:
    """PROTOCOL section 1: the request parameters and the requests the suite sends."""

    params: dict[str, ParamSpec] = field(default_factory=dict)
    question_param: str = "question"
    sample_questions: tuple[str, ...] = ("hello",)
    invalid: tuple[Case, ...] = ()
    valid_edge: tuple[Case, ...] = ()
    method: str = "GET"
    body: Any = None
    """A JSON template (see conformance.template): the request is a document, not a query."""
    content_type: str = "application/json"


@dataclass(frozen=True)
class Cancel:
    message: dict[str, Any]
    """What the client sends to cancel (as JSON)."""
    expect: dict[str, Any]
    """Fields of the event that must answer it."""
    within_s: float = 1.0
    """How soon after the cancel the answer must arrive."""


@dataclass(frozen=True)
class SSEBinding:
    """PROTOCOL section 4, for every transport that follows the ``sse`` binding."""

    binding: str = "sse"
    path: str = "/agent/stream"
    status: int = 200
    content_type: str = "text/event-stream"
    cache_control_any: tuple[str, ...] = ()
    should_headers: dict[str, str] = field(default_factory=dict)
    allowed_event_names: tuple[str, ...] = ("message",)
    id_equals: str | None = None
    reconnect_status: int = 204
    reject_status: str = "4xx"
    reject_content_type: str = "application/json"
    buffering_min_spread_s: float = 0.1
    event_name_is_type: bool = False
    """Each message's ``event:`` names its type: it must equal the JSON's type."""
    type_from_event_name: bool = False
    """An event whose JSON has no type field takes its ``event:`` name as its type
    (LangGraph's stream modes); without it a missing type field is a finding."""
    done_sentinel: str | None = None
    """The data of the message that ends the stream (``[DONE]``): not an event, not JSON."""
    line_endings: tuple[str, ...] = ()
    """The line terminators the protocol allows (empty: any the SSE format allows)."""

    @property
    def reject_class(self) -> int:
        """The status class of a rejection (4 for ``4xx``)."""
        return int(self.reject_status[0])


@dataclass(frozen=True)
class WSBinding:
    """PROTOCOL section 5, for every transport that follows the ``ws`` binding."""

    binding: str = "ws"
    path: str = "/ws/agent/stream"
    close_normal: int = 1000
    close_reject: int = 1008
    reject_event_type: str | None = None
    forbidden_close: tuple[int, ...] = (1006, 1011)
    cancel: Cancel | None = None
    first_message: Any = None
    """A JSON template the client sends right after the handshake (OpenAI Responses:
    ``response.create``); the request document travels in it instead of the query."""
    client_closes: bool = False
    """The server keeps the socket open after the last event; the client closes it."""
    ignores_unknown_messages: bool = True
    """Client messages the protocol does not define are ignored (agent-stream/1), or
    answered with an error (OpenAI Responses): WS-IGNORE-CLIENT-MESSAGES."""


BINDINGS: dict[str, type] = {"sse": SSEBinding, "ws": WSBinding}
"""Binding name -> its typed section (the keys of BINDING_SCHEMAS)."""
DOCUMENT_CARRIER: dict[str, str] = {"sse": "body", "ws": "first_message"}
"""How a request document travels on each binding: as the HTTP body, or as the
first client message after the handshake."""


@dataclass(frozen=True)
class At:
    """A value in an event: the event's type (one of several) and a JSON pointer;
    ``request``, where allowed (``references[].known``), a pointer pattern (``*``
    for every member) of values the request document already carries."""

    event: tuple[str, ...]
    pointer: str
    request: str | None = None


@dataclass(frozen=True)
class Runs:
    """Several runs per stream: what opens one and what closes it. Between runs only
    ``outside`` types may come; ``after`` limits what may follow a closing type."""

    open: tuple[str, ...]
    close: tuple[str, ...]
    outside: tuple[str, ...] = ()
    after: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """START, CONTENT*, END per id (``key``, a pointer): spans of different ids may
    interleave, an id may open again after its END, and every span is closed
    before its run closes. ``chunk`` events expand to start/content/end: the first
    chunk of an id opens its span, the next event that is not a chunk of it closes it."""

    name: str
    start: str
    end: tuple[str, ...]
    key: str
    content: tuple[str, ...] = ()
    chunk: str | None = None


@dataclass(frozen=True)
class Echo:
    """A value that must equal the request's (``request``, a pointer into the request
    document) or an earlier event's (``same_as``)."""

    event: tuple[str, ...]
    pointer: str
    request: str | None = None
    same_as: At | None = None
    first_only: bool = False
    """Only the first such event of the stream (AG-UI: the first run has the
    request's runId; a later run of the same stream has its own)."""
    level: str = "MUST"


@dataclass(frozen=True)
class Reference:
    """A value that must name an id an earlier event introduced (``known``)."""

    event: tuple[str, ...]
    pointer: str
    known: At
    level: str = "MUST"


@dataclass(frozen=True)
class StateSpec:
    """State the stream carries: snapshots replace it, deltas (RFC 6902 JSON Patch)
    must apply to it; it starts as the request's (``initial``, a pointer) or empty."""

    delta: At
    snapshot: At | None = None
    initial: str | None = None
    level: str = "MUST"


@dataclass(frozen=True)
class Source:
    """The specification a profile encodes."""

    title: str
    url: str
    version: str = ""

    def __str__(self) -> str:
        return f"{self.title} {self.version}".strip()


@dataclass(frozen=True)
class Disconnect:
    """PROTOCOL section 7: the gauge that counts open streams, and how soon it must drop."""

    gauge: str | None = None
    within_s: float = 1.0


def _typed(cls: type, doc: dict[str, Any], **convert: Any) -> Any:
    """``cls(**doc)`` with lists turned into tuples and the ``convert`` functions applied."""
    kwargs = {}
    for key, value in doc.items():
        if key in convert:
            value = convert[key](value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _case(doc: dict[str, Any]) -> Case:
    return Case(name=doc["name"], params=tuple((k, expand_value(v)) for k, v in doc.get("params", {}).items()),
                omit=doc.get("omit"), set=tuple(doc.get("set", {}).items()), remove=tuple(doc.get("remove", ())),
                raw=doc.get("raw"), content_type=doc.get("content_type"))


def _binding(name: str, doc: dict[str, Any]) -> SSEBinding | WSBinding:
    cls = BINDINGS[doc.get("binding", name)]
    return _typed(cls, doc, cancel=lambda c: Cancel(**c), should_headers=dict,
                  first_message=lambda m: m)


def type_names(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A profile's 'one type or a list of types' as a tuple."""
    return (value,) if isinstance(value, str) else tuple(value)


def _at(doc: dict[str, Any]) -> At:
    return At(type_names(doc["event"]), doc["pointer"], doc.get("request"))


def seconds(value: Any, scale: float) -> float | None:
    """A timestamp's value in seconds (``scale``: its units per second), or None
    when it is not a number (a bool is not). An integer too large for a float
    (a backend may send 400 digits) is infinitely far from any clock: ``inf``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        return value / scale
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def timestamps_s(events: list[Any], field: str | None, scale: float) -> list[float | None]:
    """:func:`seconds` of every event's ``field`` (None where the event is not an
    object or has no number there), in one comprehension when every event has a
    number there: the load runs read them on every stream, and a call per event
    costs more than the rules that read them."""
    if not field:
        return [None] * len(events)
    values = [e.data.get(field) if type(e.data) is dict else None for e in events]
    if set(map(type, values)) <= {float, int}:  # no bool: its type is bool
        try:
            return [v / scale for v in values]
        except OverflowError:
            pass
    return [seconds(v, scale) for v in values]


@dataclass(frozen=True)
class Profile:
    """A checked profile. ``raw`` is the document as loaded; the typed sections,
    built once from it here, are what every stage reads."""

    name: str
    path: Path | None
    raw: dict[str, Any] = field(repr=False)

    def __post_init__(self) -> None:
        raw = self.raw
        request = raw.get("request", {})
        transports = raw.get("transports") or {name: {} for name in BINDINGS}
        names = tuple(transports)
        parity = tuple(tuple(p) for p in raw["parity"]) if "parity" in raw else \
            tuple((names[0], other) for other in names[1:])
        sections = {
            "order": _typed(Order, raw["order"], exactly_one_of=lambda g: tuple(tuple(x) for x in g),
                            first=type_names, last=type_names, last_schema=dict),
            "request": _typed(RequestSpec, request,
                              params=lambda ps: {k: _typed(ParamSpec, v) for k, v in ps.items()},
                              invalid=lambda cs: tuple(_case(c) for c in cs),
                              valid_edge=lambda cs: tuple(_case(c) for c in cs), body=lambda b: b),
            "transports": {name: _binding(name, doc) for name, doc in transports.items()},
            "parity": parity,
            "disconnect": _typed(Disconnect, raw.get("disconnect", {})),
            "aggregates": tuple(_typed(Aggregate, a) for a in raw.get("aggregates", ())),
            "runs": _typed(Runs, raw["runs"], open=type_names, close=type_names,
                           after=lambda m: {k: tuple(v) for k, v in m.items()}) if "runs" in raw else None,
            "spans": tuple(_typed(Span, s, end=type_names) for s in raw.get("spans", ())),
            "echoes": tuple(_typed(Echo, e, event=type_names, same_as=_at) for e in raw.get("echoes", ())),
            "references": tuple(_typed(Reference, r, event=type_names, known=_at) for r in raw.get("references", ())),
            "state": _typed(StateSpec, raw["state"], delta=_at, snapshot=_at) if "state" in raw else None,
            "source": Source(**raw["source"]) if "source" in raw else None,
        }
        for key, value in sections.items():
            object.__setattr__(self, key, value)

    # the typed sections (set in __post_init__)
    order: Order = field(init=False, repr=False, compare=False)
    request: RequestSpec = field(init=False, repr=False, compare=False)
    transports: dict[str, SSEBinding | WSBinding] = field(init=False, repr=False, compare=False)
    """Transport name -> the section of its binding, for every transport the profile defines."""
    parity: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    """Pairs of transports that must send the same events (default: the first with each other one)."""
    disconnect: Disconnect = field(init=False, repr=False, compare=False)
    aggregates: tuple[Aggregate, ...] = field(init=False, repr=False, compare=False)
    runs: Runs | None = field(init=False, repr=False, compare=False)
    spans: tuple[Span, ...] = field(init=False, repr=False, compare=False)
    echoes: tuple[Echo, ...] = field(init=False, repr=False, compare=False)
    references: tuple[Reference, ...] = field(init=False, repr=False, compare=False)
    state: StateSpec | None = field(init=False, repr=False, compare=False)
    source: Source | None = field(init=False, repr=False, compare=False)
    """The spec the profile encodes (None: agent-stream/1's PROTOCOL.md)."""

    # -- vocabulary and envelope --
    @property
    def type_field(self) -> str:
        return self.raw["type_field"]

    @property
    def seq_field(self) -> str | None:
        return self.raw.get("seq_field")

    @property
    def timestamp_field(self) -> str | None:
        return self.raw.get("timestamp_field")

    @property
    def timestamp_scale(self) -> float:
        """Timestamp units per second (1 for Unix seconds, 1000 for milliseconds)."""
        return 1000.0 if self.raw.get("timestamp_unit") == "ms" else 1.0

    def timestamp_s(self, data: Any) -> float | None:
        """An event's timestamp in Unix seconds, or None when it carries no number there."""
        name = self.timestamp_field
        if not name or not isinstance(data, dict):
            return None
        return seconds(data.get(name), self.timestamp_scale)

    @property
    def levels(self) -> dict[str, str]:
        """Rule ID -> its level under this profile, where ``levels:`` sets one."""
        return self.raw.get("levels", {})

    def level(self, rule_id: str, default: str) -> str:
        """The rule's level under this profile (``levels:`` overrides the registry's)."""
        return self.levels.get(rule_id, default)

    def leveled(self, findings: list[Any]) -> list[Any]:
        """The findings with the level this profile gives their rule (``levels:``);
        a check's own level (an echo that is a SHOULD) stands where it sets none."""
        levels = self.levels
        if not levels:
            return findings
        return [replace(f, level=levels[f.rule]) if f.rule in levels else f for f in findings]

    def section(self, rule_id: str, default: str) -> str:
        """Where the profile's spec states the rule (``sections:``); the registry's
        section of PROTOCOL.md for a profile without a source."""
        if rule_id in self.raw.get("sections", {}):
            return self.raw["sections"][rule_id]
        return f"PROTOCOL.md section {default}" if self.source is None else "not stated in the spec"

    @property
    def volatile(self) -> tuple[str, ...]:
        return tuple(self.raw.get("volatile", ()))

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.raw["events"])

    @property
    def chunk_types(self) -> frozenset[str]:
        return frozenset(self.raw.get("chunk_types", ()))

    @property
    def question_param(self) -> str:
        return self.request.question_param

    @property
    def sample_questions(self) -> tuple[str, ...]:
        return self.request.sample_questions

    @property
    def end_marked(self) -> str | None:
        """Why the last type does not mark the end of a stream (several runs per
        stream, or a last type that also starts it), or None when it does; then
        nothing may follow it (ORDER-NOTHING-AFTER-END)."""
        if self.runs is not None:
            return "the profile allows several runs per stream (see LIFECYCLE-RUN)"
        if set(self.order.first) <= set(self.order.last):
            return "the profile's first type is also its last: no type marks the end"
        return None

    @property
    def end_types(self) -> tuple[str, ...]:
        """Types after which the server must end the stream: the recorders' cue."""
        return self.order.last

    def make_request(self, transport: str, url: str, *, question: str | None = None,
                params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                case: Case | None = None, **kwargs: Any) -> Request:
        """The request for one stream on ``transport``, built as this protocol asks:
        the question in the query parameter, or rendered into the JSON document that
        travels as the body (SSE) or as the first client message (WebSocket);
        without ``question``, the first sample question; ``case`` edits it (an
        invalid or edge-case request). The suite, the load run and the clock probe
        build their requests here."""
        section = self.transports[transport]
        spec = self.request
        query = dict(params or {})
        hdrs = dict(headers or {})
        messages = tuple(kwargs.pop("messages", ()))
        method, body = "GET", None
        carrier = DOCUMENT_CARRIER[section.binding]
        template = getattr(section, "first_message", None) if carrier == "first_message" else None
        if template is None and (carrier == "body" or spec.body is not None):
            template = spec.body
        asked = question if question is not None else spec.sample_questions[0]
        if template is None:
            query[spec.question_param] = asked
            if case is not None:
                query = case.apply(query)
            asked = query.get(spec.question_param)
        else:
            doc = render(template, asked)
            if case is not None:
                doc = edit(doc, case.set, case.remove)
            data = case.raw.encode("utf-8", "surrogatepass") if case is not None and case.raw is not None else encode(doc)
            if carrier == "first_message":
                messages = (ClientMessage(data.decode("utf-8", "replace"), after_events=0),) + messages
            else:
                method, body = spec.method, data
                if case is not None and case.content_type:
                    hdrs = {k: v for k, v in hdrs.items() if k.lower() != "content-type"}  # the case is about it
                    hdrs["Content-Type"] = case.content_type
                elif not any(k.lower() == "content-type" for k in hdrs):
                    hdrs["Content-Type"] = spec.content_type
        return Request.make(transport, url, params=query, headers=hdrs, method=method, body=body, messages=messages,
                            end_types=self.end_types, type_field=self.type_field,
                            end_sentinel=getattr(section, "done_sentinel", None),
                            client_ends=getattr(section, "client_closes", False), question=asked,
                            type_from_event=getattr(section, "type_from_event_name", False), **kwargs)

    def asking(self, questions: list[str]) -> "Profile":
        """The same profile with other sample questions (``--question``)."""
        raw = {**self.raw, "request": {**self.raw.get("request", {}), "sample_questions": list(questions)}}
        return Profile(self.name, self.path, raw)

    def document(self, request: Request) -> Any:
        """The JSON document a request carried (body or first message), or its query."""
        for text in ([request.body.decode("utf-8", "surrogateescape")] if request.body is not None else []) + \
                [m.text for m in request.messages if m.after_events == 0][:1]:
            try:
                return json.loads(text)
            except ValueError:
                return None
        return dict(request.query)

    def transport(self, name: str) -> SSEBinding | WSBinding | None:
        """The section of the transport of that name, or None if the profile does not define it."""
        return self.transports.get(name)

    @cached_property
    def envelope_validator(self) -> Draft202012Validator | None:
        env = self.raw.get("envelope")
        return Draft202012Validator(env) if env else None

    @cached_property
    def last_validator(self) -> Draft202012Validator | None:
        """``order.last_schema`` compiled, or None."""
        return Draft202012Validator(self.order.last_schema) if self.order.last_schema else None

    @cached_property
    def validators(self) -> dict[str, Draft202012Validator]:
        """A compiled Draft 2020-12 validator per event type."""
        return {name: Draft202012Validator(schema) for name, schema in self.raw["events"].items()}

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, computed on the first call for ``key`` and kept on this profile
        object: what other stages derive from a profile alone (the per-stream rules of
        a transport, the fast schema checks), once per profile rather than once per
        stream. A profile is immutable, so a kept value cannot go stale; it lives and
        dies with the profile (``asking`` makes a new one, with nothing kept)."""
        store = self.__dict__.setdefault("_derived", {})  # beside cached_property's values; not a field
        try:
            return store[key]
        except KeyError:
            value = store[key] = build()
            return value


def expand_value(value: Any) -> str:
    """A parameter value from a profile: a string, or ``{repeat, times}``."""
    if isinstance(value, dict):
        return str(value.get("repeat", "")) * int(value.get("times", 1))
    return str(value)


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def _schema_problems(schema: dict[str, Any], doc: Any, source: str, prefix: str = "") -> list[str]:
    """Every place ``doc`` breaks ``schema``, as 'source: key.path: what is wrong'."""
    problems = []

    def key_path(where: str, key: str) -> str:
        return key if where == "(top level)" else f"{where}.{key}"

    for err in sorted(Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = _where(err)
        if prefix:
            where = prefix if where == "(top level)" else f"{prefix}.{where}"
        if err.validator == "additionalProperties":
            # name the unknown key itself, not just its parent
            for key in sorted(set(err.instance) - set(err.schema.get("properties", {}))):
                problems.append(f"{source}: {key_path(where, key)}: unknown key")
        elif err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            problems.append(f"{source}: {key_path(where, missing)}: required key is missing")
        elif err.validator == "anyOf" and all("type" in sub for sub in err.validator_value) \
                and not any(Draft202012Validator({"type": sub["type"]}).is_valid(err.instance) for sub in err.validator_value):
            kinds = " or ".join(repr(sub["type"]) for sub in err.validator_value)
            problems.append(f"{source}: {where}: {err.instance!r} is not of type {kinds}")
        else:
            problems.append(f"{source}: {where}: {err.message}")
    return problems


def _binding_problems(raw: dict[str, Any], source: str) -> list[str]:
    """The shape of each transport section, by its binding's schema."""
    problems: list[str] = []
    transports = raw.get("transports")
    if not isinstance(transports, dict):
        return problems
    for name, section in transports.items():
        if not isinstance(section, dict):
            continue  # the meta-schema reports it
        binding = section.get("binding", name)
        if binding not in BINDING_SCHEMAS:
            problems.append(f"{source}: transports.{name}: no binding {binding!r} (bindings: "
                            f"{', '.join(BINDING_SCHEMAS)}; set binding: to one of them)")
            continue
        problems += _schema_problems(BINDING_SCHEMAS[binding], section, source, f"transports.{name}")
    return problems


def check_profile(raw: Any, source: str = "<profile>") -> list[str]:
    """Every problem with a profile document, as 'source: key: what is wrong'.

    Pure function: the loader raises on the first list that is not empty, and the
    tests call it directly.
    """
    if not isinstance(raw, dict):
        return [f"{source}: a profile must be a mapping, got {type(raw).__name__}"]
    problems = _schema_problems(META_SCHEMA, raw, source)
    problems += _binding_problems(raw, source)
    if problems:
        return problems

    types = set(raw["events"])
    for name, schema in raw["events"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            problems.append(f"{source}: events.{name}: not a valid JSON Schema (Draft 2020-12): {exc.message}")
    if "envelope" in raw:
        try:
            Draft202012Validator.check_schema(raw["envelope"])
        except jsonschema.SchemaError as exc:
            problems.append(f"{source}: envelope: not a valid JSON Schema (Draft 2020-12): {exc.message}")

    def known(key: str, value: str) -> None:
        if value not in types:
            problems.append(f"{source}: {key}: '{value}' is not an event type of this profile")

    def known_all(key: str, value: str | list[str]) -> None:
        if isinstance(value, str):
            known(key, value)
        else:
            for i, v in enumerate(value):
                known(f"{key}[{i}]", v)

    order = raw["order"]
    known_all("order.first", order["first"])
    known_all("order.last", order["last"])
    if "last_schema" in order:
        try:
            Draft202012Validator.check_schema(order["last_schema"])
        except jsonschema.SchemaError as exc:
            problems.append(f"{source}: order.last_schema: not a valid JSON Schema (Draft 2020-12): {exc.message}")
    for key in ("exactly_once", "terminal", "interrupts"):
        for i, value in enumerate(order.get(key, [])):
            known(f"order.{key}[{i}]", value)
    for i, group in enumerate(order.get("exactly_one_of", [])):
        for j, value in enumerate(group):
            known(f"order.exactly_one_of[{i}][{j}]", value)
    runs = raw.get("runs", {})
    for key in ("open", "close", "outside"):
        if key in runs:
            known_all(f"runs.{key}", runs[key])
    for name, after in runs.get("after", {}).items():
        known(f"runs.after.{name}", name)
        known_all(f"runs.after.{name}", after)
    for i, span in enumerate(raw.get("spans", [])):
        for key in ("start", "end", "chunk"):
            if key in span:
                known_all(f"spans[{i}].{key}", span[key])
        known_all(f"spans[{i}].content", span.get("content", []))
    for key in ("echoes", "references"):
        for i, item in enumerate(raw.get(key, [])):
            known_all(f"{key}[{i}].event", item["event"])
            for sub in ("same_as", "known"):
                if sub in item:
                    known_all(f"{key}[{i}].{sub}.event", item[sub]["event"])
    for key in ("delta", "snapshot"):
        if key in raw.get("state", {}):
            known_all(f"state.{key}.event", raw["state"][key]["event"])
    from conformance.rules import RULES  # imported here: the rules import this module's users

    for key in ("levels", "sections"):
        for rule_id in raw.get(key, {}):
            if rule_id not in RULES:
                problems.append(f"{source}: {key}.{rule_id}: no rule has this ID (see docs/rules.md)")
    for i, agg in enumerate(raw.get("aggregates", [])):
        known(f"aggregates[{i}].chunk", agg["chunk"])
        known(f"aggregates[{i}].full", agg["full"])
    for i, value in enumerate(raw.get("chunk_types", [])):
        known(f"chunk_types[{i}]", value)
    transports = raw.get("transports", {})
    for name, section in transports.items():
        if "reject_event_type" in section:
            known(f"transports.{name}.reject_event_type", section["reject_event_type"])
        if "cancel" in section and raw["type_field"] in section["cancel"]["expect"]:
            expected = section["cancel"]["expect"][raw["type_field"]]
            if isinstance(expected, str):
                known(f"transports.{name}.cancel.expect", expected)
            else:
                problems.append(f"{source}: transports.{name}.cancel.expect.{raw['type_field']}: must be a string, "
                                f"got {type(expected).__name__}")
    names = set(transports) or set(BINDINGS)
    for i, pair in enumerate(raw.get("parity", [])):
        for j, name in enumerate(pair):
            if name not in names:
                problems.append(f"{source}: parity[{i}][{j}]: '{name}' is not a transport of this profile")
    for i, agg in enumerate(raw.get("aggregates", [])):
        if agg["scope"] == "key" and not agg.get("key"):
            problems.append(f"{source}: aggregates[{i}].key: scope key needs the pointers that name the text")
        elif agg.get("key") and agg["scope"] != "key":
            problems.append(f"{source}: aggregates[{i}].key: only with scope: key")
    return problems + _request_problems(raw, source)


_QUERY_CASE_KEYS = ("params", "omit")
_DOCUMENT_CASE_KEYS = ("set", "remove", "raw", "content_type")


def _request_problems(raw: dict[str, Any], source: str) -> list[str]:
    """The request templates and cases, tried: each template must carry the
    question, each case must fit the kind of request (query or document) and its
    edits must apply to the rendered document. A case that silently did nothing
    would send a valid request as an invalid one."""
    from . import pointer

    problems: list[str] = []
    request = raw.get("request", {})
    templates = [("request.body", request["body"])] if "body" in request else []
    templates += [(f"transports.{name}.first_message", section["first_message"])
                  for name, section in (raw.get("transports") or {}).items() if "first_message" in section]
    for key, template in templates:
        if not holds_question(template):
            problems.append(f"{source}: {key}: no {{question}} in the template: every request would ask the same")
    sample = (request.get("sample_questions") or ["hello"])[0]
    for group in ("invalid", "valid_edge"):
        for i, case in enumerate(request.get(group, [])):
            where = f"{source}: request.{group}[{i}]"
            wrong = _QUERY_CASE_KEYS if templates else _DOCUMENT_CASE_KEYS
            for k in wrong:
                if k in case:
                    kind = "a JSON document (request.body or first_message)" if templates else "a query"
                    problems.append(f"{where}.{k}: this profile's request is {kind}; use "
                                    f"{', '.join(_DOCUMENT_CASE_KEYS if templates else _QUERY_CASE_KEYS)}")
            for key, template in templates:
                try:
                    edit(render(template, sample), case.get("set", {}).items(), case.get("remove", ()))
                except pointer.PointerError as exc:
                    problems.append(f"{where}: the edit does not apply to {key}: {exc}")
    return problems


def bundled_profiles() -> dict[str, Path]:
    """Profile name -> file, for every profile shipped in conformance/profiles."""
    found = {}
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("profile"), str):
            found[doc["profile"]] = path
    return found


def describe_profiles() -> str:
    """The bundled profiles, one per line: name, spec, transports, file (``--list-profiles``)."""
    lines = []
    for name, path in bundled_profiles().items():
        p = load_profile(path)
        spec = f"{p.source} <{p.source.url}>" if p.source else "shared/PROTOCOL.md (docs/protocol.md)"
        lines.append(f"{name:28} {', '.join(p.transports):10} {spec}")
    return "\n".join(lines)


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE, *, _depth: int = 0) -> Profile:
    """A bundled profile by name (``agent-stream/1``) or a profile file by path.

    Raises ProfileError with a message naming the bad key when the profile is
    broken, the file unreadable, or the name unknown.
    """
    text_name = str(name_or_path)
    bundled = bundled_profiles()
    if text_name in bundled:
        path = bundled[text_name]
    else:
        path = Path(text_name)
        if not path.is_file():
            known = ", ".join(sorted(bundled)) or "none"
            raise ProfileError(f"no profile named {text_name!r} and no such file (bundled profiles: {known})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(raw, dict) and "extends" in raw:
        raw = extend(raw, str(path), _depth)
    problems = check_profile(raw, str(path))
    if problems:
        raise ProfileError("invalid profile:\n  " + "\n  ".join(problems))
    return Profile(name=raw["profile"], path=path, raw=raw)


def extend(raw: dict[str, Any], source: str, depth: int = 0) -> dict[str, Any]:
    """The document of a profile that says ``extends: BASE``: the base profile's
    document with this one's top-level keys in place of the base's, except
    ``transports``, which adds to (or replaces by name) the base's. A transport
    section may say ``like: NAME`` to start from the base's section of transport
    NAME (and its binding), so that a second transport of a binding does not
    repeat what the binding expects. A pure merge; the result is checked as any
    profile is."""
    if depth > 4:
        raise ProfileError(f"{source}: extends: more than 4 levels (a cycle?)")
    base_name = raw["extends"]
    if not isinstance(base_name, str):
        raise ProfileError(f"{source}: extends: must name a bundled profile or a file")
    base = load_profile(base_name, _depth=depth + 1).raw
    merged = {**base, **{k: v for k, v in raw.items() if k not in ("extends", "transports")}}
    transports = dict(base.get("transports") or {name: {} for name in BINDINGS})
    for name, section in (raw.get("transports") or {}).items():
        if isinstance(section, dict) and "like" in section:
            like = section["like"]
            if like not in transports:
                raise ProfileError(f"{source}: transports.{name}.like: {like!r} is not a transport of "
                                   f"{base_name!r} (its transports: {', '.join(transports)})")
            start = dict(transports[like])
            start.setdefault("binding", like)
            section = {**start, **{k: v for k, v in section.items() if k != "like"}}
        transports[name] = section
    merged["transports"] = transports
    return merged
