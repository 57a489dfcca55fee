"""Open model: streams started at a fixed rate, however long each one takes.

    locust -f load/open.py --host http://127.0.0.1:8000 --headless -t 30s --arrival-rate 5
    python -m load --open --headless -t 30s --arrival-rate 5 --max-in-flight 100

With closed users (``load/locustfile.py``) a slow backend slows the arrivals
down too: each user waits for its stream to end before it starts the next, so a
fixed user count hides saturation behind a lower request rate. Here one
scheduler per transport starts ``--arrival-rate / transports`` streams per second
on a fixed timetable (stream *k* at ``t0 + k / rate``; a late scheduler catches
up at once), each stream in its own greenlet, so arrivals do not depend on how
long streams take. ``--max-in-flight`` bounds the open streams per transport:
an arrival beyond it is not started but counted as dropped, and the summary's
``open_model`` section (scheduled, started, dropped, most in flight) shows the
saturation a closed run would hide. Streams are measured exactly as in the
closed scenarios (same recorder, rules, figures and histograms). A separate
locustfile, like ``load/sweep.py``, because Locust applies any load shape it
finds in a locustfile; ``-t`` ends the run (default 60 s).
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING
from locust.user.task import LOCUST_STATE_STOPPING

from load.live import arrivals_due
from load.locustfile import STATE, USER_CLASSES

__all__ = ["OPEN_CLASSES", "OpenShape"]

DEFAULT_RUN_TIME_S = 60.0


class OpenStats:
    """Arrivals of one run: what the timetable asked for and what was started."""

    def __init__(self) -> None:
        self.scheduled = self.started = self.dropped = 0
        self.in_flight = self.most_in_flight = 0

    def as_dict(self, rate: float | None, cap: int | None) -> dict[str, Any]:
        return {"arrival_rate": rate, "max_in_flight": cap, "scheduled": self.scheduled, "started": self.started,
                "dropped": self.dropped, "most_in_flight": self.most_in_flight}


OPEN = OpenStats()


def _open_class(base: type) -> type:
    def schedule(self: Any) -> None:
        cfg = STATE.config
        if cfg is None:
            gevent.sleep(0.1)
            return
        share = cfg.arrival_rate / max(1, len(self.environment.user_classes))
        in_flight = [0]
        pool: list[Any] = []
        try:
            _timetable(self, cfg, share, in_flight, pool)
        finally:
            # the test is stopping: the started streams run to their end (bounded by
            # --stream-timeout), as the closed users' streams do, so none is lost
            gevent.joinall(pool, timeout=cfg.stream_timeout_s)

    def _timetable(self: Any, cfg: Any, share: float, in_flight: list[int], pool: list[Any]) -> None:
        t0, done = time.monotonic(), 0
        runner = self.environment.runner
        # the test is stopping (the runner says so before it asks the users): no more arrivals
        while self._state != LOCUST_STATE_STOPPING and runner.state not in (STATE_STOPPING, STATE_STOPPED,
                                                                           STATE_CLEANUP):
            due = arrivals_due(t0, time.monotonic(), share, done)
            for _ in range(due):
                done += 1
                OPEN.scheduled += 1
                if in_flight[0] >= cfg.max_in_flight:
                    OPEN.dropped += 1
                    continue
                OPEN.started += 1
                in_flight[0] += 1
                OPEN.in_flight += 1
                OPEN.most_in_flight = max(OPEN.most_in_flight, OPEN.in_flight)
                pool.append(gevent.spawn(one, self, in_flight))
            pool[:] = [g for g in pool if not g.dead]
            gevent.sleep(max(0.0, t0 + done / share - time.monotonic()))

    def one(self: Any, in_flight: list[int]) -> None:
        try:
            base.stream(self)
        finally:
            in_flight[0] -= 1
            OPEN.in_flight -= 1

    cls = type(f"Open{base.__name__}", (base,), {
        "__doc__": f"Open model over {base.transport}: starts streams at its share of --arrival-rate.",
        "__module__": __name__, "abstract": False, "fixed_count": 1, "wait_time": lambda self: 0.0,
    })
    cls.tasks = [schedule]  # only the timetable: Locust's metaclass would add the base's closed-loop task
    return cls


OPEN_CLASSES = {f"Open{name}": _open_class(cls) for name, cls in USER_CLASSES.items()}
globals().update(OPEN_CLASSES)
__all__ += list(OPEN_CLASSES)


class OpenShape(LoadTestShape):
    """One scheduler per transport, until ``-t`` (default 60 s) has passed."""

    use_common_options = True
    """Locust then hands ``-t`` to the shape instead of ignoring it."""

    def tick(self) -> tuple[int, float] | None:
        env = self.runner.environment if self.runner is not None else None
        opts = env.parsed_options if env is not None else None
        run_time = getattr(opts, "run_time", None) or DEFAULT_RUN_TIME_S
        if self.get_run_time() >= float(run_time):
            return None
        n = len(env.user_classes) if env is not None else 1
        return n, float(n)


@events.test_start.add_listener
def _reset(environment: Any, **_: Any) -> None:
    OPEN.__init__()
    STATE.extra["open_model"] = lambda: OPEN.as_dict(
        STATE.config.arrival_rate if STATE.config else None, STATE.config.max_in_flight if STATE.config else None)
