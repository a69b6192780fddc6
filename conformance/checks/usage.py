"""usage.*: token accounting on JSON responses and on streams with include_usage."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.api import dialect
from conformance.exchanges.expect import choices_of, message_of, ok_json, ok_stream
from conformance.exchanges.limits import CHARS_PER_TOKEN_MAX, FIELDS, MODES, usage_and_finish
from conformance.exchanges.requests import PROMPT, chat_body, sent_limit
from conformance.exchanges.sampling import N
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import check, expect, not_applicable, short
from conformance.verdicts.premises import CONTENT_STRING, USAGE_CHUNK, USAGE_COUNTS

COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
#: Tokens that spell no text (end of turn, role markers) a server may count in the output.
TOKEN_SLACK = 8


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _usage_or_fail(exchange) -> dict:
    usage = exchange.usage
    where = f"the {exchange.label}"  # several exchanges share this helper: name the one
    expect(isinstance(usage, dict), f"a usage object on {where}", f"usage {short(usage)}", exchange)
    bad = {k: usage.get(k) for k in COUNTS if not _is_count(usage.get(k))}
    expect(not bad, f"non-negative integer token counts on {where}", short(bad), exchange)
    return usage


def _usage_leaned(exchange) -> dict:
    """The usage of an exchange a check only leans on: a missing or malformed usage is
    usage.present's verdict (``USAGE_COUNTS``), never this check's failure."""
    usage = exchange.usage
    USAGE_COUNTS.require(
        isinstance(usage, dict) and all(_is_count(usage.get(k)) for k in COUNTS),
        f"on the {exchange.label}: {short(usage, 120)}",
    )
    return usage


@check(
    "usage.present",
    "MUST",
    "usage: Usage statistics for the completion request (present on non-streamed responses; "
    "clients bill and budget with it).",
    rationale=(
        "Spec-optional (usage): MUST because OpenAI always sends it and every "
        "billing, budget and rate-limit client reads it"
    ),
    broken_by={
        "no_usage": "a usage object; got None",
        "usage_counts_as_strings": "non-negative integer token counts",
    },
)
def test_present(shared):
    body = ok_json(shared.plain)
    expect(
        isinstance(body.get("usage"), dict),
        "a usage object",
        short(body.get("usage")),
        shared.plain,
    )
    _usage_or_fail(shared.plain)


@check(
    "usage.total_is_sum",
    "MUST",
    "total_tokens: Total number of tokens used in the request (prompt + completion).",
    rationale="billing reads total_tokens",
    needs=(USAGE_CHUNK,),
    broken_by={
        "no_usage": {"non-streamed": "a usage object on the non-streamed completion"},
        "usage_total_wrong": "got total_tokens 37",
        "usage_counts_as_strings": "non-negative integer token counts",
    },
)
@pytest.mark.parametrize("which", ["non-streamed", "streamed"])
def test_total_is_sum(shared, capabilities, which):
    if which == "non-streamed":
        exchange = shared.plain
        ok_json(exchange)
    else:
        exchange = _usage_stream(shared, capabilities)
        ok_stream(exchange)
        USAGE_CHUNK.require(exchange.usage is not None)
    usage = _usage_or_fail(exchange)
    total = usage["prompt_tokens"] + usage["completion_tokens"]
    expect(
        usage["total_tokens"] == total,
        f"total_tokens == {total}",
        f"total_tokens {usage['total_tokens']} (prompt {usage['prompt_tokens']}, "
        f"completion {usage['completion_tokens']})",
        exchange,
    )


@check(
    "usage.within_max_tokens",
    "MUST",
    "completion_tokens never exceeds max_tokens x n (max_tokens bounds the generated "
    "tokens of each choice).",
    needs=(USAGE_COUNTS,),
    rationale="the caller's cost bound, as billed",
    broken_by={"usage_over_max_tokens": "; got 25"},
)
def test_within_max_tokens(shared):
    ok_json(shared.plain)
    usage = _usage_leaned(shared.plain)
    field, limit = sent_limit(shared.plain)
    expect(
        usage["completion_tokens"] <= limit,
        f"completion_tokens <= {limit} (the {field} sent)",
        str(usage["completion_tokens"]),
        shared.plain,
    )


@check(
    "usage.details_within_totals",
    "MUST",
    "prompt_tokens_details / completion_tokens_details break the totals down: no detail "
    "exceeds its total.",
    rationale="a detail above its total is a wrong bill",
    needs=(
        USAGE_COUNTS,
        USAGE_CHUNK,
    ),
    broken_by={
        "reasoning_tokens_exceed_completion": "got {'reasoning_tokens': ",
        "cached_exceeds_prompt": "got {'cached_tokens': 24}",
    },
)
def test_details_within_totals(shared):
    judged = 0
    stream = shared.stream_usage
    # the include_usage stream counts only when it carries usage: a rejected stream or one
    # without a usage chunk is another check's verdict (usage.stream_one_usage_chunk)
    counted = stream is not None and stream.ok and stream.usage is not None
    for exchange in (shared.plain, stream) if counted else (shared.plain,):
        usage = _usage_leaned(exchange)
        for details_key, total_key in (
            ("prompt_tokens_details", "prompt_tokens"),
            ("completion_tokens_details", "completion_tokens"),
        ):
            details = usage.get(details_key) or {}
            if not isinstance(details, dict):
                continue  # the schema checks report a wrong type
            judged += len(details)
            over = {k: v for k, v in details.items() if _is_count(v) and v > usage[total_key]}
            expect(
                not over,
                f"every {details_key} value <= {total_key} ({usage[total_key]})",
                short(over),
                exchange,
            )
    if not judged:
        USAGE_CHUNK.require(counted or stream is None or not stream.ok, "nor on the JSON reply")
        not_applicable("no prompt_tokens_details / completion_tokens_details to compare")


def _usage_stream(shared, capabilities):
    """The include_usage stream, once the endpoint is known to take stream_options (a clean
    400 or a capability declared absent makes these checks unsupported, not failed)."""
    capabilities.gate("usage_in_stream", shared.stream_usage)
    return shared.stream_usage


def _no_usage_chunk() -> None:
    USAGE_CHUNK.unmet()


def _usage_chunks(exchange):
    return [(n, c) for n, c in enumerate(ok_stream(exchange)) if c.get("usage") is not None]


@check(
    "usage.stream_one_usage_chunk",
    "MUST",
    "With stream_options.include_usage, an additional chunk is streamed before data: [DONE] "
    "with the usage statistics for the entire request (exactly one).",
    rationale="include_usage is the only way to bill streams",
    broken_by={
        "ignore_max_completion_tokens_in_stream": "got 0 chunks with usage",
        "no_usage_chunk": "got 0 chunks with usage",
        "usage_on_every_chunk": "chunks with usage",
    },
)
def test_stream_one_usage_chunk(shared, capabilities):
    stream = _usage_stream(shared, capabilities)
    found = _usage_chunks(stream)
    expect(
        len(found) == 1,
        "exactly one chunk with a non-null usage",
        f"{len(found)} chunks with usage",
        stream,
    )


@check(
    "usage.stream_chunk_empty_choices",
    "MUST",
    "The usage chunk's choices field is always an empty array.",
    needs=(USAGE_CHUNK,),
    rationale="documented shape; clients tell it apart by []",
    broken_by={"usage_chunk_with_choices": "'finish_reason': 'stop'"},
)
def test_stream_chunk_empty_choices(shared, capabilities):
    stream = _usage_stream(shared, capabilities)
    found = _usage_chunks(stream)
    if not found:
        _no_usage_chunk()
    number, chunk = found[-1]
    expect(
        chunk.get("choices") == [],
        "choices == [] on the usage chunk",
        f"chunk {number} choices {short(chunk.get('choices'))}",
        stream,
    )


def _usage_chunk_position(shared, capabilities) -> tuple[Any, list[dict], int]:
    """(the include_usage stream, its chunks, the position of its last usage chunk)."""
    stream = _usage_stream(shared, capabilities)
    chunks = ok_stream(stream)
    found = _usage_chunks(stream)
    if not found:
        _no_usage_chunk()
    return stream, chunks, found[-1][0]


@check(
    "usage.stream_chunk_last",
    "MUST",
    'The usage chunk comes after every chunk with choices ("an additional chunk will be '
    'streamed before the data: [DONE] message"). OpenAI may follow it with choice-less chunks '
    "of opt-in features (moderation results), so only those may come after it.",
    needs=(USAGE_CHUNK,),
    rationale="documented position; clients take the last usage",
    broken_by={"usage_chunk_not_last": "after it carry choices"},
)
def test_stream_chunk_last(shared, capabilities):
    stream, chunks, last = _usage_chunk_position(shared, capabilities)
    later = [n for n, chunk in enumerate(chunks) if n > last and choices_of(chunk)]
    expect(
        not later,
        "no chunk with choices after the usage chunk",
        f"the usage chunk is chunk {last}; chunks {short(later)} after it carry choices",
        stream,
    )


@check(
    "usage.stream_null_elsewhere",
    "MUST",
    "All chunks but the usage chunk carry usage: null (or no usage key).",
    needs=(USAGE_CHUNK,),
    rationale="clients take the first usage they see",
    broken_by={"usage_on_every_chunk": "got usage on chunks [0, 1"},
)
def test_stream_null_elsewhere(shared, capabilities):
    stream, chunks, last = _usage_chunk_position(shared, capabilities)
    others = [n for n, c in enumerate(chunks) if n != last and c.get("usage") is not None]
    expect(
        not others,
        f"usage null or absent on every chunk but the usage chunk ({last})",
        f"usage on chunks {short(others)}",
        stream,
    )


@check(
    "usage.stream_absent_unrequested",
    "SHOULD",
    "Without stream_options.include_usage no usage chunk is sent (OpenAI sends none; "
    "clients that expect choices[0] on every chunk break on one).",
    rationale="clients reading choices[0] of every chunk break",
    broken_by={
        "usage_on_every_chunk": "got usage on chunk(s) [0",
        "usage_chunk_unrequested": "got usage on chunk(s)",
    },
)
def test_stream_absent_unrequested(shared):
    found = _usage_chunks(shared.stream)
    expect(
        not found,
        "no chunk with a usage object",
        f"usage on chunk(s) {short([n for n, _ in found])}",
        shared.stream,
    )


@check(
    "usage.stream_matches_non_streamed",
    "SHOULD",
    "Streamed usage equals the non-streamed usage for the same temperature-0 request.",
    rationale="two code paths may count slightly differently",
    needs=(
        USAGE_COUNTS,
        USAGE_CHUNK,
    ),
    broken_by={
        "temp0_nondeterministic": "expected streamed usage",
        "stream_usage_differs": "'completion_tokens': 12",
    },
)
def test_stream_matches_non_streamed(shared, capabilities):
    stream = _usage_stream(shared, capabilities)
    ok_stream(stream)
    USAGE_CHUNK.require(stream.usage is not None)
    plain = _usage_leaned(shared.plain)
    streamed = _usage_leaned(stream)
    a = {k: plain[k] for k in COUNTS}
    b = {k: streamed[k] for k in COUNTS}
    expect(a == b, f"streamed usage {a}", str(b), shared.plain, stream)


@check(
    "usage.completion_tokens_nonzero",
    "MUST",
    "completion_tokens counts the generated tokens: a non-empty answer to a prompt cannot "
    "cost zero tokens (a mock's all-zero usage breaks every budget built on it).",
    needs=(USAGE_COUNTS,),
    rationale="billing and budgets read it: zero is a wrong bill",
    broken_by={
        "usage_zero": "got prompt_tokens 0, completion_tokens 0",
        "completion_tokens_zero": "completion_tokens 0 for",
    },
)
def test_completion_tokens_nonzero(shared):
    body = ok_json(shared.plain)
    texts = [(c.get("message") or {}).get("content") for c in choices_of(body)]
    if not any(isinstance(t, str) and t for t in texts):
        not_applicable("the answer has no content, so zero completion tokens may be right")
    usage = _usage_leaned(shared.plain)
    expect(
        usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0,
        "completion_tokens > 0 and prompt_tokens > 0 for a non-empty answer to a prompt",
        f"prompt_tokens {usage['prompt_tokens']}, completion_tokens "
        f"{usage['completion_tokens']} for content {short(texts[0], 80)}",
        shared.plain,
    )


# --- effects (issue 15 item 5): usage is checked against what was asked and sent ---------
#: Padding that makes the long-prompt twin dozens of tokens longer on any tokenizer.
PADDING = " Please keep the greeting friendly, brief and free of any markup." * 3


@pytest.fixture(scope="session")
def long_prompt(endpoint):
    """The shared request's prompt with padding: its prompt_tokens must be higher."""
    messages = [{"role": "user", "content": PROMPT + PADDING}]
    body = chat_body(endpoint.model, messages=messages, max_tokens=4)
    return endpoint.transport.send(RequestSpec("the same prompt, padded", json=body))


