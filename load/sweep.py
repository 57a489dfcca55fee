"""Concurrency sweep: the same users, stepped through levels of concurrency.

    locust -f load/sweep.py --host http://127.0.0.1:8000 --headless --steps 1,10,50,100 --step-time 30
    python -m load --sweep --headless --steps 1,5 --step-time 5

Each level (a total number of users, split between the user classes as Locust
does) is held for ``--step-time`` seconds; the test then stops by itself. A
stream counts toward the level in force when it started, and every level gets
its own summary in ``RESULTS_DIR/levels/<users>/``. This is a separate
locustfile because Locust applies any load shape it finds in a locustfile,
which would take the user count out of the web UI for the ordinary runs.
"""

from __future__ import annotations

from locust import LoadTestShape

from load.config import ConfigError, parse_steps
from load.locustfile import MSG_LEVEL, STATE, USER_CLASSES

globals().update(USER_CLASSES)  # the users of this locustfile: the same, one per transport

__all__ = [*USER_CLASSES, "StepShape"]


class StepShape(LoadTestShape):
    """Levels from ``--steps``, each held ``--step-time`` s (``-u``, ``-r`` and ``-t`` do not apply)."""

    def reset_time(self) -> None:
        super().reset_time()
        STATE.level = None
        STATE.level_times = {}

    def _options(self) -> tuple[list[int], float]:
        opts = self.runner.environment.parsed_options if self.runner is not None else None
        try:
            steps = parse_steps(getattr(opts, "steps", "1,10,50,100"))
        except ConfigError:
            steps = [1]  # test_start has already reported the error and is quitting
        try:
            step_time = max(0.001, float(getattr(opts, "step_time", 30.0) or 30.0))
        except (TypeError, ValueError):
            step_time = 30.0
        return steps, step_time

    def tick(self) -> tuple[int, float] | None:
        steps, step_time = self._options()
        index = int(self.get_run_time() // step_time)
        if index >= len(steps):
            return None
        users = steps[index]
        if STATE.level != users:
            # Tell every node which level the next streams belong to, before the
            # new users are spawned (the message goes out first on the same socket).
            self.runner.send_message(MSG_LEVEL, {"level": users})
            STATE.set_level(users)
        # Spawn (or stop) the whole difference within about a second: a level
        # should be at its concurrency for nearly all of its time.
        return users, float(max(users, 1))
