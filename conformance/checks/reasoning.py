"""Reasoning models: token accounting, reasoning_effort, budgets, and where reasoning text goes.

Reasoning models spend hidden tokens before any visible output. OpenAI counts them in
``usage.completion_tokens`` and ``completion_tokens_details.reasoning_tokens`` and against
``max_completion_tokens``; vendors (DeepSeek, vLLM, llama.cpp, ...) also return the reasoning
text, in a ``reasoning_content`` or ``reasoning`` field. Checks whose premise the endpoint
does not meet (no reasoning seen) end as not applicable.

The checks that judge reasoning send the dialect's *judging* effort (``thinking`` fixture,
``chat_body(judging=True)``): the cheapest effort every other check sends may switch
reasoning off (``none``), and a server that honours it would hide every reasoning divergence.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.api import dialect
from conformance.api.rejections import named_params, rejection_names
from conformance.api.request_fields import REASONING_EFFORTS
from conformance.exchanges.expect import (
    choices_of,
    describe_status,
    first_choice,
    leaned_stream,
    ok_json,
    streamed_content,
)
from conformance.exchanges.requests import chat_body, sent_limit, with_limit
from conformance.transport.client import Exchange, RequestSpec
from conformance.verdicts.check import CLEAN_400, check, expect, not_applicable, short
from conformance.verdicts.premises import (
    ERROR_ENVELOPE,
    REASONING_SEEN,
    SSE_STREAM,
    USAGE_COUNTS,
)

THINK_TAGS = ("<think>", "</think>")
#: A budget far below any reasoning a reasoning model does before answering.
EXHAUSTED_BUDGET = 4


EFFORTS = list(REASONING_EFFORTS)  # read from the spec


@pytest.fixture(scope="session")
def reasoned(endpoint) -> dict[str, Exchange | None]:
    """One request per reasoning_effort value, and one with a budget reasoning uses up."""
    model = endpoint.model
    specs = [
        RequestSpec(
            f"reasoning_effort={v}", json=chat_body(model, max_tokens=8, reasoning_effort=v)
        )
        for v in EFFORTS
    ]
    current = dialect.current()
    if current.reasoning:
        body = chat_body(model, judging=True)  # an effort the preflight saw reason
        body = with_limit(body, current.token_field, EXHAUSTED_BUDGET)
        specs.append(RequestSpec(f"{current.token_field}={EXHAUSTED_BUDGET}", json=body))
    sent = endpoint.transport.send_all(specs)
    out: dict[str, Exchange | None] = dict(zip(EFFORTS, sent, strict=False))
    out["exhausted"] = sent[len(EFFORTS)] if current.reasoning else None
    return out


def _reasoning_tokens(usage: Any) -> int | None:
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    value = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@check(
    "reasoning.tokens_within_completion",
    "MUST",
    "completion_tokens_details.reasoning_tokens breaks completion_tokens down: reasoning "
    "tokens are part of the completion tokens, so never more than them.",
    rationale="a detail above its total is a wrong bill",
    needs=(REASONING_SEEN, USAGE_COUNTS),
    broken_by={"reasoning_tokens_exceed_completion": "> completion_tokens"},
)
def test_tokens_within_completion(thinking):
    judged = 0
    for exchange in (e for e in (thinking.plain, thinking.stream) if e is not None):
        usage = exchange.usage
        reasoning = _reasoning_tokens(usage)
        if reasoning is None:
            continue
        judged += 1
        completion = usage.get("completion_tokens")
        # a count that is no integer is usage.present's verdict: nothing to compare
        USAGE_COUNTS.require(
            isinstance(completion, int) and not isinstance(completion, bool),
            f"completion_tokens {short(completion)} in '{exchange.label}'",
        )
        expect(
            reasoning <= completion,
            "reasoning_tokens <= completion_tokens",
            f"reasoning_tokens {reasoning} > completion_tokens {short(completion)} "
            f"in '{exchange.label}'",
            exchange,
        )
    if not judged:
        REASONING_SEEN.unmet("no usage carried completion_tokens_details.reasoning_tokens")


@check(
    "reasoning.effort_values",
    "MUST",
    "reasoning_effort: one of the documented values (none, minimal, low, medium, high, xhigh, "
    "by model). A value the model does not support is rejected with a 400 naming "
    "reasoning_effort, never a server error.",
    rationale=CLEAN_400,
    needs=(ERROR_ENVELOPE,),
    broken_by={
        "reasoning_effort_500": {"none": "HTTP 500", "xhigh": "HTTP 500", "max": "HTTP 500"},
        "reasoning_effort_unnamed_400": "HTTP 400, naming nothing",
    },
)
@pytest.mark.parametrize("effort", EFFORTS)
def test_effort_values(reasoned, effort):
    exchange = reasoned[effort]
    if exchange.ok:
        return
    # a 400 without an error envelope names nothing because it has no param to read: that is
    # errors.invalid_envelope's failure, not a rejection of the wrong parameter
    body = exchange.json if isinstance(exchange.json, dict) else {}
    ERROR_ENVELOPE.require(
        exchange.status != 400 or isinstance(body.get("error"), dict),
        short(exchange.body[:120]),
    )
    expect(
        rejection_names(exchange, ("reasoning_effort",)),
        f"HTTP 200, or a 400 naming reasoning_effort for reasoning_effort={effort!r}",
        f"{describe_status(exchange)}, naming {sorted(named_params(exchange)) or 'nothing'}",
        exchange,
    )


@check(
    "reasoning.budget_finish_length",
    "MUST",
    "max_completion_tokens bounds reasoning and visible tokens together: when reasoning uses "
    'up the budget, the choice ends with finish_reason "length" (and little or no content).',
    rationale="clients raise the budget on 'length' only",
    needs=(REASONING_SEEN,),
    broken_by={"budget_exhausted_stop": "'stop'"},
)
def test_budget_finish_length(reasoned):
    exchange = reasoned["exhausted"]
    if exchange is None:
        REASONING_SEEN.unmet("none at preflight, so there is no reasoning budget to use up")
    choice = first_choice(ok_json(exchange))
    spent = _reasoning_tokens(exchange.usage)
    content = (choice.get("message") or {}).get("content")
    if not (spent is not None and spent >= EXHAUSTED_BUDGET) and content:
        REASONING_SEEN.unmet(
            f"the model did not use up the {EXHAUSTED_BUDGET}-token budget on reasoning "
            f"(reasoning_tokens {spent}, content {short(content, 80)})"
        )
    expect(
        choice.get("finish_reason") == "length",
        f'finish_reason "length" when reasoning used up the {EXHAUSTED_BUDGET}-token budget',
        f"{short(choice.get('finish_reason'))} (reasoning_tokens {spent})",
        exchange,
    )


@check(
    "reasoning.no_think_tags",
    "SHOULD",
    "Reasoning text belongs in a reasoning field (or nowhere), never in message content: "
    "clients show content to users and parse it as the answer.",
    rationale="vendors differ on where reasoning goes; visible, not broken",
    needs=(SSE_STREAM,),
    broken_by={"think_tags_in_content": "<think> and </think> in the content"},
)
def test_no_think_tags(thinking):
    texts = {
        thinking.plain.label: (first_choice(ok_json(thinking.plain)).get("message") or {}).get(
            "content"
        ),
        thinking.stream.label: streamed_content(leaned_stream(thinking.stream)),
    }
    pair = (thinking.plain, thinking.stream)
    for (label, text), exchange in zip(texts.items(), pair, strict=True):
        leaked = [tag for tag in THINK_TAGS if isinstance(text, str) and tag in text]
        expect(
            not leaked,
            "content without <think> blocks",
            f"{' and '.join(leaked)} in the content of '{label}': {short(text, 160)}",
            exchange,
        )


def _delta_fields(chunks: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(kind, position) of every non-empty reasoning or content delta of choice 0."""
    seen = []
    for position, chunk in enumerate(chunks):
        for choice in choices_of(chunk):
            delta = choice.get("delta") if choice.get("index") == 0 else None
            if not isinstance(delta, dict):
                continue
            seen += [(f, position) for f in dialect.REASONING_FIELDS if delta.get(f)]
            if delta.get("content"):
                seen.append(("content", position))
    return seen


