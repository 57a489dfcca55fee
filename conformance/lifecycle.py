"""Checks across events: runs, spans by id, echoed values, references, state patches.

agent-stream/1 is one flat sequence; AG-UI, OpenAI Responses and the Vercel
stream are nested: runs that open and close, messages and tool calls that start,
stream content and end per id (interleaved), values that must echo the request
or an earlier event, ids that must have been introduced before they are named,
and JSON Patch deltas that must apply to the state so far. The profile states
each of these as data (``runs``, ``spans``, ``echoes``, ``references``,
``state``); the functions here judge a parsed stream against them and return
findings. Pure: no I/O, no event type names.
"""

from __future__ import annotations

import json
from typing import Any

from . import pointer as jp
from .jsonpatch import PatchError, apply
from .parity import same_json
from .profile import Echo, Profile, Runs, Span
from .validate import Finding, finding, short


def _quoted(names: tuple[str, ...]) -> str:
    return " or ".join(repr(n) for n in names)


def run_findings(types: list[str | None], runs: Runs) -> list[Finding]:
    """LIFECYCLE-RUN: runs open and close in turn, never nest, and between runs only
    the ``outside`` types come; ``after`` limits what may follow a closing type."""
    out: list[Finding] = []
    opened_at: int | None = None
    previous: str | None = None
    for i, t in enumerate(types):
        if t is None:
            continue
        if previous in runs.after and t not in runs.after[previous]:
            out.append(finding("LIFECYCLE-RUN", f"{t!r} follows {previous!r}; only {_quoted(runs.after[previous])} may", i))
        if t in runs.open:
            if opened_at is not None:
                out.append(finding("LIFECYCLE-RUN", f"{t!r} starts a run while the run started at event {opened_at} "
                                                    f"is open (runs do not nest)", i))
            opened_at = i
        elif t in runs.close:
            if opened_at is None and t not in runs.outside:
                out.append(finding("LIFECYCLE-RUN", f"{t!r} closes no open run", i))
            opened_at = None
        elif opened_at is None and t not in runs.outside:
            where = f"after {previous!r}" if previous is not None else "before any run"
            out.append(finding("LIFECYCLE-RUN", f"{t!r} comes outside a run ({where}); a run opens with "
                                                f"{_quoted(runs.open)}", i))
        previous = t
    return out


def _key(obj: Any, span: Span) -> Any:
    value = jp.resolve(obj, span.key) if isinstance(obj, dict) else jp.MISSING
    return None if value is jp.MISSING else value


def span_findings(objects: list[Any], types: list[str | None], spans: tuple[Span, ...], runs: Runs | None,
                  interrupts: tuple[str, ...] = ()) -> list[Finding]:
    """LIFECYCLE-SPAN: per id, a start, content, an end; ids interleave freely, an id
    opens again only after its end, and every span is closed before its run closes
    (or, without runs, before the stream ends). A chunk event opens its id's span
    if needed (the first chunk must carry the id) and the span so opened closes at
    the next event that is not a chunk of it. An ``order.interrupts`` type (AG-UI's
    RUN_ERROR, Anthropic's error) abandons the open spans: no finding, as the
    official AG-UI verifier checks open spans only at RUN_FINISHED."""
    out: list[Finding] = []
    opened: dict[tuple[str, Any], int] = {}
    chunked: tuple[Span, Any] | None = None  # the span a run of chunks opened

    def hashable(value: Any) -> Any:
        return value if isinstance(value, (str, int, float, bool)) or value is None else _key_text(value)

    for i, (obj, t) in enumerate(zip(objects, types)):
        if t is None:
            continue
        if chunked is not None:
            span, key = chunked
            own = _key(obj, span)
            if t != span.chunk or (own is not None and hashable(own) != key):
                opened.pop((span.name, key), None)  # the chunks' span ends here
                chunked = None
        for span in spans:
            raw = _key(obj, span)
            key = hashable(raw)
            label = f"{span.name} {short(raw, 40)}"
            if t == span.start:
                if raw is None:
                    continue  # the schema says the id is required
                if (span.name, key) in opened:
                    out.append(finding("LIFECYCLE-SPAN", f"{t!r} starts {label} again while it is open since event "
                                                         f"{opened[(span.name, key)]}", i, span.key))
                opened[(span.name, key)] = i
            elif t in span.content or t in span.end:
                if raw is None:
                    continue
                if (span.name, key) not in opened:
                    what = "ends" if t in span.end else "continues"
                    out.append(finding("LIFECYCLE-SPAN", f"{t!r} {what} {label}, which is not open"
                                                         f" (no {span.start!r} before it)", i, span.key))
                elif t in span.end:
                    del opened[(span.name, key)]
            elif t == span.chunk:
                if raw is None:
                    if chunked is None or chunked[0] is not span:
                        out.append(finding("LIFECYCLE-SPAN", f"the first {t!r} of a {span.name} carries no "
                                                             f"{span.key}", i, span.key))
                    continue
                if (span.name, key) not in opened:
                    opened[(span.name, key)] = i
                    chunked = (span, key)
        if t in interrupts:
            opened.clear()  # the run or message broke off: its spans end with it
            chunked = None
        elif runs is not None and t in runs.close and opened:
            for (name, key), at in sorted(opened.items(), key=lambda kv: kv[1]):
                out.append(finding("LIFECYCLE-SPAN", f"{t!r} closes the run while {name} {short(key, 40)} "
                                                     f"(opened at event {at}) is open", i))
            opened.clear()
            chunked = None
    if chunked is not None:
        opened.pop((chunked[0].name, chunked[1]), None)
    if runs is None and opened:
        for (name, key), at in sorted(opened.items(), key=lambda kv: kv[1]):
            out.append(finding("LIFECYCLE-SPAN", f"the stream ended while {name} {short(key, 40)} (opened at event "
                                                 f"{at}) is open", at))
    return out


