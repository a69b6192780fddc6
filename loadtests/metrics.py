"""Per-request metrics from a stream of timestamped SSE events.

Definitions (all times in milliseconds, from ``perf_counter`` differences, not rounded):

* TTFT: from the moment the request was issued (before the connection was opened, when one
  was needed: a client waits for TCP and TLS set-up too) to the arrival of the first chunk
  that carries output: non-empty ``content``, ``reasoning_content``/``reasoning``,
  ``refusal``, or a ``tool_calls``/``function_call`` delta. A role-only first chunk
  (``{"role": "assistant", "content": ""}``) and a usage-only last chunk carry no output.
* TTFT after write (``ttft_write_ms``): the same end, from the request's single write: the
  server's view, without connection set-up. ``connect_ms``: how long opening took.
* TTFC (time to first content): to the first non-empty ``content`` delta; it differs from
  TTFT when reasoning deltas (``reasoning_content``/``reasoning``) come first.
* ITL: every gap between the arrivals of consecutive output-carrying chunks, one sample per
  gap. A chunk that carries several tokens is one arrival, so ITL is per *chunk*; TPOT is
  per *token*. Chunks that arrive in the same read get the same stamp (gap 0): they did
  arrive together.
* E2E: request issued to the last byte of the response.
* TPOT: (E2E - TTFT) / (output tokens - 1), for requests with at least two output tokens.
* Output tokens: ``usage.completion_tokens`` from the stream (``stream_options.include_usage``)
  when the server sends it, else the number of output-carrying chunks; ``tokens_source`` says
  which. ``reasoning_tokens``: ``usage.completion_tokens_details.reasoning_tokens``.
* End of stream: ``[DONE]`` or a ``finish_reason``. With neither, the stream was cut short
  (``truncated_stream``); a ``finish_reason`` without ``[DONE]`` is a success with the
  protocol warning ``no_done``. ``"error": null`` in a chunk is not an error.

The meter does its JSON parsing as each event arrives (a few microseconds per event), not
at the end of the request: a burst of parsing at the end of one stream would stall every
other stream's reads by that long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

try:  # about 4x faster than json for chunk-sized objects; optional
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads

OUTPUT_TEXT_KEYS = ("content", "reasoning_content", "reasoning", "refusal")
REASONING_KEYS = ("reasoning_content", "reasoning")
OUTPUT_LIST_KEYS = ("tool_calls",)


@dataclass(slots=True)
class Sample:
    """One request's raw measurements. Times are ms; wall times are Unix seconds."""

    start_wall: float
    ok: bool = False
    error_kind: str = ""
    error: str = ""
    status: int = 0
    completion_id: str = ""
    ttft_ms: float | None = None
    e2e_ms: float = 0.0
    connect_ms: float | None = None  # opening the connection (TCP, TLS); None: reused
    ttft_write_ms: float | None = None  # TTFT from the request's write (no connection set-up)
    ttfc_ms: float | None = None  # to the first non-empty content delta
    reasoning_chunks: int = 0  # chunks carrying reasoning_content / reasoning
    reasoning_tokens: int | None = None  # usage.completion_tokens_details.reasoning_tokens
    finish_reason: str = ""
    protocol_warning: str = ""  # a success that broke the protocol mildly ("no_done")
    token_field: str = ""  # the token-limit field sent (max_tokens / max_completion_tokens)
    itl_ms: list[float] = field(default_factory=list)
    output_tokens: int | None = None
    tokens_source: str = ""
    content_chunks: int = 0
    prompt_tokens: int | None = None
    target_tokens: int | None = None
    schedule_lag_ms: float | None = None
    read_delay_ms: float | None = None  # how late this process read data it already had
    stamps: str = ""  # "kernel" or "user": where arrival times came from
    worker: str = ""

    @property
    def tpot_ms(self) -> float | None:
        if self.ttft_ms is None or not self.output_tokens or self.output_tokens < 2:
            return None
        return (self.e2e_ms - self.ttft_ms) / (self.output_tokens - 1)


def carries_output(delta: Any) -> bool:
    """Does this delta carry generated output (text, reasoning, refusal or a tool call)?"""
    if not isinstance(delta, dict):
        return False
    for key in OUTPUT_TEXT_KEYS:
        value = delta.get(key)
        if isinstance(value, str) and value:
            return True
    for key in OUTPUT_LIST_KEYS:
        if delta.get(key):
            return True
    return bool(delta.get("function_call"))


