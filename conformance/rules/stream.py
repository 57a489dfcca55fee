"""Schema and order of every event [PROTOCOL 2, 3], on every transport.

One validation pass (``conformance.validate``) finds every schema and order
problem of a stream; each rule here reports its own share of that pass, on every
stream of the sample questions (and, in the load scenarios, on every stream).
"""

from __future__ import annotations

from .registry import Precondition, stream_rule

HAS_EVENTS = Precondition("events", lambda rec, ctx: bool(rec.events),
                          "no {what} events to judge (see ORDER-FIRST-START)")


def _types(rec, ctx) -> frozenset:
    """The types of a stream's events (``RecordedEvent.type``), once per stream for
    every precondition that asks (``Context.once``)."""
    # the property's answer read in place for the usual event (an object whose type
    # field is a string); the property itself for any other
    return frozenset([d[e.type_field] if type(d := e.data) is dict and type(d.get(e.type_field)) is str else e.type
                      for e in rec.events])


def _carries(what: str, types_of) -> Precondition:
    """A precondition: the stream has an event of one of ``types_of(profile)``, so a
    rule about those events has something to judge (never a pass on nothing)."""
    return Precondition(what, lambda rec, ctx: not ctx.once(rec, "types", _types).isdisjoint(types_of(ctx.profile)),
                        f"no {{what}} stream carries {what}")


OPENS_RUN = _carries("an event that opens a run", lambda p: p.runs.open if p.runs else ())
HAS_SPAN = _carries("a span event", lambda p: [t for s in p.spans for t in (s.start, s.chunk, *s.content, *s.end) if t])
HAS_ECHO_REQUEST = _carries("an event that echoes the request", lambda p: [t for e in p.echoes if e.request for t in e.event])
HAS_ECHO_EVENT = _carries("an event that echoes another", lambda p: [t for e in p.echoes if e.same_as for t in e.event])
HAS_REFERENCE = _carries("an event with a reference", lambda p: [t for r in p.references for t in r.event])
HAS_DELTA = _carries("a state delta", lambda p: p.state.delta.event if p.state else ())
HAS_CHUNK_SUM = _carries("a full event of chunks", lambda p: [a.full for a in p.aggregates if a.scope != "stream"])
HAS_STREAM_SUM = _carries("a full event of the stream's chunks", lambda p: [a.full for a in p.aggregates if a.scope == "stream"])


def _aggregates(*scopes: str):
    """skip_unless: the profile defines no aggregate of these scopes."""
    def reason(ctx):
        if any(a.scope in scopes for a in ctx.profile.aggregates):
            return None
        return f"the profile defines no {'/'.join(scopes)} aggregates"
    return reason


def _own(rule_id: str, rec, ctx) -> list:
    return [f for f in ctx.findings(rec) if f.rule == rule_id]


def _share(rule_id: str, level, section: str, **kwargs):
    """``stream_rule`` for a rule whose function is ``_own``: its share of the pass."""
    return stream_rule(rule_id, level, section, validation=True, **kwargs)


@_share("SCHEMA-JSON", "MUST", "2", requires=[HAS_EVENTS])
def schema_json(rec, ctx):
    """every event is one JSON object"""
    return _own("SCHEMA-JSON", rec, ctx)


@_share("SCHEMA-ENVELOPE", "MUST", "2", requires=[HAS_EVENTS])
def schema_envelope(rec, ctx):
    """every event has a string {type}; {seq}, when present, is an integer; {ts} a number"""
    return _own("SCHEMA-ENVELOPE", rec, ctx)


@_share("SCHEMA-TYPE-KNOWN", "MUST", "2", requires=[HAS_EVENTS])
def schema_type_known(rec, ctx):
    """every event type is one the profile defines"""
    return _own("SCHEMA-TYPE-KNOWN", rec, ctx)


@_share("SCHEMA-EVENT", "MUST", "2", requires=[HAS_EVENTS])
def schema_event(rec, ctx):
    """every event matches the JSON Schema of its type"""
    return _own("SCHEMA-EVENT", rec, ctx)


@_share("SCHEMA-TS-SECONDS", "MUST", "2", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: None if ctx.profile.timestamp_field else "the profile names no timestamp field")
def schema_ts_seconds(rec, ctx):
    """the timestamp is the server's wall clock in the profile's unit (within an hour of the client's)"""
    return _own("SCHEMA-TS-SECONDS", rec, ctx)


@_share("ORDER-FIRST-START", "MUST", "3")
def order_first(rec, ctx):
    """the first event is the profile's first type ({first})"""
    return _own("ORDER-FIRST-START", rec, ctx)


@_share("ORDER-LAST-STREAM-END", "MUST", "3", requires=[HAS_EVENTS])
def order_last(rec, ctx):
    """the last event is the profile's last type ({last})"""
    return _own("ORDER-LAST-STREAM-END", rec, ctx)


