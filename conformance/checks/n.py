"""n.*: several choices per request, streamed and counted in usage."""

from __future__ import annotations

from typing import Any

from conformance.exchanges.expect import choices_of, ok_json, ok_stream, streamed_content
from conformance.exchanges.requests import sent_limit
from conformance.exchanges.sampling import N
from conformance.verdicts.check import SSE_CLIENTS, check, expect, short
from conformance.verdicts.premises import (
    N_CHOICES,
    N_STREAM_CHOICES,
    STREAM_CHOICES,
    USAGE_CHUNK,
    USAGE_COUNTS,
)


@check(
    "n.choices",
    "MUST",
    "n: How many chat completion choices to generate for each input message; choices has "
    "n entries with index 0..n-1.",
    capability="n",
    rationale="n is the caller's request; one choice for n=2 is a silent wrong answer",
    broken_by={
        "index_as_string": "got ['0', '1']",
        "index_from_one": "got [1, 2]",
        "ignore_n": "got [0]",
    },
)
def test_n_choices(sampled, capabilities):
    capabilities.gate("n", sampled["n"])
    indices = [c.get("index") for c in choices_of(ok_json(sampled["n"]))]
    capabilities.effect(
        "n", len(indices) == N, f"n={N} gave {len(indices)} choice(s)", sampled["n"]
    )
    expect(
        indices == list(range(N)),
        f"choices with index {list(range(N))}",
        short(indices),
        sampled["n"],
    )


@check(
    "n.stream_choices",
    "MUST",
    "Streamed with n > 1, every choice index appears, starts with role 'assistant' and gets "
    "exactly one finish_reason.",
    capability="n",
    rationale=SSE_CLIENTS,
    broken_by={
        "usage_chunk_with_choices": "exactly one finish_reason; got [",
        "no_finish_reason": "exactly one finish_reason; got []",
        "no_role": "first delta with role",
        "two_finish_reasons": "exactly one finish_reason; got [",
        "ignore_n": "deltas for choice 1; got none",
        "n_stream_role_only_first": "choice 1: first delta with role",
    },
    needs=(STREAM_CHOICES,),
)
def test_n_stream_choices(sampled, capabilities):
    exchange = sampled["n_stream"]
    capabilities.gate("n", exchange)
    chunks = ok_stream(exchange)
    STREAM_CHOICES.require(any(choices_of(c) for c in chunks), f"the n={N} stream")
    for index in range(N):
        entries = [c for chunk in chunks for c in choices_of(chunk) if c.get("index") == index]
        expect(bool(entries), f"deltas for choice {index}", "none", exchange)
        first = entries[0].get("delta") or {}
        expect(
            first.get("role") == "assistant",
            f"choice {index}: first delta with role",
            short(first),
            exchange,
        )
        reasons = [c["finish_reason"] for c in entries if c.get("finish_reason")]
        expect(
            len(reasons) == 1,
            f"choice {index}: exactly one finish_reason",
            short(reasons),
            exchange,
        )


@check(
    "n.usage_counts_all_choices",
    "MUST",
    "usage.completion_tokens counts the tokens of every choice: with n=2 and both choices cut "
    "at max_tokens, it is n x max_tokens.",
    capability="n",
    needs=(N_CHOICES, USAGE_COUNTS),
    rationale="billing and budgets read completion_tokens",
    broken_by={
        "completion_tokens_one": "(every choice counted); got 1",
        "usage_off_by_one_when_cut": "(every choice counted); got 9",
        "constant_usage": "(every choice counted); got 5",
        "completion_tokens_zero": "(every choice counted); got 0",
        "usage_zero": "(every choice counted); got 0",
        "usage_over_max_tokens": "(every choice counted); got 11",
        "usage_counts_one_choice": "(every choice counted); got 5",
    },
)
def test_n_usage(sampled, capabilities):
    exchange = sampled["n"]
    capabilities.gate("n", exchange)
    choices = choices_of(ok_json(exchange))
    N_CHOICES.require(len(choices) == N, f"n={N} gave {len(choices)}")
    tokens = (exchange.usage or {}).get("completion_tokens")
    _require_count(tokens, "the n > 1 completion")
    expected, exact = _n_tokens(
        [(c.get("finish_reason"), (c.get("message") or {}).get("content")) for c in choices],
        sent_limit(exchange)[1],
    )
    expect(
        tokens == expected if exact else isinstance(tokens, int) and tokens >= expected,
        f"completion_tokens {'==' if exact else '>='} {expected} (every choice counted)",
        short(tokens),
        exchange,
    )


