"""The session: the backend under test, and every recording made of it, once.

A :class:`Session` holds the settings (URLs, extra parameters and headers, the
profile, limits, the parity setting) and a cache of recordings by stimulus and
transport. :meth:`Session.prefetch` records, concurrently, exactly the stimuli
the selected rules need, so ``-k ONE-RULE`` records only that rule's streams.
:func:`judge_rule` runs one registered rule on the session and returns its
:class:`conformance.verdict.Outcome`; the pytest plugin and the project's tests
go through it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import is_
from typing import Any, Callable, Iterable, TypeVar

from . import stimuli as _stimuli
from .parity import Divergence, is_deterministic, parity_mode, structural_divergence, strict_divergence
from .profile import Profile
from .recording import Limits, Recording
from .request import Request
from .rules.registry import RULES, NotJudged, Rule
from .validate import Finding, Stamps, stamps_of, validate_recording
from .verdict import Outcome, outcome
from .wire import TRANSPORTS, metrics as wire_metrics
from .wire import get as get_transport
from .wire.transport import available

MAX_WORKERS = 32

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What the user chose (the pytest options, or a caller's arguments)."""

    base_url: str
    profile: Profile
    paths: dict[str, str] = field(default_factory=dict)
    """Transport name -> endpoint path, overriding the profile's."""
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    parity: str = "auto"
    metrics_url: str | None = None
    seed: int = 0
    """Seed of the drawn inputs."""
    browser: Any = None
    """A :class:`conformance.browser_options.BrowserSpec` with ``--browser``: the
    BROWSER-* rules record the streams again through that browser."""


