"""n, seed, temperature and the numeric ranges of the sampling parameters."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.api import dialect
from conformance.api.rejections import says_unsupported
from conformance.exchanges.shared import (
    Planned,
    chat_body,
    choices_of,
    count_body,
    describe_status,
    expect_rejected,
    message_of,
    ok_json,
    ok_stream,
    send_batch,
    sent_limit,
    streamed_content,
)
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import check, expect, not_applicable, observe, short

N = 2
#: An answer that repeats one word, so that a penalty on repeats has something to change.
REPEAT_PROMPT = "Repeat after me: echo echo echo echo echo echo echo echo echo echo echo echo"
PENALTIES = ("presence_penalty", "frequency_penalty")
N_LIMIT = 5
IN_RANGE = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
}
OUT_OF_RANGE = {name: (low - 0.1, high + 0.1) for name, (low, high) in IN_RANGE.items()}
RANGE_CAPABILITY = {
    "temperature": "temperature",
    "top_p": "top_p",
    "presence_penalty": "penalties",
    "frequency_penalty": "penalties",
}
INSIDE = [f"{name}={value}" for name, values in IN_RANGE.items() for value in values]
OUTSIDE = [f"{name}={value:g}" for name, values in OUT_OF_RANGE.items() for value in values]


def _edge_body(model: str, case: str) -> dict:
    name, value = case.split("=")
    return chat_body(model, max_tokens=4, **{name: float(value)})


@pytest.fixture(scope="session")
def sampled(endpoint, capabilities):
    model = endpoint.model
    seeded = chat_body(model, temperature=1, seed=42, max_tokens=16)
    # n > 1 at temperature 1: vLLM rejects n > 1 with greedy sampling ("n must be 1 when using
    # greedy sampling"), which would read as "n unsupported" and skip every n check.
    n_body = count_body(model, 50, n=N, max_tokens=N_LIMIT, temperature=1)
    plan = {
        "n": Planned("n", RequestSpec("n=2", json=n_body)),
        "n_stream": Planned(
            "n",
            RequestSpec(
                "n=2, streamed with usage",
                json={**n_body, "stream": True, "stream_options": {"include_usage": True}},
            ),
        ),
        "seed_a": Planned("seed", RequestSpec("seed=42 (first)", json=seeded)),
        "seed_b": Planned("seed", RequestSpec("seed=42 (second)", json=seeded)),
        "seed_other": Planned("seed", RequestSpec("seed=43", json={**seeded, "seed": 43})),
    }
    if dialect.current().deterministic:  # else the endpoint fixed the temperature: no premise
        for key, which in (("greedy_a", "first"), ("greedy_b", "second")):
            plan[key] = Planned(
                None, RequestSpec(f"temperature=0 ({which})", json=chat_body(model))
            )
    for case in INSIDE + OUTSIDE:
        plan[case] = Planned(None, RequestSpec(case, json=_edge_body(model, case)))
    repeat = [{"role": "user", "content": REPEAT_PROMPT}]
    for number in (1, 2):  # the dialect's deterministic setting; twice to know it repeats
        body = chat_body(model, messages=repeat)
        plan[("unpenalized", number)] = Planned(
            "penalties", RequestSpec(f"repetitive answer, no penalty ({number})", json=body)
        )
    for name in PENALTIES:
        body = chat_body(model, messages=repeat, **{name: 2.0})
        plan[name] = Planned("penalties", RequestSpec(f"repetitive answer, {name} 2", json=body))
    return send_batch(endpoint, capabilities, plan)


@check(
    "n.choices",
    "MUST",
    "n: How many chat completion choices to generate for each input message; choices has "
    "n entries with index 0..n-1.",
    capability="n",
)
def test_n_choices(sampled, capabilities):
    capabilities.gate("n", sampled["n"])
    indices = [c.get("index") for c in choices_of(ok_json(sampled["n"]))]
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
)
def test_n_stream_choices(sampled, capabilities):
    exchange = sampled["n_stream"]
    capabilities.gate("n", exchange)
    chunks = ok_stream(exchange)
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
)
def test_n_usage(sampled, capabilities):
    exchange = sampled["n"]
    capabilities.gate("n", exchange)
    choices = choices_of(ok_json(exchange))
    tokens = (exchange.usage or {}).get("completion_tokens")
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
)
def test_n_stream_usage(sampled, capabilities):
    exchange = sampled["n_stream"]
    capabilities.gate("n", exchange)
    chunks = ok_stream(exchange)
    carrying = [i for i, chunk in enumerate(chunks) if isinstance(chunk.get("usage"), dict)]
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
    pairs = [(finishes.get(i), streamed_content(chunks, i)) for i in range(N)]
    expected, exact = _n_tokens(pairs, sent_limit(exchange)[1])
    tokens = chunks[-1]["usage"].get("completion_tokens")
    expect(
        tokens == expected if exact else isinstance(tokens, int) and tokens >= expected,
        f"completion_tokens {'==' if exact else '>='} {expected} (every choice counted)",
        short(tokens),
        exchange,
    )


def _content(exchange) -> str | None:
    return message_of(exchange).get("content")


@check(
    "seed.repeatable",
    "SHOULD",
    "seed: repeated requests with the same seed and parameters should return the same result "
    "(best effort; compare system_fingerprint).",
    capability="seed",
)
def test_seed_repeatable(sampled, capabilities):
    a, b = sampled["seed_a"], sampled["seed_b"]
    capabilities.gate("seed", a)
    fingerprints = {ok_json(x).get("system_fingerprint") for x in (a, b)}
    expect(
        _content(a) == _content(b),
        f"the same content twice: {short(_content(a))}",
        short(_content(b)),
        a,
        b,
        note=f"system_fingerprint {sorted(map(str, fingerprints))} (temperature 1, seed 42)",
    )


@check(
    "sampling.temperature0_repeatable",
    "SHOULD",
    "temperature 0 makes the output (nearly) deterministic: the same request twice gives the "
    "same content.",
)
def test_temperature0_repeatable(sampled):
    if not dialect.current().deterministic:
        not_applicable(
            "the endpoint does not accept temperature 0 (see the dialect), so there is no "
            "deterministic setting to repeat"
        )
    a, b = sampled["greedy_a"], sampled["greedy_b"]
    expect(
        _content(a) == _content(b),
        f"the same content twice: {short(_content(a))}",
        short(_content(b)),
        a,
        b,
    )


@check(
    "seed.different_seeds_differ",
    "INFO",
    "Different seeds at temperature 1 usually give different outputs.",
    capability="seed",
)
def test_different_seeds(sampled, capabilities):
    capabilities.gate("seed", sampled["seed_other"])
    same = _content(sampled["seed_a"]) == _content(sampled["seed_other"])
    observe("seeds 42 and 43 gave the same content" if same else "seeds 42 and 43 differ")


@check(
    "sampling.range_accepted",
    "MUST",
    "Values at the documented bounds are valid: temperature 0..2, top_p 0..1, presence and "
    "frequency penalties -2..2.",
)
@pytest.mark.parametrize("case", INSIDE)
def test_range_accepted(sampled, capabilities, case):
    exchange = sampled[case]
    name = case.split("=")[0]
    if says_unsupported(exchange, name):  # a model without the parameter, not wrong bounds
        capabilities.gate(RANGE_CAPABILITY[name], exchange)
    expect(exchange.ok, "HTTP 200", describe_status(exchange), exchange)


@check(
    "sampling.range_rejected",
    "MUST",
    "Values just outside the documented bounds are rejected with 400, not silently clamped "
    "or ignored.",
)
@pytest.mark.parametrize("case", OUTSIDE)
def test_range_rejected(sampled, case):
    exchange = sampled[case]
    expect_rejected(exchange)


@check(
    "sampling.range_error_names_field",
    "SHOULD",
    "The 400 for an out-of-range value names the field in error.param.",
)
@pytest.mark.parametrize("case", OUTSIDE)
def test_range_error_names_field(sampled, case):
    exchange = sampled[case]
    if not (exchange.status and exchange.status >= 400):
        not_applicable("the value was not rejected (sampling.range_rejected reports it)")
    body = exchange.json if isinstance(exchange.json, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    field = case.split("=")[0]
    expect(
        error.get("param") == field,
        f"error.param == {field!r}",
        short(error.get("param")),
        exchange,
    )


def repeats(text: str) -> bool:
    """Whether some word occurs at least twice (what a presence or frequency penalty acts on)."""
    words = [w.strip(".,!?;:'\"").lower() for w in text.split()]
    words = [w for w in words if w]
    return len(set(words)) < len(words)


@check(
    "sampling.penalty_effect",
    "MUST",
    "presence_penalty / frequency_penalty: positive values penalize tokens that already "
    "appeared. At 2.0, an answer that repeats a word must change (judged only when the "
    "answer without the penalty repeats, identically twice); a clean 400 naming the "
    "parameter is unsupported, accepted and ignored is a fail.",
    capability="penalties",
)
@pytest.mark.parametrize("name", PENALTIES)
def test_penalty_effect(sampled, capabilities, name):
    exchange = sampled[name]
    capabilities.gate("penalties", exchange)
    penalized = _content(exchange) or ""
    first, second = (_content(sampled[("unpenalized", n)]) or "" for n in (1, 2))
    if first != second:
        not_applicable("the same request without a penalty got two different answers")
    if not repeats(first):
        not_applicable(f"the answer without a penalty repeats no word ({short(first, 80)})")
    expect(
        penalized != first,
        f"an answer that differs from the one without {name} (it repeats words)",
        f"the same answer with {name} 2.0: {short(penalized)}",
        exchange,
        sampled[("unpenalized", 1)],
    )
