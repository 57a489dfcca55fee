"""The reference agent server: a deterministic backend that speaks agent-stream/1.

It exists so that the conformance suite, the load scenarios and the reports have
a known-good target to run against (and to compare other backends with): every
event type of the protocol, over SSE and WebSocket, with real pandas work behind
it. Start it with ``python -m reference_server`` or, from Python,
``reference_server.embedded.EmbeddedServer``; build the app with
``reference_server.app.create_app``.
"""
