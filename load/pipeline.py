"""One measured stream, end to end: build its request, record it, check it, turn it into figures.

The Locust users call :func:`measure_stream` (:func:`request_for`, :func:`record`,
then :func:`judge`); the harness benchmark (``load/bench_harness.py``) calls the
same functions, timing :func:`judge` apart, so it measures exactly the code path
a load run uses. The request's shape (path, question parameter, terminal type)
is the profile's, the options only override it; recording is the transport
registry's (``conformance.wire``), checking the rules' (``conformance.rules``).
Nothing here names a transport. No Locust import here: importing Locust
monkey-patches the process.
"""

from __future__ import annotations

from conformance.profile import Profile
from conformance.recording import Limits, Recording
from conformance.request import Request
from conformance.rules import check_stream
from conformance.validate import Finding
from conformance.wire.transport import available
from conformance.wire import record as wire_record

from .config import COMPRESSION_BINDING, LoadConfig
from .metrics import StreamFigures, classify_error, stream_figures


def limits_for(cfg: LoadConfig) -> Limits:
    t = cfg.stream_timeout_s
    names = tuple((n, "--stream-timeout") for n in ("first_event", "idle", "event_idle", "total"))
    return Limits(connect=min(Limits().connect, t), first_event=t, idle=t, event_idle=t, total=t, names=names)


def transports_for(profile: Profile) -> list[str]:
    """The transports a load run can measure: those the profile defines and the
    registry has, in the profile's order."""
    return available(profile.transports)


def path_for(transport: str, cfg: LoadConfig, profile: Profile) -> str:
    """The endpoint path of ``transport``: the user's for its binding (``--sse-path``),
    else the profile's."""
    section = profile.transports[transport]
    return cfg.paths.get(section.binding) or section.path


def request_for(transport: str, cfg: LoadConfig, profile: Profile, question: str) -> Request:
    """The request of one stream, built as the profile says (``Profile.make_request``:
    the question in the query or in the JSON document, the terminal types and any
    end sentinel as the recorder's cue that the stream is over), with the user's
    parameters."""
    section = profile.transports[transport]
    return profile.make_request(transport, cfg.host + path_for(transport, cfg, profile), question=question,
                                params=cfg.params, headers=cfg.headers,
                                compression=cfg.ws_compression and section.binding == COMPRESSION_BINDING)


def record(request: Request, cfg: LoadConfig) -> Recording:
    """One stream through the transport the request names, within ``--stream-timeout``."""
    return wire_record(request, limits_for(cfg))


def judge(rec: Recording, profile: Profile, *, validate: bool = True) -> StreamFigures:
    """Check a complete stream against every per-stream rule of the profile (when
    ``validate``), and compute its figures (timestamps in the profile's field)."""
    findings: list[Finding] = []
    if validate and classify_error(rec)[0] is None:
        findings = check_stream(rec, profile)
    return stream_figures(rec, findings, timestamp_field=profile.timestamp_field,
                          timestamp_scale=profile.timestamp_scale)


def measure_stream(transport: str, cfg: LoadConfig, profile: Profile, question: str, *,
                   validate: bool = True) -> tuple[Recording, StreamFigures]:
    """Record one stream of ``transport`` asking ``question``, then :func:`judge` it."""
    rec = record(request_for(transport, cfg, profile, question), cfg)
    return rec, judge(rec, profile, validate=validate)


def backoff(failures: int, first_s: float, most_s: float) -> float:
    """The pause after ``failures`` connection failures in a row: none after a
    success, then ``first_s``, doubling, capped at ``most_s``."""
    return 0.0 if failures <= 0 else min(most_s, first_s * 2 ** (failures - 1))
