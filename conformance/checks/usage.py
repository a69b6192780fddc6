"""usage.*: token accounting on JSON responses and on streams with include_usage."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.exchanges.expect import choices_of, ok_json, ok_stream
from conformance.exchanges.requests import sent_limit
from conformance.verdicts.check import check, expect, not_applicable, short
from conformance.verdicts.premises import USAGE_CHUNK, USAGE_COUNTS

COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


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
        "usage_counts_as_strings": {"non-streamed": "non-negative integer token counts"},
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
    broken_by={"cached_exceeds_prompt": "got {'cached_tokens': 24}"},
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
    broken_by={"usage_chunk_unrequested": "got usage on chunk(s)"},
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
    broken_by={"stream_usage_differs": "'completion_tokens': 12"},
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
