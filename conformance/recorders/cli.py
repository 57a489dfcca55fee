"""``python -m conformance.recorders {TRANSPORT URL | replay FILE.json} ...``: record one
stream from a shell.

This is the one-line reproduction the conformance suite prints for a failure, so
it stays short to type; ``replay`` sends again a request the suite's JSON
report (``--conformance-report``) wrote, or a file holding one request. Each
event is printed as one JSON line; an event that did not parse, and the closing
summary, are printed as lines starting with ``#`` (``grep -v '^#'`` leaves pure
JSON lines). Exit status 0 when a stream was accepted and ended normally, 1
when it was refused (an HTTP answer without a stream) or the recording has an
``error_kind``, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from conformance.recording import Limits, Recording
from conformance.request import ClientMessage, Request
from conformance.wire import TRANSPORTS, get


def _pair(text: str, sep: str, what: str) -> tuple[str, str]:
    name, found, value = text.partition(sep)
    if not found or not name.strip():
        raise argparse.ArgumentTypeError(f"{what} must look like NAME{sep}VALUE, got {text!r}")
    return name.strip(), value.strip() if sep == ":" else value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.recorders",
                                description="Record one stream, or replay a request from a conformance report.")
    p.add_argument("transport", choices=[*TRANSPORTS, "replay"],
                   help="the transport to record with, or 'replay' to send a request from a JSON file")
    p.add_argument("url", help="full URL, e.g. http://127.0.0.1:8000/agent/stream (ws:// also accepted for ws); "
                               "for replay: the JSON file")
    p.add_argument("--param", "-p", action="append", default=[], type=lambda t: _pair(t, "=", "--param"), metavar="K=V")
    p.add_argument("--header", "-H", action="append", default=[], type=lambda t: _pair(t, ":", "--header"), metavar="'N: V'")
    p.add_argument("--compression", action="store_true", help="ws: offer permessage-deflate")
    p.add_argument("--origin", help="send this Origin header")
    p.add_argument("--last-event-id", help="sse: send Last-Event-ID")
    p.add_argument("--send", action=_InOrder, dest="sequence", default=[], metavar="TEXT",
                   help="ws: a client message to send (repeatable; each followed by --after N or --on-type T)")
    p.add_argument("--after", action=_InOrder, dest="sequence", type=int, metavar="N",
                   help="ws: send the preceding --send message after N events (0: right after the handshake)")
    p.add_argument("--on-type", action=_InOrder, dest="sequence", metavar="TYPE",
                   help="ws: send the preceding --send message when an event of this type arrives")
    p.add_argument("--cancel-after", type=int, metavar="N", help="ws: send {\"type\": \"cancel\"} after N events")
    p.add_argument("--close-after", type=int, metavar="N", help="client closes after N events")
    p.add_argument("--end-type", action="append", default=[], metavar="TYPE",
                   help="after an event of this type the server must end the stream soon (the profile's last type)")
    p.add_argument("--client-ends", action="store_true",
                   help="ws: the client closes after an --end-type event (the server keeps the socket open)")
    p.add_argument("--type-field", default="type", metavar="NAME", help="the JSON field that names the type (default type)")
    p.add_argument("--sentinel", metavar="DATA", help="sse: the data of the message that ends the stream, e.g. [DONE]")
    p.add_argument("--method", "-X", default="GET", choices=["GET", "POST"], help="sse: the HTTP method")
    p.add_argument("--data", metavar="TEXT", help="sse: the request body (e.g. JSON; set Content-Type with --header)")
    p.add_argument("--rule", help="replay: the request of this rule ID (default: the first failing or warning rule)")
    p.add_argument("--index", type=int, default=0, help="replay: which of that rule's requests (default 0)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="bound on the whole recording (default 60)")
    return p


def summary(rec: Recording) -> str:
    transport = get(rec.transport)
    parts = [f"# {rec.transport}", f"status={rec.status}", *transport.summary(rec)]
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
    elif not transport.accepted(rec):
        parts.append("no stream")
    elif (problem := transport.incomplete(rec)) is not None:
        parts.append(f"ended abnormally: {problem[1]}")
    else:
        parts.append("ok")
    return " ".join(parts)


class UsageProblem(Exception):
    """Bad input from the command line or the replayed file: exit 2 with this message."""


class _InOrder(argparse.Action):
    """Keeps --send, --after and --on-type in one list, in the order given."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        seq = list(getattr(namespace, self.dest, None) or [])
        seq.append((self.option_strings[0].lstrip("-").replace("-", "_"), values))
        setattr(namespace, self.dest, seq)


