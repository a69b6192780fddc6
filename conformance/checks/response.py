"""response.*: the shape of a non-streamed chat.completion object."""

from __future__ import annotations

import re
import time
from typing import Any

from conformance.api.schemas import schema_errors
from conformance.exchanges.expect import choices_of, ok_json
from conformance.verdicts.check import CLIENTS_PARSE, check, expect, not_applicable, observe, short
from conformance.verdicts.premises import TWO_IDS

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


@check(
    "response.content_type_json",
    "MUST",
    "A non-streamed response is a JSON document (Content-Type: application/json).",
    rationale="HTTP clients pick the decoder from Content-Type",
    broken_by={"json_as_text_plain": "got 'text/plain"},
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
    rationale="the contract typed clients are generated from",
    broken_by={
        "usage_counts_as_strings": "usage.completion_tokens: '",
        "finish_reason_eos": "'eos' is not one of",
        "content_as_list": "choices[0].message.content: [{'type': 'text'",
        "wrong_role": "'model' is not one of ['assistant']",
        "missing_model": "'model' is a required property",
        "float_created": "created: ",
        "wrong_object": "'text_completion' is not one of ['chat.completion']",
        "index_as_string": "'0' is not of type 'integer'",
    },
)
def test_schema(shared):
    errors = schema_errors(ok_json(shared.plain), "response")
    expect(not errors, "no schema errors", "; ".join(errors), shared.plain)


@check(
    "response.object",
    "MUST",
    "object: The object type, which is always chat.completion.",
    rationale="clients dispatch on object",
    broken_by={"wrong_object": "got 'text_completion'"},
)
def test_object(shared):
    body = ok_json(shared.plain)
    expect(
        body.get("object") == "chat.completion",
        "object == 'chat.completion'",
        short(body.get("object")),
        shared.plain,
    )


@check(
    "response.id_nonempty",
    "MUST",
    "id: A unique identifier for the chat completion.",
    rationale="logs, caches and stores key on the id",
    broken_by={"empty_id": "non-empty string id; got ''"},
)
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
    rationale="typed clients reject a float",
    broken_by={"float_created": "expected an integer; got 1"},
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
    rationale="seconds, not milliseconds: timestamps are shown and compared",
    broken_by={"created_millis": "within a day of now"},
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


@check(
    "response.model_present",
    "MUST",
    "model: The model used for the chat completion.",
    rationale="required by the schema; clients log and route on it",
    broken_by={"missing_model": "model string; got None"},
)
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
    rationale=CLIENTS_PARSE,
    broken_by={"index_as_string": "got ['0']", "index_from_one": "got [1]"},
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


@check(
    "response.message_role",
    "MUST",
    "message.role: The role of the author: 'assistant'.",
    rationale=CLIENTS_PARSE,
    broken_by={"wrong_role": "got ['model']"},
)
def test_message_role(shared):
    choices = choices_of(ok_json(shared.plain))
    roles = [(c.get("message") or {}).get("role") for c in choices]
    expect(
        bool(roles) and all(r == "assistant" for r in roles),
        "role 'assistant'",
        short(roles),
        shared.plain,
    )


def content_allowed(message: dict) -> bool:
    """content is a string, or null beside what replaces it: tool_calls, a legacy
    function_call, or a refusal string (all three seen in OpenAI's own responses)."""
    content = message.get("content")
    explained = (
        bool(message.get("tool_calls"))
        or isinstance(message.get("function_call"), dict)
        or isinstance(message.get("refusal"), str)
    )
    return isinstance(content, str) or (content is None and explained)


@check(
    "response.content_string",
    "MUST",
    "message.content: The contents of the message (a string; null only with tool calls, a "
    "legacy function_call or a refusal).",
    rationale=CLIENTS_PARSE,
    broken_by={
        "content_as_list": "got [{'type': 'text'",
        "content_null": "function_call or a refusal); got None",
    },
)
def test_content_string(shared):
    for choice in choices_of(ok_json(shared.plain)):
        message = choice.get("message") or {}
        expect(
            content_allowed(message),
            "a string (null only with tool_calls, function_call or a refusal)",
            short(message.get("content")),
            shared.plain,
        )


@check(
    "response.finish_reason_enum",
    "MUST",
    "finish_reason is one of stop, length, tool_calls, content_filter, function_call.",
    rationale="clients branch on it; an unknown value falls through",
    broken_by={"finish_reason_eos": "got ['eos']"},
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
    rationale="required but nullable; only strict typed clients reject it",
    broken_by={"omit_refusal": "refusal present (null ok); got key missing"},
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
    "INFO",
    "choices[].logprobs is a required, nullable key in the spec, but OpenAI itself omits it "
    "(reasoning, audio and search models, recorded), so omitting it is reported, not judged.",
    rationale="OpenAI itself omits it for reasoning, audio and search models",
)
def test_logprobs_key(shared):
    choices = choices_of(ok_json(shared.plain))
    omitted = [c.get("index") for c in choices if "logprobs" not in c]
    observe(
        f"choices[].logprobs omitted (choices {omitted}), as OpenAI does for some models"
        if omitted
        else "choices[].logprobs present",
        shared.plain,
    )


@check(
    "response.no_tool_calls_without_tools",
    "MUST",
    "A request without tools gets no tool_calls (there is nothing to call; clients that see "
    "tool_calls run their tool loop on it).",
    rationale="clients run their tool loop on any tool_calls",
    broken_by={"tool_calls_without_tools": "'call_stray'"},
)
def test_no_tool_calls_without_tools(shared):
    calls = [(c.get("message") or {}).get("tool_calls") for c in choices_of(ok_json(shared.plain))]
    present = [x for x in calls if x]
    expect(not present, "no tool_calls (the request had no tools)", short(present), shared.plain)


