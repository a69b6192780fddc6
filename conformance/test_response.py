"""response.*: the shape of a non-streamed chat.completion object."""

from __future__ import annotations

import time

from .checks import check, expect, short
from .exchanges import choices_of, ok_json
from .schemas import schema_errors

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


@check(
    "response.content_type_json",
    "MUST",
    "A non-streamed response is a JSON document (Content-Type: application/json).",
)
def test_content_type_json(shared):
    ok_json(shared.plain)
    actual = shared.plain.header("content-type")
    expect(
        shared.plain.content_type == "application/json",
        "Content-Type application/json",
        repr(actual),
        shared.plain,
    )


@check(
    "response.schema",
    "MUST",
    "The response validates against CreateChatCompletionResponse (OpenAI OpenAPI spec).",
)
def test_schema(shared):
    errors = schema_errors(ok_json(shared.plain), "response")
    expect(not errors, "no schema errors", "; ".join(errors), shared.plain)


@check("response.object", "MUST", "object: The object type, which is always chat.completion.")
def test_object(shared):
    body = ok_json(shared.plain)
    expect(
        body.get("object") == "chat.completion",
        "object == 'chat.completion'",
        short(body.get("object")),
        shared.plain,
    )


@check("response.id_nonempty", "MUST", "id: A unique identifier for the chat completion.")
def test_id(shared):
    value = ok_json(shared.plain).get("id")
    expect(
        isinstance(value, str) and value != "", "a non-empty string id", short(value), shared.plain
    )


@check(
    "response.created_integer",
    "MUST",
    "created: The Unix timestamp (in seconds) of when the chat completion was created "
    "(type integer).",
)
def test_created_integer(shared):
    value = ok_json(shared.plain).get("created")
    expect(
        isinstance(value, int) and not isinstance(value, bool),
        "an integer",
        short(value),
        shared.plain,
    )


@check(
    "response.created_recent",
    "MUST",
    "created is a Unix timestamp in seconds: close to the current time, not milliseconds.",
)
def test_created_recent(shared):
    value = ok_json(shared.plain).get("created")
    now = time.time()
    expect(
        isinstance(value, (int, float)) and abs(now - value) < 24 * 3600,
        f"within a day of now ({int(now)})",
        short(value),
        shared.plain,
        note="a value ~1000x too large means milliseconds",
    )


@check("response.model_present", "MUST", "model: The model used for the chat completion.")
def test_model_present(shared):
    value = ok_json(shared.plain).get("model")
    expect(
        isinstance(value, str) and value != "",
        "a non-empty model string",
        short(value),
        shared.plain,
    )


@check(
    "response.choice_indices",
    "MUST",
    "choices[].index: The index of the choice in the list of choices (0..n-1).",
)
def test_choice_indices(shared):
    choices = choices_of(ok_json(shared.plain))
    indices = [c.get("index") for c in choices]
    expect(
        indices == list(range(len(choices))) and indices,
        "indices [0] for n=1",
        short(indices),
        shared.plain,
    )


@check("response.message_role", "MUST", "message.role: The role of the author: 'assistant'.")
def test_message_role(shared):
    choices = choices_of(ok_json(shared.plain))
    roles = [(c.get("message") or {}).get("role") for c in choices]
    expect(
        bool(roles) and all(r == "assistant" for r in roles),
        "role 'assistant'",
        short(roles),
        shared.plain,
    )


@check(
    "response.content_string",
    "MUST",
    "message.content: The contents of the message (a string; null only with tool calls or a "
    "refusal).",
)
def test_content_string(shared):
    for choice in choices_of(ok_json(shared.plain)):
        message = choice.get("message") or {}
        content = message.get("content")
        explained = message.get("tool_calls") or isinstance(message.get("refusal"), str)
        allowed = isinstance(content, str) or (content is None and explained)
        expect(
            bool(allowed),
            "a string (null only with tool_calls or a refusal)",
            short(content),
            shared.plain,
        )


@check(
    "response.finish_reason_enum",
    "MUST",
    "finish_reason is one of stop, length, tool_calls, content_filter, function_call.",
)
def test_finish_reason(shared):
    reasons = [c.get("finish_reason") for c in choices_of(ok_json(shared.plain))]
    expect(
        bool(reasons) and all(r in FINISH_REASONS for r in reasons),
        f"one of {FINISH_REASONS}",
        short(reasons),
        shared.plain,
    )


@check(
    "response.refusal_key",
    "SHOULD",
    "message.refusal is a required (nullable) key; many servers omit it, which typed "
    "clients may reject.",
)
def test_refusal_key(shared):
    for choice in choices_of(ok_json(shared.plain)):
        expect(
            "refusal" in (choice.get("message") or {}),
            "message.refusal present (null ok)",
            "key missing",
            shared.plain,
        )


@check(
    "response.logprobs_key",
    "SHOULD",
    "choices[].logprobs is a required (nullable) key; servers often omit it when logprobs "
    "were not requested.",
)
def test_logprobs_key(shared):
    for choice in choices_of(ok_json(shared.plain)):
        expect(
            "logprobs" in choice,
            "choices[].logprobs present (null ok)",
            "key missing",
            shared.plain,
        )
