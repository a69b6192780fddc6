"""The logprobs batch: logprobs plain and streamed, top_logprobs edge cases and the
logit_bias requests, sent together once (checks/logprobs.py and logit_bias.py judge them).
"""

from __future__ import annotations

import pytest

from conformance.exchanges.expect import first_choice, ok_json
from conformance.exchanges.requests import Planned, chat_body, send_batch
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import expect, short
from conformance.verdicts.premises import LOGPROB_ENTRIES

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


def logprob_entries(exchange) -> list:
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


def entries_if_any(exchange) -> list:
    """choices[0].logprobs.content of a JSON exchange, for checks that only lean on it: a
    missing or malformed block is logprobs.structure's failure, here an unmet premise."""
    choice = first_choice(ok_json(exchange))
    block = choice.get("logprobs")
    content = block.get("content") if isinstance(block, dict) else None
    LOGPROB_ENTRIES.require(isinstance(content, list) and content, f"got {short(block, 80)}")
    return content