@check(
    "usage.prompt_tokens_grow",
    "MUST",
    "prompt_tokens counts the prompt: the same prompt with three more sentences costs more "
    "prompt tokens.",
    rationale="a canned usage (the same numbers whatever is asked) is a wrong bill",
    broken_by={
        "usage_zero": "got prompt_tokens 0 for the padded prompt",
        "constant_usage": "; got prompt_tokens 10 for the padded prompt and 10",
    },
    needs=(USAGE_COUNTS,),
)
def test_prompt_tokens_grow(shared, long_prompt):
    ok_json(long_prompt)
    short_count = _usage_leaned(shared.plain)["prompt_tokens"]
    long_count = _usage_leaned(long_prompt)["prompt_tokens"]
    expect(
        long_count > short_count,
        f"more prompt_tokens for the padded prompt ({len(PADDING)} more characters)",
        f"prompt_tokens {long_count} for the padded prompt and {short_count} without padding",
        long_prompt,
        shared.plain,
    )


def _single_limited(limited, capabilities):
    """The first non-streamed limit exchange answered 200 (n=1, cut at LIMIT), or None."""
    for field in FIELDS:
        exchange = limited.get((field, MODES[0]))
        if exchange is not None and exchange.ok and field not in capabilities.absent:
            return exchange
    return None