class StreamError(Exception):
    """The stream itself reported an error or sent something unparseable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class StreamMeter:
    """Feed event batches as they arrive (``on_events``); ``finish`` builds the Sample."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.first: float | None = None
        self.first_content: float | None = None
        self.last: float | None = None
        self.gaps: list[float] = []
        self.chunks = 0
        self.reasoning_chunks = 0
        self.usage: dict[str, Any] | None = None
        self.completion_id = ""
        self.finish_reason = ""
        self.done = False
        self.error: StreamError | None = None

    def on_events(self, events: list) -> None:
        for event in events:
            self._event(event.data, event.received_at)

    def _event(self, data: str, at: float) -> None:
        if self.error is not None:
            return
        if data == "[DONE]":
            self.done = True
            return
        try:
            chunk = _loads(data)
        except ValueError:
            # Not cut here: the caller redacts the key first and shortens afterwards, so an
            # echoed key can never be split across the cut and leak its first characters.
            self.error = StreamError("malformed_chunk", f"event is not JSON: {data[:4096]!r}")
            return
        if not isinstance(chunk, dict):
            self.error = StreamError("malformed_chunk", f"event is not an object: {data[:4096]!r}")
            return
        detail = chunk.get("error")
        if detail is not None:  # "error": null is what some servers put in every chunk
            message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
            self.error = StreamError("stream_error_event", str(message)[:200])
            return
        if not self.completion_id and isinstance(chunk.get("id"), str):
            self.completion_id = chunk["id"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return
        output = False
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if content and isinstance(content, str):  # the usual chunk: decided at once
                output = True
                if self.first_content is None:
                    self.first_content = at
                if "reasoning_content" in delta or "reasoning" in delta:
                    self.reasoning_chunks += _reasoning(delta)
            elif carries_output(delta):
                output = True
                self.reasoning_chunks += _reasoning(delta)
            reason = choice.get("finish_reason")
            if reason and isinstance(reason, str):
                self.finish_reason = reason
        if output:
            self.chunks += 1
            if self.first is None:
                self.first = at
            else:
                self.gaps.append((at - self.last) * 1000.0)
            self.last = at

    def finish(self, sample: Sample, end: float, target_tokens: int | None) -> Sample:
        """Fill ``sample`` from what was seen; ``end`` is when the response's last byte came."""
        sample.e2e_ms = (end - self.start) * 1000.0
        sample.completion_id = self.completion_id
        sample.content_chunks = self.chunks
        sample.reasoning_chunks = self.reasoning_chunks
        sample.finish_reason = self.finish_reason
        sample.target_tokens = target_tokens
        sample.itl_ms = self.gaps
        if self.first is not None:
            sample.ttft_ms = (self.first - self.start) * 1000.0
        if self.first_content is not None:
            sample.ttfc_ms = (self.first_content - self.start) * 1000.0
        usage = self.usage or {}
        completion = usage.get("completion_tokens")
        if _is_int(completion):
            sample.output_tokens, sample.tokens_source = completion, "usage"
        else:
            sample.output_tokens, sample.tokens_source = self.chunks, "chunks"
        if _is_int(usage.get("prompt_tokens")):
            sample.prompt_tokens = usage["prompt_tokens"]
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and _is_int(details.get("reasoning_tokens")):
            sample.reasoning_tokens = details["reasoning_tokens"]
        if self.error is not None:
            sample.ok, sample.error_kind, sample.error = False, self.error.kind, str(self.error)
        elif not self.done and not self.finish_reason:
            sample.ok, sample.error_kind = False, "truncated_stream"
            sample.error = "the stream ended without a finish_reason or [DONE]"
        elif self.first is None:
            sample.ok, sample.error_kind = False, "no_output"
            sample.error = "the stream carried no content or tool-call delta"
        else:
            sample.ok = True
            if not self.done:
                sample.protocol_warning = "no_done"
        return sample


def _reasoning(delta: dict) -> int:
    """1 if this delta carries reasoning text, else 0."""
    return int(any(isinstance(delta.get(k), str) and delta.get(k) for k in REASONING_KEYS))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
