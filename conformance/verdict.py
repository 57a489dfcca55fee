"""Turn findings into verdicts and readable messages (pure: no pytest, no I/O).

A broken MUST is a ``fail``; a broken SHOULD is a ``warn`` (the pytest plugin
passes the test with a ConformanceWarning, like Autobahn's NON-STRICT); a rule
whose evidence cannot decide it is a ``skip`` with the reason. The message says
which rule, what the protocol requires, what was seen and where, the last
events on the wire before it, and a one-line command that reproduces the
request, derived from the request value the recording keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .recording import Recording
from .validate import Finding

if TYPE_CHECKING:
    from .rules.registry import Rule


def requirement_for(rule: "Rule", profile: Any) -> str:
    from .rules.registry import requirement_for as words  # the registry's modules import this one

    return words(rule, profile)

Verdict = Literal["pass", "fail", "warn", "skip"]
MAX_FINDINGS_SHOWN = 5
CONTEXT_EVENTS = 3


class ConformanceWarning(UserWarning):
    """A SHOULD of the protocol is not met."""


@dataclass
class Outcome:
    """One rule's verdict on one transport (or pair, or the run)."""

    rule: str
    verdict: Verdict
    message: str = ""
    transport: str = "all"
    findings: list[tuple[Finding, Recording | None]] = field(default_factory=list, repr=False)

    def _recordings(self) -> list[Recording]:
        """One recording per distinct request the findings come from, in order."""
        first: dict[Any, Recording] = {}
        for _, rec in self.findings:
            if rec is not None:
                first.setdefault(rec.request, rec)
        return list(first.values())

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Each distinct request the findings come from, as JSON (for replay)."""
        return [rec.request.to_json() for rec in self._recordings()]

    @property
    def reproductions(self) -> list[str]:
        """A whole reproduction line per distinct request."""
        return [reproduction(rec) for rec in self._recordings()]


def reproduction(recording: Recording) -> str:
    """The one-line command that sends the recording's request again."""
    from .wire import get

    return get(recording.transport).reproduce(recording.request)


def _event_line(recording: Recording, index: int) -> str:
    event = recording.events[index]
    text = event.text if event.text is not None else event.raw.decode("utf-8", "replace")
    text = text.replace("\n", "\\n")
    return f"    [{index}] {text[:160]}{'...' if len(text) > 160 else ''}"


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def cause(finding: Finding) -> tuple[str, str, str]:
    """What makes two findings the same cause: the rule, the message with its
    numbers and quoted values blanked out, and the pointer. A drawn question or a
    case name differs between two findings of one defect; the shape does not."""
    shape = _NUMBER.sub("N", _QUOTED.sub("'…'", finding.message))
    return finding.rule, shape, finding.pointer


def count_causes(findings: list[Finding]) -> tuple[int, int]:
    """(findings, unique causes) over a run."""
    return len(findings), len({cause(f) for f in findings})


def describe(rule: "Rule", items: list[tuple[Finding, Recording | None]], transport: str | None,
             section: str | None = None, requirement: str | None = None) -> str:
    """The failure or warning text for a rule broken at these places; findings of
    one cause are shown once, with how many there were. ``section`` says where the
    profile's spec states the rule (default: PROTOCOL.md's section)."""
    level = "MUST" if any(f.level == "MUST" for f, _ in items) else "SHOULD"
    lines = [f"[{rule.id}] {level}: {requirement or rule.requirement} "
             f"({section or f'PROTOCOL.md section {rule.section}'})"]
    several = len({id(rec) for _, rec in items}) > 1
    groups: dict[tuple[str, str, str], list[tuple[Finding, Recording | None]]] = {}
    for found, recording in items:
        groups.setdefault(cause(found), []).append((found, recording))
    for group in list(groups.values())[:MAX_FINDINGS_SHOWN]:
        found, recording = group[0]
        request = recording.request.describe() if several and recording is not None else ""
        own = recording.transport if recording is not None else ""
        where = ", ".join(x for x in (own or transport or "", found.where(), request) if x)
        times = f" ({len(group)} times, first shown)" if len(group) > 1 else ""
        lines.append(f"  seen ({where}): {found.message}{times}")
    if len(groups) > MAX_FINDINGS_SHOWN:
        lines.append(f"  ... and {len(groups) - MAX_FINDINGS_SHOWN} more causes")
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
        lines.append(f"  reproduce: {reproduction(recording)}")
    return "\n".join(lines)


def outcome(rule: "Rule", items: list[tuple[Finding, Recording | None]], transport: str = "all",
            profile: Any = None) -> Outcome:
    """Fail (a MUST broken), warn (only SHOULDs broken) or pass, from what a rule
    found. A profile may set a rule's level (``levels:``) and a check's own level
    (an echo that is only a SHOULD); the findings carry it."""
    items = [(f, rec) for f, rec in items if f.rule == rule.id]
    if not items:
        return Outcome(rule.id, "pass", "", transport)
    if profile is not None:  # the rules' own findings (validate's already carry the profile's levels)
        items = list(zip(profile.leveled([f for f, _ in items]), [rec for _, rec in items]))
    verdict: Verdict = "fail" if any(f.level == "MUST" for f, _ in items) else "warn"
    section = profile.section(rule.id, rule.section) if profile is not None else None
    text = requirement_for(rule, profile) if profile is not None else None
    return Outcome(rule.id, verdict, describe(rule, items, transport, section, text), transport, items)
