"""A client that leaves mid-stream stops the work [PROTOCOL 7].

Checked from outside through the backend's open-streams gauge on /metrics: it
must be back where it was within the profile's bound after the client leaves a
stream that would have run on for longer than that bound.
"""

import pytest

from .suite import TRANSPORTS, options_of
from .validate import finding


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule_id", ["DISCONNECT-STOPS"])
def test_disconnect_stops_work(rule_id, transport, conformance_target, check):
    target = conformance_target
    spec = target.profile.disconnect
    gauge, within = spec.get("gauge"), float(spec.get("within_s", 1.0))
    if not gauge:
        pytest.skip("the profile names no open-streams gauge")
    if target.metrics_url is None:
        pytest.skip(f"no metrics endpoint exposes {gauge} (give --metrics-url)")
    # the longest of the sample questions' streams leaves the most time to tell
    done = [r for r in target.baseline()[transport] if r.events and r.duration_s is not None]
    if not done:
        pytest.skip("no baseline stream completed; see the stream rules")
    full = max(done, key=lambda r: r.duration_s)
    leave_after = min(2, len(full.events))
    # let streams left over by earlier tests end first (the other transport's check
    # on a backend that leaks): one ending while this check waits would hide a leak
    before, _ = target.wait_for_gauge(0, full.duration_s + within)
    if before is None:
        pytest.skip(f"{target.metrics_url} stopped exposing {gauge}")
    params = dict(full.params)
    seen = {}

    def during(event):
        # read the gauge while the stream is open, just before leaving
        if event.index == leave_after - 1:
            seen["open"] = target.gauge()

    rec = target.record(transport, params, close_after=leave_after, on_event=during)
    if len(rec.events) < leave_after:
        pytest.skip(f"the stream ended after {len(rec.events)} events, before the client could leave")
    left_at = rec.events[leave_after - 1].t_perf - rec.t_start
    remaining = full.duration_s - left_at
    if remaining < within + 0.2:
        pytest.skip(f"the stream would have ended {remaining:.2f} s after the client left; "
                    f"it must run on for more than {within} s to tell")
    if seen.get("open") is None or seen["open"] <= before:
        pytest.skip(f"{gauge} did not count the open stream ({before} before, {seen.get('open')} while open)")
    value, waited = target.wait_for_gauge(before, within)
    items = []
    if value is None or value > before:
        items.append((finding(rule_id, f"{gauge} was {value} {waited:.2f} s after the client left "
                              f"(was {before} before the stream, {seen['open']} while open); "
                              f"the stream would have run {remaining:.2f} s more"), rec))
    check(rule_id, items, transport, options_of(close_after=leave_after))
