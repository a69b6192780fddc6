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
