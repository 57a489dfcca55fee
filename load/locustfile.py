"""Locust scenarios: one user class per transport, measured at microsecond resolution.

    locust -f load/locustfile.py --host http://127.0.0.1:8000            # web UI
    locust -f load/locustfile.py --host http://127.0.0.1:8000 --headless -u 4 -r 4 -t 30s
    locust -f load/locustfile.py --host ... WSUser                       # one transport
    python -m load --headless -u 4 -r 4 -t 30s                            # embedded reference server

The user classes are made from the transport registry (``conformance.wire``):
``SSEUser`` for ``sse``, ``WSUser`` for ``ws``, ``NAMEUser`` for a plug-in
transport registered before this file is imported; a run uses those the profile
(``--profile-name``) defines. Each user runs one stream after another (``--pace``
seconds apart) through its transport (the only client in the project), with the
request the profile describes (path, question parameter, terminal type), checks
it against the profile's per-stream rules (``conformance.rules.check_stream``),
turns it into figures (``load.metrics``) and feeds them to HdrHistograms per
transport and metric.
Locust's own statistics get one row per stream phase (connect, first event,
stream) through ``events.request.fire``; a stream that breaks a MUST rule is a
Locust failure whose message names the rule IDs.

Distributed runs (``--master`` / ``--worker``): every worker ships its whole
accumulated figures (encoded histograms and counters) with each report
(``events.report_to_master``); the master keeps the latest per worker and, when
the test stops, asks every worker to stop and send a final report before it
merges them, so that the merge is exact. Each worker also writes its own part to
``RESULTS_DIR/workers/<id>/`` (same format as the top directory).

Only loopback hosts are accepted (127.0.0.0/8, ::1, localhost).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import locust.stats
from locust import User, events, task
from locust.exception import StopUser
from locust.runners import STATE_MISSING, LocalRunner, MasterRunner, WorkerRunner

from conformance.contracts import ErrorKind
from conformance.profile import DEFAULT_PROFILE, Profile, ProfileError, load_profile
from conformance.wire import TRANSPORTS, Transport
from load.config import ConfigError, LoadConfig, add_arguments, check_against_profile, load_config, questions_for
from load.metrics import CpuStats, RunAccumulator, StreamFigures, fine_bucket
from load.live import progress_line, stream_counts
from load.pipeline import backoff, measure_stream, path_for, transports_for
from load.results import build_summary, print_brief, safe_name, write_results, write_summary_dir

log = logging.getLogger("agentstream.load")

MSG_LEVEL = "agentstream_level"
MSG_FLUSH = "agentstream_flush"
MSG_FINAL = "agentstream_final"
REPORT_KEY = "agentstream"
FINAL_WAIT_EXTRA_S = 10.0


class _RunState:
    """Per-process state of one test: config, figures, CPU samples, sweep level."""

    def __init__(self) -> None:
        self.reset()
        self.worker_parts: dict[str, dict[str, Any]] = {}
        self.run_id = ""
        # The sweep level is not reset at test_start: the shape sets the first
        # level (and tells the workers) just before the test starts.
        self.level: int | None = None
        self.level_times: dict[int, list[float]] = {}
        self.extra: dict[str, Any] = {}
        """Summary section -> a function giving its content at the end (a
        locustfile's own figures, e.g. the open model's arrivals)."""

    def reset(self) -> None:
        self.config: LoadConfig | None = None
        self.profile: Profile | None = None
        self.questions: list[str] = []
        self.run = RunAccumulator()
        self.cpu = CpuStats()
        self.started_wall = time.time()
        self.stopped_wall: float | None = None
        self.final = False
        self.written = False
        self.stream_log: Any = None
        self.cpu_greenlet: Any = None
        self.progress_greenlet: Any = None
        self.counter = itertools.count()

    def set_level(self, level: int | None) -> None:
        now = time.time()
        if self.level is not None and self.level in self.level_times:
            self.level_times[self.level][1] = now
        self.level = level
        if level is not None:
            self.level_times.setdefault(level, [now, now])[1] = now


STATE = _RunState()


def node_name(environment: Any) -> str:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return safe_name(str(runner.client_id))
    if isinstance(runner, MasterRunner):
        return "master"
    return "local"


# --------------------------------------------------------------------------- users


class _StreamUser(User):
    """One client that asks questions one after another over one transport."""

    abstract = True
    transport: str
    """The registry name of the transport this class streams over."""
    request_type: str
    """Locust's request type column."""

    backoff_s = 0.1
    """Pause after the first stream in a row that could not connect; it doubles with
    each further one up to ``backoff_max_s``, so that a dead server does not turn
    the users into a busy loop that saturates the CPU."""
    backoff_max_s = 2.0

    _failed_connects = 0
    """Streams in a row that could not connect (each is still counted as an error)."""

    def wait_time(self) -> float:
        pace = STATE.config.pace_s if STATE.config else 0.0
        return max(pace, backoff(self._failed_connects, self.backoff_s, self.backoff_max_s))

    @task
    def stream(self) -> None:
        cfg, profile = STATE.config, STATE.profile
        if cfg is None or profile is None:
            raise StopUser()
        if self.transport not in profile.transports:
            log.warning("%s: profile %r defines no transport %r; this user stops", type(self).__name__,
                        profile.name, self.transport)
            raise StopUser()
        question = STATE.questions[next(STATE.counter) % len(STATE.questions)]
        level = STATE.level
        rec, fig = measure_stream(self.transport, cfg, profile, question, validate=cfg.validate)
        self._failed_connects = self._failed_connects + 1 if fig.error_kind == ErrorKind.CONNECT else 0
        STATE.run.add_stream(fig, level)
        if STATE.stream_log is not None:
            row = fig.as_dict()
            row.update(level=level, question=question)
            STATE.stream_log.write(json.dumps(row) + "\n")
        self._fire(fig, urlsplit(rec.url).path)

    def _fire(self, fig: StreamFigures, name: str) -> None:
        fire = self.environment.events.request.fire
        if fig.connect_us is not None:
            fire(request_type=self.request_type, name=f"{name} [connect]", response_time=fig.connect_us / 1000,
                 response_length=fig.head_in, exception=None, context={})
        if fig.ttfe_us is not None and fig.ok:
            fire(request_type=self.request_type, name=f"{name} [first event]", response_time=fig.ttfe_us / 1000,
                 response_length=0, exception=None, context={})
        message = fig.failure_message()
        fire(request_type=self.request_type, name=name, response_time=(fig.duration_us or 0) / 1000,
             response_length=fig.wire_in, exception=StreamFailure(message) if message else None, context={})


