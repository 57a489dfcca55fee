"""The path a load run takes to the backend, set up and described in one place.

``python -m load --network NAME [--proxy MODE]`` (and ``agentstream run``) calls
:func:`open_path`: it starts nginx in front of the backend when a proxy is asked
for (:mod:`network.nginx`), the shaping relay in front of that when the
condition shapes (:mod:`network.relay`), measures the relay's round trip against
the configured one (:mod:`network.probe`) and the client/server clock offset
(:mod:`network.clock`), and after the run writes what it found into the results'
``summary.json`` under ``network`` and ``clock`` (:func:`annotate`), where the
report reads it. Every probe is bounded; a failure to set up the path is a
:class:`PathError` with a message for the user.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .conditions import CONDITIONS, Condition

CLOCK_PROBE_STREAMS = 2


class PathError(RuntimeError):
    """The path could not be set up (nginx missing, relay not started, probe failed)."""


@dataclass
class NetworkPath:
    """Where the clients connect and what is between them and the backend."""

    backend_url: str
    url: str
    condition: Condition
    proxy: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``wan``, ``loopback+nginx-buffered``: how the report names the path."""
        return self.condition.name + (f"+{self.proxy}" if self.proxy else "")


def clock_probe(url: str, profile_name: str | None, streams: int = CLOCK_PROBE_STREAMS) -> dict[str, Any] | None:
    """Record a few streams over the profile's first transport and bound the clock
    offset from their timestamps (:func:`network.clock.bounds`); None when the
    profile has no timestamp field or no event carried one."""
    from conformance.profile import DEFAULT_PROFILE, load_profile
    from conformance.recording import Limits
    from conformance.wire import record
    from conformance.wire.transport import available

    from . import clock

    profile = load_profile(profile_name or DEFAULT_PROFILE)
    ts = profile.timestamp_field
    names = available(profile.transports)
    if not ts or not names:
        return None
    name = names[0]
    recs = []
    for _ in range(streams):
        req = profile.make_request(name, url + profile.transports[name].path)  # the profile's own request
        recs.append(record(req, Limits(total=60.0)))
    times = clock.from_recordings(recs, ts)
    exchange = _cancel_exchange(url, profile, ts)
    if exchange is not None:
        times.append(exchange)
    offset = clock.bounds(times)
    if offset is None:
        return None
    shared = _on_loopback(url)
    return {"offset": {**offset.to_dict(shared), "transport": name, "cancel_bound": exchange is not None}}


def _cancel_exchange(url: str, profile: Any, ts: str) -> Any:
    """A tighter upper bound, when the profile has a WebSocket cancel: the answer to a
    cancel is caused by it, so it left the server after the cancel was sent (a
    stream's first event only bounds the offset from the request, a round trip and
    the server's start-up earlier). None when the profile has no cancel or the
    answer does not come."""
    import json as _json

    from conformance.recording import Limits
    from conformance.request import ClientMessage
    from conformance.wire import record
    from conformance.wire.transport import available

    from . import clock

    for name in available(profile.transports, "ws"):
        cancel = profile.transports[name].cancel
        if cancel is None:
            continue
        req = profile.make_request(name, url + profile.transports[name].path,
                                   messages=(ClientMessage(_json.dumps(cancel.message), after_events=2),))
        rec = record(req, Limits(total=30.0))
        sent = getattr(rec.detail, "messages_sent_at", None)
        if not sent:
            return None
        sent_wall = rec.wall_start + (sent[0] - rec.t_start)
        for e in rec.events[2:]:
            if isinstance(e.data, dict) and all(e.data.get(k) == v for k, v in cancel.expect.items()) \
                    and isinstance(e.data.get(ts), (int, float)):
                return clock.StreamTimes(sent_wall, [(float(e.data[ts]), e.t_wall)])
        return None
    return None


def _on_loopback(url: str) -> bool:
    from .conditions import is_loopback

    return is_loopback(urlsplit(url).hostname)


