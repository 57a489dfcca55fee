"""``agentstream run``: the whole job in one command.

On the embedded default (or any backend given with ``--base-url``) it runs the
conformance suite, a short headless Locust comparison of the profile's
transports, writes the comparison report and applies the latency gate, then
prints where the report is and the verdict. ``--profile`` goes to every step: the
suite (``--profile``) and the load run (``--profile-name``: its transports, paths,
question parameter, terminal type and timestamp field); the report reads what the
load run recorded of it. Each step is the same public entry point a user can run on
its own (``pytest --pyargs conformance``, ``python -m load``, ``python -m reports``),
started as a subprocess so that a crash or hang in one is contained and bounded.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agentstream", description="Conformance, load comparison, report and gate "
                                "for agent backends that stream JSON events over SSE and WebSocket.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{run}")
    r = sub.add_parser("run", help="conformance suite + load comparison + report + gate",
                       description="Run the conformance suite and a short load comparison of the profile's transports "
                       "(SSE and WebSocket by default) against a backend (default: the embedded reference server), "
                       "write the report, apply the gate.")
    r.add_argument("--base-url", help="backend to test (loopback only for the load part); default: embedded server")
    r.add_argument("--out", default="agentstream-out", help="output directory (default: agentstream-out)")
    r.add_argument("--duration", type=float, default=15.0, help="seconds of load (default 15)")
    r.add_argument("--users", type=int, default=4,
                   help="concurrent users per run, split over the transports (default 4; at least one each)")
    r.add_argument("--pace-ms", type=float, default=None,
                   help="embedded server pace between chunk events (default: the server's own, 30 ms)")
    r.add_argument("--rules", default="ci", help="gate rules file, or 'ci' for the packaged CI rules (default)")
    r.add_argument("--baseline", help="a baseline for relative gate rules")
    r.add_argument("--profile", default=None, help="protocol profile name or path, for the suite and the load run "
                   "(default: agent-stream/1)")
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="extra request parameter")
    r.add_argument("--sse-path", help="SSE endpoint path (default: the profile's), for the suite and the load run")
    r.add_argument("--ws-path", help="WebSocket endpoint path (default: the profile's), for the suite and the load run")
    r.add_argument("--question", action="append", default=[], metavar="TEXT",
                   help="ask this instead of the profile's sample questions (repeatable), in the suite and the load run")
    r.add_argument("--header", action="append", default=[], metavar="'Name: value'", help="extra request header "
                   "(conformance suite only)")
    r.add_argument("--network", default=None, metavar="NAME[+NAME...]",
                   help="network condition(s) of the load run: a name (loopback, lan, wan, intercontinental, "
                        "mobile) or a spec such as rtt=80ms,down=2mbit; several joined by + are measured one "
                        "after another and compared in the report (docs/networks.md)")
    r.add_argument("--proxy", default=None, help="nginx in front of the backend for the load run "
                   "(nginx-accel or nginx-buffering; docs/networks.md)")
    r.add_argument("--skip-conformance", action="store_true", help="skip the conformance suite")
    r.add_argument("--step-timeout", type=float, default=600.0, help="upper bound in seconds on each step")
    return p


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _say(step: str, text: str) -> None:
    print(f"[agentstream] {step}: {text}", flush=True)


def _run_step(name: str, cmd: list[str], log: Path, timeout: float, cwd: Path) -> int:
    """Run one step as a subprocess, its output to ``log``, with a progress line."""
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd)
        last = 0
        while True:
            try:
                code = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.perf_counter() - start
                if elapsed > timeout:
                    proc.kill()
                    proc.wait()
                    _say(name, f"stopped after {timeout:.0f} s (see {log})")
                    return 124
                if int(elapsed) // 5 > last:
                    last = int(elapsed) // 5
                    print(f"[agentstream] {name}: {elapsed:.0f} s ...", flush=True)
    _say(name, f"finished in {time.perf_counter() - start:.1f} s (exit {code}; log {log})")
    return code


def _transports(profile: str | None) -> list[str]:
    """The transports the load run will measure (ProfileError for a bad profile)."""
    from conformance.profile import DEFAULT_PROFILE, load_profile
    from conformance.wire import TRANSPORTS

    return [t for t in load_profile(profile or DEFAULT_PROFILE).transports if t in TRANSPORTS]


def load_command(args: argparse.Namespace, transports: Sequence[str], base_url: str,
                 results: Path, network: str | None = None) -> tuple[list[str], int]:
    """The load step's command line and its number of users (at least one per
    transport): the same profile as the suite's, given as ``--profile-name``."""
    users = max(len(transports), args.users)
    cmd = [sys.executable, "-m", "load", "--host", base_url, "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{args.duration:g}s", "--results-dir", str(results), "--only-summary", "--stop-timeout", "30"]
    for item in args.param:
        cmd += ["--param", item]
    if args.profile:
        cmd += ["--profile-name", args.profile]
    cmd += _shared_options(args)
    if network is not None:
        cmd += ["--network", network]
    if args.proxy is not None:
        cmd += ["--proxy", args.proxy]
    return cmd, users


def _shared_options(args: argparse.Namespace) -> list[str]:
    """The options the suite and the load run take alike: endpoint paths and questions."""
    out: list[str] = []
    for binding in ("sse", "ws"):
        if getattr(args, f"{binding}_path"):
            out += [f"--{binding}-path", getattr(args, f"{binding}_path")]
    for question in args.question:
        out += ["--question", question]
    return out


