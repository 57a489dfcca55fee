"""The load scenarios' own options: added to Locust's parser, read back into a plain config.

Locust hands custom arguments to workers and to its web UI as strings or lists,
so :func:`load_config` accepts either form and turns them into a
:class:`LoadConfig`, raising :class:`ConfigError` (a clear message, no traceback)
on bad input. The host check is here too: this tool only ever talks to loopback.

What a stream request looks like (the paths, the question parameter, the
terminal type) is the profile's; the options only override it, and
:func:`check_against_profile` holds them against the profile once it is loaded.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance.profile import BINDINGS, DEFAULT_PROFILE

COMPRESSION_BINDING = "ws"
"""``--ws-compression`` offers permessage-deflate on the transports of this binding."""


class ConfigError(ValueError):
    """Bad option value: the message says which option and why."""


def add_arguments(parser: Any) -> None:
    """Register the custom options on Locust's parser (``init_command_line_parser``).

    On the parser itself, not on an argument group: Locust marks for its web UI
    (``extra_options``) only the arguments its own ``add_argument`` made, and an
    argparse group's ``add_argument`` is not that one (the fields were missing
    from the web UI). ``--help`` lists them either way."""
    g = parser
    g.add_argument("--question", action="append", default=None, metavar="TEXT",
                   help="Question to ask (repeatable; streams cycle through them). Default: the profile's "
                        "first sample question, the same on every transport.")
    g.add_argument("--questions-file", default="", metavar="PATH",
                   help="File with one question per line (blank lines and lines starting with # skipped).")
    g.add_argument("--param", action="append", default=None, metavar="KEY=VALUE",
                   help="Extra query parameter on every stream request (repeatable), e.g. dataset=sales.")
    g.add_argument("--header", action="append", default=None, metavar="'Name: value'",
                   help="Extra request header on every stream (repeatable), e.g. 'Accept-Encoding: gzip' to "
                        "ask for what a browser asks for, through a proxy that compresses (docs/networks.md).")
    for binding in BINDINGS:
        g.add_argument(f"--{binding}-path", default=None, metavar="PATH",
                       help=f"Path of the endpoint of every transport of the {binding} binding "
                            "(default: the profile's transports.NAME.path).")
    g.add_argument("--ws-compression", action="store_true", default=False,
                   help=f"Offer permessage-deflate on the streams of the {COMPRESSION_BINDING} binding.")
    g.add_argument("--pace", type=float, default=0.0, metavar="SECONDS",
                   help="Pause of each user between two streams, in seconds.")
    g.add_argument("--results-dir", default="results", metavar="DIR",
                   help="Where summary.json and the histograms go (default results/).")
    g.add_argument("--stream-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="Longest a stream may take in all (also first-event and idle limit).")
    g.add_argument("--no-validate", action="store_true", default=False,
                   help="Do not run the conformance validator on each stream (saves CPU).")
    g.add_argument("--stream-log", action="store_true", default=False,
                   help="Also write one JSON line per stream to RESULTS_DIR/streams/<node>.jsonl.")
    g.add_argument("--profile-name", default=DEFAULT_PROFILE, metavar="NAME_OR_PATH",
                   help="Protocol profile: the transports, paths, question parameter and terminal event type "
                        "of the requests, the timestamp field of delivery latency, and the rules each stream "
                        "is validated against.")
    g.add_argument("--steps", default="1,10,50,100", metavar="N,N,...",
                   help="User levels of a concurrency sweep (only with -f load/sweep.py).")
    g.add_argument("--step-time", type=float, default=30.0, metavar="SECONDS",
                   help="How long each sweep level is held (only with -f load/sweep.py).")
    g.add_argument("--arrival-rate", type=float, default=2.0, metavar="STREAMS_PER_S",
                   help="Open model (only with -f load/open.py): streams started per second in all, split "
                        "evenly between the transports, whether or not earlier streams have ended.")
    g.add_argument("--max-in-flight", type=int, default=200, metavar="N",
                   help="Open model: streams open at once per transport at most; an arrival beyond it is "
                        "counted as dropped (the sign that the backend or the client is saturated).")


@dataclass
class LoadConfig:
    """What every user needs to know to run its streams (plain data)."""

    host: str
    questions: list[str] = field(default_factory=list)
    """The questions to cycle through; empty: the profile's first sample question."""
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    """Extra request headers (``--header``) on every stream."""
    paths: dict[str, str] = field(default_factory=dict)
    """Binding -> endpoint path the user gave (``--sse-path``), overriding the
    profile's path of every transport of that binding."""
    ws_compression: bool = False
    pace_s: float = 0.0
    results_dir: str = "results"
    stream_timeout_s: float = 60.0
    validate: bool = True
    stream_log: bool = False
    profile: str = DEFAULT_PROFILE
    steps: list[int] = field(default_factory=lambda: [1, 10, 50, 100])
    step_time_s: float = 30.0
    arrival_rate: float = 2.0
    """Open model: streams started per second, all transports together."""
    max_in_flight: int = 200
    """Open model: open streams per transport at most."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_loopback(host: str | None) -> str:
    """Return ``host`` (no trailing slash) if it is an http(s) URL on loopback; else raise.

    Load is only ever generated against this machine: 127.0.0.0/8, ::1 or
    ``localhost``. There is deliberately no override.
    """
    if not host:
        raise ConfigError("no host: pass --host http://127.0.0.1:PORT, or run `python -m load` "
                          "to start the embedded reference server")
    try:
        parts = urlsplit(host)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise ConfigError(f"--host {host!r} is not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ConfigError(f"--host {host!r} must be an http:// or https:// URL such as http://127.0.0.1:8000")
    if hostname.lower() != "localhost":
        try:
            loopback = ipaddress.ip_address(hostname).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(f"--host {host!r} is not a loopback address: the load scenarios only run "
                              "against 127.0.0.0/8, [::1] or localhost")
    return host.rstrip("/")


def _as_list(value: Any, *, split_lines: bool) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v for v in (value.splitlines() if split_lines else [value]) if v.strip()]
    return [str(v) for v in value if str(v).strip()]


def _path(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"{name} {value!r} must start with '/'")
    return value


def load_config(options: Any, host: str | None) -> LoadConfig:
    """Build the config from Locust's parsed options (a Namespace or anything with attributes)."""
    get = lambda name, default=None: getattr(options, name, default)  # noqa: E731
    cfg = LoadConfig(host=check_loopback(host))

    questions = [q.strip() for q in _as_list(get("question"), split_lines=True)]
    qfile = get("questions_file") or ""
    if qfile:
        try:
            text = Path(qfile).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--questions-file {qfile!r}: cannot read it ({e})") from None
        questions += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if questions:
        cfg.questions = questions

    params: dict[str, str] = {}
    raw_params = get("param")
    if isinstance(raw_params, str):  # from the web UI: "a=1, b=2" or one per line
        raw_params = [p for chunk in raw_params.splitlines() for p in chunk.split(",")]
    for item in _as_list(raw_params, split_lines=False):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. dataset=sales")
        params[key] = value
    cfg.params = params
    for item in _as_list(get("header"), split_lines=True):
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or name.strip() != name.strip().split()[0]:
            raise ConfigError(f"--header {item!r}: expected 'Name: value', e.g. 'Accept-Encoding: gzip'")
        cfg.headers[name.strip()] = value.strip()

    for binding in BINDINGS:
        given = get(f"{binding}_path")
        if given:
            cfg.paths[binding] = _path(given, f"--{binding}-path")
    cfg.ws_compression = bool(get("ws_compression", False))
    cfg.results_dir = str(get("results_dir") or "results")
    cfg.validate = not bool(get("no_validate", False))
    cfg.stream_log = bool(get("stream_log", False))
    cfg.profile = str(get("profile_name") or DEFAULT_PROFILE)

    for name, attr, low in (("--pace", "pace_s", 0.0), ("--stream-timeout", "stream_timeout_s", 0.001),
                            ("--step-time", "step_time_s", 0.001)):
        opt = {"pace_s": "pace", "stream_timeout_s": "stream_timeout", "step_time_s": "step_time"}[attr]
        raw = get(opt, getattr(cfg, attr))
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} {raw!r} is not a number") from None
        if not value >= low or value > 86_400:
            raise ConfigError(f"{name} {raw!r} is out of range")
        setattr(cfg, attr, value)

    cfg.steps = parse_steps(get("steps", "1,10,50,100"))
    raw = get("arrival_rate", cfg.arrival_rate)
    try:
        cfg.arrival_rate = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"--arrival-rate {raw!r} is not a number") from None
    if not 0 < cfg.arrival_rate <= 10_000:
        raise ConfigError(f"--arrival-rate {raw!r} is out of range (more than 0, at most 10000 streams/s)")
    raw = get("max_in_flight", cfg.max_in_flight)
    try:
        cfg.max_in_flight = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"--max-in-flight {raw!r} is not a whole number") from None
    if not 1 <= cfg.max_in_flight <= 100_000:
        raise ConfigError(f"--max-in-flight {raw!r} is out of range (1..100000)")
    return cfg


