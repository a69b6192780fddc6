"""The Locust user: one streamed chat completion per task, measured by our own client.

Closed loop by default (each user sends its next request as soon as the last one ends); with
``--arrival-rate`` the users form a pool that serves an absolute open-loop schedule.
Only cheap work happens between reads: the meter parses each event as it arrives, and the
Locust statistics rows for TTFT/TPOT/ITL are fired later by ``rows.StatsRows`` when the event
loop is idle; the request's own row (``POST /chat/completions``, E2E time) fires at once.
"""

from __future__ import annotations

import json
import os
import time

import gevent
from gevent import GreenletExit
from locust import User, constant, task

from loadtests.http_stream import StreamError, StreamingClient
from loadtests.metrics import Sample, StreamMeter
from loadtests.run_state import state_of
from loadtests.workload import request_body

PATH = "/chat/completions"
SPIN_S = 0.001


class ChatUser(User):
    """Streams chat completions from ``--host`` (e.g. ``http://127.0.0.1:8000/v1``)."""

    host = os.environ.get("OPENAI_BASE_URL")
    wait_time = constant(0)

    def on_start(self) -> None:
        self.state = state_of(self.environment)
        settings = self.state.settings
        self.client = StreamingClient(
            self.host or settings.host,
            timeout=settings.request_timeout,
            kernel_stamps=not settings.user_stamps,
            exact_reads=settings.exact_reads,
        )
        self.state.resolve_model(self.client)

    def on_stop(self) -> None:
        self.client.close()

    @task
    def chat(self) -> None:
        state = self.state
        due = None
        if state.schedule is not None:
            due = state.schedule.next_due()
            wait_until(due)
        messages = state.prompts.next()
        for _ in range(2):  # a second time only when the token-limit field was rejected
            if self._send(messages, due):
                return

    def _send(self, messages: list, due: float | None) -> bool:
        """One request, measured and recorded; False when it must be resent with another
        token-limit field (``dialect.TokenField``): then nothing was recorded."""
        state = self.state
        settings = state.settings
        field = state.token_field.name if settings.max_tokens else ""
        body = request_body(
            state.resolve_model(self.client),
            messages,
            settings.max_tokens,
            settings.min_tokens,
            settings.ignore_eos,
            settings.include_usage,
            settings.extra_body,
            field or "max_tokens",
        )
        sample = Sample(start_wall=time.time(), worker=state.worker_id, token_field=field)
        meter = StreamMeter(time.perf_counter())
        started = meter.start
        try:
            response = self.client.post(PATH, body, state.headers(), meter.on_events, started)
        except StreamError as exc:
            sample.e2e_ms = (time.perf_counter() - started) * 1000.0
            if exc.response is not None:
                sample.connect_ms = _ms(exc.response.connect_s)
            sample.error_kind, sample.error = exc.kind, settings.redact(str(exc))[:300]
            self._record(sample, len(body), due, started)
            return True
        except GreenletExit:  # the test stopped mid-request: a censored request
            sample.e2e_ms = (time.perf_counter() - started) * 1000.0  # elapsed: a lower bound
            sample.error_kind = "interrupted"
            if meter.first is not None:
                sample.ttft_ms = (meter.first - started) * 1000.0
                sample.itl_ms = meter.gaps
            state.recorder.add(sample)
            raise
        if response.status == 400 and state.token_field.fall_back(
            field, response.status, bytes(response.body)
        ):
            return False
        sample.status = response.status
        sample.stamps = response.stamps
        sample.connect_ms = _ms(response.connect_s)
        if response.stamps == "kernel":
            sample.read_delay_ms = response.max_read_delay * 1000.0
        sample.e2e_ms = (response.end - response.start) * 1000.0
        if response.status != 200:
            sample.error_kind = f"http_{response.status}"
            sample.error = settings.redact(_error_message(bytes(response.body)))[:300]
        elif "text/event-stream" not in response.headers.get("content-type", ""):
            sample.error_kind = "not_event_stream"
            sample.error = f"content-type {response.headers.get('content-type', '')[:60]!r}"
        else:
            meter.finish(sample, response.end, settings.max_tokens or None)
            sample.error = settings.redact(sample.error)
            if sample.ttft_ms is not None:
                sample.ttft_write_ms = sample.ttft_ms - (response.sent_at - started) * 1000.0
        self._record(sample, response.bytes_read, due, started)
        return True

    def _record(self, sample: Sample, length: int, due: float | None, sent: float) -> None:
        state = self.state
        if due is not None:
            sample.schedule_lag_ms = max(sent - due, 0.0) * 1000.0
        state.recorder.add(sample)
        error = None if sample.ok else RequestFailed(f"{sample.error_kind}: {sample.error}")
        self.environment.events.request.fire(
            request_type="POST",
            name=PATH,
            response_time=sample.e2e_ms,
            response_length=length,
            exception=error,
            context={},
        )
        rows = getattr(self.environment, "chatcompat_rows", None)
        if rows is not None and sample.ok:
            rows.push(sample)
        limit = state.settings.max_requests
        if limit and state.recorder.total_recorded >= limit:
            state.on_limit()


def wait_until(due: float) -> None:
    """Sleep until ``due`` (perf_counter): timers for the bulk, then yield in a loop.

    gevent timers fire on the event loop's cached clock with millisecond resolution, early or
    late; yielding (``sleep(0)``) through the last millisecond lets other greenlets run and
    still sends within a few microseconds of the due time.
    """
    while True:
        left = due - time.perf_counter()
        if left <= 0:
            return
        gevent.sleep(left - SPIN_S if left > 2 * SPIN_S else 0)


class RequestFailed(Exception):
    """The failure Locust shows in its failures table: ``<kind>: <message>``."""


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _error_message(body: bytes) -> str:
    try:
        payload = json.loads(body)
        detail = payload.get("error", payload) if isinstance(payload, dict) else payload
        if isinstance(detail, dict):
            return str(detail.get("message") or detail)
        return str(detail)
    except ValueError:
        return body[:200].decode("utf-8", errors="replace")