@check(
    "reasoning.stream_reasoning_first",
    "SHOULD",
    "Streamed reasoning deltas (reasoning_content / reasoning) come before the first content "
    "delta: clients show reasoning as it happens, then the answer.",
    rationale="vendor fields with no spec: order clients expect",
    needs=(SSE_STREAM, REASONING_SEEN),
    broken_by={"reasoning_after_content": "after content began"},
)
def test_stream_reasoning_first(thinking):
    seen = _delta_fields(leaned_stream(thinking.stream))
    reasoning = [p for f, p in seen if f != "content"]
    content = [p for f, p in seen if f == "content"]
    REASONING_SEEN.require(reasoning, "the stream carried no reasoning deltas")
    expect(
        not content or max(reasoning) < min(content),
        "every reasoning delta before the first content delta",
        f"reasoning delta at chunk {max(reasoning)} after content began at chunk {min(content)}",
        thinking.stream,
    )


@check(
    "reasoning.stream_matches_message",
    "SHOULD",
    "Streamed and non-streamed replies put reasoning text in the same field, so one client "
    "parser serves both.",
    rationale="vendor fields with no spec: consistency only",
    needs=(SSE_STREAM, REASONING_SEEN),
    broken_by={
        "reasoning_field_mismatch": "stream deltas: ['reasoning']",
        "reasoning_dropped_in_stream": "stream deltas: none",
    },
)
def test_stream_matches_message(thinking):
    message = first_choice(ok_json(thinking.plain)).get("message") or {}
    in_message = {f for f in dialect.REASONING_FIELDS if message.get(f)}
    REASONING_SEEN.require(
        in_message or dialect.current().reasoning, "the message carried no reasoning text"
    )
    in_stream = {f for f, _ in _delta_fields(leaned_stream(thinking.stream)) if f != "content"}
    REASONING_SEEN.require(
        in_message or in_stream, "neither the message nor the stream carried reasoning text"
    )
    expect(
        in_message == in_stream,
        "the same reasoning field streamed and not",
        f"message: {sorted(in_message) or 'none'}; stream deltas: {sorted(in_stream) or 'none'}",
        thinking.plain,
        thinking.stream,
    )


