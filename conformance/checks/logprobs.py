"""logprobs.*: log probabilities and top_logprobs, plain and streamed."""

from __future__ import annotations

import math

from conformance.exchanges.expect import (
    choices_of,
    expect_rejected,
    first_choice,
    message_of,
    ok_json,
    ok_stream,
)
from conformance.exchanges.logprobs import TOP, entries_if_any
from conformance.exchanges.logprobs import logprob_entries as _entries
from conformance.verdicts.check import CLIENTS_PARSE, check, expect, not_applicable, short
from conformance.verdicts.premises import CONTENT_STRING, LOGPROB_ENTRIES


def _entry_problems(entry) -> list[str]:
    problems = []
    if not isinstance(entry, dict):
        return [f"entry is {type(entry).__name__}"]
    if not isinstance(entry.get("token"), str):
        problems.append("token is not a string")
    if not isinstance(entry.get("logprob"), (int, float)):
        problems.append("logprob is not a number")
    if not (entry.get("bytes") is None or isinstance(entry.get("bytes"), list)):
        problems.append("bytes is neither a list nor null")
    if not isinstance(entry.get("top_logprobs"), list):
        problems.append("top_logprobs is not a list")
    return problems


@check(
    "logprobs.structure",
    "MUST",
    "logprobs: {content: [{token, logprob, bytes, top_logprobs}]} for every output token.",
    capability="logprobs",
    rationale=CLIENTS_PARSE,
    broken_by={
        "ignore_logprobs": "logprobs = {content: [...]}; got None",
        "logprobs_empty": "a non-empty content list",
        "logprobs_entry_malformed": "top_logprobs is not a list",
        "unsupported_param_500": "HTTP 500",
    },
)
def test_structure(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    logprobs = first_choice(ok_json(logprobbed["plain"])).get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    capabilities.effect("logprobs", bool(content), "logprobs: true", logprobbed["plain"])
    entries = _entries(logprobbed["plain"])
    expect(bool(entries), "a non-empty content list", "[]", logprobbed["plain"])
    problems = [(i, p) for i, e in enumerate(entries) if (p := _entry_problems(e))]
    expect(not problems, "well-formed entries", short(problems), logprobbed["plain"])


@check(
    "logprobs.values_valid",
    "MUST",
    "logprob: The log probability of this token: finite and <= 0 (top alternatives too).",
    capability="logprobs",
    rationale="a positive log probability is not a probability",
    broken_by={"logprob_positive": "('Every', 0.5)"},
    needs=(LOGPROB_ENTRIES,),
)
def test_values(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    bad = []
    for entry in entries_if_any(logprobbed["plain"]):
        for item in [entry, *(entry.get("top_logprobs") or [])]:
            value = item.get("logprob") if isinstance(item, dict) else None
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value > 0:
                bad.append((item.get("token") if isinstance(item, dict) else item, value))
    expect(not bad, "every logprob finite and <= 0", short(bad), logprobbed["plain"])


@check(
    "logprobs.bytes_match_tokens",
    "MUST",
    "bytes: the UTF-8 bytes of the token (for tokens that are whole characters, they decode "
    "to the token).",
    capability="logprobs",
    rationale="clients rebuild text from bytes; wrong bytes corrupt it",
    broken_by={"logprob_bytes_wrong": "('Every', [69, 0, 118"},
    needs=(LOGPROB_ENTRIES,),
)
def test_bytes(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    bad, judged = [], 0
    for entry in entries_if_any(logprobbed["plain"]):
        raw = entry.get("bytes")
        if not isinstance(raw, list):
            continue
        try:
            text = bytes(raw).decode("utf-8")
        except (ValueError, TypeError):
            continue  # a partial UTF-8 sequence: only the concatenation must decode
        judged += 1
        if text != entry.get("token"):
            bad.append((entry.get("token"), raw))
    if not judged:
        not_applicable("no entry carries bytes that decode on their own")
    expect(not bad, "bytes == UTF-8 of token", short(bad), logprobbed["plain"])


@check(
    "logprobs.concatenate_to_content",
    "MUST",
    "The tokens (their bytes, where a character spans tokens) concatenate to the message content.",
    capability="logprobs",
    rationale="logprobs that describe other text are wrong data",
    broken_by={"logprob_bytes_wrong": "got 'E\\x00v", "logprobs_tokens_mismatch": "got ' bogus"},
    needs=(LOGPROB_ENTRIES, CONTENT_STRING),
)
def test_concatenate(logprobbed, capabilities):
    exchange = logprobbed["plain"]
    capabilities.gate("logprobs", exchange)
    entries = entries_if_any(exchange)
    content = message_of(exchange).get("content")
    CONTENT_STRING.require(isinstance(content, str), f"content {short(content, 80)}")
    if all(isinstance(e.get("bytes"), list) for e in entries):
        joined = b"".join(bytes(e["bytes"]) for e in entries).decode("utf-8", "replace")
    else:
        joined = "".join(str(e.get("token", "")) for e in entries)
    expect(joined == content, f"{short(content)}", short(joined), exchange)


@check(
    "logprobs.top_logprobs_bounded_sorted",
    "MUST",
    "top_logprobs: at most the requested number of most likely tokens, most likely first.",
    capability="logprobs",
    rationale="clients take the first entry as the most likely",
    broken_by={
        "logprobs_entry_malformed": "sorted by logprob descending; got",
        "top_logprobs_unsorted": "sorted by logprob",
        "top_logprobs_too_many": "-30.0, -30.0",
        "top_logprobs_ignored": "got [('Every', [])",
    },
    needs=(LOGPROB_ENTRIES,),
)
def test_top(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    bad = []
    for entry in entries_if_any(logprobbed["plain"]):
        values = [t.get("logprob") for t in entry.get("top_logprobs") or [] if isinstance(t, dict)]
        numeric = [v for v in values if isinstance(v, (int, float))]
        if not values or len(values) > TOP or numeric != sorted(numeric, reverse=True):
            bad.append((entry.get("token"), values))
    expect(
        not bad,
        f"1 to {TOP} alternatives (top_logprobs={TOP} was asked), sorted by logprob descending",
        short(bad),
        logprobbed["plain"],
    )


@check(
    "logprobs.streamed_per_chunk",
    "MUST",
    "Streamed, every chunk that carries content carries the logprobs of that content.",
    capability="logprobs",
    rationale="streaming clients attach logprobs per delta",
    broken_by={
        "content_after_finish": "missing on chunks [",
        "logprobs_missing_in_stream": "missing on chunks [1",
    },
    needs=(LOGPROB_ENTRIES,),
)
def test_streamed(logprobbed, capabilities):
    exchange = logprobbed["stream"]
    capabilities.gate("logprobs", exchange)
    # no logprobs even without streaming: logprobs.structure's failure, nothing to compare
    capabilities.gate("logprobs", logprobbed["plain"])
    entries_if_any(logprobbed["plain"])
    missing, judged = [], 0
    for number, chunk in enumerate(ok_stream(exchange)):
        for choice in choices_of(chunk):
            delta = choice.get("delta") or {}
            if delta.get("content"):
                judged += 1
                block = choice.get("logprobs")
                if not (isinstance(block, dict) and block.get("content")):
                    missing.append(number)
    if not judged:
        not_applicable("the stream carried no content to attach logprobs to")
    expect(
        not missing,
        "logprobs.content on every content chunk",
        f"missing on chunks {short(missing)}",
        exchange,
    )


@check(
    "logprobs.top_without_logprobs_rejected",
    "SHOULD",
    "top_logprobs requires logprobs: true; OpenAI answers 400 otherwise.",
    capability="logprobs",
    rationale="validation OpenAI does; harmless if skipped",
    broken_by={"top_logprobs_unvalidated": "expected HTTP 400; got HTTP 200"},
)
def test_top_without_logprobs(logprobbed, capabilities):
    capabilities.skip_if_absent("logprobs")
    exchange = logprobbed["top_only"]
    expect_rejected(exchange)


@check(
    "logprobs.top_above_20_rejected",
    "SHOULD",
    "top_logprobs: An integer between 0 and 20; 21 is rejected with 400.",
    capability="logprobs",
    rationale="validation OpenAI does; accepting 21 harms no client",
    broken_by={"top_logprobs_unvalidated": "expected HTTP 400; got HTTP 200"},
)
def test_top_above_20(logprobbed, capabilities):
    capabilities.skip_if_absent("logprobs")
    exchange = logprobbed["top_21"]
    expect_rejected(exchange)
