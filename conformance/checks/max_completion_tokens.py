"""max_completion_tokens.*: the same two requirements as max_tokens.py, on the field that
replaces it (reasoning models accept only this one)."""

from __future__ import annotations

from conformance.checks.max_tokens import finish_check, limit_check
from conformance.verdicts.check import SILENT, check
from conformance.verdicts.premises import CUT_OUTPUT, STREAM_CHOICES

test_max_completion_tokens_respected = check(
    "max_completion_tokens.respected",
    "MUST",
    "max_completion_tokens: An upper bound for the number of tokens that can be generated for a "
    "completion.",
    capability="max_completion_tokens",
    rationale="the caller's cost bound; " + SILENT,
    broken_by={
        "stream_usage_differs": {"streamed": "<= 5; got 6"},
        "usage_over_max_tokens": "<= 5; got 6",
        "ignore_max_completion_tokens": "<= 5; got 140",
        "ignore_max_completion_tokens_in_stream": {"streamed": "characters in"},
    },
)(limit_check("max_completion_tokens"))
test_max_completion_tokens_finish_length = check(
    "max_completion_tokens.finish_length",
    "MUST",
    'finish_reason is "length" when max_completion_tokens cuts the output.',
    capability="max_completion_tokens",
    rationale="clients continue or warn on 'length' only",
    needs=(CUT_OUTPUT, STREAM_CHOICES),
    broken_by={
        "budget_exhausted_stop": "(5 tokens); got 'stop'",
        "no_finish_reason": {"streamed": "(5 tokens); got None"},
        "finish_reason_eos": {"non-streamed": "got 'eos'"},
        "ignore_max_completion_tokens": "(140 tokens); got 'stop'",
        "length_reported_as_stop": "(5 tokens); got 'stop'",
    },
)(finish_check("max_completion_tokens"))
