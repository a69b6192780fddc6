"""The limit batch: max_tokens and max_completion_tokens, each alone, streamed and not, on a
prompt that asks for far more than the limit (checks/max_tokens.py and
max_completion_tokens.py judge them).
"""

from __future__ import annotations

import pytest

from conformance.exchanges.expect import (
    first_choice,
    message_of,
    ok_json,
    ok_stream,
    streamed_content,
    streamed_finish_reasons,
)
from conformance.exchanges.requests import Planned, count_body, send_batch, with_limit
from conformance.transport.client import RequestSpec

LIMIT = 5
#: No token of a real tokenizer's vocabulary spells more characters of ordinary text than
#: this (the longest word-like BPE tokens of cl100k / o200k / Llama vocabularies are under 20;
#: only runs of spaces or repeated punctuation are longer, which a counting prompt never
#: produces): N tokens cannot show more than N x this many characters of content.
CHARS_PER_TOKEN_MAX = 24
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


def gate(capabilities, field, exchange):
    if FIELDS[field]:
        capabilities.gate(FIELDS[field], exchange)


def content_and_chunks(exchange, mode) -> tuple[str, int]:
    """(the content of choice 0, how many chunks carried a piece of it; 1 for JSON)."""
    if mode == "non-streamed":
        content = message_of(exchange).get("content")
        return (content if isinstance(content, str) else ""), 1
    chunks = ok_stream(exchange)
    pieces = [streamed_content([chunk]) for chunk in chunks]
    return "".join(pieces), sum(1 for piece in pieces if piece)


def usage_and_finish(exchange, mode):
    if mode == "non-streamed":
        return exchange.usage, first_choice(ok_json(exchange)).get("finish_reason")
    reasons = streamed_finish_reasons(ok_stream(exchange))
    return exchange.usage, (reasons[0] if reasons else None)
