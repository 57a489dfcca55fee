"""Turn findings into verdicts and readable failure messages.

A broken MUST fails its test; a broken SHOULD passes with a ConformanceWarning
(shown in pytest's summary and recorded in the JSON report, like Autobahn's
NON-STRICT). The message says which rule, what the protocol requires, what was
seen and where, the last events on the wire before it, and a one-line command
that reproduces the request.
"""

from __future__ import annotations

import shlex
import warnings
from typing import Any

import pytest

from .recording import Recording
from .rules import rule
from .target import query_url
from .validate import Finding

MAX_FINDINGS_SHOWN = 5
CONTEXT_EVENTS = 3


class ConformanceWarning(UserWarning):
    """A SHOULD of the protocol is not met."""


def reproduction(recording: Recording, options: dict[str, Any] | None = None) -> str:
    """A one-line command that sends the same request."""
    options = options or {}
    url = query_url(recording.url, recording.params)
    if recording.transport == "sse":
        parts = ["curl", "-N", "-H", "Accept: text/event-stream"]
        for name, value in recording.request_headers.items():
            if name.lower() != "accept":
                parts += ["-H", f"{name}: {value}"]
        parts.append(url)
    else:
        ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        parts = ["python", "-m", "conformance.recorders", "ws", ws_url]
        for name, value in recording.request_headers.items():
            parts += ["--header", f"{name}: {value}"]
        for key in ("cancel_after", "close_after"):
            if options.get(key) is not None:
                parts += [f"--{key.replace('_', '-')}", str(options[key])]
        if options.get("compression"):
            parts.append("--compression")
    line = " ".join(shlex.quote(p) for p in parts)
    return line if len(line) <= 400 else line[:380] + " ...(cut)"


def _event_line(recording: Recording, index: int) -> str:
    event = recording.events[index]
    text = event.text if event.text is not None else event.raw.decode("utf-8", "replace")
    text = text.replace("\n", "\\n")
    return f"    [{index}] {text[:160]}{'...' if len(text) > 160 else ''}"


def _request_label(recording: Recording) -> str:
    """Which request a finding comes from, when a rule looked at several."""
    parts = []
    for key, value in recording.params.items():
        text = value if len(value) <= 30 else value[:27] + "..."
        parts.append(f"{key}={text!r}")
    return " ".join(parts[:2])


def describe(rule_id: str, items: list[tuple[Finding, Recording | None]], transport: str | None,
             options: dict[str, Any] | None = None) -> str:
    """The failure or warning text for a rule broken at these places."""
    r = rule(rule_id)
    lines = [f"[{rule_id}] {r.level}: {r.requirement} (PROTOCOL.md section {r.section})"]
    several = len({id(rec) for _, rec in items}) > 1
    for found, recording in items[:MAX_FINDINGS_SHOWN]:
        request = _request_label(recording) if several and recording is not None else ""
        where = ", ".join(x for x in (transport or (recording.transport if recording else ""), found.where(), request) if x)
        lines.append(f"  seen ({where}): {found.message}")
    if len(items) > MAX_FINDINGS_SHOWN:
        lines.append(f"  ... and {len(items) - MAX_FINDINGS_SHOWN} more")
    found, recording = items[0]
    if recording is not None:
        if recording.error:
            lines.append(f"  the recording stopped: {recording.error}")
        if recording.events:
            end = found.index if found.index is not None else len(recording.events) - 1
            end = min(end, len(recording.events) - 1)
            start = max(0, end - CONTEXT_EVENTS)
            lines.append(f"  last events on the wire up to event {end} ({len(recording.events)} received):")
            lines += [_event_line(recording, i) for i in range(start, end + 1)]
        lines.append(f"  reproduce: {reproduction(recording, options)}")
    return "\n".join(lines)


def judge(node: pytest.Item, rule_id: str, items: list[tuple[Finding, Recording | None]],
          transport: str | None = None, options: dict[str, Any] | None = None) -> None:
    """Fail (MUST), warn (SHOULD) or pass, and leave the verdict on the test item."""
    items = [(f, rec) for f, rec in items if f.rule == rule_id]
    if not items:
        return
    text = describe(rule_id, items, transport, options)
    if rule(rule_id).level == "MUST":
        pytest.fail(text, pytrace=False)
    node.user_properties.append(("conformance_warning", text))
    warnings.warn(ConformanceWarning(text), stacklevel=2)