class StreamFailure(Exception):
    """A stream that failed: transport error kind, or the MUST rule IDs it broke."""


def user_class_name(transport: str) -> str:
    """``sse`` -> ``SSEUser``, ``ws`` -> ``WSUser``, ``sse-h2`` -> ``SSE_H2User``:
    the name to give Locust on its command line to run one transport alone."""
    return re.sub(r"[^A-Za-z0-9_]", "_", transport).upper() + "User"


def user_class(transport: Transport) -> type[_StreamUser]:
    """A Locust user class that streams over ``transport``."""
    name = user_class_name(transport.name)
    doc = (f"Streams over {transport.label} (transport {transport.name!r}, {transport.binding} binding), "
           "at the profile's path for it.")
    return type(name, (_StreamUser,), {"__doc__": doc, "__module__": __name__, "abstract": False,
                                       "transport": transport.name,
                                       "request_type": transport.name.upper()})


USER_CLASSES: dict[str, type[_StreamUser]] = {user_class_name(t.name): user_class(t) for t in TRANSPORTS.values()}
"""Class name -> user class, one per registered transport, in the registry's order."""
globals().update(USER_CLASSES)  # Locust finds user classes among the module's names


# --------------------------------------------------------------------------- hooks


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


def _fatal(environment: Any, message: str) -> None:
    log.error(message)
    sys.stderr.write(f"agentstream: {message}\n")
    environment.process_exit_code = 2


