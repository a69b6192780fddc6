"""Sweep entry point: ``locust -f loadtests/sweep.py --host URL --sweep-users 1,4,16``.

A LoadTestShape that steps through user counts (closed loop) or arrival rates (open loop,
with ``-u`` users as the pool), ``--step-time`` seconds each, then stops. The first
``--warmup`` seconds of every step are left out of that step's results. It lives in its own
locustfile because Locust uses any shape class it finds in a locustfile.
"""

from __future__ import annotations

import time

from locust import LoadTestShape

from loadtests import hooks
from loadtests.recorder import Step
from loadtests.run_state import state_of
from loadtests.settings import Settings
from loadtests.user import ChatUser

__all__ = ["ChatUser", "SweepShape"]


class SweepShape(LoadTestShape):
    """One step per value of --sweep-users or --sweep-rates; None after the last ends the run."""

    def reset_time(self) -> None:
        super().reset_time()
        state_of(self.runner.environment).recorder.steps = []

    def tick(self) -> tuple[int, float] | None:
        environment = self.runner.environment
        settings = Settings.from_options(environment.parsed_options, environment.host)
        users, rates = settings.sweep_users, settings.sweep_rates
        if not users and not rates:
            raise ValueError("sweep.py needs --sweep-users or --sweep-rates")
        levels = len(rates) if rates else len(users)
        index = int(self.get_run_time() // settings.step_time)
        if index >= levels:
            return None
        state = state_of(environment)
        recorder = state.recorder
        if not recorder.steps or recorder.steps[-1].index != index:
            now = time.time()
            if recorder.steps:
                recorder.steps[-1].end_wall = now
            rate = rates[index] if rates else None
            pool = users[index] if users else (settings.users or 1)
            recorder.steps.append(Step(index, pool, rate, now))
            if rate is not None:
                hooks.set_rate_everywhere(environment, rate)
        step = recorder.steps[-1]
        # spawn a step's users within about a second; --warmup should cover that second
        spawn_rate = max(settings.spawn_rate or 1.0, float(step.users or 1))
        return step.users or 1, spawn_rate
