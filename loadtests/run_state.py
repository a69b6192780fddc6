"""The per-process state of a run that users share: settings, prompts, schedule, samples.

One ``RunState`` hangs off the Locust environment (``environment.chatcompat``). It is rebuilt
at every test start, because the web UI can change options between tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from loadtests.dialect import TokenField
from loadtests.http_stream import StreamError, StreamingClient
from loadtests.recorder import Recorder
from loadtests.schedule import ArrivalSchedule
from loadtests.settings import Settings
from loadtests.workload import Prompts


class RunState:
    def __init__(self) -> None:
        self.settings = Settings()
        self.token_field = TokenField()
        self.recorder = Recorder()
        self.prompts = Prompts(0)
        self.schedule: ArrivalSchedule | None = None
        self.workers = 1
        self.worker_index = 0
        self.rate = 0.0
        self.model = ""
        self.worker_id = "local"
        self.plan: dict[str, Any] | None = None  # worker: its index, the worker count, the rate
        self.stopping = False
        self.timer: Any = None  # the --max-seconds greenlet of the current test
        self.on_limit: Callable[[], None] = lambda: None  # set by hooks: stop at --max-requests

    def configure(self, settings: Settings) -> None:
        self.settings = settings
        self.token_field = TokenField(settings.token_field)
        self.prompts = Prompts(settings.prompt_tokens, settings.dataset, settings.seed)
        self.model = settings.model
        plan = self.plan or {"workers": 1, "index": 0}
        self.set_rate(self.current_rate(), plan["workers"], plan["index"])

    def current_rate(self) -> float:
        """The open-loop rate now: the worker's plan, a rate sweep's step, or --arrival-rate."""
        if self.plan is not None:
            return self.plan["rate"]
        steps = self.recorder.steps
        if steps and steps[-1].rate is not None:
            return steps[-1].rate
        return self.settings.arrival_rate

    def set_rate(self, rate: float, workers: int, index: int) -> None:
        """(Re)start the open-loop schedule now at ``rate`` req/s in total (0: closed loop)."""
        self.rate, self.workers, self.worker_index = rate, max(workers, 1), index
        if rate > 0:
            self.schedule = ArrivalSchedule(
                rate,
                time.perf_counter(),
                self.settings.arrival,
                self.settings.seed,
                self.workers,
                index,
            )
        else:
            self.schedule = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    def resolve_model(self, client: StreamingClient) -> str:
        """The model to ask for: the option, else the first one the server lists."""
        if self.model:
            return self.model
        headers = {k: v for k, v in self.headers().items() if k != "Accept"}
        try:
            response = client.request("GET", "/models", b"", headers)
            listing: Any = json.loads(bytes(response.body) or b"{}")
            self.model = listing["data"][0]["id"]
        except (StreamError, ValueError, KeyError, IndexError, TypeError):
            self.model = "default"
        return self.model


def state_of(environment: Any) -> RunState:
    state = getattr(environment, "chatcompat", None)
    if state is None:
        state = RunState()
        environment.chatcompat = state
    return state
