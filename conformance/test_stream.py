"""Schema and order of every event [PROTOCOL 2, 3], on both transports.

Each rule is checked on the streams of every sample question of the profile,
recorded once per session (see Target.baseline).
"""

import pytest

from .suite import TRANSPORTS, rules_with_prefix
from .validate import validate_recording


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule_id", rules_with_prefix("SCHEMA-", "ORDER-"))
def test_stream_rule(rule_id, transport, conformance_target, check):
    recordings = conformance_target.baseline()[transport]
    items = [(f, rec) for rec in recordings for f in validate_recording(rec, conformance_target.profile)]
    check(rule_id, items, transport)
