"""The pytest plugin: options, the session's Target, verdicts and the JSON report.

Registered through the ``pytest11`` entry point, so ``pytest conformance`` (from a
checkout) and ``pytest --pyargs conformance`` (anywhere) both find it. Without
``--base-url`` the embedded reference server is started on a free loopback port
for the session and stopped at its end.
"""

from __future__ import annotations

import json
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from .profile import DEFAULT_PROFILE, Profile, ProfileError, load_profile
from .recording import Limits
from .rules import rule, rule_transport
from .target import Target
from .verdict import ConformanceWarning, judge

REPORT_KEY = pytest.StashKey[list]()
SUITE_KEY = pytest.StashKey[dict]()
PROFILE_KEY = pytest.StashKey[Profile]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentstream", "agent-stream conformance suite")
    group.addoption("--base-url", default=None,
                    help="backend to test, e.g. http://127.0.0.1:8000 (default: start the embedded reference server)")
    group.addoption("--sse-path", default=None, help="SSE endpoint path (default from the profile: /agent/stream)")
    group.addoption("--ws-path", default=None, help="WebSocket endpoint path (default from the profile: /ws/agent/stream)")
    group.addoption("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="extra request parameter sent on both transports (repeatable)")
    group.addoption("--header", action="append", default=[], metavar="'Name: value'",
                    help="extra request header sent on both transports (repeatable)")
    group.addoption("--profile", default=DEFAULT_PROFILE, help="profile name or YAML path (default agent-stream/1)")
    group.addoption("--parity", default="auto", choices=("auto", "strict", "structural"),
                    help="auto: strict when the backend repeats itself exactly, else structural")
    group.addoption("--stream-timeout", type=float, default=10.0,
                    help="seconds to wait for a first event and between events (default 10)")
    group.addoption("--metrics-url", default=None,
                    help="Prometheus endpoint with the open-streams gauge (default <base-url>/metrics if it has it)")
    group.addoption("--conformance-report", default=None, metavar="PATH", help="write the JSON conformance report here")
    group.addoption("--embedded-pace-ms", type=float, default=None,
                    help="pace of the embedded reference server between chunk events (default: its own, 30 ms)")


def _key_value(items: list[str], sep: str, what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if sep not in item:
            raise pytest.UsageError(f"{what} {item!r} must look like NAME{sep}VALUE")
        key, value = item.split(sep, 1)
        if not key.strip():
            raise pytest.UsageError(f"{what} {item!r} has an empty name")
        out[key.strip()] = value.strip() if sep == ":" else value
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a rule test of the agent-stream conformance suite")
    config.stash[REPORT_KEY] = []
    config.stash[SUITE_KEY] = {"started": time.time(), "target": None}
    base = config.getoption("base_url")
    if base is not None and not base.startswith(("http://", "https://")):
        raise pytest.UsageError(f"--base-url {base!r} must start with http:// or https://")
    if config.getoption("stream_timeout") <= 0:
        raise pytest.UsageError("--stream-timeout must be a positive number of seconds")
    _key_value(config.getoption("param"), "=", "--param")
    _key_value(config.getoption("header"), ":", "--header")
    try:
        # checked here, not in the session fixture, so a broken profile is a usage
        # error before collection instead of an error in every test's setup
        config.stash[PROFILE_KEY] = load_profile(config.getoption("profile"))
    except ProfileError as exc:
        raise pytest.UsageError(f"--profile: {exc}") from None


def _is_suite_item(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return module is not None and module.__name__.startswith("conformance.")


def item_rule(item: pytest.Item) -> tuple[str | None, str | None]:
    """The rule ID and transport of a suite test, from its parameters."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None, None
    return callspec.params.get("rule_id"), callspec.params.get("transport")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_suite_item(item):
            item.add_marker(pytest.mark.conformance)


@pytest.fixture(scope="session")
def conformance_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    """The backend under test; starts the embedded reference server when no
    --base-url is given."""
    opt = pytestconfig.getoption
    profile = pytestconfig.stash[PROFILE_KEY]
    server = None
    base_url = opt("base_url")
    if base_url is None:
        from reference_server.embedded import EmbeddedServer

        server = EmbeddedServer(pace_ms=opt("embedded_pace_ms"))
        server.start()
        base_url = server.base_url
    timeout = opt("stream_timeout")
    target = Target(
        base_url=base_url.rstrip("/"),
        profile=profile,
        sse_path=opt("sse_path") or profile.transport("sse").get("path", "/agent/stream"),
        ws_path=opt("ws_path") or profile.transport("ws").get("path", "/ws/agent/stream"),
        params=_key_value(opt("param"), "=", "--param"),
        headers=_key_value(opt("header"), ":", "--header"),
        limits=Limits(connect=min(timeout, 5.0), first_event=timeout, idle=timeout, total=max(60.0, 6 * timeout),
                      end_grace=min(2.0, timeout)),
        parity=opt("parity"),
    )
    explicit_metrics = opt("metrics_url")
    target.metrics_url = explicit_metrics or target.base_url + "/metrics"
    if not explicit_metrics and target.gauge() is None:
        target.metrics_url = None
    pytestconfig.stash[SUITE_KEY]["target"] = target
    try:
        yield target
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def check(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``check(rule_id, items, transport=None, options=None)``: the verdict for one
    rule; ``items`` are (Finding, Recording) pairs where the rule is broken."""

    def _check(rule_id: str, items: list, transport: str | None = None, options: dict[str, Any] | None = None) -> None:
        rule(rule_id)  # an unknown ID is a bug in the suite: fail loudly
        judge(request.node, rule_id, items, transport, options)

    return _check


# -- the JSON report --

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if not _is_suite_item(item):
        return report
    rule_id, transport = item_rule(item)
    if rule_id is None:
        return report
    entries = item.config.stash[REPORT_KEY]
    verdict = None
    message = ""
    if report.skipped:
        verdict = "skip"
        longrepr = report.longrepr
        message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        message = message.removeprefix("Skipped: ")
    elif report.failed:
        verdict = "fail"
        message = report.longreprtext
    elif report.when == "call":
        warned = [v for k, v in item.user_properties if k == "conformance_warning"]
        verdict = "warn" if warned else "pass"
        message = "\n".join(warned)
    if verdict is not None:
        entries.append({
            "id": rule_id,
            "level": rule(rule_id).level,
            "verdict": verdict,
            "transport": transport or rule_transport(rule_id),
            "message": message,
            "duration_s": round(report.duration, 4),
            "nodeid": item.nodeid,
        })
    return report


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("agentstream", "pytest", "httpx", "httpx-sse", "websockets", "hypothesis", "jsonschema"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def build_report(entries: list[dict[str, Any]], target: Target | None, started: float, profile_name: str) -> dict[str, Any]:
    """The report document (pure: everything comes in as arguments)."""
    totals = {"pass": 0, "fail": 0, "warn": 0, "skip": 0}
    for entry in entries:
        totals[entry["verdict"]] += 1
    return {
        "format": "agentstream-conformance/1",
        "backend": target.base_url if target else None,
        "profile": {
            "name": target.profile.name if target else profile_name,
            "path": str(target.profile.path) if target and target.profile.path else None,
        },
        "versions": _versions(),
        "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 3),
        "rules": entries,
        "totals": totals,
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    path = config.getoption("conformance_report", None)
    if not path or SUITE_KEY not in config.stash:
        return
    suite = config.stash[SUITE_KEY]
    doc = build_report(config.stash[REPORT_KEY], suite["target"], suite["started"], config.getoption("profile"))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if REPORT_KEY not in config.stash or not config.stash[REPORT_KEY]:
        return
    entries = config.stash[REPORT_KEY]
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    target = config.stash[SUITE_KEY]["target"]
    line = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    terminalreporter.write_sep("-", "agent-stream conformance")
    if target is not None:
        terminalreporter.write_line(f"backend {target.base_url}, profile {target.profile.name}, parity {target.parity}")
    terminalreporter.write_line(f"rules: {line}")
    path = config.getoption("conformance_report", None)
    if path:
        terminalreporter.write_line(f"report written to {path}")


__all__ = ["ConformanceWarning", "build_report"]
