"""sdk.*: the official openai Python SDK against the endpoint.

The SDK is lenient about framing and shapes, so these checks complement the raw ones: they
prove that the code most users run actually works. An SDK exception is a failed check, with
the request as evidence (replayed through our transport unless it cost a timeout). Every SDK
call goes through the run's breaker, and the client never retries (``max_retries=0``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.api import dialect
from conformance.exchanges.expect import choices_of, ok_stream
from conformance.exchanges.requests import PROMPT, chat_body
from conformance.transport.client import RequestSpec, shape_of
from conformance.verdicts.check import check, expect, short
from conformance.verdicts.premises import STREAM_CHOICES, TOOL_CALL_MADE

openai = pytest.importorskip("openai", reason="the openai SDK is not installed")
pydantic = pytest.importorskip("pydantic")

from conformance.checks.tools import (  # noqa: E402 - after the importorskip guards
    WEATHER,
    _forced_calls,
    tooled,  # noqa: F401 - the fixture: the forced call without the SDK and streaming
)


class Place(pydantic.BaseModel):
    city: str
    country: str


@pytest.fixture(scope="session")
def sdk(endpoint, chatcompat_settings):
    """The official client on our bounded httpx client (total deadline, body cap, no
    redirects): the SDK itself has no total timeout and reads whole bodies."""
    limits = chatcompat_settings.limits
    client = openai.OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.transport.key_for_sdk(),
        max_retries=0,
        timeout=limits.read_timeout,
        http_client=endpoint.transport.sdk_http_client(),
    )
    yield client
    client.close()


def _describe(exc: BaseException) -> str:
    """The exception and its cause (the SDK wraps transport errors as 'Connection error.')."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return short(text, 400)


def _costly(exc: BaseException) -> str | None:
    """What a timeout or a cap in the SDK's exception chain cost, or None for other errors."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        text = f"{type(seen).__name__}: {seen}"
        if isinstance(seen, openai.APITimeoutError) or "Timeout" in type(seen).__name__:
            return short(text + " (the SDK's timeouts: --request-timeout, --total-timeout)", 300)
        if "exceeded the cap" in str(seen):
            return short(text, 300)
        seen = seen.__cause__ or seen.__context__
    return None


def _call(endpoint, capabilities, capability: str | None, body: dict[str, Any], action):
    """Run an SDK call through the run's breaker; on an exception fail (or skip as
    unsupported) with the request as evidence.

    Once the breaker has tripped nothing is sent; an SDK call that cost a timeout or hit a cap
    counts against the breaker like any of our requests, and is not replayed (that would cost
    the timeout twice). Other failures are replayed through our transport for the evidence.
    """
    transport = endpoint.transport
    spec = RequestSpec("the SDK's request", json=body)
    breaker = transport.breaker
    if breaker.tripped:
        refused = transport.unsent(spec, breaker.refusal())
        expect(False, "the SDK call to succeed", f"transport error: {refused.error}", refused)
    try:
        result = action()
    except Exception as exc:  # any SDK failure is the finding
        cost = _costly(exc)
        if cost is not None:
            breaker.costly(shape_of(spec), cost)
            exchange = transport.unsent(spec, f"{cost}; not replayed, to spend it once")
        else:
            exchange = transport.send(RequestSpec("the SDK's request, replayed", json=body))
        if capability and isinstance(exc, openai.APIStatusError):
            capabilities.gate(capability, exchange)
        actual = _describe(exc) if cost is None else f"transport error: {cost}"
        expect(False, "the SDK call to succeed", actual, exchange)
    breaker.answered(shape_of(spec))
    return result


def _expect(endpoint, body: dict[str, Any], condition: bool, expected: str, actual: str) -> None:
    """An expectation on what the SDK returned. The SDK's own exchange is not recorded, so on
    failure the request is replayed through our transport: the evidence then has the
    exchange and a curl line, like every other failure."""
    if not condition:
        replayed = endpoint.transport.send(RequestSpec("the SDK's request, replayed", json=body))
        expect(False, expected, actual, replayed)


def _body(endpoint, **extra) -> dict[str, Any]:
    """The request in the negotiated dialect (token-limit field, temperature, reasoning)."""
    extra.setdefault("messages", [{"role": "user", "content": PROMPT}])
    return chat_body(endpoint.model, **extra)


def _sdk_args(body: dict[str, Any]) -> dict[str, Any]:
    """The SDK's keyword arguments: fields from --extra-body go through its ``extra_body``."""
    extra = {k: body[k] for k in dialect.current().extra_body if k in body}
    args = {k: v for k, v in body.items() if k not in extra}
    return {**args, "extra_body": extra} if extra else args


@check(
    "sdk.plain_completion",
    "MUST",
    "client.chat.completions.create() returns a completion whose first choice holds an "
    "assistant message with string content.",
    rationale="the client most users run must work",
    broken_by={
        "content_null": "ChatCompletionMessage(content=None",
        "wrong_role": "role='model'",
        "content_as_list": "content a string; got ChatCompletionMessage(content=[",
    },
)
def test_plain_completion(sdk, endpoint, capabilities):
    body = _body(endpoint)
    completion = _call(
        endpoint, capabilities, None, body, lambda: sdk.chat.completions.create(**_sdk_args(body))
    )
    message = completion.choices[0].message if completion.choices else None
    # OpenAI may refuse (content null, refusal set) or answer a (legacy) call: answers too
    other = message is not None and bool(
        message.refusal or getattr(message, "function_call", None) or message.tool_calls
    )
    _expect(
        endpoint,
        body,
        message is not None
        and message.role == "assistant"
        and (other or isinstance(message.content, str)),
        "choices[0].message: role assistant, a refusal or a call, else content a string",
        short(message),
    )


