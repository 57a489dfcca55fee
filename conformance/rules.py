"""Every rule the suite checks, by stable ID.

The ID appears in the test's name (so ``-k ORDER-SEQ`` selects a rule), in every
failure message and in the JSON report. ``level`` follows RFC 2119 as PROTOCOL.md
uses it: a broken MUST fails, a broken SHOULD warns. ``requirement`` is the one
line a failure message quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["MUST", "SHOULD"]


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    section: str
    requirement: str


def _rules(*rows: tuple[str, Level, str, str]) -> dict[str, Rule]:
    return {r[0]: Rule(*r) for r in rows}


RULES: dict[str, Rule] = _rules(
    # -- schema [2] --
    ("SCHEMA-JSON", "MUST", "2", "every event is one JSON object"),
    ("SCHEMA-ENVELOPE", "MUST", "2", "every event has a string type; seq, when present, is an integer; ts a number"),
    ("SCHEMA-TYPE-KNOWN", "MUST", "2", "every event type is one the profile defines"),
    ("SCHEMA-EVENT", "MUST", "2", "every event matches the JSON Schema of its type"),
    ("SCHEMA-TS-SECONDS", "MUST", "2", "ts is the server's wall clock in Unix seconds (within an hour of the client's)"),
    # -- order [3] --
    ("ORDER-FIRST-START", "MUST", "3", "the first event is the profile's first type (start)"),
    ("ORDER-LAST-STREAM-END", "MUST", "3", "the last event is the profile's last type (stream_end)"),
    ("ORDER-EXACTLY-ONCE", "MUST", "3", "start and stream_end appear exactly once"),
    ("ORDER-ONE-TERMINAL", "MUST", "3", "exactly one of complete/error appears"),
    ("ORDER-NOTHING-AFTER-END", "MUST", "3", "nothing follows stream_end"),
    ("ORDER-TERMINAL-THEN-END", "MUST", "3", "complete/error is followed directly by stream_end"),
    ("ORDER-CHUNK-RUN", "MUST", "3", "a run of chunks ends with its full event (or an error)"),
    ("ORDER-CHUNK-SUM", "MUST", "3", "the full event's value equals the concatenation of its run of chunks"),
    ("ORDER-STREAM-SUM", "MUST", "3", "complete.data.analysis equals the concatenation of all analysis chunks"),
    ("ORDER-SEQ", "MUST", "2", "seq is on every event or none, and runs 0, 1, 2, ... without gaps"),
    # -- parity [6] --
    ("PARITY-STRICT", "MUST", "6", "a deterministic backend sends the same events on SSE and WebSocket, ts aside"),
    ("PARITY-STRUCTURAL", "MUST", "6", "both transports send the same sequence of types once chunk runs are merged"),
    # -- SSE binding [4] --
    ("SSE-STATUS", "MUST", "4", "an accepted SSE request is answered with status 200"),
    ("SSE-CONTENT-TYPE", "MUST", "4", "Content-Type is text/event-stream"),
    ("SSE-CACHE-CONTROL", "MUST", "4", "Cache-Control contains no-cache or no-store"),
    ("SSE-X-ACCEL-BUFFERING", "SHOULD", "4", "X-Accel-Buffering: no is sent so proxies do not buffer"),
    ("SSE-JSON-MESSAGE", "MUST", "4", "each SSE message's data is exactly one JSON object"),
    ("SSE-ONE-DATA-LINE", "SHOULD", "4", "each event is on one data: line"),
    ("SSE-NO-EVENT-NAME", "MUST", "4", "messages carry no event: field other than message"),
    ("SSE-ID-SEQ", "SHOULD", "4", "each message carries id: <seq> when events have seq"),
    ("SSE-NOT-BUFFERED", "MUST", "4", "events are delivered as produced, not held back to the end"),
    ("SSE-ENDS-RESPONSE", "MUST", "4", "after stream_end the server ends the response"),
    ("SSE-RECONNECT-204", "SHOULD", "4", "a request with Last-Event-ID after stream_end is answered 204"),
    # -- WebSocket binding [5] --
    ("WS-HANDSHAKE", "MUST", "5", "an accepted WebSocket request completes the handshake"),
    ("WS-TEXT-FRAMES", "MUST", "5", "every event is a text frame; no binary frames"),
    ("WS-JSON-FRAME", "MUST", "5", "each text frame holds exactly one JSON object"),
    ("WS-CLOSE-1000", "MUST", "5", "after stream_end the server closes with code 1000"),
    ("WS-CLOSE-FRAME", "MUST", "5", "the server closes with a real close frame, never a dropped connection"),
    ("WS-CANCEL", "MUST", "5", "after a cancel: error with code cancelled, stream_end, close 1000"),
    ("WS-DEFLATE", "MUST", "5", "with permessage-deflate negotiated the stream is otherwise the same"),
    ("WS-IGNORE-CLIENT-MESSAGES", "MUST", "5", "client messages other than cancel are ignored"),
    # -- bad input [1, 4, 5] --
    ("INPUT-REJECT", "MUST", "1", "invalid parameters are rejected: SSE 4xx, WS 4xx at the handshake or close 1008"),
    ("INPUT-ACCEPT", "MUST", "1", "every valid request is accepted, including a 2000-character question"),
    ("INPUT-SSE-JSON-ERROR", "MUST", "4", "an SSE rejection has a JSON body (Content-Type application/json)"),
    ("INPUT-WS-REJECT-EVENT", "MUST", "5", "a WS rejection sends at most one lone error event, then close 1008"),
    ("INPUT-NEVER-5XX", "MUST", "1", "no input gives a 5xx, a close 1011/1006, or a hang"),
    # -- disconnect [7] --
    ("DISCONNECT-STOPS", "MUST", "7", "when the client leaves, agent_active_streams is back within one second"),
    # -- concurrency and properties --
    ("CONCURRENCY-ISOLATED", "MUST", "3", "concurrent streams are each valid and never mix into one another"),
    ("PROPERTY-QUESTIONS", "MUST", "6", "for any drawn question both transports give valid streams in parity"),
)


def rule(rule_id: str) -> Rule:
    """The rule with that ID; KeyError names it when a check uses an unknown ID."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule ID {rule_id!r}") from None


def rule_transport(rule_id: str) -> str:
    """The transport a rule is about, from its ID: 'sse', 'ws' or 'both'."""
    if rule_id.startswith(("SSE-", "INPUT-SSE-")):
        return "sse"
    if rule_id.startswith(("WS-", "INPUT-WS-")):
        return "ws"
    return "both"