def parse_steps(value: Any) -> list[int]:
    """'1,10,50,100' (or a list) -> [1, 10, 50, 100]; each level a positive integer."""
    items = value if isinstance(value, list) else str(value).replace(" ", ",").split(",")
    levels = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            n = int(item)
        except ValueError:
            raise ConfigError(f"--steps: {item!r} is not a whole number of users") from None
        if n < 1 or n > 100_000:
            raise ConfigError(f"--steps: {n} users is out of range (1..100000)")
        levels.append(n)
    if not levels:
        raise ConfigError("--steps: give at least one level, e.g. 1,10,50,100")
    return levels


def check_against_profile(cfg: LoadConfig, profile: Any) -> None:
    """Raise ConfigError when an option contradicts the profile: ``--param`` may
    not set the question parameter (``--question`` does), and a path override
    must name a binding the profile's transports follow."""
    question = profile.question_param
    if question in cfg.params:
        raise ConfigError(f"--param {question}=...: use --question instead ({question!r} is the profile's "
                          "question parameter)")
    bindings = {section.binding for section in profile.transports.values()}
    for binding in cfg.paths:
        if binding not in bindings:
            raise ConfigError(f"--{binding}-path: profile {profile.name!r} has no transport of the {binding} binding")


def questions_for(cfg: LoadConfig, profile: Any) -> list[str]:
    """The questions the streams cycle through: the user's, else the profile's first
    sample question (one question, so that every transport streams the same answer
    and the figures compare like for like)."""
    return list(cfg.questions) or [profile.sample_questions[0]]