def select_user_classes(user_classes: list[Any], profile: Profile, chosen: list[str] | None) -> list[Any]:
    """The user classes of a run: those whose transport the profile defines.
    ConfigError when the user named a class the profile has no transport for, or
    when none is left."""
    keep = [c for c in user_classes if getattr(c, "transport", None) in profile.transports]
    dropped = sorted(c.__name__ for c in user_classes if c not in keep)
    if chosen and dropped:
        raise ConfigError(f"{', '.join(dropped)}: profile {profile.name!r} defines no such transport "
                          f"(its transports: {', '.join(profile.transports)})")
    if not keep:
        known = ", ".join(user_class_name(t) for t in transports_for(profile)) or "none"
        raise ConfigError(f"no user class streams over a transport of profile {profile.name!r} "
                          f"(its user classes: {known})")
    return keep


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    locust.stats.bucket_response_time = fine_bucket
    # httpx logs every request at INFO: thousands of lines that cost CPU while measuring.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    runner = environment.runner
    opts = environment.parsed_options
    # Refuse a bad --host or --profile-name before anything starts (workers learn
    # the host later), and run only the users of the profile's transports.
    if opts is not None and not isinstance(runner, WorkerRunner):
        try:
            cfg = load_config(opts, environment.host)
        except ConfigError as e:
            if environment.host or getattr(opts, "headless", False):
                sys.stderr.write(f"agentstream: {e}\n")
                sys.exit(2)
            cfg = None
        try:
            profile = load_profile(cfg.profile if cfg else getattr(opts, "profile_name", None) or DEFAULT_PROFILE)
            if cfg is not None:
                check_against_profile(cfg, profile)
            environment.user_classes[:] = select_user_classes(list(environment.user_classes), profile,
                                                              getattr(opts, "user_classes", None))
        except (ProfileError, ConfigError) as e:
            sys.stderr.write(f"agentstream: {e}\n")
            sys.exit(2)
    # Streams still running when the test stops are let finish (bounded by
    # --stream-timeout) unless --stop-timeout says otherwise: killing them would
    # drop exactly the longest streams from the figures.
    if opts is not None and not isinstance(runner, WorkerRunner) and not environment.stop_timeout:
        try:
            environment.stop_timeout = max(0.0, float(getattr(opts, "stream_timeout", 60.0)))
        except (TypeError, ValueError):
            environment.stop_timeout = 60.0
    if isinstance(runner, WorkerRunner):
        runner.register_message(MSG_LEVEL, _on_level_message)
        runner.register_message(MSG_FLUSH, _on_flush_message, concurrent=True)
    elif isinstance(runner, MasterRunner):
        runner.register_message(MSG_FINAL, _on_final_message)
    elif isinstance(runner, LocalRunner):
        runner.register_message(MSG_LEVEL, _on_level_message)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    STATE.reset()
    opts = environment.parsed_options
    if isinstance(runner, MasterRunner):
        STATE.worker_parts = {}
        STATE.run_id = uuid.uuid4().hex
        if opts is not None:
            opts.agentstream_run_id = STATE.run_id  # shipped to workers with the spawn message
    else:
        STATE.run_id = str(getattr(opts, "agentstream_run_id", "") or "")
    try:
        STATE.config = load_config(opts, environment.host)
        STATE.profile = load_profile(STATE.config.profile)
        check_against_profile(STATE.config, STATE.profile)
        STATE.questions = questions_for(STATE.config, STATE.profile)
    except Exception as e:  # ConfigError, ProfileError: a clear message and no test
        STATE.config = None
        _fatal(environment, str(e))
        # Headless: end the run (exit code 2). Web UI: stop this test only, so
        # that the form can be corrected and the test started again.
        headless = bool(getattr(opts, "headless", False)) or isinstance(runner, WorkerRunner)
        gevent.spawn_later(0, runner.quit if headless else runner.stop)
        return
    if bool(getattr(opts, "headless", False)) and not isinstance(runner, WorkerRunner):
        STATE.progress_greenlet = gevent.spawn(_report_progress, environment)
    if not isinstance(runner, MasterRunner):
        STATE.cpu = CpuStats(node=node_name(environment))
        STATE.cpu_greenlet = gevent.spawn(_sample_cpu, STATE.cpu)
        if STATE.config.stream_log:
            path = Path(STATE.config.results_dir) / "streams" / f"{node_name(environment)}.jsonl"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                STATE.stream_log = open(path, "w", encoding="utf-8")
            except OSError as e:
                _fatal(environment, f"--stream-log: cannot write {str(path)!r} ({e}); no stream log this run")


PROGRESS_EVERY_S = 5.0
"""How often a headless run prints its progress line."""


def _run_time_s(environment: Any) -> float | None:
    """The run's planned length: -t, or the sweep's levels × --step-time."""
    opts = environment.parsed_options
    shape = environment.shape_class
    if shape is not None and type(shape).__name__ == "StepShape" and STATE.config is not None:
        return len(STATE.config.steps) * STATE.config.step_time_s
    run_time = getattr(opts, "run_time", None)
    try:
        return float(run_time) if run_time else None
    except (TypeError, ValueError):
        return None