def _require_count(tokens: Any, where: str) -> None:
    """A missing or non-integer completion_tokens is usage.present's verdict (or the chunk
    schema's), not a miscount of the choices: nothing to compare, not applicable."""
    USAGE_COUNTS.require(
        isinstance(tokens, int) and not isinstance(tokens, bool),
        f"completion_tokens {short(tokens)} on {where}",
    )


def _n_tokens(choices: list[tuple[Any, Any]], limit: int) -> tuple[int, bool]:
    """What completion_tokens must be for (finish_reason, content) pairs: ``limit`` (the token
    limit sent, reasoning headroom included: the limit bounds reasoning and output together)
    for each choice cut at it, at least 1 for any other with content; exact only when every
    choice was cut. At temperature 1 a small model may stop a choice early, which still
    leaves a lower bound that a server counting one choice only falls below."""
    cut = sum(1 for finish, _ in choices if finish == "length")
    others = sum(1 for finish, text in choices if finish != "length" and text)
    return cut * limit + others, cut == len(choices)


@check(
    "n.stream_usage_once",
    "MUST",
    "Streamed with n > 1 and stream_options.include_usage, exactly one usage chunk is sent, "
    "last, for the whole request (every choice), not one per choice.",
    capability="n",
    rationale="clients sum or take the one usage chunk; several double-bill",
    needs=(N_STREAM_CHOICES, USAGE_CHUNK, USAGE_COUNTS),
    broken_by={
        "completion_tokens_one": "(every choice counted); got 1",
        "usage_off_by_one_when_cut": "(every choice counted); got 9",
        "constant_usage": "(every choice counted); got 5",
        "completion_tokens_zero": "(every choice counted); got 0",
        "usage_zero": "(every choice counted); got 0",
        "stream_usage_differs": "(every choice counted); got 11",
        "usage_over_max_tokens": "(every choice counted); got 11",
        "usage_on_every_chunk": "one usage chunk, the last; got usage on chunks [0, 1",
        "usage_chunk_not_last": "one usage chunk, the last; got usage on chunks [",
        "usage_chunk_per_choice": "one usage chunk, the last; got usage on",
        "usage_counts_one_choice": "(every choice counted); got 5",
    },
)
def test_n_stream_usage(sampled, capabilities):
    exchange = sampled["n_stream"]
    capabilities.gate("n", exchange)
    chunks = ok_stream(exchange)
    carrying = [i for i, chunk in enumerate(chunks) if isinstance(chunk.get("usage"), dict)]
    USAGE_CHUNK.require(carrying, "in the n > 1 stream")
    expect(
        carrying == [len(chunks) - 1],
        "one usage chunk, the last",
        f"usage on chunks {carrying} of {len(chunks)}",
        exchange,
    )
    finishes: dict[Any, Any] = {}
    for chunk in chunks:
        for choice in choices_of(chunk):
            if choice.get("finish_reason"):
                finishes[choice.get("index")] = choice["finish_reason"]
    N_STREAM_CHOICES.require(
        len(finishes) >= N, f"n={N} streamed {len(finishes)} finished choice(s)"
    )
    pairs = [(finishes.get(i), streamed_content(chunks, i)) for i in range(N)]
    expected, exact = _n_tokens(pairs, sent_limit(exchange)[1])
    tokens = chunks[-1]["usage"].get("completion_tokens")
    _require_count(tokens, "the n > 1 stream")
    expect(
        tokens == expected if exact else isinstance(tokens, int) and tokens >= expected,
        f"completion_tokens {'==' if exact else '>='} {expected} (every choice counted)",
        short(tokens),
        exchange,
    )