def _messages(args: argparse.Namespace) -> tuple[ClientMessage, ...]:
    out: list[ClientMessage] = []
    text: str | None = None
    for kind, value in args.sequence:
        if kind == "send":
            if text is not None:
                out.append(ClientMessage(text, after_events=0))
            text = value
        elif text is None:
            raise UsageProblem(f"--{kind.replace('_', '-')} {value} must follow a --send message")
        else:
            out.append(ClientMessage(text, value if kind == "after" else None, value if kind == "on_type" else None))
            text = None
    if text is not None:
        out.append(ClientMessage(text, after_events=0))
    if args.cancel_after is not None:
        out.append(ClientMessage.json({"type": "cancel"}, after_events=args.cancel_after))
    return tuple(out)


def request_from_args(args: argparse.Namespace) -> Request:
    headers = dict(args.header)
    if args.origin:
        headers["Origin"] = args.origin
    return Request.make(args.transport, args.url, params=dict(args.param), headers=headers,
                        compression=args.compression, messages=_messages(args), close_after=args.close_after,
                        last_event_id=args.last_event_id, end_types=tuple(args.end_type),
                        method=args.method, body=args.data.encode("utf-8") if args.data is not None else None,
                        type_field=args.type_field, end_sentinel=args.sentinel, client_ends=args.client_ends)


def request_from_file(path: str, rule: str | None, index: int) -> Request:
    """The request to replay from a conformance report or a file holding one request."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageProblem(f"cannot read {path}: {exc}") from None
    if isinstance(doc, dict) and "rules" in doc:
        entries = [e for e in doc["rules"] if isinstance(e, dict) and e.get("requests")]
        if rule is not None:
            entries = [e for e in entries if e.get("id") == rule]
        if not entries:
            which = f"rule {rule}" if rule else "any rule"
            raise UsageProblem(f"{path}: no request recorded for {which} (the report keeps the requests of failing "
                               "and warning rules)")
        requests = [r for e in entries for r in e["requests"]]
        if not 0 <= index < len(requests):
            raise UsageProblem(f"--index {index}: there are {len(requests)} requests")
        doc = requests[index]
    try:
        request = Request.from_json(doc)
    except ValueError as exc:
        raise UsageProblem(f"{path}: {exc}") from None
    if request.transport not in TRANSPORTS:
        raise UsageProblem(f"{path}: no transport named {request.transport!r} (known: {', '.join(TRANSPORTS)})")
    return request


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")  # an event may hold a lone surrogate
    args = build_parser().parse_args(argv)
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        print("--timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    t = args.timeout
    base = Limits()
    limits = replace(base, total=t, first_event=min(base.first_event, t), idle=min(base.idle, t),
                     names=(("total", "--timeout"),))
    try:
        request = request_from_file(args.url, args.rule, args.index) if args.transport == "replay" \
            else request_from_args(args)
    except UsageProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.transport == "replay":
        print(f"# replaying: {get(request.transport).reproduce(request)}")
    rec = get(request.transport).record(request, limits)
    for ev in rec.events:
        if ev.parse_error is None:
            print(json.dumps(ev.data, ensure_ascii=False))
        else:
            shown = ev.text if ev.text is not None else ev.raw
            kind = getattr(ev.detail, "kind", rec.transport)
            print(f"# event {ev.index} ({kind}): {ev.parse_error}: {shown!r}"[:2000])
    print(summary(rec))
    sys.stdout.flush()
    return 0 if get(rec.transport).incomplete(rec) is None else 1
