"""Optional capabilities: declared by the user, or learned from how the endpoint answers.

There is no separate probe round: the first request that uses a capability *is* the probe.
What it gets back decides the verdict of every check that needs the capability:

* 200 -> supported; the checks then verify the field had its documented effect
  (accepted and ignored is always a fail);
* 400 with an error envelope -> an honest "not supported": the checks are *unsupported*
  (a skip naming the capability and quoting the answer), unless the user declared the
  capability, in which case it is a fail;
* anything else (5xx, 422, an error without the envelope) -> fail: rejected, but not cleanly.

Capabilities declared absent (``--without-capabilities``) are not requested at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from .checks import expect, short
from .client import NOT_JSON, Exchange
from .outcomes import UNSUPPORTED_PREFIX

CAPABILITIES: dict[str, str] = {
    "streaming": "stream: true (server-sent events)",
    "usage_in_stream": "stream_options.include_usage",
    "max_completion_tokens": "max_completion_tokens (the newer name of max_tokens)",
    "n": "n > 1 choices",
    "seed": "seed for repeatable sampling",
    "stop": "stop sequences",
    "logprobs": "logprobs and top_logprobs",
    "logit_bias": "logit_bias over token ids",
    "tools": "tools and tool_choice (function calling)",
    "parallel_tool_calls": "parallel_tool_calls: false",
    "json_object": 'response_format {"type": "json_object"}',
    "json_schema": 'response_format {"type": "json_schema"} (structured outputs)',
    "content_parts": "message content as an array of text parts",
    "developer_role": "messages with role developer",
    "vision": "image_url content parts",
    "audio_input": "input_audio content parts",
}


def parse_capabilities(value: str | None) -> frozenset[str]:
    """'a,b' -> {'a', 'b'}; unknown names raise ValueError listing the known ones."""
    names = frozenset(n.strip() for n in (value or "").split(",") if n.strip())
    unknown = names - CAPABILITIES.keys()
    if unknown:
        known = ", ".join(sorted(CAPABILITIES))
        raise ValueError(f"unknown capability {', '.join(sorted(unknown))} (known: {known})")
    return names


@dataclass
class CapabilityState:
    status: str  # supported | unsupported | declared | declared-absent | broken
    evidence: str = ""


@dataclass
class Capabilities:
    """The declared sets and what the run learned, shown in reports."""

    declared: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()
    learned: dict[str, CapabilityState] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, str]]:
        out = {name: {"status": "declared-absent"} for name in sorted(self.absent)}
        for name in sorted(self.declared - self.learned.keys()):
            out[name] = {"status": "declared"}
        for name, state in sorted(self.learned.items()):
            out[name] = {"status": state.status, "evidence": state.evidence}
        return out

    def skip_if_absent(self, name: str) -> None:
        if name in self.absent:
            pytest.skip(f"{UNSUPPORTED_PREFIX} capability '{name}' declared absent by the user")

    def gate(self, name: str, exchange: Exchange | None) -> None:
        """Decide from the exchange whether the checks of ``name`` can go on (see module doc)."""
        self.skip_if_absent(name)
        if exchange is None:
            pytest.skip(f"{UNSUPPORTED_PREFIX} capability '{name}' was not requested")
        if exchange.ok:
            self.learned.setdefault(name, CapabilityState("supported"))
            return
        answer = _answer(exchange)
        clean = exchange.status == 400 and _has_envelope(exchange)
        if not clean:
            self.learned[name] = CapabilityState("broken", answer)
            expect(
                False,
                f"HTTP 200 using {CAPABILITIES[name]}, or a clean 400 error envelope saying "
                "it is unsupported",
                answer,
                exchange,
            )
        if name in self.declared:
            self.learned[name] = CapabilityState("declared", answer)
            expect(False, f"declared capability '{name}' to be accepted", answer, exchange)
        previous = self.learned.get(name)
        if previous is not None and previous.status == "supported":
            expect(
                False,
                f"this use of '{name}' accepted, as other requests using it were",
                answer,
                exchange,
            )
        self.learned[name] = CapabilityState("unsupported", answer)
        pytest.skip(f"{UNSUPPORTED_PREFIX} capability '{name}' rejected cleanly: {answer}")


def _has_envelope(exchange: Exchange) -> bool:
    body = exchange.json
    return (
        body is not NOT_JSON
        and isinstance(body, dict)
        and isinstance(body.get("error"), dict)
        and isinstance(body["error"].get("message"), str)
    )


def _answer(exchange: Exchange) -> str:
    if exchange.error:
        return f"transport error: {exchange.error}"
    body: Any = exchange.json
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"HTTP {exchange.status}: {short(body['error'].get('message'), 200)}"
    return f"HTTP {exchange.status}: {short(exchange.body[:200])}"
