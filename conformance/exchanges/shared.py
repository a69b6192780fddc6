"""Shared exchanges: the same request three ways (JSON, streamed, streamed with usage),
made once per session, concurrently, and judged by many checks (vendors run this
against paid, slow endpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from conformance.exchanges.requests import chat_body
from conformance.transport.client import Exchange, RequestSpec


@dataclass
class Shared:
    plain: Exchange
    stream: Exchange
    stream_usage: Exchange | None  # None: usage_in_stream declared absent, not sent


@pytest.fixture(scope="session")
def shared(endpoint: Any, capabilities: Any) -> Shared:
    """The same request three ways: JSON, streamed, streamed with usage."""
    model = endpoint.model
    specs = [
        RequestSpec("non-streamed completion", json=chat_body(model)),
        RequestSpec("streamed completion", json=chat_body(model, stream=True)),
        RequestSpec(
            "streamed completion with usage",
            json=chat_body(model, stream=True, stream_options={"include_usage": True}),
        ),
    ]
    if "usage_in_stream" in capabilities.absent:
        return Shared(*endpoint.transport.send_all(specs[:2]), None)
    return Shared(*endpoint.transport.send_all(specs))


@dataclass
class Thinking:
    """The shared request at the dialect's judging effort: reasoning checks must see the model
    reason, which the cheapest effort may switch off (``none``)."""

    plain: Exchange
    stream: Exchange  # with include_usage unless usage_in_stream is declared absent


@pytest.fixture(scope="session")
def thinking(endpoint: Any, capabilities: Any) -> Thinking:
    """The same request JSON and streamed, at the judging effort."""
    model = endpoint.model
    usage = {} if "usage_in_stream" in capabilities.absent else {"include_usage": True}
    stream = {"stream": True, **({"stream_options": usage} if usage else {})}
    specs = [
        RequestSpec("completion at the judging effort", json=chat_body(model, judging=True)),
        RequestSpec(
            "streamed completion at the judging effort",
            json=chat_body(model, judging=True, **stream),
        ),
    ]
    return Thinking(*endpoint.transport.send_all(specs))
