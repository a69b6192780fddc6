"""response_format: json_object gives JSON; json_schema (strict) gives JSON valid against it.

The prompts do not ask for JSON, and the schema needs two keys a plain answer cannot supply:
a server that accepts response_format and ignores it fails even when its model would have
obliged a prompt that asked. (json_object requires the word "json" somewhere in the
messages, so its prompt carries it only as an inert tag, not as an instruction.) A refusal
(content null, a refusal string) is a valid answer to structured output, not "not JSON".
"""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from conformance.exchanges.expect import (
    choices_of,
    first_choice,
    message_of,
    ok_json,
    ok_stream,
    streamed_content,
    streamed_finish_reasons,
)
from conformance.exchanges.requests import Planned, chat_body, send_batch
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import SILENT, check, expect, not_applicable, short
from conformance.verdicts.premises import CONTENT_STRING, STREAM_CHOICES

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
QUESTION = "Which city is the capital of France? Answer in one word."
PROMPTS = {
    "json_object": f"{QUESTION} [request tag: json-check-1]",
    "json_schema": QUESTION,
}
MODES = ["non-streamed", "streamed"]
#: Room for {"city": ..., "country": ...} with margin; a small model under a JSON grammar may
#: ramble into nested objects until cut, which is judged on its start (see _parsed).
MAX_TOKENS = 96


@pytest.fixture(scope="session")
def structured(endpoint, capabilities):
    plan = {
        (kind, mode): Planned(
            kind,
            RequestSpec(
                f"response_format {kind}, {mode}",
                json=chat_body(
                    endpoint.model,
                    messages=[{"role": "user", "content": PROMPTS[kind]}],
                    response_format=fmt,
                    max_tokens=MAX_TOKENS,
                    stream=mode == "streamed",
                ),
            ),
        )
        for kind, fmt in FORMATS.items()
        for mode in MODES
    }
    return send_batch(endpoint, capabilities, plan)


def _streamed_refusal(chunks: list) -> str:
    return "".join(
        delta["refusal"]
        for chunk in chunks
        for choice in choices_of(chunk)
        if choice.get("index") == 0
        and isinstance(delta := choice.get("delta") or {}, dict)
        and isinstance(delta.get("refusal"), str)
    )


def answer_of(exchange, mode) -> tuple[str | None, str | None, str | None]:
    """(content, refusal, finish_reason) of choice 0; content None when there is none."""
    if mode == "streamed":
        chunks = ok_stream(exchange)
        refusal = _streamed_refusal(chunks)
        content = streamed_content(chunks)
        finish = (streamed_finish_reasons(chunks) or [None])[0]
        return (content if content or not refusal else None), (refusal or None), finish
    message = message_of(exchange)
    refusal = message.get("refusal")
    finish = first_choice(ok_json(exchange)).get("finish_reason")
    return message.get("content"), (refusal if isinstance(refusal, str) else None), finish


def _parsed(exchange, mode, plain):
    if mode != "non-streamed":  # a stream of no choice: stream.first_delta_role's failure
        chunks = ok_stream(exchange)
        STREAM_CHOICES.require(any(choices_of(c) for c in chunks), exchange.label)
    content, refusal, finish = answer_of(exchange, mode)
    if content is None and refusal:
        not_applicable(f"the model refused, as structured output allows: {short(refusal, 120)}")
    # no string content even without response_format: response.content_string's failure
    plain_content = message_of(plain).get("content") if plain.ok else ""
    CONTENT_STRING.require(
        isinstance(content, str) or isinstance(plain_content, str),
        f"content {short(content, 80)}, and {short(plain_content, 80)} without response_format",
    )
    expect(
        isinstance(content, str),
        "content (or content null with a refusal string)",
        f"content {short(content)} without a refusal",
        exchange,
    )
    try:
        return json.loads(content)
    except ValueError:
        if finish == "length":  # OpenAI: the JSON may be partial when cut by the limit
            expect(
                content.lstrip().startswith("{"),
                "output cut at the token limit that starts as a JSON object",
                short(content),
                exchange,
            )
            not_applicable(
                f"the JSON was cut at the token limit ({MAX_TOKENS}); it starts as an "
                f"object but cannot be parsed whole: {short(content, 80)}"
            )
        expect(False, "content that parses as JSON", short(content), exchange)


def _record_effect(capabilities, kind: str, exchange, mode) -> None:
    """Tell the capability whether the format constrained this answer: JSON (valid against
    the schema for json_schema) on a prompt that does not ask for it. A refusal, or JSON cut
    by the limit, shows neither."""
    content, _, finish = answer_of(exchange, mode)
    if not isinstance(content, str):
        return
    try:
        value = json.loads(content)
    except ValueError:
        if finish == "length" and content.lstrip().startswith("{"):
            return
        value = None
    seen = isinstance(value, dict) and (
        kind != "json_schema" or not any(Draft202012Validator(SCHEMA).iter_errors(value))
    )
    capabilities.effect(kind, seen, f"{short(content, 60)} for a prompt not asking JSON", exchange)


@check(
    "response_format.json_object",
    "MUST",
    "json_object enables JSON mode, which guarantees the message the model generates is "
    "valid JSON.",
    capability="json_object",
    rationale="the caller parses the output; " + SILENT,
    broken_by={
        "stream_content_differs": {"streamed": "content that parses as JSON"},
        "content_after_finish": {"streamed": " late'"},
        "chunk_bad_delta": {"streamed": "content that parses as JSON"},
        "ignore_json_mode": "content that parses as JSON; got '",
        "response_format_prompt_only": "content that parses as JSON; got '",
        "json_object_not_object": "a JSON object; got [",
    },
    needs=(CONTENT_STRING, STREAM_CHOICES),
)
@pytest.mark.parametrize("mode", MODES)
def test_json_object(structured, shared, capabilities, mode):
    exchange = structured[("json_object", mode)]
    capabilities.gate("json_object", exchange)
    _record_effect(capabilities, "json_object", exchange, mode)
    value = _parsed(exchange, mode, shared.plain)
    expect(isinstance(value, dict), "a JSON object", short(value), exchange)


@check(
    "response_format.json_schema",
    "MUST",
    "json_schema with strict: true: the output matches the supplied JSON schema "
    "(Structured Outputs).",
    capability="json_schema",
    rationale="the caller parses the output; " + SILENT,
    broken_by={
        "json_object_not_object": "is not of type 'object'",
        "stream_content_differs": {"streamed": "content that parses as JSON"},
        "content_after_finish": {"streamed": " late'"},
        "chunk_bad_delta": {"streamed": "content that parses as JSON"},
        "ignore_json_schema": "valid against the schema; got {'answer'",
        "response_format_prompt_only": "content that parses as JSON; got '",
        "structured_null_content": {
            "non-streamed": "got content None without a refusal",
            "streamed": "parses as JSON; got ''",
        },
    },
    needs=(CONTENT_STRING, STREAM_CHOICES),
)
@pytest.mark.parametrize("mode", MODES)
def test_json_schema(structured, shared, capabilities, mode):
    exchange = structured[("json_schema", mode)]
    capabilities.gate("json_schema", exchange)
    _record_effect(capabilities, "json_schema", exchange, mode)
    value = _parsed(exchange, mode, shared.plain)
    errors = [e.message for e in Draft202012Validator(SCHEMA).iter_errors(value)]
    expect(
        not errors, "content valid against the schema", f"{short(value)}: {errors[:3]}", exchange
    )
