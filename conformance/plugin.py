"""The pytest adapter: options, one item per rule, verdicts and the JSON report.

Registered through the ``pytest11`` entry point, so ``pytest conformance`` (from a
checkout) and ``pytest --pyargs conformance`` (anywhere) both run the suite: when
pytest collects this package's directory, the plugin turns the rule registry
into items (``ORDER-SEQ[sse]``, ``PARITY-STRICT[sse-ws]``, ...), so ``-k RULE-ID``
selects a rule. Without a base URL the embedded reference server is started on a
free loopback port for the session and stopped at its end.

A good neighbour in any pytest run of the environment it is installed in: this
module imports only pytest and the standard library, and nothing heavier is
imported until the suite's directory is collected. ``--base-url`` follows the
pytest-base-url convention: when that plugin is installed (pytest-playwright and
pytest-selenium pull it in), its option and its ``base_url`` ini value are used,
and this plugin does not define a second one.
"""

from __future__ import annotations

import importlib.util
import json
import math
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

SUITE_DIR = Path(__file__).resolve().parent
DEFAULT_PROFILE = "agent-stream/1"
"""The bundled profile used without --profile (conformance.profile holds the same
name as its default; a test keeps the two equal, since importing it here would
cost every pytest run the YAML and JSON Schema libraries)."""
STATE_KEY = pytest.StashKey["SuiteState"]()


