"""The endpoint's pace, measured at preflight, and the timeouts scaled to it.

A large model on CPU takes seconds per token: with fixed 30 s / 60 s timeouts such a server
fails, or rather goes unjudged, on every request longer than its first. So once the dialect
is settled, the preflight reads what its own generations cost (the transport keeps the
slowest complete answer: tokens and seconds) and bounds what the suite's largest request
(``LARGEST_TOKENS`` visible tokens plus the dialect's reasoning headroom) may take:

* from that non-streamed answer alone, conservatively: its time to first byte (the whole
  answer) plus ``largest`` tokens at its rate. When that bound fits the timeouts nothing
  more is sent (a fast endpoint costs no extra request);
* else one short streamed probe separates the time to the first token from the time per
  token, and the bound becomes ``ttft + largest * per_token``.

Requests queue on a server with fewer slots than ``--concurrency``, so the bound is taken
``concurrency`` times, with a safety factor, and capped (``CAP_S``). Timeouts only ever grow,
and one the user gave (``--request-timeout`` / ``--total-timeout``) always wins. The result
is printed beside the dialect and stored in results.json (``pace``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from conformance.api import dialect
from conformance.transport.client import Answered, Exchange, Limits, RequestSpec

#: The most output tokens one request of the suite asks for (a token limit times n), before
#: reasoning headroom: tools ask for 96, SDK checks for at most 64, stop for 80.
#: tests/test_pace.py checks every request of a clean run against it.
LARGEST_TOKENS = 96
SAFETY = 1.5
CAP_S = 600.0  # no scaled timeout beyond ten minutes
PACE_TOKENS = 8  # the streamed probe's length: enough gaps to time a token
PACE_PROMPT = "Count from 1 to 20, separated by commas. Output only the numbers."


@dataclass(frozen=True)
class Pace:
    """Time to the first byte (token, when streamed) and seconds per token after it."""

    source: str  # "answer" (the slowest non-streamed preflight answer) or "stream" (probe)
    first_byte_s: float
    per_token_s: float
    tokens: int
    seconds: float

    def request_s(self, tokens: int) -> float:
        """How long a request for ``tokens`` tokens may take at this pace, alone."""
        return self.first_byte_s + tokens * self.per_token_s

    @property
    def tokens_per_s(self) -> float | None:
        return 1 / self.per_token_s if self.per_token_s > 0 else None

    def describe(self) -> str:
        rate = self.tokens_per_s
        speed = f"{rate:.1f} tokens/s" if rate is not None else "rate not measurable"
        what = "streamed probe" if self.source == "stream" else "slowest preflight answer"
        return (
            f"{what}: {self.tokens} tokens in {self.seconds:.1f} s, first byte after "
            f"{self.first_byte_s:.1f} s, {speed}"
        )


def from_answer(answered: Answered) -> Pace:
    """A non-streamed answer's bytes all come at the end: the first byte costs the whole
    answer, and every further token is counted at the answer's own average (an upper
    bound whatever part of it was the time to the first token)."""
    tokens = max(1, answered.tokens or 1)
    return Pace("answer", answered.seconds, answered.seconds / tokens, tokens, answered.seconds)


def from_stream(exchange: Exchange) -> Pace | None:
    """The pace a streamed probe shows, or None when it shows none (not a usable stream)."""
    if not exchange.ok:
        return None
    pairs = zip(exchange.events, exchange.payloads, strict=True)
    times = [event.received_at for event, payload in pairs if _carries(payload)]
    if not times:
        return None
    first = times[0] - exchange.t_start
    per_token = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else first
    end = exchange.t_end if exchange.t_end is not None else times[-1]
    return Pace("stream", first, per_token, len(times), end - exchange.t_start)


def _carries(payload: Any) -> bool:
    """Whether a chunk carries generated text (content or visible reasoning)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        return False
    for choice in payload["choices"]:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and any(
            isinstance(delta.get(k), str) and delta.get(k)
            for k in ("content", *dialect.REASONING_FIELDS)
        ):
            return True
    return False


def needed_s(pace: Pace, largest: int, concurrency: int) -> float:
    """The timeout the largest request needs when ``concurrency`` requests queue."""
    return SAFETY * max(1, concurrency) * pace.request_s(largest)


def scaled(limits: Limits, need: float, read_given: bool, total_given: bool) -> Limits:
    """``limits`` with the timeouts raised to ``need`` (capped); a given timeout is kept."""
    need = min(CAP_S, math.ceil(need))
    read = limits.read_timeout if read_given else max(limits.read_timeout, need)
    total = limits.total_timeout if total_given else max(limits.total_timeout, need, read)
    return dataclasses.replace(limits, read_timeout=read, total_timeout=total)


def probe(transport: Any, model: str) -> Exchange:
    body = dialect.current().base(model, [{"role": "user", "content": PACE_PROMPT}], PACE_TOKENS)
    body["stream"] = True
    return transport.send(RequestSpec("preflight: pace (streamed)", json=body))


def settle(
    transport: Any, model: str, read_given: bool, total_given: bool
) -> tuple[Limits, dict[str, Any]]:
    """Measure the pace, scale the transport's timeouts; returns them and the record."""
    limits = transport.limits
    largest = next(iter(dialect.current().limit(LARGEST_TOKENS).values()))
    record: dict[str, Any] = {"largest_request_tokens": largest, "scaled": False}
    answered = transport.slowest
    if answered is None or (read_given and total_given):
        record["summary"] = (
            "timeouts set by the user" if answered is not None else "no answer to time"
        )
        return limits, record
    pace = from_answer(answered)
    need = needed_s(pace, largest, limits.max_concurrency)
    if need > min(limits.read_timeout, limits.total_timeout):
        # The probe itself runs under the bound so far: it must not time out on a slow model.
        transport.limits = scaled(limits, need, read_given, total_given)
        try:
            measured = from_stream(probe(transport, model))
        finally:
            transport.limits = limits
        if measured is not None:
            pace = measured
            need = needed_s(pace, largest, limits.max_concurrency)
    new = scaled(limits, need, read_given, total_given)
    record |= {
        "source": pace.source,
        "first_byte_s": round(pace.first_byte_s, 3),
        "tokens_per_s": round(pace.tokens_per_s, 3) if pace.tokens_per_s else None,
        "tokens": pace.tokens,
        "seconds": round(pace.seconds, 3),
        "needed_s": round(need, 1),
        "read_timeout": new.read_timeout,
        "total_timeout": new.total_timeout,
        "scaled": new != limits,
    }
    capped = " (capped)" if need > CAP_S else ""
    timeouts = f"read {new.read_timeout:g} s, total {new.total_timeout:g} s"
    verdict = f"timeouts scaled to {timeouts}{capped}" if new != limits else f"kept {timeouts}"
    record["summary"] = f"{pace.describe()}; {verdict}"
    return new, record
