"""tools / tool_choice / parallel_tool_calls: forced calls, their shape, streaming, round trip."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from conformance.exchanges.expect import (
    choices_of,
    describe_status,
    first_choice,
    message_of,
    ok_json,
    ok_stream,
    streamed_finish_reasons,
)
from conformance.exchanges.requests import Planned, chat_body, send_batch
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import SILENT, check, expect, not_applicable, short
from conformance.verdicts.premises import STREAM_CHOICES, TOOL_CALL_MADE

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TOOLS = [WEATHER, TIME]
NAMES = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather in Paris? Use the get_weather tool."}]
ASK_BOTH = [{"role": "user", "content": "Call get_weather and get_time for Paris."}]
NAMED = {"type": "function", "function": {"name": "get_weather"}}
FORCED = {"required": "required", "named": NAMED}
HISTORY = [
    *ASK,
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_chatcompat_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_chatcompat_1", "content": '{"temperature_c": 18}'},
]


@pytest.fixture(scope="session")
def tooled(endpoint, capabilities):
    model = endpoint.model

    def spec(label, **extra):
        extra.setdefault("messages", ASK)
        extra.setdefault("max_tokens", 64)
        return Planned("tools", RequestSpec(label, json=chat_body(model, tools=TOOLS, **extra)))

    plan = {
        name: spec(f"tool_choice {name}", tool_choice=choice) for name, choice in FORCED.items()
    }
    plan["none"] = spec("tool_choice none", tool_choice="none")
    plan["stream"] = spec("tool_choice required, streamed", tool_choice="required", stream=True)
    plan["round_trip"] = spec("tool result round trip", messages=HISTORY)
    plan["both"] = spec(
        "two tools asked for, parallel_tool_calls unset",
        tool_choice="required",
        messages=ASK_BOTH,
        max_tokens=96,
    )
    plan["single"] = Planned(
        "parallel_tool_calls",
        RequestSpec(
            "parallel_tool_calls false",
            json=chat_body(
                model,
                tools=TOOLS,
                tool_choice="required",
                parallel_tool_calls=False,
                messages=ASK_BOTH,
                max_tokens=96,
            ),
        ),
    )
    return send_batch(endpoint, capabilities, plan)


def _calls(exchange) -> list:
    calls = message_of(exchange).get("tool_calls") or []
    return calls if isinstance(calls, list) else [calls]


def _forced_calls(tooled, capabilities, case, *, own: bool = False) -> list:
    """The forced tool calls; no call at all is tools.forced_call's failure (``own``) and a
    missing premise for every check that inspects the calls."""
    exchange = tooled[case]
    capabilities.gate("tools", exchange)
    calls = _calls(exchange)
    capabilities.effect("tools", bool(calls), f"tool_choice {short(FORCED[case])}", exchange)
    if not own:
        TOOL_CALL_MADE.require(calls, f"tool_choice {short(FORCED[case])}")
    expect(
        bool(calls),
        f"tool_calls (tool_choice {short(FORCED[case])})",
        f"no tool call; content {short(message_of(exchange).get('content'))}",
        exchange,
    )
    return calls


@check(
    "tools.forced_call",
    "MUST",
    "tool_choice 'required' or a named function forces the model to call one or more tools.",
    capability="tools",
    rationale="the caller forced a call; " + SILENT,
    broken_by={"ignore_tools": "got no tool call"},
)
@pytest.mark.parametrize("case", list(FORCED))
def test_forced_call(tooled, capabilities, case):
    _forced_calls(tooled, capabilities, case, own=True)


@check(
    "tools.call_ids",
    "MUST",
    "tool_calls[].id: a non-empty id, unique within the message; type is 'function'.",
    capability="tools",
    rationale="the tool result refers back by id",
    needs=(TOOL_CALL_MADE,),
    broken_by={
        "tool_call_id_empty": "non-empty unique ids; got ['']",
        "tool_call_type_wrong": "got ['tool']",
    },
)
@pytest.mark.parametrize("case", list(FORCED))
def test_call_ids(tooled, capabilities, case):
    calls = _forced_calls(tooled, capabilities, case)
    ids = [c.get("id") for c in calls]
    expect(
        all(isinstance(i, str) and i for i in ids) and len(set(ids)) == len(ids),
        "non-empty unique ids",
        short(ids),
        tooled[case],
    )
    types = [c.get("type") for c in calls]
    expect(
        all(_call_type_ok(c) for c in calls),
        "type 'function' (or 'custom' with a custom object)",
        short(types),
        tooled[case],
    )


@check(
    "tools.call_names",
    "MUST",
    "function.name is the name of one of the tools given (the named one when forced by name).",
    capability="tools",
    rationale="clients dispatch by name; an unknown name cannot be run",
    needs=(TOOL_CALL_MADE,),
    broken_by={"tool_name_not_in_tools": "got ['get_weather_v2']"},
)
@pytest.mark.parametrize("case", list(FORCED))
def test_call_names(tooled, capabilities, case):
    calls = _forced_calls(tooled, capabilities, case)
    names = [call_name(c) for c in calls]
    allowed = ["get_weather"] if case == "named" else list(NAMES)
    expect(all(n in allowed for n in names), f"names among {allowed}", short(names), tooled[case])


def _call_type_ok(call) -> bool:
    """A function call, or a gpt-5 custom tool call ({"type": "custom", "custom": {...}})."""
    kind = call.get("type")
    return kind == "function" or (kind == "custom" and isinstance(call.get("custom"), dict))


def call_name(call) -> str | None:
    """The called tool's name: function.name, or custom.name for a custom tool call."""
    body = call.get("custom") if call.get("type") == "custom" else call.get("function")
    return body.get("name") if isinstance(body, dict) else None


