"""Reasoning models and request dialects in the reference server: profiles and their faults.

Profiles are whole server behaviours the suite must pass without a single failure:

* ``reasoning`` behaves as OpenAI's reasoning models do in Chat Completions (gpt-5 family,
  o-series): ``max_tokens`` and non-default ``temperature`` rejected with 400s naming them,
  ``top_p``, penalties, ``logprobs``, ``logit_bias`` and ``stop`` rejected the same way,
  hidden reasoning tokens spent first (counted in ``completion_tokens``, in
  ``completion_tokens_details.reasoning_tokens`` and against ``max_completion_tokens``; a
  small budget gives empty content with ``finish_reason: "length"``), ``reasoning_effort``
  minimal/low/medium/high, and ``choices[].logprobs`` omitted entirely.
* ``reasoning_content`` streams DeepSeek-style ``reasoning_content`` deltas before the
  content and returns the same field in messages; it accepts every usual parameter, and
  honours ``reasoning_effort: "none"`` with no reasoning at all (as gpt-5.1 does), so the
  suite must judge its reasoning at another effort than the cheapest.
* ``reject_seed`` / ``reject_temperature`` / ``reject_stop``: an otherwise ordinary server
  that cleanly rejects just that one parameter (it must lose exactly that capability).

Faults in ``FAULTS`` below switch a reasoning style on by themselves, so each can be played
alone on a URL prefix like every other fault.
"""

from __future__ import annotations

from typing import Any

from conformance.api.request_fields import REASONING_EFFORTS
from conformance.reference.validation import ApiError

PROFILES: dict[str, str] = {
    "reasoning": "OpenAI reasoning model (gpt-5 / o-series behaviour in Chat Completions)",
    "reasoning_content": "DeepSeek-style reasoning_content before the content",
    "reject_seed": "rejects seed cleanly (400 naming it), nothing else",
    "reject_temperature": "rejects non-default temperature cleanly, nothing else",
    "reject_stop": "rejects stop cleanly, nothing else",
}

#: Faults that imply a reasoning style: name -> "hidden" (OpenAI) or "visible" (DeepSeek).
FAULT_STYLES: dict[str, str] = {
    "think_tags_in_content": "visible",
    "reasoning_tokens_exceed_completion": "visible",
    "reasoning_after_content": "visible",
    "reasoning_field_mismatch": "visible",
    "budget_exhausted_stop": "hidden",
    "unsupported_param_500": "hidden",
    "reasoning_effort_500": "hidden",
    # --- reasoning on / invalid requests (issue 15) ---
    "reasoning_tokens_unreported": "visible",
    "reasoning_dropped_in_stream": "visible",
    "reasoning_outside_budget": "visible",
}

#: Hidden reasoning tokens per reasoning_effort (the default is medium, as OpenAI's).
EFFORT_TOKENS = {"minimal": 8, "low": 16, "medium": 32, "high": 64}
VISIBLE_REASONING_TOKENS = 12
#: Parameters OpenAI's reasoning models reject outright (temperature only when not 1).
REJECTED_BY_REASONING = (
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "stop",
)
_THOUGHT = [
    "first",
    "I",
    "consider",
    "the",
    "question",
    "then",
    "I",
    "plan",
    "a",
    "short",
    "clear",
    "answer",
]


def style(faults: frozenset[str]) -> str | None:
    """'hidden', 'visible' or None: how (and whether) this request's model reasons."""
    if "reasoning" in faults:
        return "hidden"
    if "reasoning_content" in faults:
        return "visible"
    return next((FAULT_STYLES[f] for f in sorted(faults) if f in FAULT_STYLES), None)


def _unsupported(name: str) -> ApiError:
    return ApiError(
        400,
        f"Unsupported parameter: '{name}' is not supported with this model.",
        param=name,
        code="unsupported_parameter",
    )


def _temperature_error(value: Any) -> ApiError:
    return ApiError(
        400,
        f"Unsupported value: 'temperature' does not support {value} with this model. Only the "
        "default (1) value is supported.",
        param="temperature",
        code="unsupported_value",
    )


