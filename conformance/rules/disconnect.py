"""A client that leaves mid-stream stops the work [PROTOCOL 7].

Judged from outside through the backend's open-streams gauge on /metrics (the
``disconnect`` stimulus watches it): it must be back where it was within the
profile's bound after the client leaves, however short the backend's streams
are. A stream that would have ended within the bound anyway cannot show that the
work stopped, but one still counted after the bound has leaked.
"""

from __future__ import annotations

from conformance.validate import finding

from .registry import NotJudged, rule


@rule("DISCONNECT-STOPS", "MUST", "7", needs=["disconnect"])
def disconnect_stops_work(ctx):
    """when the client leaves, {gauge} is back within one second"""
    obs = ctx.get("disconnect")
    within = ctx.profile.disconnect.within_s
    if obs.not_judged:
        raise NotJudged(obs.not_judged)
    rec = obs.recording
    if rec is None or len(rec.events) < obs.left_after:
        got = len(rec.events) if rec is not None else 0
        raise NotJudged(f"the stream ended after {got} events, before the client could leave")
    if obs.after is None:
        raise NotJudged(f"{ctx.session.metrics_url} stopped answering while the probe waited")
    remaining = obs.remaining_s
    if obs.after > obs.before:
        # counted `within` after the client left: a stream that would have run on has
        # not stopped; one that would have ended by then (a short stream) leaked
        if remaining is not None and remaining > within:
            why = f"the stream would have run {remaining:.2f} s more"
        else:
            why = (f"the stream would have ended {max(remaining or 0, 0):.2f} s after the client left, "
                   "so it is still counted long after it would have ended")
        return [(finding("DISCONNECT-STOPS", f"{obs.gauge} was {obs.after} {obs.waited_s:.2f} s after the client left "
                         f"(was {obs.before} before the stream, {obs.while_open} while open); {why}"), rec)]
    if obs.while_open is None or obs.while_open <= obs.before:
        raise NotJudged(f"{obs.gauge} did not count the open stream ({obs.before} before, {obs.while_open} while open)")
    return []
