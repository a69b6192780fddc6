"""logprobs / top_logprobs and logit_bias."""

from __future__ import annotations

import math

import pytest

from conformance.exchanges.shared import (
    Planned,
    chat_body,
    choices_of,
    expect_rejected,
    first_choice,
    message_of,
    ok_json,
    ok_stream,
    send_batch,
)
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import check, expect, not_applicable, short

TOP = 3
#: OpenAI documents integer values; clients also send floats (JSON has no distinction).
BIAS_FORMS = {"integer": -100, "float": -100.0}


@pytest.fixture(scope="session")
def logprobbed(endpoint, capabilities):
    model = endpoint.model
    asked = {"logprobs": True, "top_logprobs": TOP}
    plan = {
        "plain": Planned("logprobs", RequestSpec("logprobs", json=chat_body(model, **asked))),
        "stream": Planned(
            "logprobs",
            RequestSpec("logprobs, streamed", json=chat_body(model, stream=True, **asked)),
        ),
        "top_only": Planned(
            "logprobs",
            RequestSpec("top_logprobs without logprobs", json=chat_body(model, top_logprobs=2)),
        ),
        "top_21": Planned(
            "logprobs",
            RequestSpec("top_logprobs=21", json=chat_body(model, logprobs=True, top_logprobs=21)),
        ),
        "bias_101": Planned(
            "logit_bias",
            RequestSpec("logit_bias 101", json=chat_body(model, logit_bias={"10": 101})),
        ),
    }
    for form, value in BIAS_FORMS.items():
        plan[("bias", form)] = Planned(
            "logit_bias",
            RequestSpec(
                f"logit_bias -100 as {form}", json=chat_body(model, logit_bias={"10": value})
            ),
        )
    return send_batch(endpoint, capabilities, plan)


def _entries(exchange) -> list:
    """choices[0].logprobs.content of a JSON exchange (failing if absent or malformed)."""
    choice = first_choice(ok_json(exchange))
    block = choice.get("logprobs")
    expect(
        isinstance(block, dict) and isinstance(block.get("content"), list),
        "choices[0].logprobs = {content: [...]}",
        short(block),
        exchange,
    )
    return block["content"]


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
)
def test_structure(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    entries = _entries(logprobbed["plain"])
    expect(bool(entries), "a non-empty content list", "[]", logprobbed["plain"])
    problems = [(i, p) for i, e in enumerate(entries) if (p := _entry_problems(e))]
    expect(not problems, "well-formed entries", short(problems), logprobbed["plain"])


@check(
    "logprobs.values_valid",
    "MUST",
    "logprob: The log probability of this token: finite and <= 0 (top alternatives too).",
    capability="logprobs",
)
def test_values(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    bad = []
    for entry in _entries(logprobbed["plain"]):
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
)
def test_bytes(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    bad, judged = [], 0
    for entry in _entries(logprobbed["plain"]):
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
)
def test_concatenate(logprobbed, capabilities):
    exchange = logprobbed["plain"]
    capabilities.gate("logprobs", exchange)
    entries = _entries(exchange)
    content = message_of(exchange).get("content") or ""
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
)
def test_top(logprobbed, capabilities):
    capabilities.gate("logprobs", logprobbed["plain"])
    bad = []
    for entry in _entries(logprobbed["plain"]):
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
)
def test_streamed(logprobbed, capabilities):
    exchange = logprobbed["stream"]
    capabilities.gate("logprobs", exchange)
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
)
def test_top_above_20(logprobbed, capabilities):
    capabilities.skip_if_absent("logprobs")
    exchange = logprobbed["top_21"]
    expect_rejected(exchange)


@check(
    "logit_bias.range_validated",
    "SHOULD",
    "logit_bias values range from -100 to 100; 101 is rejected with 400.",
    capability="logit_bias",
)
def test_logit_bias_range(logprobbed, capabilities):
    capabilities.skip_if_absent("logit_bias")
    exchange = logprobbed["bias_101"]
    expect_rejected(exchange)


@check(
    "logit_bias.bans_token",
    "MUST",
    "logit_bias -100 should result in a ban of the relevant token. Judged when the endpoint "
    "reveals token ids (an 'id' in logprobs entries, as llama.cpp and vLLM send); not "
    "applicable otherwise.",
    capability="logit_bias",
)
def test_logit_bias_bans(endpoint, capabilities, logprobbed):
    capabilities.skip_if_absent("logit_bias")
    capabilities.skip_if_absent("logprobs")
    capabilities.gate("logprobs", logprobbed["plain"])
    ids = [e.get("id") for e in _entries(logprobbed["plain"]) if isinstance(e.get("id"), int)]
    if not ids:
        not_applicable(
            "the endpoint does not reveal token ids, so no token can be targeted "
            "(logit_bias keys are tokenizer ids)"
        )
    banned = ids[0]
    body = chat_body(endpoint.model, logprobs=True, logit_bias={str(banned): -100})
    exchange = endpoint.transport.send(RequestSpec(f"logit_bias bans token {banned}", json=body))
    capabilities.gate("logit_bias", exchange)
    seen = [e.get("token") for e in _entries(exchange) if e.get("id") == banned]
    expect(
        not seen,
        f"token id {banned} never generated",
        f"generated as {short(seen)}",
        exchange,
        logprobbed["plain"],
    )


@check(
    "logit_bias.value_forms",
    "MUST",
    "logit_bias maps token ids to an integer bias (OpenAI's documented form; floats are the "
    "same JSON number to many clients): both forms are accepted, or cleanly rejected as "
    "unsupported, never a 5xx.",
    capability="logit_bias",
)
@pytest.mark.parametrize("form", list(BIAS_FORMS))
def test_logit_bias_forms(logprobbed, capabilities, form):
    exchange = logprobbed[("bias", form)]
    capabilities.gate("logit_bias", exchange)
    ok_json(exchange)
