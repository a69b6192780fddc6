"""max_tokens.*: the limit holds and truncation says "length".

The two requirements are written once here as factories; max_completion_tokens.py applies
them to the other field.
"""

from __future__ import annotations

import pytest

from conformance.exchanges.limits import LIMIT, MODES, gate, usage_and_finish
from conformance.verdicts.check import SILENT, check, expect, short
from conformance.verdicts.premises import CUT_OUTPUT, USAGE_CHUNK, USAGE_COUNTS


def limit_check(field):
    @pytest.mark.parametrize("mode", MODES)
    def body(limited, capabilities, mode):
        exchange = limited[(field, mode)]
        gate(capabilities, field, exchange)
        usage, _ = usage_and_finish(exchange, mode)
        if usage is None and mode == "streamed":
            USAGE_CHUNK.unmet("so completion tokens cannot be counted")
        tokens = (usage or {}).get("completion_tokens")
        USAGE_COUNTS.require(
            isinstance(tokens, int) and not isinstance(tokens, bool),
            f"completion_tokens {short(tokens)}",
        )
        expect(
            isinstance(tokens, int) and tokens <= LIMIT,
            f"usage.completion_tokens <= {LIMIT}",
            short(tokens),
            exchange,
            note="the prompt asks for 50 numbers, far more than the limit",
        )

    return body


def finish_check(field):
    @pytest.mark.parametrize("mode", MODES)
    def body(limited, capabilities, mode):
        exchange = limited[(field, mode)]
        gate(capabilities, field, exchange)
        usage, finish = usage_and_finish(exchange, mode)
        tokens = (usage or {}).get("completion_tokens")
        if finish != "length" and not isinstance(tokens, int):
            CUT_OUTPUT.unmet("no usage to tell whether the output reached the limit")
        if finish != "length" and tokens < LIMIT:
            CUT_OUTPUT.unmet(f"it ended after {tokens} tokens, before the limit {LIMIT}")
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
    rationale="the caller's cost bound; " + SILENT,
    needs=(USAGE_CHUNK, USAGE_COUNTS),
    broken_by={"ignore_max_tokens": "<= 5; got 140"},
)(limit_check("max_tokens"))
test_max_tokens_finish_length = check(
    "max_tokens.finish_length",
    "MUST",
    'finish_reason is "length" if the maximum number of tokens specified in the request was '
    "reached.",
    capability="max_tokens",
    rationale="clients continue or warn on 'length' only",
    needs=(CUT_OUTPUT,),
    broken_by={
        "ignore_max_tokens": "(140 tokens); got 'stop'",
        "length_reported_as_stop": "(5 tokens); got 'stop'",
    },
)(finish_check("max_tokens"))
