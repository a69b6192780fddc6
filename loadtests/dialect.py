"""Which token-limit field the endpoint accepts: ``max_tokens``, or ``max_completion_tokens``.

OpenAI's reasoning models (and several vendors' since) answer ``max_tokens`` with HTTP 400
naming that parameter ("Unsupported parameter: 'max_tokens' ... Use 'max_completion_tokens'
instead."). With ``--token-field auto`` the load test sends ``max_tokens`` (which every older
server knows) until a 400 names it, then switches to ``max_completion_tokens`` for the rest of
the run and resends the rejected request; every sample records the field it was sent with, so
the report can say what happened even when the switch happened on remote workers.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_TOKENS = "max_tokens"
MAX_COMPLETION_TOKENS = "max_completion_tokens"
_NAMED = re.compile(r"(?<![A-Za-z0-9_])max_tokens(?![A-Za-z0-9_])")


def names_max_tokens(status: int, body: bytes) -> bool:
    """Is this a 400 whose error names ``max_tokens`` (its ``param``, or quoted in the text)?"""
    if status != 400:
        return False
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return bool(_NAMED.search(body[:2000].decode("utf-8", "replace")))
    detail = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(detail, dict):
        if detail.get("param") == MAX_TOKENS:
            return True
        return bool(_NAMED.search(str(detail.get("message") or "")))
    return bool(_NAMED.search(str(detail)))


class TokenField:
    """The field this process sends; ``auto`` starts at ``max_tokens`` and may switch once."""

    def __init__(self, option: str = "auto") -> None:
        self.auto = option == "auto"
        self.name = MAX_TOKENS if self.auto else option

    def fall_back(self, sent: str, status: int, body: bytes) -> bool:
        """Should a request sent with ``sent`` be resent? Yes when this rejection names it.

        Switches this process to ``max_completion_tokens`` on the first such rejection; the
        requests already in flight with ``max_tokens`` get the same answer and are resent too.
        """
        if not self.auto or sent != MAX_TOKENS or not names_max_tokens(status, body):
            return False
        self.name = MAX_COMPLETION_TOKENS
        return True


def describe(option: str, sent: dict[str, int]) -> str:
    """One sentence for the report: which field carried the limit, and why."""
    if not sent:
        return "no token limit was sent"
    used = ", ".join(f"{name} ({count} requests)" for name, count in sent.items())
    if option == "auto" and MAX_COMPLETION_TOKENS in sent:
        return (
            f"token limit sent as {used}: the endpoint rejected max_tokens by name (HTTP 400), "
            "so the run fell back to max_completion_tokens"
        )
    return f"token limit sent as {used}"
