"""sampling.*: temperature 0 repeats, the numeric ranges of the sampling parameters, and
penalties that act."""

from __future__ import annotations

import pytest

from conformance.api import dialect
from conformance.api.rejections import says_unsupported
from conformance.exchanges.expect import describe_status, expect_rejected
from conformance.exchanges.sampling import (
    INSIDE,
    OUTSIDE,
    PENALTIES,
    RANGE_CAPABILITY,
)
from conformance.exchanges.sampling import (
    content_of as _content,
)
from conformance.verdicts.check import check, expect, not_applicable, short
from conformance.verdicts.premises import CONTENT_STRING, ERROR_ENVELOPE, RANGE_REJECTED


@check(
    "sampling.temperature0_repeatable",
    "SHOULD",
    "temperature 0 makes the output (nearly) deterministic: the same request twice gives the "
    "same content.",
    rationale="best effort even at OpenAI (batching, hardware)",
    broken_by={"temp0_nondeterministic": "the same content twice"},
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
    "sampling.range_accepted",
    "MUST",
    "Values at the documented bounds are valid: temperature 0..2, top_p 0..1, presence and "
    "frequency penalties -2..2.",
    rationale="documented values; rejecting them breaks valid callers",
    broken_by={"reject_in_range": "expected HTTP 200; got HTTP 400"},
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
    rationale="clamping or ignoring an invalid value hides a caller's bug",
    broken_by={"accept_out_of_range": "expected HTTP 400; got HTTP 200"},
)
@pytest.mark.parametrize("case", OUTSIDE)
def test_range_rejected(sampled, case):
    exchange = sampled[case]
    expect_rejected(exchange)


@check(
    "sampling.range_error_names_field",
    "SHOULD",
    "The 400 for an out-of-range value names the field in error.param.",
    rationale="helps users; clients do not depend on it",
    needs=(RANGE_REJECTED, ERROR_ENVELOPE),
    broken_by={"param_null": "; got None"},
)
@pytest.mark.parametrize("case", OUTSIDE)
def test_range_error_names_field(sampled, case):
    exchange = sampled[case]
    if not (exchange.status and exchange.status >= 400):
        RANGE_REJECTED.unmet(f"{case}: HTTP {exchange.status}")
    body = exchange.json if isinstance(exchange.json, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    RANGE_REJECTED.require(exchange.status < 500, f"{case}: HTTP {exchange.status}, a crash")
    ERROR_ENVELOPE.require(error, short(exchange.body[:120]))
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
    "appeared. At 2.0, an answer that repeats a word must change (at temperature 1 with a "
    "fixed seed; judged only when the answer without the penalty repeats, identically "
    "twice); a clean 400 naming the "
    "parameter is unsupported, accepted and ignored is a fail.",
    capability="penalties",
    needs=(CONTENT_STRING,),
    rationale="accepted penalties with no effect are a silent wrong answer",
    broken_by={"ignore_penalties": "got the same answer with"},
)
@pytest.mark.parametrize("name", PENALTIES)
def test_penalty_effect(sampled, capabilities, name):
    exchange = sampled[name]
    capabilities.gate("penalties", exchange)
    penalized = _content(exchange) or ""
    first, second = (_content(sampled[("unpenalized", n)]) or "" for n in (1, 2))
    CONTENT_STRING.require(all(isinstance(t, str) for t in (penalized, first, second)))
    if first != second:
        not_applicable("the same request without a penalty got two different answers")
    if not repeats(first):
        not_applicable(f"the answer without a penalty repeats no word ({short(first, 80)})")
    capabilities.effect("penalties", penalized != first, f"{name} 2.0 vs none", exchange)
    expect(
        penalized != first,
        f"an answer that differs from the one without {name} (it repeats words)",
        f"the same answer with {name} 2.0: {short(penalized)}",
        exchange,
        sampled[("unpenalized", 1)],
    )
