"""Several streams at once on each transport: each valid, none mixing into
another (each equals its own question's stream recorded alone)."""

import pytest

from .suite import TRANSPORTS, parity_divergence, stream_problems
from .validate import finding

COPIES = 2


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule_id", ["CONCURRENCY-ISOLATED"])
def test_concurrent_streams(rule_id, transport, conformance_target, check):
    target = conformance_target
    questions = target.profile.sample_questions
    alone = {q: target.recording(transport, q) for q in questions}  # recorded alone, before
    jobs = [(("concurrent", transport, q, i), lambda q=q: target.record(transport, target.request_params(q)))
            for i in range(COPIES) for q in questions]
    recordings = target.record_many(jobs, workers=len(jobs))
    items = []
    for (key, _), rec in zip(jobs, recordings):
        question = key[2]
        problems = stream_problems(rule_id, rec, target.profile, f"concurrent stream of {question!r}")
        items += problems
        if not problems:
            mode, divergence = parity_divergence(target, alone[question], rec)
            if divergence is not None:
                items.append((finding(rule_id, f"concurrent stream of {question!r} differs from the same question "
                                      f"recorded alone ({mode}): {divergence.describe()}", divergence.index), rec))
    check(rule_id, items, transport)
