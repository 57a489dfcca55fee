"""Fast path of the per-event checks: a compiled yes/no before jsonschema's full account.

Almost every event a load run sees is valid, and the only thing the validator
then needs to know is *that* it is valid. ``jsonschema`` answers that in about
60 µs per event; ``jsonschema-rs`` (Rust) in about 1 µs and ``fastjsonschema``
(generated Python) in about 5. So each event is first asked of the fast
validator; only an event it calls invalid goes through ``jsonschema``, whose
errors carry the JSON pointer and the broken keyword the messages quote. The
fast answer is a filter, never a verdict: an event the fast path rejects is
judged by ``jsonschema`` alone, so the only way the two paths could disagree is
a fast "valid" for an event ``jsonschema`` rejects.
``tests/test_fastschema.py`` holds the two paths against each other on every
event schema of the bundled profiles and on the events of every broken backend.

The same idea for JSON: :func:`loads` decodes with ``orjson`` when it is there and
the text is one it decodes exactly like Python's ``json``; everything else (a
parse error included) goes to one reused strict ``json`` decoder, so the error
messages and the values stay those of the standard library.

Both accelerators are optional (the ``fast`` extra): without them this module
answers "no fast path" and the checks run as before.
"""

from __future__ import annotations

import json
from itertools import repeat
from operator import call
from collections.abc import Callable, Mapping
from typing import Any
import weakref

try:  # the ``fast`` extra
    import jsonschema_rs as _rs
except ImportError:  # pragma: no cover - exercised by the fallback test through ENGINE
    _rs = None
try:
    import fastjsonschema as _fjs
except ImportError:  # pragma: no cover
    _fjs = None
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

Check = Callable[[Any], bool]
"""A compiled schema: True when the instance is valid."""

ENGINE: str | None = "jsonschema-rs" if _rs is not None else ("fastjsonschema" if _fjs is not None else None)
"""The fast validator in use (None: none installed, every event takes the slow path).
Tests set it to compare the engines; :func:`compile_schema` reads it."""


def compile_schema(schema: Mapping[str, Any] | bool, engine: str | None = None) -> Check | None:
    """A fast validity check for a Draft 2020-12 schema, or None (no engine, or
    the engine cannot compile it: then the slow path judges every event)."""
    engine = ENGINE if engine is None else engine
    try:
        if engine == "jsonschema-rs" and _rs is not None:
            # formats are annotations in 2020-12, as jsonschema treats them by default
            return _rs.Draft202012Validator(schema, validate_formats=False).is_valid
        if engine == "fastjsonschema" and _fjs is not None:
            return _fjs_check(_fjs.compile(dict(schema) if isinstance(schema, Mapping) else schema,
                                           use_formats=False))
    except Exception:  # noqa: BLE001 - a schema the engine does not support: no fast path for it
        return None
    return None


def _fjs_check(fn: Callable[[Any], Any]) -> Check:
    exc = _fjs.JsonSchemaException

    def check(instance: Any) -> bool:
        try:
            fn(instance)
            return True
        except exc:
            return False
    return check


class EventChecker:
    """The fast checks of one profile: the envelope and each event type's schema.

    :meth:`valid` is True only when the event is an object, passes the envelope,
    has a string type the profile knows, and passes that type's schema: exactly
    the case where the slow path would report nothing for it."""

    __slots__ = ("envelope", "types", "type_field", "whole")

    def __init__(self, envelope: Check | None, types: dict[str, Check], type_field: str,
                 whole: dict[str, Check] | None = None) -> None:
        self.envelope, self.types, self.type_field = envelope, types, type_field
        self.whole: dict[str, Check] = whole if whole is not None else {
            name: (check if envelope is None else _both(envelope, check)) for name, check in types.items()}
        """Type -> one check of the envelope and that type's schema together (see :func:`_build`)."""

    def valid(self, obj: Any) -> bool:
        if type(obj) is not dict:
            return False
        etype = obj.get(self.type_field)
        check = self.whole.get(etype) if type(etype) is str else None
        return check is not None and check(obj)

    def all_valid(self, objects: list[Any]) -> bool:
        """Whether :meth:`valid` holds for every object."""
        return self.types_if_valid(objects) is not None

    def types_if_valid(self, objects: list[Any]) -> list[str] | None:
        """The type of each object when :meth:`valid` holds for every one, else None.
        By ``map`` (each object's type, then its check, then the calls): no Python
        step per event."""
        if not set(map(type, objects)) <= {dict}:
            return None
        types = list(map(dict.get, objects, repeat(self.type_field)))
        if not set(map(type, types)) <= {str}:
            return None
        checks = list(map(self.whole.get, types))
        return types if None not in checks and all(map(call, checks, objects)) else None


def _both(first: Check, second: Check) -> Check:
    return lambda obj: first(obj) and second(obj)


_CHECKERS: dict[int, tuple[Any, EventChecker | None]] = {}
"""id(profile) -> (a weak reference to it, its checker). By identity: a profile
is a frozen dataclass holding dicts, so it cannot be hashed."""