def _report_progress(environment: Any) -> None:
    """Headless local or master: a progress line every PROGRESS_EVERY_S seconds."""
    before: dict[str, tuple[int, int]] = {}
    last = time.monotonic()
    while True:
        gevent.sleep(PROGRESS_EVERY_S)
        if isinstance(environment.runner, MasterRunner):
            now: dict[str, tuple[int, int]] = {}
            for part in STATE.worker_parts.values():
                for t, (n, f) in stream_counts(part.get("run")).items():
                    n0, f0 = now.get(t, (0, 0))
                    now[t] = (n0 + n, f0 + f)
        else:
            now = stream_counts(STATE.run.to_wire_counts())
        order = _order()
        now = dict(sorted(now.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
        t = time.monotonic()
        sys.stderr.write(progress_line(time.time() - STATE.started_wall, _run_time_s(environment), now, before,
                                       t - last) + "\n")
        before, last = now, t


def _sample_cpu(stats: CpuStats) -> None:
    """Sample this process's CPU (percent of one core) and the machine's, once a second."""
    import psutil

    proc = psutil.Process()
    proc.cpu_percent(None)
    psutil.cpu_percent(None)
    while True:
        gevent.sleep(1.0)
        stats.add_sample(proc.cpu_percent(None), psutil.cpu_percent(None))


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner) or STATE.config is None:
        return
    # Ask every worker to stop its users and send one last, complete report,
    # and wait for them all: the final merge must not miss a stream.
    expected = {c.id for c in runner.clients.all if c.state != STATE_MISSING}
    runner.send_message(MSG_FLUSH, {"run_id": STATE.run_id})
    deadline = time.monotonic() + (environment.stop_timeout or 0) + FINAL_WAIT_EXTRA_S
    while time.monotonic() < deadline:
        done = {w for w, p in STATE.worker_parts.items() if p.get("final")}
        if expected <= done:
            break
        gevent.sleep(0.05)
    else:
        missing = expected - {w for w, p in STATE.worker_parts.items() if p.get("final")}
        log.warning("no final report from worker(s) %s; their last periodic report is used", sorted(missing))


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    if STATE.config is None or STATE.written:
        return
    STATE.written = True
    STATE.stopped_wall = time.time()
    STATE.set_level(None)
    if STATE.cpu_greenlet is not None:
        STATE.cpu_greenlet.kill(block=False)
    if STATE.progress_greenlet is not None:
        STATE.progress_greenlet.kill(block=False)
    if STATE.stream_log is not None:
        STATE.stream_log.close()
        STATE.stream_log = None
    STATE.final = True
    runner = environment.runner
    try:
        if isinstance(runner, WorkerRunner):
            _write_worker_part(environment)
        else:
            _write_run(environment)
    except (OSError, ValueError) as e:
        _fatal(environment, f"cannot write results to {STATE.config.results_dir!r}: {e}")
    finally:
        STATE.level_times = {}


def _config_record(environment: Any, workers: int) -> dict[str, Any]:
    cfg, profile = STATE.config, STATE.profile
    assert cfg is not None and profile is not None
    opts = environment.parsed_options
    shape = environment.shape_class
    sweep = shape is not None and type(shape).__name__ == "StepShape"
    users = max(cfg.steps) if sweep else getattr(opts, "num_users", None)
    user_classes = getattr(opts, "user_classes", None) or [c.__name__ for c in environment.user_classes]
    return {
        "host": cfg.host, "users": users, "spawn_rate": getattr(opts, "spawn_rate", None),
        "run_time_s": getattr(opts, "run_time", None),
        "shape": "step" if sweep else ("constant" if shape is None else
                                       "open" if type(shape).__name__ == "OpenShape" else "custom"),
        "steps": cfg.steps if sweep else None, "step_time_s": cfg.step_time_s if sweep else None,
        "questions": STATE.questions, "params": cfg.params,
        "paths": {t: path_for(t, cfg, profile) for t in transports_for(profile)},
        "question_param": profile.question_param, "end_types": list(profile.end_types),
        "timestamp_field": profile.timestamp_field, "parity": [list(p) for p in profile.parity],
        "ws_compression": cfg.ws_compression, "pace_s": cfg.pace_s, "stream_timeout_s": cfg.stream_timeout_s,
        "validate": cfg.validate, "profile": cfg.profile, "user_classes": sorted(user_classes),
        "workers": workers, "results_dir": cfg.results_dir,
        "stop_timeout_s": environment.stop_timeout,
    }


def _write_run(environment: Any) -> None:
    """Local or master: merge everything and write the results directory."""
    runner = environment.runner
    cfg = STATE.config
    assert cfg is not None
    if isinstance(runner, MasterRunner):
        run = RunAccumulator()
        cpu = []
        for part in STATE.worker_parts.values():
            run.add(RunAccumulator.from_wire(part["run"]))
            cpu.append(CpuStats.from_wire(part["cpu"]))
        workers = len(STATE.worker_parts)
        per_worker = {w: _counts(RunAccumulator.from_wire(p["run"])) for w, p in STATE.worker_parts.items()}
    else:
        run, cpu, workers, per_worker = STATE.run, [STATE.cpu], 1, None
    levels = {n: (t[0], t[1]) for n, t in STATE.level_times.items()}
    extra = {"merged_from": per_worker} if per_worker is not None else {}
    extra.update({key: fn() for key, fn in STATE.extra.items()})
    summary = write_results(
        cfg.results_dir, run, config=_config_record(environment, workers), started_wall=STATE.started_wall,
        duration_s=(STATE.stopped_wall or time.time()) - STATE.started_wall, cpu=cpu, levels=levels, extra=extra,
        order=_order(),
    )
    print_brief(summary)
    sys.stderr.write(f"[agentstream] results written to {Path(cfg.results_dir).resolve()}\n")


def _counts(run: RunAccumulator) -> dict[str, Any]:
    """Per-transport stream/event counts and metric counts, for the record of a merge."""
    return {t: {"streams": a.streams, "events": a.events,
                "metrics": {m: acc.count for m, acc in a.metrics.items()}} for t, a in run.total().items()}


def _write_worker_part(environment: Any) -> None:
    cfg = STATE.config
    assert cfg is not None
    name = node_name(environment)
    transports = STATE.run.total()
    summary = build_summary(transports, config=_config_record(environment, 1), started_wall=STATE.started_wall,
                            duration_s=(STATE.stopped_wall or time.time()) - STATE.started_wall, cpu=[STATE.cpu],
                            extra={"node": name, "run_id": STATE.run_id}, order=_order())
    write_summary_dir(Path(cfg.results_dir) / "workers" / name, transports, summary, STATE.started_wall)


def _order() -> list[str]:
    """The transports in the profile's order: the results list them so (the first is
    the reports' reference)."""
    return transports_for(STATE.profile) if STATE.profile is not None else []


def _payload() -> dict[str, Any]:
    return {"run_id": STATE.run_id, "final": STATE.final, "run": STATE.run.to_wire(), "cpu": STATE.cpu.to_wire()}


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if STATE.config is not None:
        data[REPORT_KEY] = _payload()


def _store_part(client_id: str, part: Any) -> None:
    if not isinstance(part, dict) or part.get("run_id") != STATE.run_id:
        return  # a report from before this test started
    previous = STATE.worker_parts.get(client_id)
    if previous is not None and previous.get("final") and not part.get("final"):
        return
    STATE.worker_parts[client_id] = part


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if REPORT_KEY in data:
        _store_part(client_id, data[REPORT_KEY])


def _on_final_message(environment: Any, msg: Any, **_: Any) -> None:
    _store_part(msg.node_id, msg.data)


def _on_flush_message(environment: Any, msg: Any, **_: Any) -> None:
    """Worker: stop the users (gracefully, per --stop-timeout), then send the final figures."""
    runner = environment.runner
    runner.stop()
    _on_test_stop(environment)  # no-op when stop() already fired it
    payload = _payload()
    if STATE.config is None:
        # This worker got no users (or no test): an empty part, so that the
        # master does not wait for it.
        payload.update(run_id=(msg.data or {}).get("run_id", ""), final=True,
                       run={}, cpu=CpuStats(node=node_name(environment)).to_wire())
    runner.send_message(MSG_FINAL, payload)
    # Also push Locust's own statistics now, so that its table on the master
    # has the streams that finished during --stop-timeout (Locust itself only
    # sends a last report after the master has begun to quit).
    send_stats = getattr(runner, "_send_stats", None)
    if callable(send_stats):
        try:
            send_stats()
        except Exception as e:  # a private Locust API: never let it break the run
            log.debug("could not push Locust statistics early: %s", e)


def _on_level_message(environment: Any, msg: Any, **_: Any) -> None:
    data = msg.data or {}
    STATE.set_level(data.get("level"))


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if STATE.stream_log is not None:
        STATE.stream_log.close()
        STATE.stream_log = None