@check(
    "sdk.stream",
    "MUST",
    "create(stream=True) iterates chunks without error, and the deltas assemble a message "
    "with a finish_reason.",
    capability="streaming",
    rationale="the client most users run must work",
    broken_by={
        "chunk_bad_delta": "TypeError",
        "no_finish_reason": "finish_reason None",
        "non_json_event": "JSONDecodeError",
    },
    needs=(STREAM_CHOICES,),
)
def test_stream(sdk, endpoint, capabilities, shared):
    body = _body(endpoint, stream=True)

    def run():
        parts, finish = [], None
        for chunk in sdk.chat.completions.create(**_sdk_args(body)):
            for choice in chunk.choices or []:  # OpenAI sends chunks with choices []
                delta = choice.delta
                parts.append(delta.content or delta.refusal or "")
                if getattr(delta, "function_call", None) or delta.tool_calls:
                    parts.append("(call)")
                finish = choice.finish_reason or finish
        return "".join(parts), finish

    content, finish = _call(endpoint, capabilities, "streaming", body, run)
    if not content and finish is None and shared.stream.ok:
        # the same stream without the SDK has no choice either: stream.first_delta_role's fail
        chunks = ok_stream(shared.stream)
        STREAM_CHOICES.require(any(choices_of(c) for c in chunks), shared.stream.label)
    _expect(
        endpoint,
        body,
        bool(content) and finish is not None,
        "content (or a refusal or a call) and a finish_reason",
        f"content {short(content)}, finish_reason {finish!r}",
    )


@check(
    "sdk.stream_tools",
    "MUST",
    "The SDK's stream helper accumulates streamed tool-call deltas into complete tool calls "
    "with JSON arguments.",
    capability="tools",
    rationale="the client most users run must work",
    broken_by={
        "tool_delta_wrong_choice": "expected JSON arguments; got ''",
        "tool_finish_reason_length": "LengthFinishReasonError",
        "arguments_as_object": "expected JSON arguments",
        "stream_no_choices": "AssertionError",
        "wrong_chunk_object": "AssertionError",
        "non_json_event": "JSONDecodeError",
        "tool_delta_without_index": "TypeError",
    },
    needs=(TOOL_CALL_MADE,),
)
def test_stream_tools(sdk, endpoint, capabilities, tooled):  # noqa: F811
    capabilities.skip_if_absent("tools")
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    body = _body(
        endpoint, messages=messages, tools=[WEATHER], tool_choice="required", max_tokens=64
    )
    stream_args = _sdk_args(body)

    def run():
        with sdk.chat.completions.stream(**stream_args) as stream:
            return stream.get_final_completion()

    final = _call(endpoint, capabilities, "tools", {**body, "stream": True}, run)
    calls = final.choices[0].message.tool_calls or [] if final.choices else []
    sent = {**body, "stream": True}
    if not calls:  # no call even without the SDK: tools.forced_call's failure (a premise)
        _forced_calls(tooled, capabilities, "required")
    _expect(endpoint, sent, bool(calls), "at least one accumulated tool call", short(final))
    arguments = calls[0].function.arguments
    try:
        json.loads(arguments)
    except (TypeError, ValueError):
        _expect(endpoint, sent, False, "JSON arguments", short(arguments))


@check(
    "sdk.structured_output",
    "MUST",
    "client.chat.completions.parse(response_format=<pydantic model>) returns a parsed "
    "instance of that model.",
    capability="json_schema",
    rationale="the client most users run must work",
    broken_by={
        "json_object_not_object": "Input should be an object",
        "response_format_prompt_only": "ValidationError",
        "structured_null_content": "a parsed Place instance; got None",
        "refusal_always": "a parsed Place instance; got None",
        "content_null": "a parsed Place instance; got None",
        "content_as_list": "ValidationError",
        "ignore_json_schema": "ValidationError",
    },
)
def test_structured_output(sdk, endpoint, capabilities):
    capabilities.skip_if_absent("json_schema")
    messages = [
        {
            "role": "user",
            "content": "Answer in JSON with city and country: which city is the capital of France?",
        }
    ]
    # At most 64 tokens, like every SDK check: on a slow endpoint each token costs time.
    body = _body(endpoint, messages=messages, max_tokens=64)
    schema_body = {
        **body,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Place", "strict": True, "schema": Place.model_json_schema()},
        },
    }
    completion = _call(
        endpoint,
        capabilities,
        "json_schema",
        schema_body,
        lambda: sdk.chat.completions.parse(response_format=Place, **_sdk_args(body)),
    )
    parsed = completion.choices[0].message.parsed if completion.choices else None
    _expect(
        endpoint, schema_body, isinstance(parsed, Place), "a parsed Place instance", short(parsed)
    )
