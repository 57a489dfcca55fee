"""The command-line adapter of the wire stage: ``python -m conformance.recorders``
records one stream with any registered transport, or replays a request written
by the suite's JSON report (see :mod:`.cli`). The transports themselves are in
:mod:`conformance.wire`."""
