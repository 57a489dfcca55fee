"""``python -m load [--sweep] [--pace-ms N] [locust options...]``: run the scenarios, with a server if need be.

Without ``--host`` it starts the embedded reference server
(``reference_server.embedded.EmbeddedServer``, a subprocess on a free loopback
port), runs Locust against it with ``-f load/locustfile.py`` (or
``load/sweep.py`` with ``--sweep``) and stops the server afterwards. With
``--host`` it just runs Locust. Every other option goes to Locust unchanged,
e.g. ``python -m load --headless -u 4 -r 4 -t 30s --results-dir results/run1``.

Options of this helper (taken out before Locust sees the rest):

  --sweep        use the step shape (load/sweep.py) instead of constant users
  --open         use the open model (load/open.py): --arrival-rate streams per second
  --pace-ms N    the embedded server's pace (delay before each chunk event, ms)
  --network NAME a network condition between the users and the backend (a shaping
                 relay on loopback; names and custom specs in docs/networks.md)
  --proxy MODE   nginx in front of the backend (nginx-buffered, nginx-unbuffered)
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

from conformance.wire.transport import embedded_server
from network.path import option_value, run_through, split_network_args

HERE = Path(__file__).resolve().parent


def split_args(argv: list[str]) -> tuple[bool, float | None, list[str]]:
    """(shape, pace_ms, the rest for Locust): shape is True for --sweep, "open" for
    --open, False for constant users. Raises ValueError on a bad --pace-ms."""
    sweep = False
    pace: float | None = None
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--sweep":
            sweep = True
        elif arg == "--open":
            sweep = "open"
        elif arg == "--pace-ms" or arg.startswith("--pace-ms="):
            value = arg.split("=", 1)[1] if "=" in arg else next(it, None)
            if value is None:
                raise ValueError("--pace-ms needs a value in milliseconds")
            try:
                pace = float(value)
            except ValueError:
                raise ValueError(f"--pace-ms {value!r} is not a number") from None
            if not (math.isfinite(pace) and pace >= 0):  # inf: the server's streams would never end
                raise ValueError("--pace-ms must be a finite number >= 0")
        else:
            rest.append(arg)
    return sweep, pace, rest


def has_option(args: list[str], *names: str) -> bool:
    return any(a in names or any(a.startswith(n + "=") for n in names if n.startswith("--")) for a in args)


def locust_command(args: list[str], *, sweep: bool, host: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "locust"]
    if not has_option(args, "-f", "--locustfile"):
        name = {True: "sweep.py", "open": "open.py"}.get(sweep, "locustfile.py")  # type: ignore[call-overload]
        cmd += ["-f", str(HERE / name)]
    if host is not None:
        cmd += ["--host", host]
    return cmd + args


def _run(cmd: list[str]) -> int:
    env = dict(os.environ)
    root = str(HERE.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Locust got the same SIGINT (same process group): let it write its results.
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout=30)


def own_help() -> str:
    """The load scenarios' own options, as --help text. ``locust --help`` prints its
    help before it imports a locustfile, so it never lists a locustfile's options:
    this is where they are listed (they are also fields of Locust's web UI)."""
    import argparse

    from load.config import add_arguments

    parser = argparse.ArgumentParser(prog="python -m load", add_help=False, usage=argparse.SUPPRESS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Options of the agentstream load scenarios (given on the command "
                                                 "line, or in the fields of Locust's web UI); Locust's own follow.")
    add_arguments(parser)
    return parser.format_help()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        sweep, pace, rest = split_args(argv)
        network, proxy, rest = split_network_args(rest)
    except ValueError as e:
        print(f"python -m load: {e}", file=sys.stderr)
        return 2
    if has_option(rest, "-h", "--help"):
        print(__doc__)
        print(own_help())
        sys.stdout.flush()
        return _run(locust_command(rest, sweep=sweep, host=None))
    if has_option(rest, "-H", "--host"):
        if network is None and proxy is None:
            return _run(locust_command(rest, sweep=sweep, host=None))
        host, rest = take_host(rest)
        return run_through(host, network, proxy, rest, lambda url: _run(locust_command(rest, sweep=sweep, host=url)))
    try:
        from reference_server.embedded import EmbeddedServer
    except ImportError as e:  # pragma: no cover - the package ships with the project
        print(f"python -m load: the embedded reference server is not available ({e}); pass --host", file=sys.stderr)
        return 2
    with EmbeddedServer(pace_ms=pace, server=embedded_server(_profile_transports(rest))) as server:
        print(f"[agentstream] embedded reference server at {server.base_url}", file=sys.stderr)
        if network is None and proxy is None:
            return _run(locust_command(rest, sweep=sweep, host=server.base_url))
        return run_through(server.base_url, network, proxy, rest,
                           lambda url: _run(locust_command(rest, sweep=sweep, host=url)))


def take_host(args: list[str]) -> tuple[str, list[str]]:
    """``-H/--host URL`` out of Locust's arguments (the path goes in front of it)."""
    from network.path import _take

    host, rest = _take(args, "--host")
    short, rest = _take(rest, "-H")
    return (host or short or ""), rest


def _profile_transports(args: list[str]) -> list[str]:
    """The transports of the profile the run names (``--profile-name``), so that the
    embedded server runs on the HTTP server they need; [] for a bad profile (the
    Locust run then says what is wrong with it)."""
    from conformance.profile import DEFAULT_PROFILE, ProfileError, load_profile

    try:
        return list(load_profile(option_value(args, "--profile-name") or DEFAULT_PROFILE).transports)
    except ProfileError:
        return []


if __name__ == "__main__":
    sys.exit(main())