def echo_findings(objects: list[Any], types: list[str | None], profile: Profile, request_doc: Any) -> list[Finding]:
    """ECHO-REQUEST and ECHO-EVENT: values that must equal the request's, or those
    of the latest earlier event of a type (within the run, when runs are defined)."""
    out: list[Finding] = []
    runs = profile.runs
    for echo in profile.echoes:
        rule_id = "ECHO-REQUEST" if echo.request is not None else "ECHO-EVENT"
        latest: dict[str, tuple[int, Any]] = {}
        seen = 0
        for i, (obj, t) in enumerate(zip(objects, types)):
            if t is None:
                continue
            if runs is not None and t in runs.open:
                latest.clear()
            if t in echo.event and not (echo.first_only and seen):
                seen += 1
                out += _echo_one(echo, rule_id, obj, t, i, types, latest, request_doc)
            if echo.same_as is not None and t in echo.same_as.event:  # after: an event is not its own echo
                value = jp.resolve(obj, echo.same_as.pointer)
                if value is not jp.MISSING:
                    latest["v"] = (i, value)
    return out


def _echo_one(echo: Echo, rule_id: str, obj: Any, t: str, i: int, types: list[str | None],
              latest: dict[str, tuple[int, Any]], request_doc: Any) -> list[Finding]:
    """The finding when this event's value is not the one it must echo."""
    value = jp.resolve(obj, echo.pointer)
    seen = "nothing" if value is jp.MISSING else short(value, 60)
    if echo.request is not None:
        expected = jp.resolve(request_doc, echo.request) if request_doc is not None else jp.MISSING
        if expected is jp.MISSING:
            return []  # the request did not carry it: nothing to echo
        source = f"the request's {echo.request} is"
    else:
        assert echo.same_as is not None
        if "v" not in latest:
            return []  # nothing to compare with (the order rules judge a missing event)
        at, expected = latest["v"]
        source = f"event {at} ({types[at]}) has {echo.same_as.pointer}"
    if value is not jp.MISSING and same_json(value, expected):
        return []
    return [finding(rule_id, f"{t}{echo.pointer} is {seen}; {source} {short(expected, 60)}", i, echo.pointer,
                    level=echo.level)]


def _key_text(value: Any) -> str:
    """A value as a set key: whole JSON, never cut (two long ids with one prefix differ)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)


def reference_findings(objects: list[Any], types: list[str | None], profile: Profile,
                       request_doc: Any = None) -> list[Finding]:
    """REF-KNOWN-ID: a reference names an id that an earlier event introduced, or
    that the request already carries (``known.request``: a resumed conversation's
    tool calls)."""
    out: list[Finding] = []
    for ref in profile.references:
        known: set[str] = set()
        if ref.known.request is not None and request_doc is not None:
            known |= {_key_text(jp.resolve(request_doc, p)) for p in jp.expand(request_doc, ref.known.request)}
        for i, (obj, t) in enumerate(zip(objects, types)):
            if t is None:
                continue
            if t in ref.event:
                value = jp.resolve(obj, ref.pointer)
                if value is not jp.MISSING and _key_text(value) not in known:
                    out.append(finding("REF-KNOWN-ID", f"{t}{ref.pointer} names {short(value, 60)}, which no earlier "
                                                       f"{_quoted(ref.known.event)} introduced", i, ref.pointer,
                                       level=ref.level))
            if t in ref.known.event:
                value = jp.resolve(obj, ref.known.pointer)
                if value is not jp.MISSING:
                    known.add(_key_text(value))
    return out


def state_findings(objects: list[Any], types: list[str | None], profile: Profile, request_doc: Any) -> list[Finding]:
    """STATE-PATCH: each state delta (RFC 6902) applies to the state so far: the
    request's, then each snapshot, then each delta applied in turn."""
    spec = profile.state
    if spec is None:
        return []
    out: list[Finding] = []
    state: Any = {}
    if spec.initial is not None and request_doc is not None:
        initial = jp.resolve(request_doc, spec.initial)
        state = {} if initial is jp.MISSING else initial
    for i, (obj, t) in enumerate(zip(objects, types)):
        if t is None:
            continue
        if spec.snapshot is not None and t in spec.snapshot.event:
            value = jp.resolve(obj, spec.snapshot.pointer)
            if value is not jp.MISSING:
                state = value
        elif t in spec.delta.event:
            patch = jp.resolve(obj, spec.delta.pointer)
            if patch is jp.MISSING:
                continue  # the schema says the delta is required
            try:
                state = apply(state, patch)
            except PatchError as exc:
                out.append(finding("STATE-PATCH", f"{t}{spec.delta.pointer} does not apply to the state so far: {exc}",
                                   i, f"{spec.delta.pointer}/{exc.index}", level=spec.level))
    return out


def lifecycle_findings(objects: list[Any], types: list[str | None], profile: Profile, request_doc: Any = None) -> list[Finding]:
    """Every cross-event finding of a stream (empty for a profile without these keys)."""
    out: list[Finding] = []
    if profile.runs is not None:
        out += run_findings(types, profile.runs)
    if profile.spans:
        out += span_findings(objects, types, profile.spans, profile.runs, profile.order.interrupts)
    out += echo_findings(objects, types, profile, request_doc)
    out += reference_findings(objects, types, profile, request_doc)
    out += state_findings(objects, types, profile, request_doc)
    return out