@contextlib.contextmanager
def open_path(backend_url: str, condition: Condition = CONDITIONS["loopback"], proxy: str | None = None,
              profile_name: str | None = None, *, rtt_samples: int = 15) -> Iterator[NetworkPath]:
    """Set up the path to ``backend_url``; yields a :class:`NetworkPath` whose ``url``
    the clients use and whose ``info`` :func:`annotate` writes after the run."""
    from .probe import ProbeError, measure
    from .relay import RelayError, RelayProcess

    with contextlib.ExitStack() as stack:
        hop = backend_url
        info: dict[str, Any] = {"condition": condition.to_dict(), "label": None, "proxy": None}
        if proxy is not None:
            from .nginx import Nginx, NginxError

            try:
                nginx = stack.enter_context(Nginx(backend_url, mode=proxy))
            except NginxError as exc:
                raise PathError(str(exc)) from None
            hop = nginx.base_url
            info["proxy"] = nginx.describe()
        relay = None
        if condition.shaped:
            try:
                relay = stack.enter_context(RelayProcess(hop, condition))
            except RelayError as exc:
                raise PathError(str(exc)) from None
            info["method"] = ("user-space shaping relay on loopback (network.relay): each direction delayed "
                              "and capped as one shared link, segments of at most 1448 B, the TCP handshake's "
                              "round trip added to each new connection; no loss or reordering")
            try:
                info["accuracy"] = measure(hop, relay.base_url, condition, n=rtt_samples)
            except ProbeError as exc:
                info["accuracy"] = {"error": str(exc)}
            hop = relay.base_url
        else:
            info["method"] = "direct (no shaping)" + (" through the proxy" if proxy else "")
        path = NetworkPath(backend_url, hop, condition, proxy, info)
        info["label"] = path.label
        try:
            yield path
        finally:
            if relay is not None:
                stack.close()  # stops the relay, which then reports its own statistics
                info["relay"] = relay.stats


def annotate(results_dir: str | Path, path: NetworkPath, clock_info: dict[str, Any] | None) -> bool:
    """Add ``network`` (and the clock offset under ``clock``) to the run's
    summary.json; False when there is no summary to annotate (the run failed)."""
    summary_path = Path(results_dir) / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    summary["network"] = path.info
    if clock_info:
        clock = dict(summary.get("clock") or {})
        clock.update(clock_info)
        summary["clock"] = clock
    tmp = summary_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, summary_path)
    return True


def _take(args: list[str], name: str) -> tuple[str | None, list[str]]:
    """The value of option ``name`` (``--name V`` or ``--name=V``, the last one wins)
    and the arguments without it. ValueError when it has no value."""
    value, rest = None, []
    it = iter(args)
    for arg in it:
        if arg == name:
            value = next(it, None)
            if value is None:
                raise ValueError(f"{name} needs a value")
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return value, rest


def option_value(args: list[str], *names: str) -> str | None:
    """The value of the first of ``names`` given in ``args`` (left in place)."""
    for name in names:
        value, _ = _take(args, name)
        if value is not None:
            return value
    return None


def split_network_args(args: list[str]) -> tuple[Condition | None, str | None, list[str]]:
    """(condition, proxy mode, the rest) from ``--network NAME`` and ``--proxy MODE``:
    the options ``python -m load`` takes out before Locust sees the rest.
    ConditionError / ValueError with a message naming the option."""
    from .conditions import parse
    from .nginx import MODES

    network, rest = _take(args, "--network")
    proxy, rest = _take(rest, "--proxy")
    if proxy is not None and proxy not in MODES:
        raise ValueError(f"--proxy {proxy!r}: one of {', '.join(MODES)}")
    return (parse(network) if network is not None else None), proxy, rest


def run_through(backend_url: str, condition: Condition | None, proxy: str | None, locust_args: list[str],
                run: Any) -> int:
    """Run the load (``run(url) -> exit code``) through the path, then annotate its
    results (``--results-dir`` of ``locust_args``, default ``results``)."""
    import sys

    from .conditions import is_loopback

    condition = condition or CONDITIONS["loopback"]
    if not is_loopback(urlsplit(backend_url).hostname):
        sys.stderr.write(f"agentstream: --host {backend_url!r} is not a loopback address: the load scenarios, "
                         "their relay and their proxy only run against 127.0.0.0/8, [::1] or localhost\n")
        return 2
    profile = option_value(locust_args, "--profile-name")
    results = option_value(locust_args, "--results-dir") or "results"
    try:
        with open_path(backend_url, condition, proxy, profile) as path:
            acc = path.info.get("accuracy") or {}
            sys.stderr.write(f"[agentstream] network {condition.describe()}"
                             + (f"; through {path.info['proxy']['name']}" if proxy else "")
                             + (f"; round trip configured {acc.get('configured_rtt_ms')} ms, measured "
                                f"{acc.get('measured_rtt_ms')} ms" if "measured_rtt_ms" in acc else "") + "\n")
            try:
                clock = clock_probe(path.url, profile)
            except Exception as exc:  # noqa: BLE001 - a probe that fails leaves the clock unknown, not the run
                clock = {"offset": {"error": f"{type(exc).__name__}: {exc}"}}
            code = run(path.url)
    except PathError as exc:
        sys.stderr.write(f"agentstream: {exc}\n")
        return 2
    if not annotate(results, path, clock):
        sys.stderr.write(f"[agentstream] no {results}/summary.json to record the network path in\n")
    return code
