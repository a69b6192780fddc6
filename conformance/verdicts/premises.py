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