def checker(profile: Any) -> EventChecker | None:
    """The profile's :class:`EventChecker`, compiled once per profile object (None
    when no fast engine is installed or a schema of the profile does not compile)."""
    key = id(profile)
    hit = _CHECKERS.get(key)
    if hit is not None and hit[0]() is profile:
        return hit[1]
    built = _build(profile)
    try:
        ref = weakref.ref(profile, lambda _r, k=key: _CHECKERS.pop(k, None))
    except TypeError:  # not weak-referenceable: compile each time
        return built
    _CHECKERS[key] = (ref, built)
    return built


def _build(profile: Any) -> EventChecker | None:
    if ENGINE is None:
        return None
    raw = profile.raw
    envelope = None
    if raw.get("envelope"):
        envelope = compile_schema(raw["envelope"])
        if envelope is None:
            return None
    types: dict[str, Check] = {}
    whole: dict[str, Check] = {}
    for name, schema in raw["events"].items():
        check = compile_schema(schema)
        if check is None:
            return None  # one schema without a fast check: keep every event on one path
        types[name] = check
        # the envelope and the type's schema as one schema ({"allOf": [both]}): one call
        # into the engine per event instead of two, the half of its cost that is converting
        # the event. Only for schemas without references or identifiers, which would
        # resolve differently one level down.
        both = compile_schema({"allOf": [raw["envelope"], schema]}) \
            if envelope is not None and _self_contained(raw["envelope"]) and _self_contained(schema) else None
        whole[name] = both if both is not None else (check if envelope is None else _both(envelope, check))
    return EventChecker(envelope, types, profile.type_field, whole)


def _self_contained(schema: Any) -> bool:
    """Whether a schema holds no ``$`` keyword anywhere (``$ref``, ``$id``, ``$defs``,
    ``$anchor``, ...): then it means the same nested in another schema. A property
    named with a ``$`` counts too: a false no only costs speed."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(isinstance(k, str) and k.startswith("$") for k in node):
                return False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


# --------------------------------------------------------------------------- JSON


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (RFC 8259; a browser's JSON.parse rejects it)")


_STRICT = json.JSONDecoder(parse_constant=_no_constant)
"""One strict decoder for every event (``json.loads`` with an argument builds a new one per call)."""

_BIG = float(2**63)

_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
"""A byte map: every ASCII digit to ``0``, any other byte to a space."""
_LONG_RUN = b"0" * 19
"""An integer of 2**63 or more in magnitude is written with at least 19 digits in a row."""


def _long_number(text: str) -> bool:
    """Whether ``text`` has 19 digits in a row (in a number or a string): only then
    can orjson have turned an integer past 64 bits into a float. A byte map and a
    substring search, both in C: a third of orjson's own decoding, where a walk
    of every result cost more than the decoding and a regular expression ten
    times as much."""
    return _LONG_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS)


def _lossy(value: Any) -> bool:
    """Whether an orjson result may differ from ``json``'s: orjson turns an integer
    past 64 bits into a float, where ``json`` keeps the exact int, so any float of
    that size sends the text to the standard decoder (a float written so, such as
    ``1e20``, decodes the same there: only speed is lost). Walked only when the
    text has a number long enough (:func:`_long_number`)."""
    stack = [value]
    while stack:
        node = stack.pop()
        for v in (node.values() if type(node) is dict else node):
            t = type(v)
            if t is float:
                if v >= _BIG or v <= -_BIG:
                    return True
            elif t is dict or t is list:
                stack.append(v)
    return False


ORJSON_MAX_CHARS = 65_536
"""The longest text given to orjson. orjson (yyjson) takes about 13 bytes of
working memory per byte of text while it decodes: 12 MB for one 900 KB event,
which made a flood of large events peak at twice what the recorder keeps. The
standard decoder takes about one byte per byte, and from about this size on it
is as fast (70 against 49 µs at 70 KB; 1.0 against 1.7 ms at 1 MB)."""


def loads(text: str) -> Any:
    """Strict JSON (no NaN/Infinity, as a browser's ``JSON.parse``): orjson when it
    decodes the text as ``json`` would, else the standard decoder, whose
    ``ValueError`` (``JSONDecodeError`` or a constant) or ``RecursionError``
    propagates with the standard library's message. A text longer than
    :data:`ORJSON_MAX_CHARS` goes to the standard decoder, which is as fast there."""
    if _orjson is not None and len(text) <= ORJSON_MAX_CHARS:
        try:
            value = _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass  # let the standard decoder say why (or accept what orjson will not: a lone surrogate)
        else:
            t = type(value)
            if (t is not dict and t is not list and t is not float) or not _long_number(text) or not _lossy([value]):
                return value
    if text.startswith("\ufeff"):  # json.loads refuses it before decoding; the decoder alone would not say so
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _STRICT.decode(text)


class disabled:
    """Within ``with disabled():`` every event takes the slow path (jsonschema and
    the standard JSON decoder): what the harness benchmark prints as the path
    before the fast one, in the same run."""

    def __enter__(self) -> "disabled":
        global ENGINE, _orjson
        self._saved = ENGINE, _orjson, dict(_CHECKERS)
        ENGINE, _orjson = None, None
        _CHECKERS.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        global ENGINE, _orjson
        ENGINE, _orjson, checkers = self._saved
        _CHECKERS.clear()
        _CHECKERS.update(checkers)
