"""logit_bias.*: the bias map is validated and -100 bans a token."""

from __future__ import annotations

import pytest

from conformance.exchanges.expect import expect_rejected, ok_json
from conformance.exchanges.logprobs import BIAS_FORMS, entries_if_any
from conformance.exchanges.requests import chat_body
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import SILENT, check, expect, short
from conformance.verdicts.premises import LOGPROB_ENTRIES, TOKEN_IDS


@check(
    "logit_bias.range_validated",
    "SHOULD",
    "logit_bias values range from -100 to 100; 101 is rejected with 400.",
    capability="logit_bias",
    rationale="OpenAI rejects 101; accepting it harms no client",
    broken_by={"logit_bias_unvalidated": "expected HTTP 400; got HTTP 200"},
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
    needs=(LOGPROB_ENTRIES, TOKEN_IDS),
    rationale="the documented effect of -100; " + SILENT,
    broken_by={"ignore_logit_bias": "never generated; got generated as"},
)
def test_logit_bias_bans(endpoint, capabilities, logprobbed):
    capabilities.skip_if_absent("logit_bias")
    capabilities.skip_if_absent("logprobs")
    capabilities.gate("logprobs", logprobbed["plain"])
    entries = entries_if_any(logprobbed["plain"])
    ids = [e.get("id") for e in entries if isinstance(e.get("id"), int)]
    TOKEN_IDS.require(ids, "logit_bias keys are tokenizer ids")
    banned = ids[0]
    body = chat_body(endpoint.model, logprobs=True, logit_bias={str(banned): -100})
    exchange = endpoint.transport.send(RequestSpec(f"logit_bias bans token {banned}", json=body))
    capabilities.gate("logit_bias", exchange)
    seen = [e.get("token") for e in entries_if_any(exchange) if e.get("id") == banned]
    capabilities.effect("logit_bias", not seen, f"token id {banned} banned", exchange)
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
    rationale="integer is the documented form; a 5xx on it is a crash",
    broken_by={
        "logit_bias_integer_500": {"integer": "got HTTP 500"},
        "logit_bias_float_500": {"float": "got HTTP 500"},
    },
)
@pytest.mark.parametrize("form", list(BIAS_FORMS))
def test_logit_bias_forms(logprobbed, capabilities, form):
    exchange = logprobbed[("bias", form)]
    capabilities.gate("logit_bias", exchange)
    ok_json(exchange)
