"""For any question, both transports give valid streams in parity [PROTOCOL 6].

Hypothesis draws the questions; each drawn batch is recorded on both
transports at once to keep the suite fast.
"""

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .suite import parity_divergence, stream_problems
from .validate import finding

questions = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "Zs", "S")), min_size=1, max_size=200
).filter(lambda q: q.strip())


@pytest.mark.parametrize("rule_id", ["PROPERTY-QUESTIONS"])
def test_drawn_questions(rule_id, conformance_target, check):
    target = conformance_target

    @settings(max_examples=2, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(questions, min_size=3, max_size=3))
    def run(batch):
        jobs = []
        for i, q in enumerate(batch):
            for transport in ("sse", "ws"):
                jobs.append((("property", transport, q, i),
                             lambda t=transport, q=q: target.record(t, target.request_params(q))))
        recordings = target.record_many(jobs)
        items = []
        for i, q in enumerate(batch):
            sse, ws = recordings[2 * i], recordings[2 * i + 1]
            problems = stream_problems(rule_id, sse, target.profile, f"question {q!r}")
            problems += stream_problems(rule_id, ws, target.profile, f"question {q!r}")
            items += problems
            if not problems:
                mode, divergence = parity_divergence(target, sse, ws)
                if divergence is not None:
                    items.append((finding(rule_id, f"question {q!r} ({mode} parity): {divergence.describe()}",
                                          divergence.index), sse))
        check(rule_id, items)

    run()
