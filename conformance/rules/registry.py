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
    validation: bool = False
    """The rule reports its share of the stream's validation pass (the findings of
    ``ctx.findings(rec)`` under its ID) and nothing else: a stream whose pass has
    none under its ID passes it, whatever its preconditions (``check_stream`` then
    does not run it)."""

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
                skip_unless: Callable[["Context"], str | None] | None = None, validation: bool = False) -> Callable:
    """Register ``fn(rec, ctx) -> [Finding]`` as a rule that judges one stream alone
    (``validation``: ``fn`` returns its share of the validation pass, see ``Rule.validation``)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        _register(Rule(rule_id, level, section, _requirement(fn), fn, binding, "transport", tuple(needs),
                       tuple(requires), True, skip_unless, validation=validation))
        return fn

    return decorate


class _Words(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def profile_words(profile: Any) -> dict[str, str]:
    """The words a requirement uses for the profile's own names: its first and last
    types, its fields, its bindings' codes, so that AG-UI's rules say RUN_FINISHED
    where agent-stream/1's say stream_end."""
    order = profile.order
    words = {
        "first": " or ".join(order.first), "last": " or ".join(order.last),
        "exactly_once": " and ".join(order.exactly_once) or "the profile's once-only types",
        "one_of": "; ".join("/".join(g) for g in order.exactly_one_of) or "the profile's terminal groups",
        "terminal": "/".join(order.terminal) or "a terminal event",
        "type": profile.type_field, "seq": profile.seq_field or "the sequence field",
        "ts": profile.timestamp_field or "the timestamp",
        "gauge": profile.disconnect.gauge or "the open-streams gauge",
        "sse_should_headers": "none asked for", "cancel_expect": "its answer", "cancel_type": "the answer",
    }
    stream_sum = next((a for a in profile.aggregates if a.scope == "stream"), None)
    words["stream_sum"] = (f"{stream_sum.full}{stream_sum.pointer.replace('/', '.')} equals the concatenation of all "
                           f"{stream_sum.chunk} events") if stream_sum else "a stream aggregate adds up"
    from conformance.profile import BINDINGS  # a binding the profile lacks speaks with its defaults

    for section in [*profile.transports.values(), *(cls() for cls in BINDINGS.values())]:
        for key, value in vars(section).items():
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                words.setdefault(f"{section.binding}_{key}", str(value))
        if section in profile.transports.values():  # the profile's own words, before the defaults above
            headers = getattr(section, "should_headers", None)
            if headers:
                words[f"{section.binding}_should_headers"] = ", ".join(f"{k}: {v}" for k, v in headers.items())
            cancel = getattr(section, "cancel", None)
            if cancel is not None:
                words["cancel_expect"] = ", ".join(f"{k} {v}" for k, v in cancel.expect.items()
                                                   if k != profile.type_field) or "its answer"
                words["cancel_type"] = str(cancel.expect.get(profile.type_field, "the answer"))
    return words


def requirement_for(rule: Rule, profile: Any) -> str:
    """The rule's requirement in the profile's words (its docstring's placeholders filled)."""
    return rule.requirement.format_map(_Words(profile_words(profile)))


def default_rules() -> set[str]:
    """The IDs of the rules every run has (those without an ``only_with`` setting)."""
    return {rule_id for rule_id, r in RULES.items() if not r.only_with}


def get(rule_id: str) -> Rule:
    """The rule with that ID; KeyError names it when a check uses an unknown ID."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule ID {rule_id!r}") from None