# --- reasoning judged with reasoning on (issue 15) ---------------------------------------------


def _visible_reasoning(exchange: Exchange) -> bool:
    """Whether a reply (JSON or stream) carried reasoning text in a reasoning field."""
    if exchange.spec.wants_stream:
        return any(f != "content" for f, _ in _delta_fields(leaned_stream(exchange)))
    message = first_choice(ok_json(exchange)).get("message") or {}
    return any(message.get(f) for f in dialect.REASONING_FIELDS)


@check(
    "reasoning.tokens_reported",
    "SHOULD",
    "Reasoning tokens are reported: a reply that carried reasoning text counts it in "
    "usage.completion_tokens_details.reasoning_tokens (more than zero).",
    rationale="the detail is optional in the spec; a bill that hides reasoning misleads",
    needs=(SSE_STREAM, REASONING_SEEN),
    broken_by={"reasoning_tokens_unreported": "reasoning_tokens 0"},
)
def test_tokens_reported(thinking):
    judged = [e for e in (thinking.plain, thinking.stream) if e.usage and _visible_reasoning(e)]
    REASONING_SEEN.require(
        judged, "no reply with usage carried reasoning text at the judging effort"
    )
    for exchange in judged:
        reported = _reasoning_tokens(exchange.usage)
        expect(
            bool(reported),
            "completion_tokens_details.reasoning_tokens > 0 beside reasoning text",
            f"reasoning_tokens {reported or 0} in '{exchange.label}', which carried reasoning",
            exchange,
        )


@check(
    "reasoning.budget_counts_reasoning",
    "MUST",
    "The token limit bounds reasoning and visible tokens together (max_completion_tokens: "
    "'including visible output tokens and reasoning tokens'): completion_tokens, which count "
    "the reasoning, never exceed the limit sent.",
    rationale="budgets and bills rest on the limit",
    needs=(REASONING_SEEN, USAGE_COUNTS),
    broken_by={"reasoning_outside_budget": "> the limit"},
)
def test_budget_counts_reasoning(reasoned):
    exchange = reasoned["exhausted"]
    REASONING_SEEN.require(exchange, "none at preflight, so there is no reasoning budget to use up")
    ok_json(exchange)
    usage = exchange.usage or {}
    completion = usage.get("completion_tokens")
    USAGE_COUNTS.require(
        isinstance(completion, int) and not isinstance(completion, bool),
        f"completion_tokens {short(completion)}",
    )
    field_name, limit = sent_limit(exchange)
    expect(
        completion <= limit,
        f"completion_tokens <= {field_name} {limit}",
        f"completion_tokens {completion} > the limit {limit} "
        f"(reasoning_tokens {_reasoning_tokens(usage)})",
        exchange,
    )


#: Efforts at which OpenAI's reasoning models always reason ("none" / "minimal" may not).
REASONING_EFFORTS_THAT_REASON = ("medium", "high")


@check(
    "reasoning.effort_needs_reasoning",
    "SHOULD",
    "reasoning_effort constrains reasoning models only: a model that does not reason rejects "
    "it with a 400 naming reasoning_effort (as OpenAI's gpt-4o does), rather than accept "
    "medium or high effort and show no reasoning at all.",
    rationale=(
        "accepted and ignored: the caller's effort does nothing, silently; SHOULD, not MUST, "
        "because the answer itself is still a valid completion"
    ),
    broken_by={"reasoning_effort_ignored": "accepted and ignored: HTTP 200 for"},
)
def test_effort_needs_reasoning(reasoned):
    if dialect.current().reasoning:
        not_applicable("the model reasons, so reasoning_effort has something to act on")
    accepted = [e for e in REASONING_EFFORTS_THAT_REASON if (x := reasoned.get(e)) and x.ok]
    shown = [e for e in accepted if any(dialect.reasoning_seen(reasoned[e].json))]
    if shown:
        not_applicable(f"reasoning seen with reasoning_effort {shown}, not at preflight")
    expect(
        not accepted,
        "reasoning_effort medium / high rejected with a 400 naming it (the model shows no "
        "reasoning), as OpenAI's non-reasoning models answer",
        f"accepted and ignored: HTTP 200 for {accepted}, with no reasoning_tokens and no "
        "reasoning text",
        *(reasoned[e] for e in accepted),
    )
