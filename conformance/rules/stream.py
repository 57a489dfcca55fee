"""Schema and order of every event [PROTOCOL 2, 3], on every transport.

One validation pass (``conformance.validate``) finds every schema and order
problem of a stream; each rule here reports its own share of that pass, on every
stream of the sample questions (and, in the load scenarios, on every stream).
"""

from __future__ import annotations

from .registry import Precondition, stream_rule

HAS_EVENTS = Precondition("events", lambda rec, ctx: bool(rec.events),
                          "no {what} events to judge (see ORDER-FIRST-START)")


def _own(rule_id: str, rec, ctx) -> list:
    return [f for f in ctx.findings(rec) if f.rule == rule_id]


@stream_rule("SCHEMA-JSON", "MUST", "2", requires=[HAS_EVENTS])
def schema_json(rec, ctx):
    """every event is one JSON object"""
    return _own("SCHEMA-JSON", rec, ctx)


@stream_rule("SCHEMA-ENVELOPE", "MUST", "2", requires=[HAS_EVENTS])
def schema_envelope(rec, ctx):
    """every event has a string type; seq, when present, is an integer; ts a number"""
    return _own("SCHEMA-ENVELOPE", rec, ctx)


@stream_rule("SCHEMA-TYPE-KNOWN", "MUST", "2", requires=[HAS_EVENTS])
def schema_type_known(rec, ctx):
    """every event type is one the profile defines"""
    return _own("SCHEMA-TYPE-KNOWN", rec, ctx)


@stream_rule("SCHEMA-EVENT", "MUST", "2", requires=[HAS_EVENTS])
def schema_event(rec, ctx):
    """every event matches the JSON Schema of its type"""
    return _own("SCHEMA-EVENT", rec, ctx)


@stream_rule("SCHEMA-TS-SECONDS", "MUST", "2", requires=[HAS_EVENTS])
def schema_ts_seconds(rec, ctx):
    """ts is the server's wall clock in Unix seconds (within an hour of the client's)"""
    return _own("SCHEMA-TS-SECONDS", rec, ctx)


@stream_rule("ORDER-FIRST-START", "MUST", "3")
def order_first(rec, ctx):
    """the first event is the profile's first type (start)"""
    return _own("ORDER-FIRST-START", rec, ctx)


@stream_rule("ORDER-LAST-STREAM-END", "MUST", "3", requires=[HAS_EVENTS])
def order_last(rec, ctx):
    """the last event is the profile's last type (stream_end)"""
    return _own("ORDER-LAST-STREAM-END", rec, ctx)


@stream_rule("ORDER-EXACTLY-ONCE", "MUST", "3", requires=[HAS_EVENTS])
def order_exactly_once(rec, ctx):
    """start and stream_end appear exactly once"""
    return _own("ORDER-EXACTLY-ONCE", rec, ctx)


@stream_rule("ORDER-ONE-TERMINAL", "MUST", "3", requires=[HAS_EVENTS])
def order_one_terminal(rec, ctx):
    """exactly one of complete/error appears"""
    return _own("ORDER-ONE-TERMINAL", rec, ctx)


@stream_rule("ORDER-NOTHING-AFTER-END", "MUST", "3", requires=[HAS_EVENTS])
def order_nothing_after_end(rec, ctx):
    """nothing follows stream_end"""
    return _own("ORDER-NOTHING-AFTER-END", rec, ctx)


@stream_rule("ORDER-TERMINAL-THEN-END", "MUST", "3", requires=[HAS_EVENTS])
def order_terminal_then_end(rec, ctx):
    """complete/error is followed directly by stream_end"""
    return _own("ORDER-TERMINAL-THEN-END", rec, ctx)


@stream_rule("ORDER-CHUNK-RUN", "MUST", "3", requires=[HAS_EVENTS])
def order_chunk_run(rec, ctx):
    """a run of chunks ends with its full event (or an error)"""
    return _own("ORDER-CHUNK-RUN", rec, ctx)


@stream_rule("ORDER-CHUNK-SUM", "MUST", "3", requires=[HAS_EVENTS])
def order_chunk_sum(rec, ctx):
    """the full event's value equals the concatenation of its run of chunks"""
    return _own("ORDER-CHUNK-SUM", rec, ctx)


@stream_rule("ORDER-STREAM-SUM", "MUST", "3", requires=[HAS_EVENTS])
def order_stream_sum(rec, ctx):
    """complete.data.analysis equals the concatenation of all analysis chunks"""
    return _own("ORDER-STREAM-SUM", rec, ctx)


@stream_rule("ORDER-SEQ", "MUST", "2", requires=[HAS_EVENTS])
def order_seq(rec, ctx):
    """seq is on every event or none, and runs 0, 1, 2, ... without gaps"""
    return _own("ORDER-SEQ", rec, ctx)
