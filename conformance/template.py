"""Request documents from a profile's templates: the JSON body of a POST, or the
first message a WebSocket client sends.

A template is JSON (from YAML) whose strings may hold placeholders:
``{question}`` is the question of the request, ``{uuid}`` a fresh UUID (each
occurrence its own). A string that is exactly ``{question}`` becomes the
question itself. Invalid and edge-case requests are edits of the rendered
document (set or remove a member by JSON pointer), so a profile states each
case in one line. Pure functions; the only randomness is the UUIDs.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any, Iterable

from . import pointer as jp

QUESTION = "{question}"
UUID = "{uuid}"


def render(template: Any, question: str) -> Any:
    """The document ``template`` stands for, with its placeholders filled in."""
    if isinstance(template, str):
        if template == QUESTION:
            return question
        out = template.replace(QUESTION, question)
        while UUID in out:
            out = out.replace(UUID, str(uuid.uuid4()), 1)
        return out
    if isinstance(template, dict):
        return {k: render(v, question) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, question) for v in template]
    return template


def holds_question(template: Any) -> bool:
    """Whether a template has a ``{question}`` placeholder anywhere."""
    if isinstance(template, str):
        return QUESTION in template
    if isinstance(template, dict):
        return any(holds_question(v) for v in template.values())
    if isinstance(template, list):
        return any(holds_question(v) for v in template)
    return False


def edit(doc: Any, set_: Iterable[tuple[str, Any]] = (), remove: Iterable[str] = ()) -> Any:
    """A copy of ``doc`` with members set and removed by pointer (a member to
    remove that is not there is no error: the case still says what it means)."""
    out = copy.deepcopy(doc)
    for pointer, value in set_:
        out = jp.set_value(out, pointer, copy.deepcopy(value)) if jp.resolve(out, pointer) is not jp.MISSING \
            else jp.add(out, pointer, copy.deepcopy(value))
    for pointer in remove:
        if jp.resolve(out, pointer) is not jp.MISSING:
            out = jp.remove(out, pointer)
    return out


def dumps(doc: Any) -> str:
    """The document as JSON text that is valid UTF-8: characters as they are, except
    when a drawn value holds a lone surrogate (no UTF-8 can carry it), then as
    ``\\u`` escapes, which is still the same JSON value."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
    return text


def encode(doc: Any) -> bytes:
    """The document as the bytes of a JSON body (see :func:`dumps`)."""
    return dumps(doc).encode("utf-8")
