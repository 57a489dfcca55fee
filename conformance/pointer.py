"""JSON Pointers (RFC 6901): read, set and remove a value in a parsed document.

Profiles name fields by pointer (``/threadId``, ``/response/id``), request edits
set or remove a member by pointer, JSON Patch (RFC 6902) addresses values by
pointer, and findings say where they are by pointer. One implementation, pure.
``*`` as a whole segment matches every member of an object or array (only in
:func:`expand`, for volatile fields such as ``/response/output/*/id``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

MISSING: Any = object()
"""What :func:`resolve` returns for a pointer that names nothing."""


class PointerError(ValueError):
    """A pointer that cannot be applied (a missing parent, an index out of range)."""


def parse(pointer: str) -> list[str]:
    """The unescaped reference tokens of ``pointer`` ('' is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PointerError(f"a JSON pointer starts with '/': {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def join(tokens: list[Any]) -> str:
    """The pointer of a path of keys and indexes."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def _index(token: str, size: int, append: bool = False) -> int:
    if append and token == "-":
        return size
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PointerError(f"{token!r} is not an array index")
    i = int(token)
    if i > size or (i == size and not append):
        raise PointerError(f"index {i} is out of range (length {size})")
    return i


@lru_cache(maxsize=1024)
def _tokens(pointer: str) -> tuple[str, ...]:
    """``parse(pointer)``, kept: :func:`resolve` reads the profile's few pointers on
    every event of a stream (bounded, for pointers a stream supplies: JSON Patch)."""
    return tuple(parse(pointer))


def resolve(doc: Any, pointer: str) -> Any:
    """The value at ``pointer``, or :data:`MISSING`."""
    current = doc
    for token in _tokens(pointer):
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return MISSING
    return current


def resolve_each(docs: list[Any], pointer: str) -> list[Any]:
    """``[resolve(doc, pointer) for doc in docs]``; a one-member pointer (``/chunk``,
    what profiles mostly name) on objects is a dict lookup in one comprehension."""
    tokens = _tokens(pointer)
    if len(tokens) != 1:
        return [resolve(doc, pointer) for doc in docs]
    token = tokens[0]
    return [doc[token] if type(doc) is dict and token in doc else resolve(doc, pointer) for doc in docs]


def _parent(doc: Any, tokens: list[str]) -> Any:
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(token, len(current))]
        else:
            raise PointerError(f"no member {token!r} to descend into")
    return current


def add(doc: Any, pointer: str, value: Any) -> Any:
    """``doc`` with ``value`` added at ``pointer`` (RFC 6902 add: inserts into arrays,
    sets object members). Mutates containers in ``doc``; returns the new root."""
    tokens = parse(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(tokens[-1], len(parent), append=True), value)
    else:
        raise PointerError(f"cannot add a member to a {type(parent).__name__}")
    return doc


def set_value(doc: Any, pointer: str, value: Any) -> Any:
    """``doc`` with the value at ``pointer`` set (replaced in arrays, not inserted)."""
    tokens = parse(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        parent[_index(tokens[-1], len(parent))] = value
    elif isinstance(parent, dict):
        parent[tokens[-1]] = value
    else:
        raise PointerError(f"cannot set a member of a {type(parent).__name__}")
    return doc


def remove(doc: Any, pointer: str) -> Any:
    """``doc`` without the value at ``pointer``; PointerError when there is none."""
    tokens = parse(pointer)
    if not tokens:
        raise PointerError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    if isinstance(parent, dict):
        if tokens[-1] not in parent:
            raise PointerError(f"no member {tokens[-1]!r} to remove")
        del parent[tokens[-1]]
    elif isinstance(parent, list):
        del parent[_index(tokens[-1], len(parent))]
    else:
        raise PointerError(f"cannot remove a member of a {type(parent).__name__}")
    return doc


def expand(doc: Any, pointer: str) -> Iterator[str]:
    """The concrete pointers a pattern with ``*`` segments names in ``doc``."""
    def walk(value: Any, tokens: list[str], done: list[Any]) -> Iterator[str]:
        if not tokens:
            yield join(done)
            return
        head, rest = tokens[0], tokens[1:]
        if head == "*":
            keys = list(value) if isinstance(value, dict) else range(len(value)) if isinstance(value, list) else []
            for key in keys:
                yield from walk(value[key], rest, done + [key])
        elif isinstance(value, dict) and head in value:
            yield from walk(value[head], rest, done + [head])
        elif isinstance(value, list) and head.isdigit() and int(head) < len(value):
            yield from walk(value[int(head)], rest, done + [head])

    yield from walk(doc, parse(pointer), [])
