"""Optional capabilities: declared by the user, or learned from how the endpoint answers.

"Capability" means what is model-dependent in OpenAI itself (tools, vision, audio, logprobs,
stop, n, json_schema, sampling parameters that reasoning models reject, ...). What every
OpenAI model accepts (the developer role, text content parts) is core: a rejection fails.

There is no separate probe round: every request that uses a capability is evidence, and
``gate(name, exchange)`` decides each check from its own exchange:

* 200 -> accepted: *undecided* for a capability whose effect the suite judges (``EFFECTS``)
  until a check saw the effect (``effect(name, True, ...)`` -> *supported*) or its absence
  (``effect(name, False, ...)`` -> *ignored*: accepted and ignored, its checks fail);
  *supported* at once for the others (the field is accepted; no effect check of its own);
* a clean 400 (error envelope) that *names* the capability's parameter (its ``param``, or the
  name quoted in its message), or whose twin request without that parameter succeeds ->
  an honest "not supported": the check is *unsupported*, quoting the answer; a fail if the
  user declared the capability;
* a clean 400 naming some other parameter -> no evidence about this capability: the check
  is *not applicable*, saying which parameter was named;
* 5xx, 422, an error without the envelope -> fail: rejected, but not cleanly;
* a transport error (timeout, reset) -> the check fails on the transport, and the
  capability's verdict is left alone.

Each capability is decided once from all the requests that used it, whatever the order of
the checks: if one use was accepted and another cleanly rejected, ``reconcile`` turns the
"unsupported" verdicts of the rejected uses into failures at the end of the run.
Capabilities declared absent (``--without-capabilities``) are not requested at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.api.rejections import describe_answer, error_of, has_envelope, named_params
from conformance.transport.client import Exchange, RequestSpec
from conformance.verdicts.check import expect, not_applicable
from conformance.verdicts.outcomes import UNSUPPORTED_PREFIX

CAPABILITIES: dict[str, str] = {
    "streaming": "stream: true (server-sent events)",
    "usage_in_stream": "stream_options.include_usage",
    "max_tokens": "max_tokens (deprecated; OpenAI's reasoning models reject it)",
    "max_completion_tokens": "max_completion_tokens (the newer name of max_tokens)",
    "temperature": "temperature other than the default 1 (reasoning models reject it)",
    "top_p": "top_p (reasoning models reject it)",
    "penalties": "presence_penalty and frequency_penalty (reasoning models reject them)",
    "n": "n > 1 choices",
    "seed": "seed for repeatable sampling",
    "stop": "stop sequences",
    "logprobs": "logprobs and top_logprobs",
    "logit_bias": "logit_bias over token ids",
    "tools": "tools and tool_choice (function calling)",
    "parallel_tool_calls": "parallel_tool_calls: false",
    "json_object": 'response_format {"type": "json_object"}',
    "json_schema": 'response_format {"type": "json_schema"} (structured outputs)',
    "vision": "image_url content parts",
    "audio_input": "input_audio content parts",
}

#: The request parameters a rejection must name to count as evidence about a capability.
PARAMS: dict[str, tuple[str, ...]] = {
    "streaming": ("stream",),
    "usage_in_stream": ("stream_options", "include_usage"),
    "max_tokens": ("max_tokens",),
    "max_completion_tokens": ("max_completion_tokens",),
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "penalties": ("presence_penalty", "frequency_penalty"),
    "n": ("n",),
    "seed": ("seed",),
    "stop": ("stop",),
    "logprobs": ("logprobs", "top_logprobs"),
    "logit_bias": ("logit_bias",),
    "tools": ("tools", "tool_choice"),
    "parallel_tool_calls": ("parallel_tool_calls",),
    "json_object": ("response_format", "json_object"),
    "json_schema": ("response_format", "json_schema"),
    "vision": ("image_url",),
    "audio_input": ("input_audio",),
}

#: Accepted by every OpenAI model: a rejection is a failure, never "unsupported".
CORE: dict[str, str] = {
    "developer_role": "messages with role developer",
    "content_parts": "message content as an array of text parts",
}

#: Content-part types whose twin request drops the parts instead of a top-level field.
_PART_TYPES = {"vision": "image_url", "audio_input": "input_audio"}


def parse_capabilities(value: str | None) -> frozenset[str]:
    """'a,b' -> {'a', 'b'}; unknown names raise ValueError listing the known ones."""
    names = frozenset(n.strip() for n in (value or "").split(",") if n.strip())
    unknown = names - CAPABILITIES.keys()
    if unknown:
        known = ", ".join(sorted(CAPABILITIES))
        core = unknown & CORE.keys()
        hint = f"; {', '.join(sorted(core))} are core, not optional" if core else ""
        raise ValueError(f"unknown capability {', '.join(sorted(unknown))} (known: {known}){hint}")
    return names


#: Capabilities whose documented effect a check observes: a 200 alone leaves them undecided.
EFFECTS: dict[str, str] = {
    "stop": "a stop string taken from the unstopped answer cuts it there",
    "n": "n choices come back",
    "logprobs": "logprobs entries come back",
    "tools": "tool_choice 'required' gets a tool call",
    "json_schema": "the output matches the schema on a prompt that does not ask for JSON",
    "json_object": "the output is JSON on a prompt that does not ask for it",
    "seed": "the same seed at temperature 1 repeats the answer",
    "penalties": "a penalty changes an answer that repeats a word",
    "max_tokens": "the output stops at the limit",
    "max_completion_tokens": "the output stops at the limit",
    "vision": "an image part costs prompt tokens against a twin without it",
    "audio_input": "an audio part costs prompt tokens against a twin without it",
    "logit_bias": "a token banned with -100 is never generated (judged where ids show)",
}


@dataclass
class CapabilityState:
    #: supported | ignored | undecided | unsupported | declared | declared-absent | broken |
    #: inconsistent
    status: str
    evidence: str = ""


@dataclass
class Capabilities:
    """The declared sets and what the run learned, shown in reports."""

    declared: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()
    learned: dict[str, CapabilityState] = field(default_factory=dict)
    transport: Any = None  # set by the endpoint fixture; sends twin requests
    accepted_by: dict[str, str] = field(default_factory=dict)  # name -> label of a 200 use
    rejected_checks: dict[str, list[str]] = field(default_factory=dict)  # name -> node ids

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
        if name in CORE:
            _gate_core(name, exchange)
            return
        self.skip_if_absent(name)
        if exchange is None:
            pytest.skip(f"{UNSUPPORTED_PREFIX} capability '{name}' was not requested")
        if exchange.ok:
            self.accepted_by.setdefault(name, exchange.label)
            if self.learned.get(name, CapabilityState("")).status == "unsupported":
                self.learned[name] = CapabilityState("inconsistent", self.learned[name].evidence)
            self.learned.setdefault(name, _accepted(name, exchange))
            return
        answer = describe_answer(exchange)
        expect(
            exchange.error is None,
            f"a complete answer to a request using {CAPABILITIES[name]}",
            answer,
            exchange,
            note="a transport failure says nothing about the capability; its verdict is left open",
        )
        clean = exchange.status == 400 and has_envelope(exchange)
        if not clean:
            self.learned[name] = CapabilityState("broken", answer)
            expect(
                False,
                f"HTTP 200 using {CAPABILITIES[name]}, or a clean 400 error envelope saying "
                "it is unsupported",
                answer,
                exchange,
            )
        if not self._attributed(name, exchange):
            named = sorted(named_params(exchange))
            which = f"naming {', '.join(repr(n) for n in named)}" if named else "naming nothing"
            not_applicable(
                f"the request using '{name}' was rejected {which}, which is no evidence "
                f"about '{name}' ({answer})"
            )
        if name in self.declared:
            self.learned[name] = CapabilityState("declared", answer)
            expect(False, f"declared capability '{name}' to be accepted", answer, exchange)
        if name in self.accepted_by:
            self.learned[name] = CapabilityState("inconsistent", answer)
            expect(
                False,
                f"this use of '{name}' accepted, as '{self.accepted_by[name]}' was",
                answer,
                exchange,
            )
        self.learned.setdefault(name, CapabilityState("unsupported", answer))
        self.rejected_checks.setdefault(name, []).append(_current_test())
        pytest.skip(f"{UNSUPPORTED_PREFIX} capability '{name}' rejected cleanly: {answer}")

    def effect(self, name: str, seen: bool, how: str, exchange: Exchange | None = None) -> None:
        """Record whether a check saw the documented effect of ``name`` (``how`` says what was
        compared). Absence wins over presence, whatever the order: one use accepted and
        ignored makes the capability ``ignored`` (the check itself then fails)."""
        where = f" ('{exchange.label}')" if exchange is not None else ""
        current = self.learned.get(name)
        if not seen:
            self.learned[name] = CapabilityState("ignored", f"accepted and ignored: {how}{where}")
        elif current is None or current.status == "undecided":
            self.learned[name] = CapabilityState("supported", f"effect seen: {how}{where}")

    def _attributed(self, name: str, exchange: Exchange) -> bool:
        """The rejection names the capability's parameter, or a twin without it succeeds."""
        named = named_params(exchange)
        if named & set(PARAMS[name]) or _mentions(exchange, PARAMS[name]):
            return True
        if named or self.transport is None or not isinstance(exchange.spec.json, dict):
            return False
        twin_body = without_capability(name, exchange.spec.json)
        if twin_body == exchange.spec.json:
            return False
        twin = self.transport.send(
            RequestSpec(f"{exchange.label} (twin without {name})", twin_body)
        )
        return twin.ok

    def reconcile(self, results: dict[str, Any]) -> int:
        """Turn "unsupported" into "fail" where another use of the capability was accepted.

        Returns how many verdicts changed, so the caller can count them as failures.
        """
        changed = 0
        for name, nodeids in self.rejected_checks.items():
            if name not in self.accepted_by:
                continue
            self.learned[name] = CapabilityState(
                "inconsistent", f"accepted by '{self.accepted_by[name]}', rejected elsewhere"
            )
            for result in results.values():
                if result.nodeid in nodeids and result.outcome == "unsupported":
                    result.outcome = "fail"
                    result.message = (
                        f"expected this use of '{name}' accepted, as "
                        f"'{self.accepted_by[name]}' was; got {result.message}"
                    )
                    changed += 1
        return changed


