"""The backend under test and everything recorded from it in one session.

A ``Target`` holds the suite's configuration (URLs, extra parameters and
headers, profile, limits) and a cache of recordings, so that each rule test
reads streams recorded once instead of asking the backend again. Recordings
that do not depend on each other are made concurrently to keep the suite fast.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, Callable
from urllib.parse import urlencode

import httpx

from .parity import is_deterministic
from .profile import Profile
from .recorders import record_sse, record_ws
from .recording import Limits, Recording
from .validate import validate_recording

TRANSPORTS = ("sse", "ws")
MAX_METRICS_BYTES = 4_000_000
"""Largest /metrics body read for the open-streams gauge."""
CANCEL_AFTER = 2
"""The WebSocket cancel test sends its cancel after this many events."""


@dataclass
class Target:
    base_url: str
    profile: Profile
    sse_path: str
    ws_path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    parity: str = "auto"
    metrics_url: str | None = None
    _cache: dict[Any, Recording] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _findings: dict[int, tuple[Recording, list]] = field(default_factory=dict, repr=False)
    _prefetched: bool = field(default=False, repr=False)

    # -- URLs and requests --
    def url(self, transport: str) -> str:
        path = self.sse_path if transport == "sse" else self.ws_path
        return self.base_url.rstrip("/") + path

    def request_params(self, question: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        params = dict(self.params)
        if question is not None:
            params[self.profile.question_param] = question
        params.update(extra or {})
        return params

    @property
    def end_types(self) -> tuple[str, ...]:
        return (self.profile.order["last"],)

    def record(self, transport: str, params: dict[str, str], **options: Any) -> Recording:
        """Record one stream now (no cache)."""
        if transport == "sse":
            return record_sse(self.url("sse"), params=params, headers=self.headers, limits=self.limits,
                              end_types=self.end_types, **options)
        return record_ws(self.url("ws"), params=params, headers=self.headers, limits=self.limits,
                         end_types=self.end_types, **options)

    def cached(self, key: Any, make: Callable[[], Recording]) -> Recording:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        rec = make()
        with self._lock:
            return self._cache.setdefault(key, rec)

    def recording(self, transport: str, question: str, run: int = 0) -> Recording:
        """The cached recording of a sample question (``run`` 1 is the repeat used to
        tell whether the backend is deterministic)."""
        return self.get(transport, question, run)

    def record_many(self, jobs: list[tuple[Any, Callable[[], Recording]]], workers: int = 8) -> list[Recording]:
        """Make several recordings concurrently (each cached under its key)."""
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
            return list(pool.map(lambda job: self.cached(*job), jobs))

    # -- the recordings the rule tests share, by key --
    def recipes(self) -> dict[tuple[Any, ...], Callable[[], Recording]]:
        """Every recording that does not depend on another one, by cache key: the
        sample questions on both transports (the first one twice, to tell whether
        the backend is deterministic), the profile's invalid and valid edge
        requests, and the WebSocket cancel, deflate and unknown-message streams."""
        profile = self.profile
        first = profile.sample_questions[0]
        base = self.request_params(first)
        out: dict[tuple[Any, ...], Callable[[], Recording]] = {}
        for t in TRANSPORTS:
            for q in profile.sample_questions:
                out[(t, q, 0)] = partial(self.record, t, self.request_params(q))
            out[(t, first, 1)] = partial(self.record, t, base)
            for case in profile.request.get("invalid", []):
                out[("invalid", case["name"], t)] = partial(self.record, t, profile.params_for(case, base))
            for case in profile.request.get("valid_edge", []):
                out[("valid", case["name"], t)] = partial(self.record, t, profile.params_for(case, base))
        cancel = profile.transport("ws").get("cancel")
        if cancel:
            out[("ws-cancel",)] = partial(self.record, "ws", base, cancel_after=CANCEL_AFTER, cancel_message=cancel["message"])
        out[("ws-deflate",)] = partial(self.record, "ws", base, compression=True)
        hello = {profile.type_field: "conformance-suite-hello", "note": "servers ignore unknown client messages"}
        out[("ws-hello",)] = partial(self.record, "ws", base, cancel_after=1, cancel_message=hello)
        return out

    def get(self, *key: Any) -> Recording:
        """A shared recording by its key (see ``recipes``); the first call records
        every one of them at once, concurrently."""
        self.prefetch()
        return self.cached(key, self._recipes[key])

    @cached_property
    def _recipes(self) -> dict[tuple[Any, ...], Callable[[], Recording]]:
        return self.recipes()

    def prefetch(self) -> None:
        with self._lock:
            if self._prefetched:
                return
            self._prefetched = True
        jobs = list(self._recipes.items())
        self.record_many(jobs, workers=min(len(jobs), 32))

    def baseline(self) -> dict[str, list[Recording]]:
        """Every sample question's recording, per transport."""
        return {t: [self.get(t, q, 0) for q in self.profile.sample_questions] for t in TRANSPORTS}

    def deterministic(self) -> tuple[bool, str]:
        """Whether the backend repeats itself exactly on both transports, and why not."""
        self.baseline()
        q = self.profile.sample_questions[0]
        for transport in TRANSPORTS:
            a, b = self.recording(transport, q, 0), self.recording(transport, q, 1)
            if not is_deterministic(a.objects, b.objects, self.profile):
                return False, f"two {transport} recordings of {q!r} differ"
        return True, "each transport repeated the same events twice"

    def parity_mode(self) -> str:
        if self.parity != "auto":
            return self.parity
        return "strict" if self.deterministic()[0] else "structural"

    def findings(self, recording: Recording) -> list:
        """``validate_recording(recording, profile)``, computed once per recording: every
        SCHEMA-/ORDER- rule test reads the same baseline, and against a flood (10 000
        events a recording) one jsonschema pass costs ~0.1 s per recording."""
        key = id(recording)
        with self._lock:
            hit = self._findings.get(key)
        if hit is None or hit[0] is not recording:
            hit = (recording, validate_recording(recording, self.profile))
            with self._lock:
                self._findings[key] = hit  # the recording is kept, so its id is not reused
        return hit[1]

    # -- metrics --
    def gauge(self, timeout: float = 2.0) -> float | None:
        """The current value of the profile's open-streams gauge, or None."""
        name = self.profile.disconnect.get("gauge")
        if not self.metrics_url or not name:
            return None
        deadline = time.monotonic() + timeout
        body = bytearray()
        try:
            # httpx's timeout bounds each read, not the body: a /metrics that never
            # ends must not hold the suite, so bound the total time and size
            with httpx.stream("GET", self.metrics_url, headers=self.headers, timeout=timeout) as response:
                if response.status_code != 200:
                    return None
                for part in response.iter_bytes():
                    body += part
                    if len(body) > MAX_METRICS_BYTES or time.monotonic() > deadline:
                        return None
        except httpx.HTTPError:
            return None
        return parse_gauge(body.decode("utf-8", "replace"), name)

    def wait_for_gauge(self, at_most: float, deadline_s: float, poll_s: float = 0.05) -> tuple[float | None, float]:
        """Poll the gauge until it is <= ``at_most`` or ``deadline_s`` passed; returns
        the last value and the seconds waited."""
        start = time.perf_counter()
        value = self.gauge()
        while (value is None or value > at_most) and time.perf_counter() - start < deadline_s:
            time.sleep(poll_s)
            value = self.gauge()
        return value, time.perf_counter() - start


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_gauge(text: str, name: str) -> float | None:
    """The sum of a metric's samples in Prometheus text format, or None if absent."""
    total, seen = 0.0, False
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            try:
                total += float(match.group(3))
            except ValueError:
                continue
            seen = True
    return total if seen else None


def query_url(url: str, params: dict[str, str]) -> str:
    return url + ("?" + urlencode(params) if params else "")
