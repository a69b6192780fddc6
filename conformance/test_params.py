"""Optional request fields: accepted or cleanly rejected, never a crash; stream_options rules;
unknown parameters (INFO)."""

from __future__ import annotations

from typing import Any

import pytest

from .capabilities import _has_envelope
from .checks import check, expect, observe, short
from .client import RequestSpec
from .exchanges import Planned, chat_body, describe_status, expect_rejected, send_batch
from .schemas import load_schema


def _enum(name: str) -> list[str]:
    """Every enum value of a request field, read from the spec so new values are tried too."""
    defs = load_schema("request")["$defs"]

    def values(node: Any) -> list[str]:
        if isinstance(node, dict):
            if "enum" in node:
                return [v for v in node["enum"] if isinstance(v, str)]
            if "$ref" in node:
                return values(defs[node["$ref"].rsplit("/", 1)[-1]])
            return [
                v
                for key in ("anyOf", "oneOf", "allOf")
                for sub in node.get(key, [])
                for v in values(sub)
            ]
        return []

    for part in defs["CreateChatCompletionRequest"]["allOf"]:
        if name in part.get("properties", {}):
            return values(part["properties"][name])
        if "$ref" in part:
            props = defs[part["$ref"].rsplit("/", 1)[-1]].get("properties", {})
            if name in props:
                return values(props[name])
    return []


#: Accepted by every OpenAI model, reasoning or not; reasoning_effort has its own checks
#: (reasoning.effort_values), which also require a rejection to name it.
CORE_FIELDS = ("user", "metadata", "store")
TOOL = {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}
OPTIONAL: dict[str, dict[str, Any]] = {
    "user": {"user": "chatcompat-user-1"},
    "metadata": {"metadata": {"suite": "chatcompat"}},
    "store": {"store": False},
    "modalities": {"modalities": ["text"]},
    "prediction": {"prediction": {"type": "content", "content": "Hello"}},
    "safety_identifier": {"safety_identifier": "chatcompat-hash-1"},
    "prompt_cache_key": {"prompt_cache_key": "chatcompat"},
    "parallel_tool_calls": {"parallel_tool_calls": True, "tools": [TOOL]},
    **{f"service_tier={v}": {"service_tier": v} for v in _enum("service_tier")},
    **{f"verbosity={v}": {"verbosity": v} for v in _enum("verbosity")},
}


@pytest.fixture(scope="session")
def optional(endpoint, capabilities):
    model = endpoint.model
    plan = {
        case: Planned(None, RequestSpec(case, json=chat_body(model, max_tokens=4, **fields)))
        for case, fields in OPTIONAL.items()
    }
    plan["stream_options_alone"] = Planned(
        None,
        RequestSpec(
            "stream_options without stream",
            json=chat_body(model, max_tokens=4, stream_options={"include_usage": True}),
        ),
    )
    plan["unknown"] = Planned(
        None,
        RequestSpec(
            "unknown parameter", json=chat_body(model, max_tokens=4, chatcompat_unknown_field=1)
        ),
    )
    return send_batch(endpoint, capabilities, plan)


@check(
    "params.optional_field",
    "MUST",
    "Each optional field is either honoured (HTTP 200) or rejected cleanly (400 with the "
    "error envelope); never a 5xx or a malformed error. user, metadata and store are accepted "
    "by every OpenAI model, so they must be accepted.",
)
@pytest.mark.parametrize("case", list(OPTIONAL))
def test_optional_field(optional, case):
    exchange = optional[case]
    if case in CORE_FIELDS:  # every OpenAI model accepts these: a rejection is no option
        expect(
            exchange.ok,
            f"HTTP 200: every OpenAI model accepts '{case}'",
            describe_status(exchange) + f": {short(exchange.body[:200])}",
            exchange,
        )
    clean_rejection = exchange.status == 400 and _has_envelope(exchange)
    expect(
        exchange.ok or clean_rejection,
        "HTTP 200, or 400 with an error envelope",
        describe_status(exchange) + f": {short(exchange.body[:200])}",
        exchange,
    )


@check(
    "params.stream_options_requires_stream",
    "SHOULD",
    "stream_options is only allowed with stream: true; OpenAI answers 400 otherwise.",
)
def test_stream_options_requires_stream(optional):
    exchange = optional["stream_options_alone"]
    expect_rejected(exchange)


@check(
    "params.unknown_parameter",
    "INFO",
    "OpenAI rejects unknown request parameters with 400; many servers ignore them. Reported, "
    "not judged.",
)
def test_unknown_parameter(optional):
    exchange = optional["unknown"]
    verdict = "rejected" if exchange.status == 400 else "accepted" if exchange.ok else "answered"
    observe(f"unknown parameter {verdict} ({describe_status(exchange)})", exchange)