def _accepted(name: str, exchange: Exchange) -> CapabilityState:
    if name in EFFECTS:
        return CapabilityState(
            "undecided", f"accepted (HTTP 200, '{exchange.label}'); effect not judged yet"
        )
    return CapabilityState("supported", f"accepted (HTTP 200, '{exchange.label}')")


def without_capability(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The twin of ``body`` without the capability's parameter (or content parts)."""
    part = _PART_TYPES.get(name)
    if part is None:
        return {k: v for k, v in body.items() if k not in PARAMS[name]}
    messages = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            message = {**message, "content": [p for p in content if p.get("type") != part]}
        messages.append(message)
    return {**body, "messages": messages}


def _mentions(exchange: Exchange, params: tuple[str, ...]) -> bool:
    """Distinctive names (with an underscore) written in the message, quoted or not:
    OpenAI says "image_url is only supported by certain models" with a ``param`` that
    points at the part's ``type``."""
    message = (error_of(exchange) or {}).get("message")
    if not isinstance(message, str):
        return False
    return any("_" in p and re.search(rf"\b{re.escape(p)}\b", message) for p in params)


def _current_test() -> str:
    import os

    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]


#: Core features some OpenAI models themselves reject, with the 400 they answer: o1-mini and
#: o1-preview say "Unsupported value: 'messages[0].role' does not support 'developer' with
#: this model." (param messages[0].role). Such a rejection is the model's documented limit.
KNOWN_LIMITATIONS: dict[str, tuple[str, re.Pattern[str]]] = {
    "developer_role": ("role", re.compile(r"does not support 'developer' with this model")),
}


def _known_limitation(name: str, exchange: Exchange) -> bool:
    """A clean 400 naming the feature's field in OpenAI's words for a model limitation."""
    if name not in KNOWN_LIMITATIONS or exchange.status != 400 or not has_envelope(exchange):
        return False
    field_name, wording = KNOWN_LIMITATIONS[name]
    message = (error_of(exchange) or {}).get("message")
    return field_name in named_params(exchange) and bool(wording.search(str(message)))


def _gate_core(name: str, exchange: Exchange | None) -> None:
    if exchange is None:
        not_applicable(f"no request using {CORE[name]} was sent")
    if _known_limitation(name, exchange):
        pytest.skip(
            f"{UNSUPPORTED_PREFIX} {CORE[name]} rejected as a known model limitation (as "
            f"OpenAI's o1-mini does): {describe_answer(exchange)}"
        )
    expect(
        exchange.ok,
        f"HTTP 200: every OpenAI model accepts {CORE[name]}",
        describe_answer(exchange),
        exchange,
    )
