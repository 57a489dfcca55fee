"""``python -m conformance.recorders {sse,ws} URL ...``: record one stream from a shell.

This is the one-line reproduction the conformance suite prints for a failure, so
it stays short to type. Each event is printed as one JSON line; an event that
did not parse, and the closing summary, are printed as lines starting with
``#`` (``grep -v '^#'`` leaves pure JSON lines). Exit status 0 when a stream
was accepted and ended normally, 1 when it was refused (an HTTP answer without
a stream) or the recording has an ``error_kind``, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from conformance.recording import Limits, Recording


def _pair(text: str, sep: str, what: str) -> tuple[str, str]:
    name, found, value = text.partition(sep)
    if not found or not name.strip():
        raise argparse.ArgumentTypeError(f"{what} must look like NAME{sep}VALUE, got {text!r}")
    return name.strip(), value.strip() if sep == ":" else value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.recorders", description="Record one SSE or WebSocket stream.")
    p.add_argument("transport", choices=("sse", "ws"))
    p.add_argument("url", help="full URL, e.g. http://127.0.0.1:8000/agent/stream (ws:// also accepted for ws)")
    p.add_argument("--param", "-p", action="append", default=[], type=lambda t: _pair(t, "=", "--param"), metavar="K=V")
    p.add_argument("--header", "-H", action="append", default=[], type=lambda t: _pair(t, ":", "--header"), metavar="'N: V'")
    p.add_argument("--compression", action="store_true", help="ws: offer permessage-deflate")
    p.add_argument("--origin", help="ws: Origin header")
    p.add_argument("--last-event-id", help="sse: send Last-Event-ID")
    p.add_argument("--cancel-after", type=int, metavar="N", help="ws: send {\"type\": \"cancel\"} after N events")
    p.add_argument("--close-after", type=int, metavar="N", help="client closes after N events")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="bound on the whole recording (default 60)")
    return p


def summary(rec: Recording) -> str:
    parts = [f"# {rec.transport}", f"status={rec.status}"]
    if rec.transport == "ws":
        parts.append(f"close={rec.close_code}")
        if rec.close_reason:
            parts.append(f"reason={rec.close_reason!r}")
        parts.append(f"close_frame={'yes' if rec.close_frame_received else 'no'}")
        if rec.ws_extensions:
            parts.append(f"extensions={','.join(rec.ws_extensions)}")
    parts.append(f"events={len(rec.events)}")
    parts.append(f"bytes_in={rec.bytes_received} bytes_out={rec.bytes_sent}")
    if rec.ttfe_s is not None:
        parts.append(f"ttfe_ms={rec.ttfe_s * 1000:.1f}")
    if rec.duration_s is not None:
        parts.append(f"duration_ms={rec.duration_s * 1000:.1f}")
    if rec.client_closed:
        parts.append("client_closed")
    if rec.body is not None:
        parts.append(f"body={rec.body[:200]!r}")
    if not rec.ok:
        parts.append(f"error={rec.error_kind}: {rec.error}")
    elif not streamed(rec):
        parts.append("no stream")
    else:
        parts.append("ok")
    return " ".join(parts)


def streamed(rec: Recording) -> bool:
    """The server accepted the stream (SSE 200 text/event-stream, WS 101)."""
    if rec.transport == "ws":
        return rec.status == 101
    return rec.status == 200 and rec.media_type == "text/event-stream"


def main(argv: list[str] | None = None) -> int:
    from conformance.recorders import record_sse, record_ws

    args = build_parser().parse_args(argv)
    if args.timeout <= 0:
        print("--timeout must be > 0", file=sys.stderr)
        return 2
    t = args.timeout
    base = Limits()
    limits = replace(base, total=t, first_event=min(base.first_event, t), idle=min(base.idle, t))
    params = dict(args.param)
    headers = dict(args.header)
    if args.transport == "sse":
        rec = record_sse(args.url, params=params, headers=headers, limits=limits, close_after=args.close_after, last_event_id=args.last_event_id)
    else:
        rec = record_ws(
            args.url,
            params=params,
            headers=headers,
            origin=args.origin,
            compression=args.compression,
            limits=limits,
            cancel_after=args.cancel_after,
            close_after=args.close_after,
        )
    for ev in rec.events:
        if ev.parse_error is None:
            print(json.dumps(ev.data, ensure_ascii=False))
        else:
            shown = ev.text if ev.text is not None else ev.raw
            print(f"# event {ev.index} ({ev.frame or 'sse'}): {ev.parse_error}: {shown!r}"[:2000])
    print(summary(rec))
    sys.stdout.flush()
    return 0 if rec.ok and streamed(rec) else 1