@check(
    "usage.length_spends_limit",
    "MUST",
    'With n=1, finish_reason "length" means the output reached the token limit: '
    "completion_tokens equals the limit sent (reasoning tokens count inside it).",
    rationale="the limit is the bill of a cut answer; one short (FastChat) under-bills",
    broken_by={
        "completion_tokens_one": "(the max_tokens sent); got 1",
        "completion_tokens_zero": "(the max_tokens sent); got 0",
        "usage_zero": "(the max_tokens sent); got 0",
        "usage_over_max_tokens": "(the max_tokens sent); got 6",
        "usage_off_by_one_when_cut": "(the max_tokens sent); got 4",
    },
    needs=(USAGE_COUNTS,),
)
def test_length_spends_limit(limited, capabilities):
    exchange = _single_limited(limited, capabilities)
    if exchange is None:
        not_applicable("no token-limit request was answered 200")
    _, finish = usage_and_finish(exchange, MODES[0])
    if finish != "length":
        not_applicable(f"the output ended with {finish!r}, not cut by the limit")
    field, limit = sent_limit(exchange)
    tokens = _usage_leaned(exchange)["completion_tokens"]
    expect(
        tokens == limit, f"completion_tokens == {limit} (the {field} sent)", str(tokens), exchange
    )


@check(
    "usage.prompt_tokens_once_for_n",
    "MUST",
    "prompt_tokens counts the prompt once: n choices share one prompt, so n=2 costs the same "
    "prompt_tokens as n=1.",
    capability="n",
    rationale="the prompt is read once; billing it n times (FastChat) over-bills",
    broken_by={"prompt_tokens_times_n": "prompt_tokens <= "},
    needs=(USAGE_COUNTS,),
)
def test_prompt_tokens_once_for_n(sampled, limited, capabilities):
    capabilities.gate("n", sampled["n"])
    single = _single_limited(limited, capabilities)
    if single is None:
        not_applicable("no n=1 request of the same prompt was answered 200")
    once = _usage_leaned(single)["prompt_tokens"]
    with_n = _usage_leaned(sampled["n"])["prompt_tokens"]
    expect(
        with_n <= once,
        f"prompt_tokens <= {once} (the same prompt with n=1)",
        f"prompt_tokens {with_n} with n={N}",
        sampled["n"],
        single,
    )


