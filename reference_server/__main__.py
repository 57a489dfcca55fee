"""Command line entry: ``python -m reference_server [--host H] [--port P] [--pace-ms N] ...``.

Only argument parsing: every option maps to one field of ``ServerConfig`` (where
each default and its reason live), and ``serve`` runs it.
"""

from __future__ import annotations

import argparse
import math
import sys

from .config import ServerConfig
from .origins import DEV_ORIGINS, OriginError, OriginPolicy
from .serve import SERVERS, run, run_hypercorn


def main(argv: list[str] | None = None) -> int:
    d = ServerConfig()
    parser = argparse.ArgumentParser(prog="python -m reference_server", description="Run the agent-stream/1 reference server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--pace-ms", type=float, default=d.pace_ms,
                        help=f"delay in ms before each chunk and reasoning event (default {d.pace_ms:g}; 0 for none)")
    parser.add_argument("--allow-origin", action="append", default=None, metavar="ORIGIN",
                        help="a web origin whose pages may stream (CORS on SSE, Origin check on the WebSocket): "
                             "https://app.example.com, http://localhost:* (any port) or * (anyone); repeatable or "
                             f"comma-separated (default: this server's own origin and {', '.join(DEV_ORIGINS)})")
    parser.add_argument("--no-dev-origins", action="store_true",
                        help="with --allow-origin: do not also allow the localhost development origins")
    parser.add_argument("--max-streams", type=int, default=d.max_streams,
                        help=f"concurrent streams beyond which new ones get 503 (default {d.max_streams})")
    parser.add_argument("--header-timeout", type=float, default=d.header_timeout_s, metavar="SECONDS",
                        help=f"close connections that send no complete request headers within this (default "
                             f"{d.header_timeout_s:g})")
    parser.add_argument("--drain", type=float, default=d.drain_s, metavar="SECONDS",
                        help=f"on SIGTERM, how long running streams get to end (default {d.drain_s:g})")
    parser.add_argument("--run-cache", type=int, default=d.run_cache, metavar="N",
                        help=f"finished runs kept to replay a question asked again (default {d.run_cache}; 0: off)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"])
    parser.add_argument("--server", default=SERVERS[0], choices=SERVERS,
                        help="HTTP server: uvicorn (HTTP/1.1 + WebSocket, default) or hypercorn "
                             "(HTTP/1.1, HTTP/2 with prior knowledge and WebSocket on one port)")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.pace_ms) and args.pace_ms >= 0):  # inf: streams that never end; nan: 0
        parser.error("--pace-ms must be a finite number >= 0")
    origins = d.origins
    if args.allow_origin:
        try:
            origins = OriginPolicy.parse(args.allow_origin + ([] if args.no_dev_origins else list(DEV_ORIGINS)))
        except OriginError as exc:
            parser.error(f"--allow-origin: {exc}")
    try:
        config = ServerConfig(pace_ms=args.pace_ms, origins=origins, max_streams=args.max_streams,
                              header_timeout_s=args.header_timeout, drain_s=args.drain, run_cache=args.run_cache)
    except ValueError as exc:
        parser.error(str(exc))
    serve = run_hypercorn if args.server == "hypercorn" else run
    serve(host=args.host, port=args.port, config=config, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