def _base_url_elsewhere() -> bool:
    """Whether pytest-base-url is installed: it then owns ``--base-url``."""
    return importlib.util.find_spec("pytest_base_url") is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentstream", "agent-stream conformance suite")
    if not _base_url_elsewhere():
        group.addoption("--base-url", default=None,
                        help="backend to test, e.g. http://127.0.0.1:8000 (default: the base_url ini value, else "
                             "start the embedded reference server)")
        parser.addini("base_url", help="backend to test (same as --base-url)", default=None)
    group.addoption("--sse-path", default=None, help="SSE endpoint path (default from the profile)")
    group.addoption("--ws-path", default=None, help="WebSocket endpoint path (default from the profile)")
    group.addoption("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="extra request parameter sent on every transport (repeatable)")
    group.addoption("--header", action="append", default=[], metavar="'Name: value'",
                    help="extra request header sent on every transport (repeatable)")
    group.addoption("--profile", default=None, help=f"profile name or YAML path (default {DEFAULT_PROFILE}; "
                                                     "see --list-profiles)")
    group.addoption("--list-profiles", action="store_true", help="list the bundled profiles and exit")
    group.addoption("--question", action="append", default=[], metavar="TEXT",
                    help="ask this instead of the profile's sample questions (repeatable)")
    group.addoption("--parity", default="auto", choices=("auto", "strict", "structural"),
                    help="auto: strict when the backend repeats itself exactly, else structural")
    group.addoption("--stream-timeout", type=float, default=10.0,
                    help="seconds to wait for a first event and between events (default 10)")
    group.addoption("--metrics-url", default=None,
                    help="Prometheus endpoint with the open-streams gauge (default <base-url>/metrics if it has it)")
    group.addoption("--conformance-report", default=None, metavar="PATH", help="write the JSON conformance report here")
    group.addoption("--draw-seed", type=int, default=0, metavar="N",
                    help="seed of the drawn inputs (INPUT-NEVER-5XX, PROPERTY-QUESTIONS); default 0, so that the "
                         "same backend gets the same verdict in every run")
    group.addoption("--embedded-pace-ms", type=float, default=None,
                    help="pace of the embedded reference server between chunk events (default: its own, 30 ms)")
    from .browser_options import add_options as add_browser_options  # standard library only

    add_browser_options(group)


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("list_profiles", False):
        return None
    from .profile import describe_profiles

    print(describe_profiles())
    return 0


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


def _browser_spec(getoption: Any) -> Any:
    from .browser_options import spec_from

    try:
        return spec_from(getoption)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def base_url(config: pytest.Config) -> str | None:
    """The backend's URL: --base-url (ours or pytest-base-url's), else the base_url
    ini value, else None (the embedded server)."""
    try:
        value = config.getoption("base_url")
    except ValueError:  # pytest-base-url installed but disabled (-p no:base_url)
        value = None
    if not value:
        try:
            value = config.getini("base_url")
        except ValueError:
            value = None
    return value or None


_CONFIG: list[pytest.Config] = []
"""The running config (pytest_runtest_logfinish is not given it)."""


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG[:] = [config]
    config.addinivalue_line("markers", "conformance: a rule test of the agent-stream conformance suite")
    config.stash[STATE_KEY] = SuiteState(config)
    base = base_url(config)
    if base is not None and not base.startswith(("http://", "https://")):
        raise pytest.UsageError(f"--base-url {base!r} must start with http:// or https://")
    timeout = config.getoption("stream_timeout")
    if not math.isfinite(timeout) or timeout <= 0:
        raise pytest.UsageError("--stream-timeout must be a positive number of seconds")
    _key_value(config.getoption("param"), "=", "--param")
    _key_value(config.getoption("header"), ":", "--header")
    _browser_spec(config.getoption)  # a bad origin or a missing browser: a usage error before anything runs
    if config.getoption("profile") is not None:
        # checked now, not at collection, so a broken profile is a usage error
        # before anything runs (a named profile means the suite is wanted)
        config.stash[STATE_KEY].profile()


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if path == SUITE_DIR:
        return SuiteDirectory.from_parent(parent, path=path)
    return None


class SuiteDirectory(pytest.Directory):
    """This package's directory: its items are the registered rules."""

    def collect(self) -> Any:
        state = self.config.stash[STATE_KEY]
        from .rules import RULES
        from .session import targets
        from .wire import TRANSPORTS

        profile = state.profile()
        if not self.config.option.collectonly:
            state.start_server()  # in the background, while the items are made and selected
        planner = state.planner(profile)
        missing = [name for name in profile.transports if name not in TRANSPORTS]
        bindings = {section.binding for section in profile.transports.values()}
        for rule in RULES.values():
            found = targets(rule, planner)
            for target in found:
                yield RuleItem.from_parent(self, name=f"{rule.id}{_suffix(target)}", rule_id=rule.id, target=target)
            if not found and rule.binding is not None and rule.binding not in bindings:
                yield RuleItem.from_parent(self, name=f"{rule.id}[{rule.binding}]", rule_id=rule.id, target=rule.binding,
                                           unavailable=f"the profile {profile.name} defines no transport of the "
                                                       f"{rule.binding} binding")
            elif not found and rule.scope == "pair" and not missing:
                yield RuleItem.from_parent(self, name=rule.id, rule_id=rule.id, target=None,
                                           unavailable=f"the profile {profile.name} defines no pair of transports "
                                                       f"to compare")
            if rule.scope == "transport":
                for name in missing:
                    if rule.binding is None or profile.transports[name].binding == rule.binding:
                        yield RuleItem.from_parent(self, name=f"{rule.id}[{name}]", rule_id=rule.id, target=name,
                                                   unavailable=planner.missing_transports()[name])


def _suffix(target: Any) -> str:
    if isinstance(target, tuple):
        return f"[{'-'.join(target)}]"
    return f"[{target}]" if target else ""


class RuleItem(pytest.Item):
    """One rule's verdict on one transport, parity pair or the whole run."""

    def __init__(self, *, rule_id: str, target: Any, unavailable: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule_id = rule_id
        self.target = target
        self.unavailable = unavailable
        self.outcome: Any = None
        self.add_marker(pytest.mark.conformance)

    @property
    def transport_label(self) -> str:
        if isinstance(self.target, tuple):
            return "-".join(self.target)
        return self.target or "all"

    def runtest(self) -> None:
        if self.unavailable:
            pytest.skip(self.unavailable)
        from .rules import get
        from .session import judge_rule
        from .verdict import ConformanceWarning

        state = self.config.stash[STATE_KEY]
        result = judge_rule(get(self.rule_id), state.session(), self.target)
        self.outcome = result
        if result.verdict == "skip":
            pytest.skip(result.message)
        if result.verdict == "fail":
            pytest.fail(result.message, pytrace=False)
        if result.verdict == "warn":
            self.user_properties.append(("conformance_warning", result.message))
            warnings.warn(ConformanceWarning(result.message), stacklevel=1)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.rule_id} on {self.transport_label}"


class SuiteState:
    """The run's settings, session and report entries, made when first needed."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.time()
        self.entries: list[dict[str, Any]] = []
        self._profile: Any = None
        self._session: Any = None
        self._server: Any = None
        self._starting: Any = None
        self._start_error: BaseException | None = None
        self.selected: list[RuleItem] = []

    def profile(self) -> Any:
        if self._profile is None:
            from .profile import ProfileError, load_profile

            try:
                profile = load_profile(self.config.getoption("profile") or DEFAULT_PROFILE)
            except ProfileError as exc:
                raise pytest.UsageError(f"--profile: {exc}") from None
            questions = self.config.getoption("question")
            if questions:
                profile = profile.asking(questions)
            self._profile = profile
        return self._profile

    def settings(self, base: str, profile: Any) -> Any:
        from .recording import Limits
        from .session import Settings

        opt = self.config.getoption
        timeout = opt("stream_timeout")
        d = Limits()  # the defaults, scaled
        paths = {}
        for name, section in profile.transports.items():
            chosen = opt(f"{section.binding}_path") if section.binding in ("sse", "ws") else None
            if chosen:
                paths[name] = chosen
        return Settings(
            base_url=base.rstrip("/"), profile=profile, paths=paths,
            params=_key_value(opt("param"), "=", "--param"), headers=_key_value(opt("header"), ":", "--header"),
            # every bound from --stream-timeout, scaled as the defaults of Limits are
            limits=Limits(connect=min(timeout, d.connect), first_event=timeout, idle=timeout,
                          total=max(d.total, d.total / d.idle * timeout),
                          end_grace=min(d.end_grace, timeout), event_idle=d.event_idle / d.idle * timeout,
                          names=tuple((n, "--stream-timeout") for n in ("connect", "first_event", "idle", "total",
                                                                       "end_grace", "event_idle"))),
            parity=opt("parity"), metrics_url=opt("metrics_url"), seed=opt("draw_seed"),
            browser=_browser_spec(opt),
        )

    def planner(self, profile: Any) -> Any:
        """A session that records nothing yet: it tells which items to make."""
        from .session import Session

        return Session(self.settings(base_url(self.config) or "http://127.0.0.1:0", profile))

    @property
    def backend(self) -> str | None:
        return self._session.base_url if self._session is not None else base_url(self.config)

    def session(self) -> Any:
        """The session, made (and the embedded server started) on first use, with
        every stimulus the selected rules need recorded at once."""
        if self._session is not None:
            return self._session
        from .rules import get
        from .session import Session, needs
        from .wire import metrics
        from .wire.transport import unreachable

        profile = self.profile()
        base = base_url(self.config)
        if base is None:
            self.start_server()
            self._starting.join()
            if self._start_error is not None:
                raise self._start_error
            base = self._server.base_url
        settings = self.settings(base, profile)
        why = unreachable(settings.base_url, settings.limits.connect)
        if why is not None:
            raise pytest.UsageError(f"the backend at {settings.base_url} does not answer ({why}); "
                                    "is it running, and is --base-url right?")
        if settings.metrics_url is None and profile.disconnect.gauge:
            candidate = settings.base_url + "/metrics"
            if metrics.read_gauge(candidate, profile.disconnect.gauge, headers=settings.headers) is not None:
                from dataclasses import replace

                settings = replace(settings, metrics_url=candidate)
        session = Session(settings)
        wanted = []
        for item in self.selected:
            if not item.unavailable:
                wanted += needs(get(item.rule_id), session, item.target)
        session.prefetch(wanted)
        self._session = session
        return session

    def start_server(self) -> None:
        """Start the embedded reference server in a thread, when no base URL is given."""
        if base_url(self.config) is not None or self._starting is not None:
            return
        import threading

        def start() -> None:
            missing = [m for m in ("fastapi", "uvicorn", "pandas") if importlib.util.find_spec(m) is None]
            if missing:
                self._start_error = pytest.UsageError(
                    f"no --base-url given, and the embedded reference server needs {', '.join(missing)}: "
                    "install agentstream[server], or give --base-url")
                return
            try:
                from reference_server.embedded import EmbeddedServer

                from .wire.transport import embedded_server

                server = EmbeddedServer(pace_ms=self.config.getoption("embedded_pace_ms"),
                                        server=embedded_server(self.profile().transports))
                self._server = server
                server.start()
            except Exception as exc:  # noqa: BLE001 - reported to the user as a usage error
                self._start_error = pytest.UsageError(f"the embedded reference server did not start: {exc}")

        self._starting = threading.Thread(target=start, name="agentstream-embedded-server", daemon=True)
        self._starting.start()

    def causes(self) -> tuple[int, int]:
        """(findings, unique causes) over every rule that ran."""
        from .verdict import count_causes

        return count_causes([f for item in self.selected if item.outcome is not None for f, _ in item.outcome.findings])

    def close(self) -> None:
        browser = sys.modules.get("conformance.wire.browser")
        if browser is not None:
            browser.close_all()
        if self._starting is not None:
            self._starting.join()
        if self._server is not None:
            self._server.stop()
            self._server = None


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE_KEY]
    state.selected = [item for item in session.items if isinstance(item, RuleItem)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before the first rule runs: check the backend answers (a usage error if not)
    and record everything the selected rules need."""
    state = session.config.stash[STATE_KEY]
    if state.selected and not session.config.option.collectonly and any(not i.unavailable for i in state.selected):
        progress = Progress.of(session.config)
        progress.say(f"recording the streams of {progress.total} rules ({len(state.selected)} checks) ...")
        state.session()
        progress.say(f"recorded in {time.time() - progress.started:.1f} s; judging")


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATE_KEY in config.stash:
        config.stash[STATE_KEY].close()


# -- the JSON report --

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if not isinstance(item, RuleItem):
        return report
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
        from .rules import get

        result = item.outcome
        rule, profile = get(item.rule_id), item.config.stash[STATE_KEY].profile()
        entry = {
            "id": item.rule_id,
            "level": profile.level(rule.id, rule.level),
            "section": profile.section(rule.id, rule.section),
            "verdict": verdict,
            "transport": item.transport_label,
            "message": message,
            "duration_s": round(report.duration, 4),
            "nodeid": item.nodeid,
        }
        if result is not None and result.findings:
            entry["requests"] = result.requests
            entry["reproduce"] = result.reproductions
        item.config.stash[STATE_KEY].entries.append(entry)
    return report


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("agentstream", "pytest", "httpx", "httpx-sse", "websockets", "jsonschema"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def build_report(entries: list[dict[str, Any]], backend: str | None, profile: Any, started: float,
                 draw_seed: int = 0) -> dict[str, Any]:
    """The report document (pure: everything comes in as arguments)."""
    from .contracts import Format

    totals = {"pass": 0, "fail": 0, "warn": 0, "skip": 0}
    for entry in entries:
        totals[entry["verdict"]] += 1
    return {
        "format": Format.CONFORMANCE.value,
        "backend": backend,
        "profile": {"name": profile.name, "path": str(profile.path) if profile.path else None},
        "draw_seed": draw_seed,
        "versions": _versions(),
        "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 3),
        "rules": entries,
        "totals": totals,
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    path = config.getoption("conformance_report", None)
    if not path or STATE_KEY not in config.stash:
        return
    state = config.stash[STATE_KEY]
    if not state.selected and not state.entries:
        return
    doc = build_report(state.entries, state.backend, state.profile(), state.started, config.getoption("draw_seed"))
    doc["totals"]["findings"], doc["totals"]["unique_causes"] = state.causes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # ASCII: a drawn value may hold a lone surrogate, which UTF-8 cannot encode (JSON escapes it)
    Path(path).write_text(json.dumps(doc, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if STATE_KEY not in config.stash or not config.stash[STATE_KEY].entries:
        return
    state = config.stash[STATE_KEY]
    counts: dict[str, int] = {}
    for entry in state.entries:
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    line = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    findings, causes = state.causes()
    terminalreporter.write_sep("-", "agent-stream conformance")
    if state.backend is not None:
        terminalreporter.write_line(f"backend {state.backend}, profile {state.profile().name}, "
                                    f"parity {config.getoption('parity')}, draw seed {config.getoption('draw_seed')}")
    terminalreporter.write_line(f"rules: {line}")
    if findings:
        terminalreporter.write_line(f"findings: {findings}, {causes} unique cause{'s' if causes != 1 else ''} "
                                    "(a cause: one rule, one message shape, one place)")
    path = config.getoption("conformance_report", None)
    if path:
        terminalreporter.write_line(f"report written to {path}")


class Progress:
    """Rules done out of total, on the terminal while the suite runs: a line before
    and after the recording (the long part), then at most one every
    ``EVERY_S`` seconds as the checks finish, and the last one. A rule is done
    when every check of it (one per transport or pair) has finished."""

    EVERY_S = 2.0

    def __init__(self, config: pytest.Config, items: list[RuleItem]) -> None:
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.left: dict[str, int] = {}
        self.rule_of: dict[str, str] = {}
        for item in items:
            self.left[item.rule_id] = self.left.get(item.rule_id, 0) + 1
            self.rule_of[item.nodeid] = item.rule_id
        self.total, self.done, self.checks = len(self.left), 0, 0
        self.started = self.last = time.time()

    @classmethod
    def of(cls, config: pytest.Config) -> "Progress":
        state = config.stash[STATE_KEY]
        if getattr(state, "progress", None) is None:
            state.progress = cls(config, state.selected)
        return state.progress

    def say(self, text: str) -> None:
        if self.reporter is not None and self.total:
            if getattr(self.reporter._tw, "width_of_current_line", 0):
                self.reporter._tw.line()  # end the row of dots first
            self.reporter.write_line(f"[conformance] {text}")
            self.last = time.time()

    def finished(self, nodeid: str) -> None:
        rule = self.rule_of.pop(nodeid, None)
        if rule is None:
            return
        self.checks += 1
        self.left[rule] -= 1
        if self.left[rule] == 0:
            self.done += 1
        now = time.time()
        if self.done == self.total or now - self.last >= self.EVERY_S:
            self.last = now
            self.say(f"{self.done}/{self.total} rules done ({self.checks} checks, {now - self.started:.1f} s)")


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    config = _CONFIG[0] if _CONFIG else None
    if config is not None and STATE_KEY in config.stash and config.stash[STATE_KEY].selected:
        Progress.of(config).finished(nodeid)