def _safe(name: str) -> str:
    """A condition's name as a directory name (a custom spec has = and ,)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "network"


def run(args: argparse.Namespace) -> int:
    from conformance.profile import ProfileError

    if args.duration <= 0 or args.users < 1:
        print("agentstream: --duration must be > 0 and --users >= 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        transports = _transports(args.profile)
    except ProfileError as exc:
        print(f"agentstream: --profile: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not transports:
        print(f"agentstream: --profile {args.profile}: no transport of the profile is registered", file=sys.stderr)
        return EXIT_BAD_INPUT
    from network.conditions import ConditionError, parse_list
    from network.nginx import MODES

    try:
        args.conditions = parse_list(args.network) if args.network is not None else None
    except ConditionError as exc:
        print(f"agentstream: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.proxy is not None and args.proxy not in MODES:
        print(f"agentstream: --proxy {args.proxy!r}: one of {', '.join(MODES)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    server = None
    base_url = args.base_url
    if base_url is not None:
        if not base_url.startswith(("http://", "https://")):
            print(f"agentstream: --base-url {base_url!r} must start with http:// or https://", file=sys.stderr)
            return EXIT_BAD_INPUT
        if not _is_loopback(base_url):
            print(f"agentstream: load is only sent to loopback addresses; {base_url!r} is not one", file=sys.stderr)
            return EXIT_BAD_INPUT
    else:
        from reference_server.embedded import EmbeddedServer

        pace = "its default pace" if args.pace_ms is None else f"pace {args.pace_ms:g} ms"
        _say("server", f"starting the embedded reference server ({pace})")
        from conformance.wire.transport import embedded_server

        server = EmbeddedServer(pace_ms=args.pace_ms, server=embedded_server(transports))
        server.start()
        base_url = server.base_url
        _say("server", f"listening at {base_url}")
    try:
        return _steps(args, transports, base_url, out)
    finally:
        if server is not None:
            server.stop()


def _steps(args: argparse.Namespace, transports: Sequence[str], base_url: str, out: Path) -> int:
    conformance_json = out / "conformance.json"
    conformance_code = None
    if not args.skip_conformance:
        cmd = [sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-p", "no:cacheprovider",
               "--base-url", base_url, "--conformance-report", str(conformance_json)]
        for item in args.param:
            cmd += ["--param", item]
        for item in args.header:
            cmd += ["--header", item]
        if args.profile:
            cmd += ["--profile", args.profile]
        cmd += _shared_options(args)
        _say("conformance", "running the conformance suite on the profile's transports")
        conformance_json.unlink(missing_ok=True)
        conformance_code = _run_step("conformance", cmd, out / "conformance.log", args.step_timeout, out)
        if conformance_json.is_file():
            totals = json.loads(conformance_json.read_text(encoding="utf-8"))["totals"]
            _say("conformance", ", ".join(f"{n} {k}" for k, n in totals.items()))

    from conformance.wire import label

    side = " and ".join(label(t) for t in transports)
    conditions = getattr(args, "conditions", None) or [None]
    all_results, load_code = [], 0
    for cond in conditions:
        # one load run per network condition; a single one keeps the plain results/ layout
        results = out / "results" if len(conditions) == 1 else out / "results" / _safe(cond.name)
        cmd, users = load_command(args, transports, base_url, results, cond.name if cond is not None else None)
        where = f" over {cond.describe()}" if cond is not None else ""
        _say("load", f"{users} users ({side} side by side) for {args.duration:g} s{where}")
        log = out / ("load.log" if len(conditions) == 1 else f"load-{_safe(cond.name)}.log")
        code = _run_step("load", cmd, log, args.step_timeout, out)
        load_code = load_code or code
        if not (results / "summary.json").is_file():
            _say("load", f"no results were written; see {log}")
            return EXIT_FAIL
        all_results.append(results)

    from reports.compare import GateRulesError, ReportInputError, build_report
    from reports.gate import CI_RULES, GateInputError, run_gate

    try:
        rules = CI_RULES if args.rules == "ci" else Path(args.rules)
        # the report holds the gate's verdicts too; run_gate below decides the exit status
        html = build_report(all_results, out / "report",
                            conformance=conformance_json if conformance_json.is_file() else None,
                            gate_rules=rules, baseline=args.baseline)
    except ReportInputError as exc:
        print(f"agentstream: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(exc, GateRulesError) else EXIT_FAIL
    _say("report", f"written to {html} (and report.md, summary.json beside it)")
    try:
        gate = run_gate(html.parent / "summary.json", rules, baseline=args.baseline,
                        markdown_out=out / "gate.md")
    except GateInputError as exc:
        print(f"agentstream: gate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(gate.table(), flush=True)

    verdicts = []
    if conformance_code is not None:
        verdicts.append(("conformance", conformance_code == 0))
    verdicts.append(("load run", load_code == 0))
    verdicts.append(("gate", gate.ok))
    ok = all(v for _, v in verdicts)
    print("", flush=True)
    print(f"report:  {html}")
    print("verdict: " + ("PASS" if ok else "FAIL") + " (" + ", ".join(f"{n} {'ok' if v else 'failed'}" for n, v in verdicts) + ")")
    return EXIT_OK if ok else EXIT_FAIL


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("agentstream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
