"""Schema and order of every event [PROTOCOL 2, 3], on both transports.

Each rule is checked on the streams of every sample question of the profile,
recorded once per session (see Target.baseline).
"""

import pytest

from .suite import TRANSPORTS, need, rules_with_prefix, with_events


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule_id", rules_with_prefix("SCHEMA-", "ORDER-"))
def test_stream_rule(rule_id, transport, conformance_target, check):
    recordings = conformance_target.baseline()[transport]
    if rule_id != "ORDER-FIRST-START":
        need(with_events(recordings), f"{transport} events", "ORDER-FIRST-START")
    items = [(f, rec) for rec in recordings for f in conformance_target.findings(rec)]
    check(rule_id, items, transport)