def _argument_problems(call) -> str | None:
    """What is wrong with a call's arguments (None: nothing). Custom tool calls carry free
    text in custom.input instead of JSON function.arguments."""
    if call.get("type") == "custom":
        text = (call.get("custom") or {}).get("input")
        return None if isinstance(text, str) else f"custom.input is not a string: {short(text)}"
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        return f"arguments is {type(arguments).__name__}, not a JSON string: {short(arguments)}"
    try:
        value = json.loads(arguments)
    except ValueError:
        return f"arguments is not valid JSON: {short(arguments)}"
    schema = NAMES.get(function.get("name"))
    if schema is None:
        return None  # tools.call_names reports unknown names
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    return f"arguments {short(value)} do not match the parameters: {errors[:3]}" if errors else None


@check(
    "tools.arguments_json_string",
    "MUST",
    "function.arguments: the arguments to call the function with, as a JSON-encoded string "
    "matching the function's parameters schema.",
    capability="tools",
    rationale="clients json-parse arguments and call the function",
    needs=(TOOL_CALL_MADE,),
    broken_by={
        "arguments_as_object": "arguments is dict",
        "arguments_invalid": "'city' is a required property",
    },
)
@pytest.mark.parametrize("case", list(FORCED))
def test_arguments(tooled, capabilities, case):
    calls = _forced_calls(tooled, capabilities, case)
    problems = [p for c in calls if (p := _argument_problems(c))]
    expect(
        not problems,
        "a JSON string valid against the parameters",
        "; ".join(problems),
        tooled[case],
    )


@check(
    "tools.finish_reason",
    "MUST",
    "finish_reason is 'tool_calls' when the model called a tool (tool_choice required); a "
    "named tool_choice may end with 'stop', as OpenAI does.",
    capability="tools",
    rationale="clients run tools when finish_reason is tool_calls",
    needs=(TOOL_CALL_MADE,),
    broken_by={
        "finish_reason_eos": "got 'eos'",
        "tool_finish_reason_stop": {"required": "got 'stop'"},
        "tool_finish_reason_length": "got 'length'",
    },
)
@pytest.mark.parametrize("case", list(FORCED))
def test_finish_reason(tooled, capabilities, case):
    _forced_calls(tooled, capabilities, case)
    finish = first_choice(ok_json(tooled[case])).get("finish_reason")
    allowed = ("tool_calls", "stop") if case == "named" else ("tool_calls",)
    expect(finish in allowed, f"finish_reason in {allowed}", short(finish), tooled[case])


@check(
    "tools.choice_none_no_calls",
    "MUST",
    "tool_choice 'none' means the model will not call any tool and instead generates a message.",
    capability="tools",
    rationale="the caller forbade calls; " + SILENT,
    broken_by={"tool_choice_none_ignored": "no tool_calls; got [{'id'"},
)
def test_choice_none(tooled, capabilities):
    exchange = tooled["none"]
    capabilities.gate("tools", exchange)
    calls = _calls(exchange)
    expect(not calls, "no tool_calls", short(calls), exchange)


@check(
    "tools.stream_finish_reason",
    "MUST",
    "Streamed with tool_choice 'required', the choice that called tools ends with "
    "finish_reason 'tool_calls', as the non-streamed reply does: clients decide from it "
    "whether to run the tools.",
    capability="tools",
    rationale="clients run tools when finish_reason is tool_calls",
    needs=(TOOL_CALL_MADE,),
    broken_by={
        "two_finish_reasons": "got ['tool_calls', 'tool_calls']",
        "no_finish_reason": "got []",
        "tool_finish_reason_stop": "got ['stop']",
        "tool_finish_reason_length": "got ['length']",
    },
)
def test_stream_finish_reason(tooled, capabilities):
    exchange = tooled["stream"]
    capabilities.gate("tools", exchange)
    chunks = ok_stream(exchange)
    called = any(
        (c.get("delta") or {}).get("tool_calls")
        for chunk in chunks
        for c in choices_of(chunk)
        if c.get("index") == 0
    )
    TOOL_CALL_MADE.require(called, "the stream carried no tool_calls delta for choice 0")
    reasons = streamed_finish_reasons(chunks)
    expect(reasons == ["tool_calls"], "finish_reason ['tool_calls']", short(reasons), exchange)


