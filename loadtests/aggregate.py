"""Aggregates over a measurement window: latency percentiles, throughput, errors, goodput.

Which requests count where:

* latency percentiles and error rate: requests that *started* inside the window (so warm-up
  requests are left out whole), successful ones for latencies;
* throughput (requests/s, output tokens/s): requests that *completed* inside the window,
  divided by its length; content events/s: chunk arrivals inside the window;
* achieved concurrency: the time-average number of requests in flight during the window
  (the summed overlap of every request with the window, divided by its length; requests cut
  off when the test stopped count until then);
* goodput: the share of requests started in the window that succeeded *and* met every
  per-request SLO given with ``--goodput`` (e.g. ``ttft_ms=500,tpot_ms=50``); requests still
  in flight at the end that are already past a TTFT or E2E limit count as missing it (a
  stalled request is not left out of the share);
* censored: requests started in the window and still in flight at the end (``censored.py``);
* connections: ``connect_ms`` over the finished requests that opened a connection, and the
  share of finished requests that did (1.0 when the server closes after every response).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from loadtests.censored import censored_view
from loadtests.metrics import Sample
from loadtests.stats import summarize

PER_REQUEST_LIMITS = ("ttft_ms", "tpot_ms", "e2e_ms", "itl_max_ms")


@dataclass
class Window:
    label: str
    start: float  # Unix seconds
    end: float
    users: int | None = None
    rate: float | None = None

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)


def parse_goodput(text: str) -> dict[str, float]:
    """``ttft_ms=500,tpot_ms=50`` -> limits; unknown names are an error, not ignored."""
    limits: dict[str, float] = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or name not in PER_REQUEST_LIMITS:
            raise ValueError(
                f"--goodput: expected one of {PER_REQUEST_LIMITS} =value, got {part!r}"
            )
        limits[name] = float(value)
    return limits


def meets(sample: Sample, limits: dict[str, float]) -> bool:
    values = {
        "ttft_ms": sample.ttft_ms,
        "tpot_ms": sample.tpot_ms,
        "e2e_ms": sample.e2e_ms,
        "itl_max_ms": max(sample.itl_ms) if sample.itl_ms else 0.0,
    }
    for name, limit in limits.items():
        value = values[name]
        if value is not None and value > limit:
            return False
    return True


def already_late(sample: Sample, limits: dict[str, float]) -> bool:
    """A censored request whose elapsed time already exceeds a TTFT or E2E limit."""
    ttft = sample.ttft_ms if sample.ttft_ms is not None else sample.e2e_ms
    return ("ttft_ms" in limits and ttft > limits["ttft_ms"]) or (
        "e2e_ms" in limits and sample.e2e_ms > limits["e2e_ms"]
    )


def end_wall(sample: Sample) -> float:
    return sample.start_wall + sample.e2e_ms / 1000.0


def chunk_arrivals(sample: Sample) -> list[float]:
    """Wall-clock arrival time of each content chunk, rebuilt from TTFT and the gaps."""
    if sample.ttft_ms is None:
        return []
    at = sample.start_wall + sample.ttft_ms / 1000.0
    out = [at]
    for gap in sample.itl_ms:
        at += gap / 1000.0
        out.append(at)
    return out


def aggregate(
    samples: list[Sample], window: Window, goodput: dict[str, float] | None = None
) -> dict[str, Any]:
    """Every aggregate of one window, as a JSON-ready dict (times in ms, rates per second)."""
    started = [s for s in samples if window.start <= s.start_wall < window.end]
    finished = [s for s in started if s.error_kind != "interrupted"]
    ok = [s for s in finished if s.ok]
    failed = [s for s in finished if not s.ok]
    completed = [s for s in samples if s.ok and window.start <= end_wall(s) < window.end]
    overlap = 0.0
    events = 0
    for s in samples:
        lo, hi = max(s.start_wall, window.start), min(end_wall(s), window.end)
        if hi > lo:
            overlap += hi - lo
            events += sum(1 for t in chunk_arrivals(s) if window.start <= t < window.end)
    output = [s.output_tokens for s in ok if s.output_tokens is not None]
    itl = [gap for s in ok for gap in s.itl_ms]
    limits = goodput or {}
    good = [s for s in ok if meets(s, limits)]
    late = [s for s in started if s.error_kind == "interrupted" and already_late(s, limits)]
    judged = len(finished) + len(late)
    seconds = window.seconds
    result: dict[str, Any] = {
        "label": window.label,
        "window": {"start": window.start, "end": window.end, "seconds": seconds},
        "users": window.users,
        "target_rate": window.rate,
        "requests": {
            "started": len(started),
            "finished": len(finished),
            "ok": len(ok),
            "failed": len(failed),
            "interrupted": len(started) - len(finished),
            "completed_in_window": len(completed),
        },
        "error_rate": len(failed) / len(finished) if finished else None,
        "errors_by_kind": dict(Counter(s.error_kind for s in failed).most_common()),
        "ttft_ms": summarize(s.ttft_ms for s in ok if s.ttft_ms is not None),
        "itl_ms": summarize(itl),
        "tpot_ms": summarize(v for v in (s.tpot_ms for s in ok) if v is not None),
        "e2e_ms": summarize(s.e2e_ms for s in ok),
        "schedule_lag_ms": summarize(
            s.schedule_lag_ms for s in finished if s.schedule_lag_ms is not None
        ),
        "read_delay_ms": summarize(s.read_delay_ms for s in ok if s.read_delay_ms is not None),
        "throughput": {
            "requests_per_s": len(completed) / seconds,
            "output_tokens_per_s": math.fsum(s.output_tokens or 0 for s in completed) / seconds,
            "content_events_per_s": events / seconds,
            "achieved_rate_per_s": len(started) / seconds,
        },
        "achieved_concurrency": overlap / seconds,
        "goodput": {
            "limits": limits,
            "share": len(good) / judged if judged else None,
            "censored_late": len(late),
            "requests_per_s": sum(1 for s in good if end_wall(s) < window.end) / seconds,
        },
        "output_tokens": {
            **summarize(output),
            "target": _target(ok),
            "share_at_target": _share_at_target(ok),
            "sources": dict(Counter(s.tokens_source for s in ok)),
        },
        "prompt_tokens": summarize(s.prompt_tokens for s in ok if s.prompt_tokens is not None),
        "stamps": dict(Counter(s.stamps for s in ok if s.stamps)),
        "connect_ms": summarize(s.connect_ms for s in finished if s.connect_ms is not None),
        "connect_share": (
            sum(1 for s in finished if s.connect_ms is not None) / len(finished)
            if finished
            else None
        ),
        "ttft_write_ms": summarize(s.ttft_write_ms for s in ok if s.ttft_write_ms is not None),
        "censored": censored_view(started, ok),
        "protocol_warnings": dict(Counter(s.protocol_warning for s in ok if s.protocol_warning)),
        "reasoning": _reasoning(ok),
        "token_field": dict(Counter(s.token_field for s in finished if s.token_field)),
    }
    return result


def _reasoning(ok: list[Sample]) -> dict[str, Any]:
    """Reasoning tokens (from usage) and time to first content for streams with reasoning."""
    streamed = [s for s in ok if s.reasoning_chunks]
    return {
        "requests_with_reasoning_deltas": len(streamed),
        "reasoning_tokens": summarize(
            s.reasoning_tokens for s in ok if s.reasoning_tokens is not None
        ),
        "ttfc_ms": summarize(s.ttfc_ms for s in streamed if s.ttfc_ms is not None),
        "no_content": sum(1 for s in streamed if s.ttfc_ms is None),
    }


def _target(samples: list[Sample]) -> int | None:
    targets = {s.target_tokens for s in samples if s.target_tokens}
    return targets.pop() if len(targets) == 1 else None


def _share_at_target(samples: list[Sample]) -> float | None:
    with_target = [s for s in samples if s.target_tokens and s.output_tokens is not None]
    if not with_target:
        return None
    return sum(1 for s in with_target if s.output_tokens >= s.target_tokens) / len(with_target)
