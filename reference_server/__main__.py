"""Command line entry: ``python -m reference_server [--host H] [--port P] [--pace-ms N]``.

Kept apart from ``serve`` (which configures uvicorn so that a 24 KB request line
works on both transports) so that the CLI is only argument parsing.
"""

from __future__ import annotations

import argparse
import math
import sys

from .serve import SERVERS, run, run_hypercorn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_server", description="Run the agent-stream/1 reference server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--pace-ms", type=float, default=30.0, help="delay in ms before each chunk and reasoning event (default 30; 0 for none)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"])
    parser.add_argument("--server", default=SERVERS[0], choices=SERVERS,
                        help="HTTP server: uvicorn (HTTP/1.1 + WebSocket, default) or hypercorn "
                             "(HTTP/1.1, HTTP/2 with prior knowledge and WebSocket on one port)")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.pace_ms) and args.pace_ms >= 0):  # inf: streams that never end; nan: 0
        parser.error("--pace-ms must be a finite number >= 0")
    serve = run_hypercorn if args.server == "hypercorn" else run
    serve(host=args.host, port=args.port, pace_ms=args.pace_ms, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
