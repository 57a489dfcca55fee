"""Both transports send the same events [PROTOCOL 6].

With ``--parity auto`` the suite records each transport twice: a backend that
repeats itself exactly is held to strict parity, another one to structural
parity (and PARITY-STRICT is skipped, saying why).
"""

import pytest

from .parity import strict_divergence, structural_divergence
from .validate import finding


@pytest.mark.parametrize("rule_id", ["PARITY-STRICT", "PARITY-STRUCTURAL"])
def test_parity(rule_id, conformance_target, check):
    target = conformance_target
    target.baseline()
    mode = target.parity_mode()
    if rule_id == "PARITY-STRICT" and mode != "strict":
        deterministic, why = target.deterministic()
        pytest.skip(f"structural parity only ({'--parity structural' if target.parity != 'auto' else why})")
    compare = strict_divergence if rule_id == "PARITY-STRICT" else structural_divergence
    items = []
    for question in target.profile.sample_questions:
        sse, ws = target.recording("sse", question), target.recording("ws", question)
        divergence = compare(sse.objects, ws.objects, target.profile)
        if divergence is not None:
            items.append((finding(rule_id, f"question {question!r}: {divergence.describe()}", divergence.index), sse))
    check(rule_id, items)