@check(
    "tools.stream_deltas",
    "MUST",
    "Streamed tool calls: every tool_calls delta has an integer index, the first fragment of "
    "each call (per choice) carries its id, type and name, and the argument fragments "
    "concatenate to valid JSON.",
    capability="tools",
    rationale="streaming clients assemble calls from fragments by index",
    broken_by={
        "arguments_invalid": "do not match the parameters",
        "arguments_as_object": "fragments concatenate to valid arguments",
        "tool_call_id_empty": "id, type and function.name on the first fragment",
        "tool_delta_without_index": "an integer index on every tool_calls delta",
        "tool_delta_without_id": "got {'index': 0, 'type': 'function'",
        "tool_delta_without_type": "got {'index': 0, 'id': 'call_",
        "tool_delta_wrong_choice": "choice 0 call 0: fragments concatenate to valid arguments",
        "tool_delta_without_name": "'function': {'arguments': ''}}",
    },
    needs=(TOOL_CALL_MADE, STREAM_CHOICES),
)
def test_stream_deltas(tooled, capabilities):
    exchange = tooled["stream"]
    capabilities.gate("tools", exchange)
    chunks = ok_stream(exchange)
    # a stream of no choice (stream.first_delta_role), or a model that makes no call even
    # without streaming (tools.forced_call): no deltas to judge
    STREAM_CHOICES.require(any(choices_of(c) for c in chunks), exchange.label)
    _forced_calls(tooled, capabilities, "required")
    problems = stream_call_problems(chunks)
    if problems:
        expect(False, *problems[0], exchange)


def stream_call_problems(chunks: list) -> list[tuple[str, str]]:
    """(expected, actual) for each problem of the streamed tool calls, fragments grouped per
    choice and per call index (with n > 1 two choices each have a call 0)."""
    deltas = [
        (c.get("index"), d)
        for chunk in chunks
        for c in choices_of(chunk)
        for d in ((c.get("delta") or {}).get("tool_calls") or [])
    ]
    if not deltas:
        return [("tool_calls deltas", "none")]
    no_index = [d for _, d in deltas if not isinstance(d, dict) or type(d.get("index")) is not int]
    if no_index:
        return [("an integer index on every tool_calls delta", short(no_index[:2]))]
    calls: dict[tuple, list] = {}
    for choice, delta in deltas:
        calls.setdefault((choice, delta["index"]), []).append(delta)
    problems = []
    for (choice, index), fragments in calls.items():
        head, where = fragments[0], f"choice {choice} call {index}"
        if not (head.get("id") and _call_type_ok(head) and call_name(head)):
            expected = f"{where}: id, type and function.name on the first fragment"
            problems.append((expected, short(head)))
            continue
        pieces = [(f.get(head["type"]) or {}) for f in fragments]
        key = "input" if head["type"] == "custom" else "arguments"
        text = "".join(p[key] for p in pieces if isinstance(p.get(key), str))
        problem = _argument_problems({"type": head["type"], head["type"]: {**pieces[0], key: text}})
        if problem:
            problems.append((f"{where}: fragments concatenate to valid arguments", problem))
    return problems


@check(
    "tools.parallel_false_single_call",
    "MUST",
    "parallel_tool_calls false: at most one tool call per response (judged when the same "
    "request without the flag demonstrably gets several calls).",
    capability="parallel_tool_calls",
    rationale="callers that run one tool at a time break",
    broken_by={"parallel_tool_calls_ignored": "got 2 calls"},
)
def test_parallel_false(tooled, capabilities):
    exchange, twin = tooled["single"], tooled["both"]
    capabilities.gate("parallel_tool_calls", exchange)
    if twin is None or not twin.ok:
        not_applicable("the twin request without parallel_tool_calls got no answer")
    made = _calls(twin)
    if len(made) < 2:
        not_applicable(
            f"without parallel_tool_calls the model made {len(made)} call(s): one call with "
            "the flag would prove nothing"
        )
    calls = _calls(exchange)
    expect(len(calls) <= 1, "at most one tool call", f"{len(calls)} calls", exchange)


@check(
    "tools.round_trip",
    "MUST",
    "A replayed history (assistant message with content null and tool_calls, then a tool "
    "message with the result) is accepted and answered.",
    capability="tools",
    rationale="every agent loop sends tool results back",
    broken_by={
        "tool_history_rejected": "accepted back; got HTTP 400",
        "content_null": "an answer (content string)",
        "content_as_list": "an answer (content string); got {'role': 'assistant', 'content': [",
    },
)
def test_round_trip(tooled, capabilities):
    exchange = tooled["round_trip"]
    capabilities.gate("tools", tooled["required"])  # learn support from a plain tools request
    expect(
        exchange.ok,
        "HTTP 200: tools are supported, so their results must be accepted back",
        describe_status(exchange),
        exchange,
    )
    message = message_of(exchange)
    content = message.get("content")
    expect(
        isinstance(content, str) or bool(message.get("tool_calls")),
        "an answer (content string)",
        short(message),
        exchange,
    )