class Session:
    """Recordings of one backend, made on demand and cached."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.profile = settings.profile
        self.metrics_url = settings.metrics_url
        self.seed = settings.seed
        self._cache: dict[tuple[str, str], Any] = {}
        self._findings: dict[int, tuple[Recording, list[Finding]]] = {}
        self._shared: dict[tuple[str, int], tuple[Recording, Any]] = {}
        """What ``Context.once`` computed, by name and recording."""
        self._lock = threading.RLock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._active_lock = threading.Lock()
        """Held while an active stimulus runs (never ``_lock``, which guards the cache only)."""

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    # -- transports and requests --
    def transports(self, binding: str | None = None) -> list[str]:
        """The transports this session tests: those the profile defines and the
        registry has, optionally only those of one binding."""
        return available(self.profile.transports, binding)

    def missing_transports(self) -> dict[str, str]:
        """Transports the profile defines that no registered transport implements, and why."""
        return {name: f"no transport named {name!r} is registered (known: {', '.join(TRANSPORTS)})"
                for name in self.profile.transports if name not in TRANSPORTS}

    def url(self, transport: str) -> str:
        path = self.settings.paths.get(transport) or self.profile.transports[transport].path
        return self.base_url.rstrip("/") + path

    def request(self, transport: str, *, question: str | None = None, **kwargs: Any) -> Request:
        """The request for one stream on ``transport``: the session's parameters and
        headers, ``question`` where the profile puts it (see Profile.make_request)."""
        return self.profile.make_request(transport, self.url(transport), question=question,
                                         params=self.settings.params, headers=self.settings.headers, **kwargs)

    def record(self, request: Request, on_event: Any = None) -> Recording:
        """Record one request now (no cache). A transport must never raise for what a
        backend does; one that does (a bug in a plug-in) gives a recording that says
        so, and only the rules that read it see it."""
        transport = get_transport(request.transport)
        try:
            return transport.record(request, self.settings.limits, on_event)
        except Exception as exc:  # noqa: BLE001 - contained to this recording, and named
            rec = Recording(request=request, detail=transport.new_detail())
            rec.error_kind = "protocol"
            rec.error = f"the {transport.name} transport raised {type(exc).__name__}: {exc} (a bug in the transport)"
            return rec

    def record_all(self, requests: list[Request]) -> list[Recording]:
        """Record several requests at once."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(requests)))) as pool:
            return list(pool.map(self.record, requests))

    # -- the stimuli, cached --
    def _applies(self, name: str, transport: str) -> bool:
        stim = _stimuli.STIMULI[name]
        return stim.binding is None or self.profile.transports[transport].binding == stim.binding

    def recordings(self, name: str, transport: str) -> Any:
        """The recordings of stimulus ``name`` on ``transport`` (an observation for an
        active stimulus), made on the first call."""
        key = (name, transport)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            stim = _stimuli.STIMULI[name]
            if not self._applies(name, transport):
                value: Any = []
            elif stim.active:
                for dep in stim.depends:  # before the lock below: they may record
                    self.recordings(dep, transport)
                with self._active_lock:  # active stimuli read a backend-wide gauge: one at a time
                    value = stim.make(self, transport)
            else:
                value = self.record_all(stim.make(self, transport))
            with self._lock:
                self._cache[key] = value
            return value

    def prefetch(self, needs: Iterable[tuple[str, str]]) -> None:
        """Record every (stimulus, transport) of ``needs`` that is not cached yet: the
        baseline first (its streams at once, nothing else running: the streams other
        rules compare with, 'recorded alone'), then all other independent stimuli
        in one concurrent batch, then those that depend on them, then the active
        ones, one at a time."""
        needs = [n for n in dict.fromkeys(needs) if n not in self._cache]
        plain = [n for n in needs if not _stimuli.STIMULI[n[0]].active]
        waves = [[n for n in plain if n[0] == "baseline"],
                 [n for n in plain if n[0] != "baseline" and not _stimuli.STIMULI[n[0]].depends],
                 [n for n in plain if n[0] != "baseline" and _stimuli.STIMULI[n[0]].depends]]
        for wave in waves:
            jobs = [(key, self._requests(*key)) for key in wave if self._applies(*key)]
            flat = [r for _, requests in jobs for r in requests]
            done = iter(self.record_all(flat))
            with self._lock:
                for key, requests in jobs:
                    self._cache.setdefault(key, [next(done) for _ in requests])
                for key in wave:
                    self._cache.setdefault(key, [])
        for key in needs:
            if _stimuli.STIMULI[key[0]].active:
                self.recordings(*key)

    def _requests(self, name: str, transport: str) -> list[Request]:
        return _stimuli.STIMULI[name].make(self, transport)

    # -- what rules share --
    def findings(self, recording: Recording) -> list[Finding]:
        """``validate_recording(recording, profile)``, computed once per recording:
        fifteen stream rules read the same pass."""
        key = id(recording)
        with self._lock:
            hit = self._findings.get(key)
        if hit is None or hit[0] is not recording:
            hit = (recording, validate_recording(recording, self.profile))
            with self._lock:
                self._findings[key] = hit  # the recording is kept, so its id is not reused
        return hit[1]

    def deterministic(self, transports: Iterable[str]) -> tuple[bool, str]:
        """Whether the backend repeated itself exactly on each of ``transports``, and why not."""
        q = self.profile.sample_questions[0]
        for t in transports:
            a, b = self.recordings("baseline", t)[0], self.recordings("repeat", t)[0]
            if not is_deterministic(a.objects, b.objects, self.profile):
                return False, f"two {t} recordings of {q!r} differ"
        return True, "each transport repeated the same events twice"

    def parity_mode(self, transports: Iterable[str]) -> str:
        transports = list(transports)
        if self.settings.parity != "auto":
            return self.settings.parity
        return parity_mode(self.settings.parity, self.deterministic(transports)[0])

    def divergence(self, left: Recording, right: Recording) -> tuple[str, Divergence | None]:
        """Compare two recordings in the session's parity mode for their transports."""
        mode = self.parity_mode({left.transport, right.transport})
        names = (left.transport, right.transport)
        if names[0] == names[1]:
            names = (f"{names[0]}#1", f"{names[1]}#2")
        compare = strict_divergence if mode == "strict" else structural_divergence
        return mode, compare(left.objects, right.objects, self.profile, names)

    # -- the open-streams gauge, through the wire --
    def gauge(self) -> float | None:
        name = self.profile.disconnect.gauge
        if not self.metrics_url or not name:
            return None
        return wire_metrics.read_gauge(self.metrics_url, name, headers=self.settings.headers)

    def wait_for_gauge(self, at_most: float, deadline_s: float, poll_s: float = 0.05) -> tuple[float | None, float]:
        """Poll the gauge until it is <= ``at_most`` or ``deadline_s`` passed; returns
        the last value and the seconds waited."""
        start = time.perf_counter()
        value = self.gauge()
        while (value is None or value > at_most) and time.perf_counter() - start < deadline_s:
            time.sleep(poll_s)
            value = self.gauge()
        return value, time.perf_counter() - start