@check(
    "response.refusal_null",
    "MUST",
    "message.refusal is null on an ordinary answer: a refusal string beside the content of a "
    "plain greeting makes clients show a refusal that never happened.",
    rationale="clients show refusal text: a refusal that never happened",
    broken_by={"refusal_always": 'got refusal ["I can\'t help."]'},
)
def test_refusal_null(shared):
    messages = [c.get("message") or {} for c in choices_of(ok_json(shared.plain))]
    answered = [m for m in messages if isinstance(m.get("content"), str) and m["content"]]
    if not answered:
        not_applicable("no choice answered with content, so a refusal may be genuine")
    refusals = [m.get("refusal") for m in answered if m.get("refusal") is not None]
    expect(
        not refusals, "refusal null beside the content", f"refusal {short(refusals)}", shared.plain
    )


@check(
    "response.distinct_ids",
    "MUST",
    "id: A unique identifier for the chat completion: two completions never share one (logs, "
    "caches and stores key on it).",
    rationale="logs, caches and stores key on the id",
    needs=(TWO_IDS,),
    broken_by={
        "same_id": "different ids for",
        "id_string": "different ids for",
    },
    last=True,
)
def test_distinct_ids(shared, endpoint):
    """Every completion the run received, judged last: a server that fills one constant into
    its JSON replies (the schema's example "string") and real ids into its streams would
    pass a comparison of one reply with the streams."""
    ok_json(shared.plain)
    seen = [c for c in endpoint.transport.completions if isinstance(c.id, str) and c.id]
    TWO_IDS.require(len(seen) >= 2, f"{len(seen)} id(s) in the run")
    labels: dict[str, list[str]] = {}
    for completion in seen:
        labels.setdefault(completion.id, []).append(completion.label)
    repeated = {i: names for i, names in labels.items() if len(names) > 1}
    expect(
        not repeated,
        f"{len(seen)} different ids for {len(seen)} completions",
        lambda: "; ".join(
            f"{i!r} on {len(names)} completions ({short(names[:3], 160)})"
            for i, names in list(repeated.items())[:3]
        ),
        shared.plain,
    )


#: message keys that answer only a request asking for them: (key, what asks for it)
UNREQUESTED = (
    ("audio", "modalities including 'audio'"),
    ("function_call", "functions"),
    ("annotations", "web_search_options"),
)


def _requested(key: str, body: dict) -> bool:
    """Whether the request asked for the output ``key``. OpenAI's search-preview models
    search on every request, so annotations are theirs to send without web_search_options."""
    if key == "audio":
        return "audio" in (body.get("modalities") or []) or "audio" in body
    if key == "function_call":
        return bool(body.get("functions"))
    return "web_search_options" in body or "search" in str(body.get("model", ""))


@check(
    "response.no_unrequested_outputs",
    "MUST",
    "A request that asks for no audio, no functions and no web search gets no message.audio, "
    "no function_call and no annotations (an empty annotations list is fine, as OpenAI "
    "sends): clients play, call or cite whatever they find.",
    rationale="clients act on audio, function_call and citations they find",
    broken_by={
        "stray_audio": "got audio",
        "stray_function_call": "got function_call",
        "stray_annotations": "got annotations",
    },
)
def test_no_unrequested_outputs(shared):
    body = shared.plain.spec.json or {}
    stray = []
    for choice in choices_of(ok_json(shared.plain)):
        message = choice.get("message") or {}
        stray += [
            (key, message[key], asks)
            for key, asks in UNREQUESTED
            if message.get(key) not in (None, [], {}) and not _requested(key, body)
        ]
    expect(
        not stray,
        "no audio, function_call or annotations (none was requested)",
        lambda: "; ".join(f"{k} {short(v, 120)} without {asks}" for k, v, asks in stray),
        shared.plain,
    )


def model_matches(requested: str, served: Any) -> bool:
    """``served`` is ``requested`` or a dated snapshot of it, as OpenAI answers (gpt-4o ->
    gpt-4o-2024-08-06, o3-mini -> o3-mini-2025-01-31, gpt-4o-search-preview ->
    gpt-4o-search-preview-2025-03-11)."""
    if not isinstance(served, str):
        return False
    if served == requested:
        return True
    return served.startswith(requested + "-") and bool(
        DATED.fullmatch(served[len(requested) + 1 :])
    )


DATED = re.compile(r"\d{4}-\d{2}-\d{2}|\d{4}")


@check(
    "response.model_requested",
    "SHOULD",
    "model: The model used for the chat completion: the requested id, or a dated snapshot of "
    "it (gpt-4o answers gpt-4o-2024-08-06).",
    rationale="clients log and route on it; a proxy may map names, which only confuses logs",
    broken_by={"model_renamed": "got 'renamed-model'"},
)
def test_model_requested(shared):
    requested = (shared.plain.spec.json or {}).get("model")
    served = ok_json(shared.plain).get("model")
    if not isinstance(served, str) or not served:
        not_applicable("no model string to compare (response.model_present reports it)")
    expect(
        model_matches(str(requested), served),
        f"model {requested!r} or a dated snapshot of it",
        short(served),
        shared.plain,
    )


@check(
    "response.no_logprobs_unrequested",
    "SHOULD",
    "choices[].logprobs is null (or absent) when logprobs were not requested: OpenAI sends "
    "none, and they cost bandwidth on every response.",
    rationale="costs bandwidth; no client breaks on it",
    broken_by={"logprobs_unrequested": "got [{'content': [{'token'"},
)
def test_no_logprobs_unrequested(shared):
    blocks = [c.get("logprobs") for c in choices_of(ok_json(shared.plain))]
    sent = [b for b in blocks if b is not None]
    expect(not sent, "logprobs null (not requested)", short(sent, 120), shared.plain)
