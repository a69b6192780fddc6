"""max_tokens / max_completion_tokens: the limit holds and truncation says "length"."""

from __future__ import annotations

import pytest

from conformance.exchanges.shared import (
    Planned,
    count_body,
    first_choice,
    ok_json,
    ok_stream,
    send_batch,
    streamed_finish_reasons,
    with_limit,
)
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import check, expect, not_applicable, short

LIMIT = 5
MODES = ["non-streamed", "streamed"]
FIELDS = {"max_tokens": "max_tokens", "max_completion_tokens": "max_completion_tokens"}


def _body(model: str, field: str, streamed: bool, usage_in_stream: bool) -> dict:
    body = with_limit(count_body(model, 50), field, LIMIT)
    if streamed:
        body.update(stream=True)
    if streamed and usage_in_stream:
        body.update(stream_options={"include_usage": True})
    return body


@pytest.fixture(scope="session")
def limited(endpoint, capabilities):
    usage_in_stream = "usage_in_stream" not in capabilities.absent
    plan = {
        (field, mode): Planned(
            cap,
            RequestSpec(
                f"{field}={LIMIT}, {mode}",
                json=_body(endpoint.model, field, mode == MODES[1], usage_in_stream),
            ),
        )
        for field, cap in FIELDS.items()
        for mode in MODES
    }
    return send_batch(endpoint, capabilities, plan)


def _gate(capabilities, field, exchange):
    if FIELDS[field]:
        capabilities.gate(FIELDS[field], exchange)


def _usage_and_finish(exchange, mode):
    if mode == "non-streamed":
        return exchange.usage, first_choice(ok_json(exchange)).get("finish_reason")
    reasons = streamed_finish_reasons(ok_stream(exchange))
    return exchange.usage, (reasons[0] if reasons else None)


def _limit_check(field):
    @pytest.mark.parametrize("mode", MODES)
    def body(limited, capabilities, mode):
        exchange = limited[(field, mode)]
        _gate(capabilities, field, exchange)
        usage, _ = _usage_and_finish(exchange, mode)
        if usage is None and mode == "streamed":
            not_applicable("no usage chunk in the stream: completion tokens cannot be counted")
        tokens = (usage or {}).get("completion_tokens")
        expect(
            isinstance(tokens, int) and tokens <= LIMIT,
            f"usage.completion_tokens <= {LIMIT}",
            short(tokens),
            exchange,
            note="the prompt asks for 50 numbers, far more than the limit",
        )

    return body


def _finish_check(field):
    @pytest.mark.parametrize("mode", MODES)
    def body(limited, capabilities, mode):
        exchange = limited[(field, mode)]
        _gate(capabilities, field, exchange)
        usage, finish = _usage_and_finish(exchange, mode)
        tokens = (usage or {}).get("completion_tokens")
        if finish != "length" and not isinstance(tokens, int):
            not_applicable("no usage to tell whether the output reached the limit")
        if finish != "length" and tokens < LIMIT:
            not_applicable(f"the output ended after {tokens} tokens, before the limit {LIMIT}")
        expect(
            finish == "length",
            f'finish_reason "length" when the limit cuts the output ({tokens} tokens)',
            short(finish),
            exchange,
        )

    return body


test_max_tokens_respected = check(
    "max_tokens.respected",
    "MUST",
    "max_tokens: The maximum number of tokens that can be generated in the chat completion.",
    capability="max_tokens",
)(_limit_check("max_tokens"))
test_max_tokens_finish_length = check(
    "max_tokens.finish_length",
    "MUST",
    'finish_reason is "length" if the maximum number of tokens specified in the request was '
    "reached.",
    capability="max_tokens",
)(_finish_check("max_tokens"))
test_max_completion_tokens_respected = check(
    "max_completion_tokens.respected",
    "MUST",
    "max_completion_tokens: An upper bound for the number of tokens that can be generated for a "
    "completion.",
    capability="max_completion_tokens",
)(_limit_check("max_completion_tokens"))
test_max_completion_tokens_finish_length = check(
    "max_completion_tokens.finish_length",
    "MUST",
    'finish_reason is "length" when max_completion_tokens cuts the output.',
    capability="max_completion_tokens",
)(_finish_check("max_completion_tokens"))