@_share("ORDER-EXACTLY-ONCE", "MUST", "3", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: None if ctx.profile.order.exactly_once else "the profile lists no types that come exactly once")
def order_exactly_once(rec, ctx):
    """{exactly_once} appear exactly once"""
    return _own("ORDER-EXACTLY-ONCE", rec, ctx)


@_share("ORDER-ONE-TERMINAL", "MUST", "3", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: None if ctx.profile.order.exactly_one_of else "the profile lists no exactly_one_of groups")
def order_one_terminal(rec, ctx):
    """exactly one of {one_of} appears"""
    return _own("ORDER-ONE-TERMINAL", rec, ctx)


@_share("ORDER-NOTHING-AFTER-END", "MUST", "3", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: ctx.profile.end_marked)
def order_nothing_after_end(rec, ctx):
    """nothing follows {last}"""
    return _own("ORDER-NOTHING-AFTER-END", rec, ctx)


@_share("ORDER-TERMINAL-THEN-END", "MUST", "3", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: None if ctx.profile.order.terminal else "the profile lists no terminal types")
def order_terminal_then_end(rec, ctx):
    """{terminal} is followed directly by {last}"""
    return _own("ORDER-TERMINAL-THEN-END", rec, ctx)


@_share("ORDER-CHUNK-RUN", "MUST", "3", requires=[HAS_EVENTS],
             skip_unless=_aggregates("run"))
def order_chunk_run(rec, ctx):
    """a run of chunks ends with its full event (or an error)"""
    return _own("ORDER-CHUNK-RUN", rec, ctx)


@_share("ORDER-CHUNK-SUM", "MUST", "3", requires=[HAS_EVENTS, HAS_CHUNK_SUM],
             skip_unless=_aggregates("run", "key"))
def order_chunk_sum(rec, ctx):
    """the full event's value equals the concatenation of its chunks (of its run, or of its id)"""
    return _own("ORDER-CHUNK-SUM", rec, ctx)


@_share("ORDER-STREAM-SUM", "MUST", "3", requires=[HAS_EVENTS, HAS_STREAM_SUM],
             skip_unless=_aggregates("stream"))
def order_stream_sum(rec, ctx):
    """{stream_sum}"""
    return _own("ORDER-STREAM-SUM", rec, ctx)


@_share("ORDER-SEQ", "MUST", "2", requires=[HAS_EVENTS],
             skip_unless=lambda ctx: None if ctx.profile.seq_field else "the profile names no sequence field")
def order_seq(rec, ctx):
    """{seq} is on every event or none, and runs 0, 1, 2, ... without gaps"""
    return _own("ORDER-SEQ", rec, ctx)


@_share("LIFECYCLE-RUN", "MUST", "3", requires=[HAS_EVENTS, OPENS_RUN],
             skip_unless=lambda ctx: None if ctx.profile.runs else "the profile defines no runs")
def lifecycle_run(rec, ctx):
    """runs open and close in turn, never nest, and only the profile's types come between them"""
    return _own("LIFECYCLE-RUN", rec, ctx)


@_share("LIFECYCLE-SPAN", "MUST", "3", requires=[HAS_EVENTS, HAS_SPAN],
             skip_unless=lambda ctx: None if ctx.profile.spans else "the profile defines no spans")
def lifecycle_span(rec, ctx):
    """per id, a span starts, continues and ends in order, and is closed before its run closes"""
    return _own("LIFECYCLE-SPAN", rec, ctx)


@_share("ECHO-REQUEST", "MUST", "3", requires=[HAS_EVENTS, HAS_ECHO_REQUEST],
             skip_unless=lambda ctx: None if any(e.request for e in ctx.profile.echoes)
             else "the profile names no value that echoes the request")
def echo_request(rec, ctx):
    """values the protocol echoes equal the request's (thread and run ids)"""
    return _own("ECHO-REQUEST", rec, ctx)


@_share("ECHO-EVENT", "MUST", "3", requires=[HAS_EVENTS, HAS_ECHO_EVENT],
             skip_unless=lambda ctx: None if any(e.same_as for e in ctx.profile.echoes)
             else "the profile names no value that echoes another event's")
def echo_event(rec, ctx):
    """values that must match an earlier event's do (a run's end names the run it ends)"""
    return _own("ECHO-EVENT", rec, ctx)


@_share("REF-KNOWN-ID", "MUST", "3", requires=[HAS_EVENTS, HAS_REFERENCE],
             skip_unless=lambda ctx: None if ctx.profile.references else "the profile defines no references")
def ref_known_id(rec, ctx):
    """a reference names an id an earlier event introduced (a tool result names its tool call)"""
    return _own("REF-KNOWN-ID", rec, ctx)


@_share("STATE-PATCH", "MUST", "3", requires=[HAS_EVENTS, HAS_DELTA],
             skip_unless=lambda ctx: None if ctx.profile.state else "the profile defines no state")
def state_patch(rec, ctx):
    """each state delta (RFC 6902 JSON Patch) applies to the state so far"""
    return _own("STATE-PATCH", rec, ctx)