def _shown_text(exchange) -> str:
    """Content plus any visible reasoning of choice 0: every character the tokens spelled."""
    message = (choices_of(ok_json(exchange)) or [{}])[0].get("message") or {}
    keys = ("content", "reasoning_content", "reasoning")
    return "".join(v for k in keys if isinstance(v := message.get(k), str))


@check(
    "usage.completion_tokens_plausible",
    "MUST",
    "completion_tokens matches the text: at least one token per "
    f"{CHARS_PER_TOKEN_MAX} characters shown, and (less reported reasoning tokens) at most "
    f"one per UTF-8 byte plus {TOKEN_SLACK} for special tokens.",
    rationale=(
        "bounds no real tokenizer breaks (no token spells more than "
        f"{CHARS_PER_TOKEN_MAX} characters of prose; none spells less than a byte); hidden "
        "reasoning is subtracted when reported (reasoning_tokens, as OpenAI does), and the "
        "upper bound is not judged when reasoning was seen but its tokens not reported"
    ),
    broken_by={
        "completion_tokens_zero": "got completion_tokens 0",
        "usage_zero": "got completion_tokens 0",
        "completion_tokens_one": "; got completion_tokens 1 for",
    },
    needs=(USAGE_COUNTS, CONTENT_STRING),
)
def test_completion_tokens_plausible(shared):
    text = _shown_text(shared.plain)
    content = message_of(shared.plain).get("content")
    # no string content and nothing else shown: response.content_string's failure, no text
    # to measure the count against
    CONTENT_STRING.require(isinstance(content, str) or text, f"content {short(content, 80)}")
    usage = _usage_leaned(shared.plain)
    details = usage.get("completion_tokens_details")
    hidden = details.get("reasoning_tokens") if isinstance(details, dict) else None
    visible = usage["completion_tokens"] - (hidden if _is_count(hidden) else 0)
    low, high = -(-len(text) // CHARS_PER_TOKEN_MAX), len(text.encode()) + TOKEN_SLACK
    if dialect.current().reasoning and not _is_count(hidden):
        high = usage["completion_tokens"]  # unreported hidden reasoning: no upper bound to hold
    expect(
        usage["completion_tokens"] >= low and visible <= high,
        f"between {low} and {high} completion tokens (less reasoning) for {len(text)} characters",
        f"completion_tokens {usage['completion_tokens']} for {short(text, 80)} (reasoning "
        f"tokens {hidden})",
        shared.plain,
    )
