"""JSON Patch (RFC 6902), applied to a copy: state deltas must apply to the state so far.

AG-UI's STATE_DELTA carries an RFC 6902 patch against the state the client
holds (the last STATE_SNAPSHOT, or the request's state). A patch that does not
apply breaks every client that follows the stream; :func:`apply` says which
operation failed and why. Pure; the document passed in is never changed.
"""

from __future__ import annotations

import copy
from typing import Any

from . import pointer as jp
from .parity import same_json


class PatchError(ValueError):
    """An operation that does not apply; ``index`` is its place in the patch."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"operation {index}: {message}")
        self.index = index


def apply(doc: Any, patch: Any) -> Any:
    """The document after ``patch``; PatchError names the first operation that fails."""
    if not isinstance(patch, list):
        raise PatchError(0, f"a patch is an array of operations, not {type(patch).__name__}")
    out = copy.deepcopy(doc)
    for i, op in enumerate(patch):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise PatchError(i, "an operation is an object with string 'op' and 'path'")
        name, path = op["op"], op["path"]
        try:
            if name in ("add", "replace", "test") and "value" not in op:
                raise PatchError(i, f"{name} needs a 'value'")
            if name == "add":
                out = jp.add(out, path, copy.deepcopy(op["value"]))
            elif name == "remove":
                out = jp.remove(out, path)
            elif name == "replace":
                if jp.resolve(out, path) is jp.MISSING:
                    raise PatchError(i, f"replace: nothing at {path!r}")
                out = jp.set_value(out, path, copy.deepcopy(op["value"]))
            elif name in ("move", "copy"):
                source = op.get("from")
                if not isinstance(source, str):
                    raise PatchError(i, f"{name} needs a string 'from'")
                value = jp.resolve(out, source)
                if value is jp.MISSING:
                    raise PatchError(i, f"{name}: nothing at 'from' {source!r}")
                if name == "move":
                    if path.startswith(source + "/"):
                        raise PatchError(i, f"move: {path!r} is inside {source!r}")
                    out = jp.remove(out, source)
                out = jp.add(out, path, copy.deepcopy(value))
            elif name == "test":
                if not same_json(jp.resolve(out, path), op["value"]):
                    raise PatchError(i, f"test failed at {path!r}")
            else:
                raise PatchError(i, f"unknown op {name!r}")
        except jp.PointerError as exc:
            raise PatchError(i, f"{name} {path!r}: {exc}") from None
    return out
