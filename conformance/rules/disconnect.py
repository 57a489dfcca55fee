"""A client that leaves mid-stream stops the work [PROTOCOL 7].

Judged from outside through the backend's open-streams gauge on /metrics (the
``disconnect`` stimulus watches it): it must be back where it was within the
profile's bound after the client leaves a stream that would have run on for
longer than that bound.
"""

from __future__ import annotations

from conformance.validate import finding

from .registry import NotJudged, rule


@rule("DISCONNECT-STOPS", "MUST", "7", needs=["disconnect"])
def disconnect_stops_work(ctx):
    """when the client leaves, agent_active_streams is back within one second"""
    obs = ctx.get("disconnect")
    within = ctx.profile.disconnect.within_s
    if obs.not_judged:
        raise NotJudged(obs.not_judged)
    rec = obs.recording
    if rec is None or len(rec.events) < obs.left_after:
        got = len(rec.events) if rec is not None else 0
        raise NotJudged(f"the stream ended after {got} events, before the client could leave")
    remaining = obs.remaining_s
    if remaining is None or remaining < within + 0.2:
        raise NotJudged(f"the stream would have ended {remaining or 0:.2f} s after the client left; "
                        f"it must run on for more than {within} s to tell")
    if obs.while_open is None or obs.while_open <= obs.before:
        raise NotJudged(f"{obs.gauge} did not count the open stream ({obs.before} before, {obs.while_open} while open)")
    if obs.after is None or obs.after > obs.before:
        return [(finding("DISCONNECT-STOPS", f"{obs.gauge} was {obs.after} {obs.waited_s:.2f} s after the client left "
                         f"(was {obs.before} before the stream, {obs.while_open} while open); "
                         f"the stream would have run {remaining:.2f} s more"), rec)]
    return []
