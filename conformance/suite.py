"""Helpers shared by the suite's test modules (not tests themselves)."""

from __future__ import annotations

from typing import Any

import pytest

from .parity import Divergence, strict_divergence, structural_divergence
from .profile import Profile
from .recording import Recording
from .rules import RULES
from .target import TRANSPORTS, Target
from .validate import Finding, finding, validate_recording

__all__ = ["TRANSPORTS", "rules_with_prefix", "must_findings", "parity_divergence", "stream_problems"]


def rules_with_prefix(*prefixes: str) -> list[str]:
    return [rid for rid in RULES if rid.startswith(prefixes)]


def must_findings(recording: Recording, profile: Profile) -> list[Finding]:
    """The MUST rules a recorded stream breaks."""
    return [f for f in validate_recording(recording, profile) if f.level == "MUST"]


def parity_divergence(target: Target, left: Recording, right: Recording) -> tuple[str, Divergence | None]:
    """Compare two recordings in the session's parity mode."""
    mode = target.parity_mode()
    names = (left.transport, right.transport)
    if names[0] == names[1]:
        names = (f"{names[0]}#1", f"{names[1]}#2")
    if mode == "strict":
        return mode, strict_divergence(left.objects, right.objects, target.profile, names)
    return mode, structural_divergence(left.objects, right.objects, target.profile, names)


def stream_problems(rule_id: str, recording: Recording, profile: Profile, label: str = "") -> list[tuple[Finding, Recording]]:
    """One finding under ``rule_id`` per way an accepted stream fails: not
    accepted, cut short, or breaking a MUST of the stream rules."""
    prefix = f"{label}: " if label else ""
    if recording.transport == "sse" and recording.status != 200:
        return [(finding(rule_id, f"{prefix}status {recording.status}, expected a stream"), recording)]
    if recording.error_kind in ("connect",):
        return [(finding(rule_id, f"{prefix}{recording.error}"), recording)]
    out = [(finding(rule_id, f"{prefix}{f.rule}: {f.message}", f.index, f.pointer), recording)
           for f in must_findings(recording, profile)]
    if recording.error_kind and not out:
        out.append((finding(rule_id, f"{prefix}{recording.error}"), recording))
    return out


def need(recordings: list[Recording], what: str, see: str) -> list[Recording]:
    """The recordings, or a skip when there are none: a rule with nothing to judge
    must not report a pass."""
    if not recordings:
        pytest.skip(f"no {what} to judge (see {see})")
    return recordings


def with_events(recordings: list[Recording]) -> list[Recording]:
    return [r for r in recordings if r.events]


def options_of(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}