# -- running rules --

@dataclass
class Context:
    """What a rule function sees: the profile, its transport or pair, and the
    session's recordings."""

    session: Session | None
    profile: Profile
    rule: Rule
    transport: str | None = None
    pair: tuple[str, str] | None = None
    cache: dict[Any, tuple[Recording, Any]] = field(default_factory=dict, repr=False)
    """Validation results (by ``id`` of the recording) and what :meth:`once` computed
    (by name and ``id``), when there is no session to keep them."""
    not_judged: list[str] = field(default_factory=list)
    """Why recordings were set aside (another rule reports their cause)."""

    @property
    def section(self) -> Any:
        """The profile section of this rule's transport."""
        assert self.transport is not None
        return self.profile.transports[self.transport]

    def get(self, name: str, transport: str | None = None) -> Any:
        assert self.session is not None, "this rule needs a session"
        return self.session.recordings(name, transport or self.transport)

    def findings(self, rec: Recording) -> list[Finding]:
        if self.session is not None:
            return self.session.findings(rec)
        hit = self.cache.get(id(rec))
        if hit is None or hit[0] is not rec:
            hit = self.cache[id(rec)] = (rec, validate_recording(rec, self.profile, stamps=self.stamps(rec)))
        return hit[1]

    def stamps(self, rec: Recording) -> Stamps:
        """The recording's timestamps (``conformance.validate.stamps_of``), once per
        recording: the clock check of validation and the SSE buffering rule read them."""
        return self.once(rec, "stamps", lambda r, ctx: stamps_of(r.events, ctx.profile))

    def once(self, rec: Recording, name: str, compute: Callable[[Recording, "Context"], T]) -> T:
        """``compute(rec, ctx)``, computed once per recording and kept beside its
        findings: what several rules read on one stream (its set of types, its
        plausible timestamps). ``compute`` must depend only on the recording and
        the profile, which every context of a session or a check_stream call shares."""
        store = self.session._shared if self.session is not None else self.cache
        key = (name, id(rec))
        hit = store.get(key)
        if hit is None or hit[0] is not rec:
            hit = store[key] = (rec, compute(rec, self))  # the recording is kept, so its id is not reused
        return hit[1]

    def divergence(self, left: Recording, right: Recording) -> tuple[str, Divergence | None]:
        assert self.session is not None
        return self.session.divergence(left, right)


def targets(rule: Rule, session: Session) -> list[str | tuple[str, str] | None]:
    """What a rule gives one verdict for on this session: each transport of its
    binding, each parity pair, or the run as a whole (None); nothing for a rule
    whose ``only_with`` setting is not set (it is not part of this run)."""
    if rule.only_with and not getattr(session.settings, rule.only_with, None):
        return []
    if rule.scope == "run":
        return [None]
    if rule.scope == "pair":
        present = set(session.transports())
        return [p for p in session.profile.parity if set(p) <= present]
    return list(session.transports(rule.binding))


def needs(rule: Rule, session: Session, target: str | tuple[str, str] | None) -> list[tuple[str, str]]:
    """The (stimulus, transport) pairs a rule reads for one target."""
    if isinstance(target, str):
        transports = [target]
    elif isinstance(target, tuple):
        transports = list(target)
    else:
        transports = session.transports()
    out = []
    for name in rule.needs:
        for dep in _stimuli.STIMULI[name].depends:
            out += [(dep, t) for t in transports]
        out += [(name, t) for t in transports]
    return out


