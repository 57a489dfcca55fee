"""Compare two streams: strict parity (same events, volatile fields aside) and
structural parity (same shape once chunk runs are merged).

Pure functions on parsed events. A divergence carries what a reader needs to
see the problem at once: the index, the type on each side and the fields that
differ, as JSON pointers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from . import pointer as jp
from .profile import Profile
from .validate import json_pointer, short


def strip_volatile(obj: Any, volatile: tuple[str, ...]) -> Any:
    """The event without its volatile fields: top-level names (``ts``) and JSON
    pointers, where ``*`` matches every member (``/response/output/*/id``)."""
    if not isinstance(obj, dict):
        return obj
    out = {k: v for k, v in obj.items() if k not in volatile}
    pointers = [v for v in volatile if v.startswith("/")]
    if pointers:
        out = copy.deepcopy(out)
        for pattern in pointers:
            for concrete in reversed(list(jp.expand(out, pattern))):
                jp.remove(out, concrete)
    return out


def _type(obj: Any, profile: Profile) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get(profile.type_field), str):
        return obj[profile.type_field]
    return None


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values. Python's ``==`` says ``True == 1``, but JSON ``true``
    and ``1`` differ; ``1`` and ``1.0`` are the same JSON number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if _number(a) and _number(b):
        return a == b
    return type(a) is type(b) and a == b


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def field_differences(a: Any, b: Any, path: tuple[Any, ...] = (), limit: int = 5) -> list[tuple[str, Any, Any]]:
    """Up to ``limit`` (pointer, left value, right value) where two JSON values differ."""
    out: list[tuple[str, Any, Any]] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if len(out) >= limit:
                break
            if key not in a or key not in b:
                out.append((json_pointer(path + (key,)), a.get(key, "<absent>"), b.get(key, "<absent>")))
            elif not same_json(a[key], b[key]):
                out += field_differences(a[key], b[key], path + (key,), limit - len(out))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if len(out) >= limit:
                break
            if not same_json(x, y):
                out += field_differences(x, y, path + (i,), limit - len(out))
    elif not same_json(a, b):
        out.append((json_pointer(path), a, b))
    return out


@dataclass
class Divergence:
    """Where two streams first differ."""

    index: int
    left_type: str | None
    right_type: str | None
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)
    left_count: int = 0
    right_count: int = 0
    left_name: str = "sse"
    right_name: str = "ws"

    def describe(self) -> str:
        lt = _label(self.left_type, self.index < self.left_count)
        rt = _label(self.right_type, self.index < self.right_count)
        head = (
            f"first divergence at event {self.index}: {self.left_name} has {lt}, {self.right_name} has {rt} "
            f"({self.left_name}: {self.left_count} events, {self.right_name}: {self.right_count})"
        )
        lines = [head]
        for pointer, a, b in self.fields:
            lines.append(f"  {pointer or '/'}: {self.left_name}={short(a, 70)} {self.right_name}={short(b, 70)}")
        return "\n".join(lines)


def _label(etype: str | None, present: bool) -> str:
    """How one side reads at the divergence: its type, an event without a usable
    type (did not parse), or the end of the stream."""
    if not present:
        return "<end of stream>"
    return repr(etype) if etype is not None else "<event without a type>"


def strict_divergence(left: list[Any], right: list[Any], profile: Profile, names: tuple[str, str] = ("sse", "ws")) -> Divergence | None:
    """None when both streams hold the same events once volatile fields are removed."""
    vol = profile.volatile
    for i in range(max(len(left), len(right))):
        a = strip_volatile(left[i], vol) if i < len(left) else None
        b = strip_volatile(right[i], vol) if i < len(right) else None
        if i >= len(left) or i >= len(right) or not same_json(a, b):
            diffs = field_differences(a, b) if a is not None and b is not None else []
            return Divergence(i, _type(a, profile), _type(b, profile), diffs, len(left), len(right), *names)
    return None


def structure(objects: list[Any], profile: Profile) -> list[str | None]:
    """The sequence of types with every run of one chunk type merged into one."""
    out: list[str | None] = []
    chunks = profile.chunk_types
    for obj in objects:
        t = _type(obj, profile)
        if out and t in chunks and out[-1] == t:
            continue
        out.append(t)
    return out


def structural_divergence(left: list[Any], right: list[Any], profile: Profile, names: tuple[str, str] = ("sse", "ws")) -> Divergence | None:
    """None when both streams have the same structure (chunk runs merged)."""
    a, b = structure(left, profile), structure(right, profile)
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if i >= len(a) or i >= len(b) or x != y:
            return Divergence(i, x, y, [], len(a), len(b), *names)
    return None


def is_deterministic(first: list[Any], second: list[Any], profile: Profile) -> bool:
    """Two recordings of the same request over one transport: equal, ts aside?"""
    return strict_divergence(first, second, profile) is None


def parity_mode(setting: str, deterministic: bool) -> str:
    """The parity a backend is held to: the user's choice, or with ``auto`` strict
    parity when it repeated itself exactly and structural parity otherwise."""
    if setting != "auto":
        return setting
    return "strict" if deterministic else "structural"
