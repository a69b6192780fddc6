"""Premises: what a check needs before it can judge, named once and declared by the check.

A check that finds a premise missing (no usage chunk in the stream, no logprobs entries, no
reasoning seen) has no verdict: it ends *not applicable*, and its message names the check
that reports the premise itself, so a server is blamed once, by the check whose requirement
it breaks, never by every check that leaned on it. A check declares its premises with
``@check(..., needs=(USAGE_CHUNK, ...))``; reaching a premise it did not declare is a suite
defect and ends the check as a harness ``error`` (see ``outcomes._classify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

#: Skip reasons starting with this become the "not_applicable" outcome: the check could not
#: judge (no usage chunk to inspect, no tool call made, premise not met). Never a pass.
NOT_APPLICABLE_PREFIX = "not applicable:"


@dataclass(frozen=True)
class Premise:
    """One thing a check needs; ``missing`` says, as a clause, what was not there."""

    name: str
    missing: str
    #: the check whose own requirement this premise is (None: no check requires it, e.g. an
    #: optional feature such as token ids); named in every not-applicable message.
    reported_by: str | None = None

    def unmet(self, detail: str = "") -> NoReturn:
        """End the current check not applicable: this premise is not met."""
        raise PremiseUnmet(self, detail)

    def require(self, condition: Any, detail: str = "") -> None:
        """End the current check not applicable unless ``condition`` holds."""
        if not condition:
            self.unmet(detail)

    def reason(self, detail: str = "") -> str:
        text = self.missing + (f": {detail}" if detail else "")
        if self.reported_by:
            text += f" ({self.reported_by} reports it)"
        return text


class PremiseUnmet(pytest.skip.Exception):  # type: ignore[misc, name-defined]
    """A skip that remembers which premise ended the check (pytest reports it as skipped)."""

    def __init__(self, premise: Premise, detail: str = "") -> None:
        super().__init__(f"{NOT_APPLICABLE_PREFIX} {premise.reason(detail)}")
        self.premise = premise


# --- the premises checks share ------------------------------------------------------------
USAGE_CHUNK = Premise(
    "usage_chunk",
    "no usage chunk in the include_usage stream",
    "usage.stream_one_usage_chunk",
)
LOGPROB_ENTRIES = Premise(
    "logprob_entries",
    "no choices[0].logprobs.content entries to read",
    "logprobs.structure",
)
TOKEN_IDS = Premise(
    "token_ids",
    "the logprobs entries carry no token ids, so no token can be named in a logit_bias",
)


# --- effects (issue 15 items 4, 5) ---
N_CHOICES = Premise(
    "n_choices",
    "fewer than n choices came back, so there is no usage of n choices to judge",
    "n.choices",
)
N_STREAM_CHOICES = Premise(
    "n_stream_choices",
    "fewer than n choices finished in the stream, so there is no usage of n choices to judge",
    "n.stream_choices",
)


# --- premises of issue 15: every verdict for its own reason --------------------------------
SSE_STREAM = Premise(
    "sse_stream",
    "the streamed request got no server-sent events to read",
    "stream.content_type",
)
TWO_CHUNKS = Premise(
    "two_chunks",
    "the stream has fewer than two chunks, so nothing can differ between chunks",
)
FINISHED_STREAM = Premise(
    "finished_stream",
    "the stream ended without a finish_reason for its choice: the output was cut, not stopped "
    "(the run's finding 'streams cut but reported complete' lists every such stream)",
    "stream.one_finish_reason",
)
REASONING_SEEN = Premise(
    "reasoning_seen",
    "no reasoning was seen (no reasoning text, no reasoning tokens)",
)
TWO_IDS = Premise(
    "two_ids",
    "fewer than two completions revealed an id to compare",
    "response.id_nonempty",
)
CUT_OUTPUT = Premise(
    "cut_output",
    "the output ended before the token limit, so no cut can be judged",
)
TOOL_CALL_MADE = Premise(
    "tool_call_made",
    "no tool call was made to inspect",
    "tools.forced_call",
)
REJECTED = Premise(
    "rejected",
    "the invalid request was not rejected, so there is no error to inspect",
    "errors.invalid_is_400",
)
RANGE_REJECTED = Premise(
    "range_rejected",
    "the out-of-range value was not rejected, so there is no error to inspect",
    "sampling.range_rejected",
)
DONE_EVENT = Premise(
    "done_event",
    "the stream carried no data: [DONE] event",
    "stream.terminates_with_done",
)
CONTENT_STRING = Premise(
    "content_string",
    "the answer's message.content is not a string to read",
    "response.content_string",
)
ERROR_ENVELOPE = Premise(
    "error_envelope",
    "the rejection carries no error envelope whose param could be read",
    "errors.invalid_envelope",
)
USAGE_COUNTS = Premise(
    "usage_counts",
    "no usage object with integer token counts to compare",
    "usage.present",
)


# --- issue 15 item 1, the global assertion's triage ---
PROMPT_COUNTED = Premise(
    "prompt_counted",
    "the usage does not count the prompt (prompt_tokens zero, or the same for every prompt), "
    "so what a part of the prompt costs cannot be seen",
    "usage.prompt_tokens_grow",
)
STREAM_CHOICES = Premise(
    "stream_choices",
    "the stream carried no choice delta to read",
    "stream.first_delta_role",
)
