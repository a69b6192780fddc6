"""Locust event listeners: options, run bounds, worker-to-master samples, reports, SLO exit code.

Who does what:

* every process: parse our options at test start; workers and single processes run users;
* workers: hand their new samples to each Locust worker report (``report_to_master``);
* master (or the single process): collect samples (``worker_report``), remember when the
  test started, finished spawning and stopped, bound the run (``--max-seconds``,
  ``--max-requests``), and at the end write the reports and set the exit code from the SLO
  gates. It does so on ``quitting``, which in a distributed run fires after the workers' final
  reports have arrived; in the web UI, also a few seconds after each test stops.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import gevent
from locust import events
from locust.runners import STATE_INIT, STATE_MISSING, STATE_STOPPED, MasterRunner, WorkerRunner

from loadtests.recorder import REPORT_KEY
from loadtests.rows import StatsRows
from loadtests.run_state import RunState, state_of
from loadtests.settings import Settings, add_arguments
from loadtests.slo import parse_gates

logger = logging.getLogger("chatcompat")
PLAN_MESSAGE = "chatcompat_plan"
WORKER_REPORT_SECONDS = 3.0  # locust.runners.WORKER_REPORT_INTERVAL
SLO_EXIT_CODE = 3


def is_worker(environment: Any) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def is_master(environment: Any) -> bool:
    return isinstance(environment.runner, MasterRunner)


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    """Listeners whose events do not pass the environment are bound to it here."""
    state = state_of(environment)

    def on_spawned(**_: Any) -> None:
        gc.freeze()  # a full collection over Locust's own objects stalls all streams >10 ms
        if not is_worker(environment) and state.recorder.spawned_wall is None:
            state.recorder.spawned_wall = time.time()

    def on_report_to_master(data: dict, **_: Any) -> None:
        data[REPORT_KEY] = state.recorder.take_unsent()

    def on_worker_report(client_id: str, data: dict, **_: Any) -> None:
        rows = data.get(REPORT_KEY)
        if rows:
            state.recorder.ingest(client_id, rows)
            limit = state.settings.max_requests
            if limit and state.recorder.total_recorded >= limit:
                state.on_limit()

    environment.events.spawning_complete.add_listener(on_spawned)
    environment.events.report_to_master.add_listener(on_report_to_master)
    environment.events.worker_report.add_listener(on_worker_report)
    if is_worker(environment):

        def on_plan(environment: Any, msg: Any, **_: Any) -> None:
            data = msg.data
            state.plan = data
            state.worker_id = f"worker-{data['index']}"
            state.set_rate(data["rate"], data["workers"], data["index"])

        environment.runner.register_message(PLAN_MESSAGE, on_plan)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    state = state_of(environment)
    settings = Settings.from_options(environment.parsed_options, environment.host)
    parse_gates(settings.slo)  # fail fast on a typo, before any request is sent
    state.configure(settings)
    if is_worker(environment):
        state.recorder.reset()
    else:
        state.recorder.reset()
        state.recorder.test_start_wall = time.time()
        state.on_limit = lambda: stop_run(environment, "--max-requests reached")
        state.stopping = False
        if state.timer is not None:
            state.timer.kill(block=False)
        state.timer = gevent.spawn_later(
            settings.max_seconds, stop_run, environment, "--max-seconds reached"
        )
        if is_master(environment):
            send_plan(environment, state.current_rate())
    if not is_master(environment):
        old = getattr(environment, "chatcompat_rows", None)
        if old is not None:
            old.stop()
        environment.chatcompat_rows = StatsRows(environment, settings.itl_rows)


def send_plan(environment: Any, rate: float) -> None:
    """Tell each worker its share of an open-loop rate (and its index)."""
    runner = environment.runner
    workers = [c for c in runner.clients.all if c.state != STATE_MISSING]
    for client in workers:
        data = {"workers": len(workers), "index": runner.get_worker_index(client.id), "rate": rate}
        runner.send_message(PLAN_MESSAGE, data, client.id)


def set_rate_everywhere(environment: Any, rate: float) -> None:
    """A rate sweep moved to a new step: restart the schedule here or on every worker."""
    state = state_of(environment)
    if is_master(environment):
        send_plan(environment, rate)
    else:
        state.set_rate(rate, 1, 0)


def stop_run(environment: Any, reason: str) -> None:
    """End the run from anywhere but a user's greenlet (quit headless, stop in the web UI)."""
    state: RunState = state_of(environment)
    runner = environment.runner
    if (
        getattr(state, "stopping", False)
        or runner is None
        or runner.state in (STATE_STOPPED, STATE_INIT)
    ):
        return
    state.stopping = True
    logger.info("chatcompat: %s, stopping", reason)
    options = environment.parsed_options
    if options is not None and getattr(options, "headless", False):
        gevent.spawn(runner.quit)
    else:
        gevent.spawn(runner.stop)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    state = state_of(environment)
    rows = getattr(environment, "chatcompat_rows", None)
    if rows is not None:
        rows.flush()
    if is_worker(environment):
        return
    state.recorder.stop_wall = time.time()
    options = environment.parsed_options
    if options is not None and not getattr(options, "headless", False):
        delay = WORKER_REPORT_SECONDS + 1.0 if is_master(environment) else 0.0
        gevent.spawn_later(delay, finish, environment, False)


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if is_worker(environment):
        recorder = state_of(environment).recorder
        logger.info(
            "chatcompat worker totals: requests=%d gaps=%d", recorder.sent_total, recorder.sent_gaps
        )
        return
    finish(environment, True)


def finish(environment: Any, final: bool) -> None:
    """Write the reports and apply the SLO gates (exit code only at the end of the process)."""
    from loadtests.report import write_reports  # imported late: plotting libraries are slow to load

    state = state_of(environment)
    if state.recorder.test_start_wall is None:
        return
    if state.recorder.stop_wall is None:
        state.recorder.stop_wall = time.time()
    try:
        outcome = write_reports(state, environment)
    except Exception:
        logger.exception("chatcompat: writing the report failed")
        if final:
            environment.process_exit_code = 2
        return
    if final and outcome.slo_failed:
        environment.process_exit_code = SLO_EXIT_CODE
