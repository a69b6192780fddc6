"""response_format: json_object gives JSON; json_schema (strict) gives JSON valid against it."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from .checks import check, expect, short
from .client import RequestSpec
from .exchanges import Planned, chat_body, message_of, ok_stream, send_batch, streamed_content

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
    },
    "required": ["city", "country"],
    "additionalProperties": False,
}
FORMATS = {
    "json_object": {"type": "json_object"},
    "json_schema": {
        "type": "json_schema",
        "json_schema": {"name": "place", "strict": True, "schema": SCHEMA},
    },
}
PROMPT = "Answer in JSON with the keys city and country: which city is the capital of France?"
MODES = ["non-streamed", "streamed"]


@pytest.fixture(scope="session")
def structured(endpoint, capabilities):
    messages = [{"role": "user", "content": PROMPT}]
    plan = {
        (kind, mode): Planned(
            kind,
            RequestSpec(
                f"response_format {kind}, {mode}",
                json=chat_body(
                    endpoint.model,
                    messages=messages,
                    response_format=fmt,
                    max_tokens=200,
                    stream=mode == "streamed",
                ),
            ),
        )
        for kind, fmt in FORMATS.items()
        for mode in MODES
    }
    return send_batch(endpoint, capabilities, plan)


def _content(exchange, mode) -> str:
    if mode == "streamed":
        return streamed_content(ok_stream(exchange))
    return message_of(exchange).get("content") or ""


def _parsed(exchange, mode):
    content = _content(exchange, mode)
    try:
        return json.loads(content)
    except ValueError:
        expect(False, "content that parses as JSON", short(content), exchange)


@check(
    "response_format.json_object",
    "MUST",
    "json_object enables JSON mode, which guarantees the message the model generates is "
    "valid JSON.",
    capability="json_object",
)
@pytest.mark.parametrize("mode", MODES)
def test_json_object(structured, capabilities, mode):
    exchange = structured[("json_object", mode)]
    capabilities.gate("json_object", exchange)
    value = _parsed(exchange, mode)
    expect(isinstance(value, dict), "a JSON object", short(value), exchange)


@check(
    "response_format.json_schema",
    "MUST",
    "json_schema with strict: true: the output matches the supplied JSON schema "
    "(Structured Outputs).",
    capability="json_schema",
)
@pytest.mark.parametrize("mode", MODES)
def test_json_schema(structured, capabilities, mode):
    exchange = structured[("json_schema", mode)]
    capabilities.gate("json_schema", exchange)
    value = _parsed(exchange, mode)
    errors = [e.message for e in Draft202012Validator(SCHEMA).iter_errors(value)]
    expect(
        not errors, "content valid against the schema", f"{short(value)}: {errors[:3]}", exchange
    )