def judge_rule(rule: Rule, session: Session, target: str | tuple[str, str] | None) -> Outcome:
    """Run one rule on one target and turn what it found into an outcome."""
    transport = target if isinstance(target, str) else None
    pair = target if isinstance(target, tuple) else None
    ctx = Context(session, session.profile, rule, transport, pair)
    try:
        reason = rule.skip_unless(ctx) if rule.skip_unless is not None else None
        if reason:
            raise NotJudged(reason)
        if rule.per_stream:
            items = []
            for name in rule.needs:
                items += stream_items(rule, ctx, ctx.get(name))
        else:
            items = list(rule.check(ctx))
    except NotJudged as exc:
        return Outcome(rule.id, "skip", str(exc), transport=_label(target))
    if not items and ctx.not_judged:
        reasons = list(dict.fromkeys(ctx.not_judged))
        return Outcome(rule.id, "skip", "not judged: " + "; ".join(reasons), transport=_label(target))
    return outcome(rule, items, _label(target), session.profile)


def stream_items(rule: Rule, ctx: Context, recordings: list[Recording]) -> list[tuple[Finding, Recording]]:
    """A per-stream rule on each recording that meets its preconditions; NotJudged
    when none does."""
    kept = list(recordings)
    for pre in rule.requires:
        kept = [r for r in kept if pre.test(r, ctx)]
        if not kept:
            raise NotJudged(pre.reason.format(what=ctx.transport))
    return [(f, rec) for rec in kept for f in rule.check(rec, ctx)]


def stream_rules(profile: Profile, transport: str) -> tuple[Rule, ...]:
    """The per-stream rules that judge a stream of ``transport`` under ``profile``, in
    registry order: the schema and order rules and those of the transport's binding,
    less those whose ``skip_unless`` leaves out (the profile lacks their trigger).

    Which rules these are depends on the profile and the registry alone, never on
    a stream (``skip_unless`` reads the profile and its sections, and the context
    it gets has no session), so it is worked out once per profile object and
    transport, and again only when a rule is registered after."""
    registered = tuple(RULES.values())
    slot = profile.derived(("stream_rules", transport), lambda: [(), ()])  # [the registry then, its rules]
    if len(slot[0]) == len(registered) and all(map(is_, slot[0], registered)):  # the same rule objects
        return slot[1]
    section = profile.transports.get(transport)
    chosen = []
    for rule in registered:
        if not rule.per_stream:
            continue
        if rule.binding is not None and (section is None or section.binding != rule.binding):
            continue  # a binding rule needs the profile's section of this transport
        ctx = Context(None, profile, rule, transport if section is not None else None)
        if rule.skip_unless is not None and rule.skip_unless(ctx):
            continue
        chosen.append(rule)
    slot[:] = registered, tuple(chosen)
    return slot[1]


def check_stream(recording: Recording, profile: Profile) -> list[Finding]:
    """Every per-stream rule a recorded stream breaks, without a session or pytest:
    the schema and order rules and the rules of the stream's binding, each where
    its preconditions hold. The load scenarios run this on every stream."""
    name = recording.transport
    transport = name if name in profile.transports else None
    cache: dict[Any, tuple[Recording, Any]] = {}  # what the rules share on this stream (Context.once)
    out: list[Finding] = []
    found: set[str] | None = None  # the rule IDs of the validation pass
    for rule in stream_rules(profile, name):
        if rule.validation:
            if found is None:
                found = {f.rule for f in Context(None, profile, rule, transport, None, cache).findings(recording)}
            if rule.id not in found:
                continue  # its share of the pass is empty: nothing to report, whatever its preconditions
        ctx = Context(None, profile, rule, transport, None, cache)
        for pre in rule.requires:
            if not pre.test(recording, ctx):
                break
        else:
            out += [f for f in rule.check(recording, ctx) if f.rule == rule.id]
    return out


def _label(target: str | tuple[str, str] | None) -> str:
    if isinstance(target, tuple):
        return "-".join(target)
    return target or "all"
