"""max_tokens.*: the limit holds and truncation says "length".

The two requirements are written once here as factories; max_completion_tokens.py applies
them to the other field.
"""

from __future__ import annotations

import pytest

from conformance.exchanges.expect import choices_of, ok_stream
from conformance.exchanges.limits import (
    CHARS_PER_TOKEN_MAX,
    LIMIT,
    MODES,
    content_and_chunks,
    gate,
    usage_and_finish,
)
from conformance.verdicts.check import SILENT, check, expect, short
from conformance.verdicts.premises import CUT_OUTPUT, STREAM_CHOICES


def limit_check(field):
    """The limit holds by the usage (when there is one) and by the content: N tokens show at
    most N x CHARS_PER_TOKEN_MAX characters, so a server whose usage is canned, or whose
    stream carries no usage chunk, is still judged on what it sent."""

    @pytest.mark.parametrize("mode", MODES)
    def body(limited, capabilities, mode):
        exchange = limited[(field, mode)]
        gate(capabilities, field, exchange)
        usage, _ = usage_and_finish(exchange, mode)
        text, pieces = content_and_chunks(exchange, mode)
        bound = LIMIT * CHARS_PER_TOKEN_MAX
        seen = len(text) <= bound
        capabilities.effect(
            field,
            seen,  # judged on the content: a usage over the limit may be a miscount
            f"{len(text)} characters for {field}={LIMIT}",
            exchange,
        )
        tokens = (usage or {}).get("completion_tokens")
        # The usage is judged when there is a count to read; a missing or malformed one is
        # usage.present's (or the usage chunk's) failure, and the content is judged anyway.
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            expect(
                tokens <= LIMIT,
                f"usage.completion_tokens <= {LIMIT}",
                short(tokens),
                exchange,
                note="the prompt asks for 50 numbers, far more than the limit",
            )
        expect(
            seen,
            f"at most {bound} characters of content for {LIMIT} tokens (no token spells more "
            f"than {CHARS_PER_TOKEN_MAX})",
            f"{len(text)} characters in {pieces} content piece(s): {short(text, 80)}",
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
        if mode == "streamed":  # no choice at all: stream.first_delta_role's failure
            STREAM_CHOICES.require(any(choices_of(c) for c in ok_stream(exchange)), field)
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
    broken_by={
        "stream_usage_differs": {"streamed": "<= 5; got 6"},
        "usage_over_max_tokens": "<= 5; got 6",
        "ignore_max_tokens": "<= 5; got 140",
    },
)(limit_check("max_tokens"))
test_max_tokens_finish_length = check(
    "max_tokens.finish_length",
    "MUST",
    'finish_reason is "length" if the maximum number of tokens specified in the request was '
    "reached.",
    capability="max_tokens",
    rationale="clients continue or warn on 'length' only",
    needs=(CUT_OUTPUT, STREAM_CHOICES),
    broken_by={
        "no_finish_reason": {"streamed": "(5 tokens); got None"},
        "finish_reason_eos": {"non-streamed": "got 'eos'"},
        "ignore_max_tokens": "(140 tokens); got 'stop'",
        "length_reported_as_stop": "(5 tokens); got 'stop'",
    },
)(finish_check("max_tokens"))
