"""Reports on load runs: the transports side by side (SSE against WebSocket by default), and a latency gate.

* ``python -m reports compare RESULTS_DIR... -o OUT_DIR`` — :func:`reports.compare.build_report`
* ``python -m reports gate --current summary.json --rules FILE`` — :func:`reports.gate.run_gate`

Kept import-light on purpose (no pandas or matplotlib here), so that the
``agentstream`` command starts fast; import the submodules you need.
"""
