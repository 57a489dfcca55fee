"""The rule registry: each rule is one plain function, registered with what it is.

A rule is registered with its ID, level (RFC 2119, as PROTOCOL.md uses it: a
broken MUST fails, a broken SHOULD warns), the PROTOCOL.md section, the binding
it is about (``sse``, ``ws``, or None for every transport), its scope (one
verdict per transport, per parity pair, or one for the run), the stimuli whose
recordings it judges, and its preconditions. Its docstring's first line is the
requirement a failure quotes. Everything else is generated from here: the
pytest items (one per rule and transport, so ``-k ORDER-SEQ`` selects a rule),
the rule table (docs/rules.md), the JSON report's entries, and the set of
per-stream rules the load scenarios run on every stream.

Two shapes of rule function:

* ``@stream_rule``: ``fn(rec, ctx) -> findings`` judges one recorded stream on
  its own. The suite applies it to every stream of its stimuli; the load
  scenarios apply it to every stream they record (``check_stream``).
* ``@rule``: ``fn(ctx) -> findings`` judges what ``ctx`` holds (several
  stimuli, a pair of transports, an observation).

A rule returns ``(Finding, Recording)`` pairs where it is broken, and raises
:class:`NotJudged` (never a pass) when the evidence cannot decide it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal

if TYPE_CHECKING:
    from conformance.recording import Recording
    from conformance.session import Context

Level = Literal["MUST", "SHOULD"]
Scope = Literal["transport", "pair", "run"]


class NotJudged(Exception):
    """The evidence cannot decide the rule: the verdict is a skip with this reason."""


@dataclass(frozen=True)
class Precondition:
    """A property a recording must have for a rule to judge it; recordings without
    it are set aside, and a rule left with none is not judged, with ``reason``."""

    name: str
    test: Callable[["Recording", "Context"], bool]
    reason: str
    """'{what}' is formatted with the transport's name."""


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    section: str
    requirement: str
    check: Callable[..., Any] = field(repr=False, compare=False)
    binding: str | None = None
    """'sse' or 'ws': the rule applies to the transports of that binding; None: to all."""
    scope: Scope = "transport"
    needs: tuple[str, ...] = ("baseline",)
    """The stimuli whose recordings the rule judges (see conformance.stimuli)."""
    requires: tuple[Precondition, ...] = ()
    per_stream: bool = False
    """``fn(rec, ctx)``: judges one stream alone (the load scenarios run these)."""
    skip_unless: Callable[["Context"], str | None] | None = field(default=None, repr=False, compare=False)
    """A reason not to judge the rule at all (the profile leaves it out), or None."""
    only_with: str | None = None
    """The ``Settings`` field that must be set for the rule to be run at all (``"browser"``:
    the BROWSER-* rules exist only with ``--browser``); None: always run."""

    @property
    def about(self) -> str:
        """Which transports the rule is about, for tables: a binding or 'all'."""
        return self.binding or ("pairs" if self.scope == "pair" else "all")


RULES: dict[str, Rule] = {}
"""Every rule by ID, in registration order (the order of the rule modules)."""


def _register(rule: Rule) -> None:
    if rule.id in RULES:
        raise ValueError(f"rule {rule.id} is registered twice")
    RULES[rule.id] = rule


def _requirement(fn: Callable[..., Any]) -> str:
    doc = (fn.__doc__ or "").strip()
    if not doc:
        raise ValueError(f"rule function {fn.__name__} has no docstring: its first line is the requirement")
    return doc.splitlines()[0].strip()


def rule(rule_id: str, level: Level, section: str, *, binding: str | None = None, scope: Scope = "transport",
         needs: Iterable[str] = ("baseline",), requires: Iterable[Precondition] = (),
         skip_unless: Callable[["Context"], str | None] | None = None, only_with: str | None = None) -> Callable:
    """Register ``fn(ctx) -> [(Finding, Recording)]`` as a rule."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        _register(Rule(rule_id, level, section, _requirement(fn), fn, binding, scope, tuple(needs), tuple(requires),
                       False, skip_unless, only_with))
        return fn

    return decorate


def stream_rule(rule_id: str, level: Level, section: str, *, binding: str | None = None,
                needs: Iterable[str] = ("baseline",), requires: Iterable[Precondition] = (),
                skip_unless: Callable[["Context"], str | None] | None = None) -> Callable:
    """Register ``fn(rec, ctx) -> [Finding]`` as a rule that judges one stream alone."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        _register(Rule(rule_id, level, section, _requirement(fn), fn, binding, "transport", tuple(needs),
                       tuple(requires), True, skip_unless))
        return fn

    return decorate


def default_rules() -> set[str]:
    """The IDs of the rules every run has (those without an ``only_with`` setting)."""
    return {rule_id for rule_id, r in RULES.items() if not r.only_with}


def get(rule_id: str) -> Rule:
    """The rule with that ID; KeyError names it when a check uses an unknown ID."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule ID {rule_id!r}") from None
