"""Optional request fields: accepted or cleanly rejected, never a crash; stream_options rules;
unknown parameters (INFO)."""

from __future__ import annotations

import pytest

from conformance.api.rejections import has_envelope
from conformance.api.request_fields import OPTIONAL
from conformance.exchanges.expect import describe_status, expect_rejected
from conformance.exchanges.requests import Planned, chat_body, send_batch
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import CLEAN_400, check, expect, observe, short

#: Accepted by every OpenAI model, reasoning or not; reasoning_effort has its own checks
#: (reasoning.effort_values), which also require a rejection to name it.
CORE_FIELDS = ("user", "metadata", "store")


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
    rationale=CLEAN_400,
    broken_by={
        "optional_fields_500": "got HTTP 500",
        "core_fields_rejected": {
            "user": "Unsupported parameter",
            "metadata": "Unsupported parameter",
            "store": "Unsupported parameter",
        },
    },
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
    clean_rejection = exchange.status == 400 and has_envelope(exchange)
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
    rationale="validation OpenAI does; harmless if skipped",
    broken_by={"stream_options_without_stream_accepted": "expected HTTP 400; got HTTP 200"},
)
def test_stream_options_requires_stream(optional):
    exchange = optional["stream_options_alone"]
    expect_rejected(exchange)


@check(
    "params.unknown_parameter",
    "INFO",
    "OpenAI rejects unknown request parameters with 400; many servers ignore them. Reported, "
    "not judged.",
    rationale="OpenAI rejects, many servers ignore: both are common",
)
def test_unknown_parameter(optional):
    exchange = optional["unknown"]
    verdict = "rejected" if exchange.status == 400 else "accepted" if exchange.ok else "answered"
    observe(f"unknown parameter {verdict} ({describe_status(exchange)})", exchange)