def _present(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is not None and body.get(name) is not False


def reject(body: dict[str, Any], faults: frozenset[str]) -> None:
    """The clean 400s of the profiles (or, under a fault, the 500s that replace them)."""
    if "reasoning_effort_unnamed_400" in faults and "reasoning_effort" in body:
        raise ApiError(400, "Invalid request.")  # names no parameter at all
    if "core_fields_rejected" in faults:
        for name in ("user", "metadata", "store"):
            if name in body:
                raise _unsupported(name)
    if "reject_seed" in faults and _present(body, "seed"):
        raise _unsupported("seed")
    if "reject_stop" in faults and _present(body, "stop"):
        raise _unsupported("stop")
    temperature = body.get("temperature")
    if "reject_temperature" in faults and temperature not in (None, 1):
        raise _temperature_error(temperature)
    ignores_effort = "reasoning_effort_ignored" in faults
    if style(faults) is None and _present(body, "reasoning_effort") and not ignores_effort:
        raise _unsupported("reasoning_effort")  # as OpenAI's non-reasoning models (gpt-4o)
    if style(faults) != "hidden":
        return
    if _present(body, "metadata") and body.get("store") is not True:  # as OpenAI does
        raise ApiError(
            400,
            "The 'metadata' parameter is only allowed when 'store' is enabled.",
            param="metadata",
            code="invalid_value",
        )
    if "max_tokens" in body:
        raise ApiError(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    if temperature not in (None, 1):
        raise _temperature_error(temperature)
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORT_TOKENS:
        if "reasoning_effort_500" in faults:
            raise ApiError(500, "The server had an error processing your request.", "server_error")
        raise ApiError(
            400,
            f"Unsupported value: 'reasoning_effort' does not support '{effort}' with this "
            "model. Supported values are: 'minimal', 'low', 'medium', and 'high'.",
            param="reasoning_effort",
            code="unsupported_value",
        )
    for name in REJECTED_BY_REASONING:
        if _present(body, name):
            if "unsupported_param_500" in faults:
                raise ApiError(500, "The server had an error processing your request.")
            raise _unsupported(name)


def hidden_tokens(body: dict[str, Any], faults: frozenset[str]) -> int:
    """Reasoning tokens one choice spends before its visible output."""
    kind = style(faults)
    if kind == "hidden":
        return EFFORT_TOKENS.get(body.get("reasoning_effort") or "medium", 32)
    if kind == "visible":  # honours "none" like gpt-5.1: no reasoning at all
        return 0 if body.get("reasoning_effort") == "none" else VISIBLE_REASONING_TOKENS
    return 0


def thought(count: int) -> list[str]:
    """The visible reasoning text of ``count`` tokens (DeepSeek style), as tokens."""
    words = [_THOUGHT[i % len(_THOUGHT)] for i in range(count)]
    return [words[0].capitalize(), *(" " + w for w in words[1:])] if words else []


_EFFORTS = REASONING_EFFORTS  # the spec's enum
_MISSING_EFFORTS = tuple(v for v in _EFFORTS if v not in EFFORT_TOKENS)  # the profile rejects

#: (name, divergence, checks it breaks, check -> expected message fragment); faults.py turns
#: these into Fault entries (kept here, beside the behaviour they distort).
FAULT_TABLE: tuple[tuple[str, str], ...] = (
    (
        "think_tags_in_content",
        "reasoning text sent inside the content as <think>...</think> (llama.cpp without a "
        "reasoning format, some vLLM parsers)",
    ),
    (
        "reasoning_tokens_exceed_completion",
        "completion_tokens_details.reasoning_tokens larger than completion_tokens",
    ),
    ("reasoning_after_content", "streamed reasoning deltas arrive after the content started"),
    (
        "reasoning_field_mismatch",
        "reasoning in 'reasoning' deltas when streamed but 'reasoning_content' when not",
    ),
    (
        "budget_exhausted_stop",
        'a budget used up by reasoning ends with finish_reason "stop" and no content',
    ),
    ("reasoning_effort_500", "an unsupported reasoning_effort value crashes the server (HTTP 500)"),
    (
        "reasoning_effort_unnamed_400",
        "every reasoning_effort value rejected with a 400 that names no parameter",
    ),
    (
        "core_fields_rejected",
        "user, metadata and store (accepted by every OpenAI model) rejected as unsupported",
    ),
    (
        "unsupported_param_500",
        "a parameter the reasoning model does not support gets HTTP 500, not a clean 400",
    ),
    # --- reasoning on / invalid requests (issue 15) ---
    (
        "reasoning_tokens_unreported",
        "reasoning text returned, but completion_tokens_details.reasoning_tokens stays 0",
    ),
    (
        "reasoning_dropped_in_stream",
        "reasoning_content in messages, but no reasoning deltas when streamed",
    ),
    (
        "reasoning_outside_budget",
        "reasoning not counted against the token limit: completion_tokens exceed it",
    ),
)
