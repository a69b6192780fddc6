"""Faults that make the server ignore or misread request fields, applied to the parsed body.

"Accepted and silently ignored" is the commonest real divergence; reproducing it is simply
removing (or rewriting) the field after validation, before generation.
"""

from __future__ import annotations

import copy
from typing import Any

from conformance.api.request_fields import OPTIONAL_FIELDS
from conformance.reference.validation import ApiError

# fault name -> request fields it silently drops
IGNORED_FIELDS: dict[str, tuple[str, ...]] = {
    "ignore_stop": ("stop",),
    "ignore_n": ("n",),
    "ignore_max_tokens": ("max_tokens",),
    "ignore_max_completion_tokens": ("max_completion_tokens",),
    "ignore_seed": ("seed",),
    "ignore_logprobs": ("logprobs", "top_logprobs"),
    "ignore_logit_bias": ("logit_bias",),
    "ignore_tools": ("tools", "tool_choice"),
    "parallel_tool_calls_ignored": ("parallel_tool_calls",),
    "ignore_penalties": ("presence_penalty", "frequency_penalty"),
    "response_format_prompt_only": ("response_format",),
}

MEDIA_PARTS = ("image_url", "input_audio")


def _has_part(body: dict[str, Any], kind: str) -> bool:
    for message in body.get("messages", []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == kind for p in content
        ):
            return True
    return False


def reject(body: dict[str, Any], faults: frozenset[str]) -> None:
    """Faults that refuse or crash on valid input (raise ApiError)."""
    if "optional_fields_500" in faults and any(f in body for f in OPTIONAL_FIELDS):
        raise ApiError(500, "Internal server error", "server_error")
    if "content_parts_500" in faults and _has_part(body, "text"):
        raise ApiError(500, "'list' object has no attribute 'strip'", "server_error")
    if "image_500" in faults and _has_part(body, "image_url"):
        raise ApiError(500, "Internal server error", "server_error")
    if "audio_500" in faults and _has_part(body, "input_audio"):
        raise ApiError(500, "Internal server error", "server_error")
    if "no_vision" in faults and _has_part(body, "image_url"):
        raise ApiError(  # OpenAI's wording names the part type
            400,
            "Invalid content type. image_url is only supported by certain models.",
            param="messages.[0].content.[1].type",
        )
    if "no_audio" in faults and _has_part(body, "input_audio"):
        raise ApiError(  # OpenAI's wording names the part type
            400,
            "Invalid content type. input_audio is only supported by certain models.",
            param="messages.[0].content.[1].type",
        )
    biases = (body.get("logit_bias") or {}).values()
    for fault, kind in (("logit_bias_integer_500", int), ("logit_bias_float_500", float)):
        if fault in faults and any(type(v) is kind for v in biases):
            raise ApiError(500, "Internal server error", "server_error")
    messages = body.get("messages", [])
    roles = {m.get("role") for m in messages if isinstance(m, dict)}
    if "non_user_roles_500" in faults and roles & {"system", "developer", "assistant"}:
        raise ApiError(500, "Internal server error", "server_error")
    if "tool_history_rejected" in faults and any(m.get("role") == "tool" for m in messages):
        raise ApiError(400, "Unexpected role 'tool'.", param="messages", code="invalid_value")
    if "o1_mini_developer_role" in faults:
        for i, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") == "developer":
                raise ApiError(
                    400,
                    O1_MINI_DEVELOPER.format(i=i),
                    param=f"messages[{i}].role",
                    code="unsupported_value",
                )
    if "reject_name" in faults and any("name" in m for m in messages):
        raise ApiError(400, "Unrecognized field 'name' in message.", param="messages")


# --- reasoning on / invalid requests (issue 15) ---
#: Variants played only on the official SDK's requests (it sends X-Stainless-Lang), so that
#: they reach the sdk.* checks they are about and no raw check.
SDK_ONLY = frozenset({"sdk_refusal", "sdk_function_call", "choiceless_chunks"})
#: o1-mini's answer to a developer message (recorded: error_o1-mini_developer_role.json).
O1_MINI_DEVELOPER = (
    "Unsupported value: 'messages[{i}].role' does not support 'developer' with this model."
)


def for_client(faults: frozenset[str], headers: Any) -> frozenset[str]:
    """The faults of one request: the SDK-only variants only for the SDK's requests."""
    if faults & SDK_ONLY and headers.get("x-stainless-lang") is None:
        return faults - SDK_ONLY
    return faults


#: Lenient servers that repair an invalid request instead of rejecting it, as real ones do.
LENIENT = (
    "token_limit_below_one_accepted",
    "missing_model_accepted",
    "temperature_type_unchecked",
    "messages_string_accepted",
    "unknown_response_format_ignored",
    "absent_tool_choice_ignored",
    "unknown_roles_dropped",
)
_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")
_FORMATS = ("text", "json_object", "json_schema")


def lenient(body: dict[str, Any], faults: frozenset[str], model: str) -> dict[str, Any]:
    """Before validation: the body as a lenient server repairs it (a 200 where OpenAI 400s)."""
    if not faults.intersection(LENIENT):
        return body
    body = copy.deepcopy(body)
    if "token_limit_below_one_accepted" in faults:  # 0 / -1 read as "no limit"
        for name in _TOKEN_FIELDS:
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                del body[name]
    if "missing_model_accepted" in faults and "model" not in body:
        body["model"] = model  # a one-model server serves whatever is asked
    if "temperature_type_unchecked" in faults and isinstance(body.get("temperature"), str):
        del body["temperature"]
    if "messages_string_accepted" in faults and isinstance(body.get("messages"), str):
        body["messages"] = [{"role": "user", "content": body["messages"]}]
    fmt = body.get("response_format")
    unknown = isinstance(fmt, dict) and fmt.get("type") not in _FORMATS
    if "unknown_response_format_ignored" in faults and unknown:
        del body["response_format"]
    if "absent_tool_choice_ignored" in faults and _names_absent_tool(body):
        body["tool_choice"] = "auto"
    if "unknown_roles_dropped" in faults and isinstance(body.get("messages"), list):
        known = ("system", "developer", "user", "assistant", "tool", "function")
        body["messages"] = [
            m for m in body["messages"] if not isinstance(m, dict) or m.get("role") in known
        ]
    return body


def _names_absent_tool(body: dict[str, Any]) -> bool:
    """Whether tool_choice names a function that is not among the tools sent."""
    choice = body.get("tool_choice")
    function = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(function, dict):
        return False
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    sent = [t.get("function") for t in tools if isinstance(t, dict)]
    return function.get("name") not in [f.get("name") for f in sent if isinstance(f, dict)]


def distort(body: dict[str, Any], faults: frozenset[str]) -> dict[str, Any]:
    """A copy of the body as a server with these faults would (mis)understand it."""
    body = copy.deepcopy(body)
    for fault, fields in IGNORED_FIELDS.items():
        if fault in faults:
            for name in fields:
                body.pop(name, None)
    if "ignore_max_completion_tokens_in_stream" in faults and body.get("stream"):
        body.pop("max_completion_tokens", None)  # llama-cpp-python: 192 chunks for a limit of 5
        body.pop("stream_options", None)  # ... and no usage chunk to count them
    fmt = body.get("response_format") or {}
    if "ignore_json_mode" in faults and fmt.get("type") == "json_object":
        body.pop("response_format")
    if "ignore_json_schema" in faults and fmt.get("type") == "json_schema":
        body["response_format"] = {"type": "json_object"}
    if "tool_choice_none_ignored" in faults and body.get("tool_choice") == "none":
        body["tool_choice"] = "required"
    if "parts_text_dropped" in faults:  # only string content is read
        for message in body["messages"]:
            if isinstance(message.get("content"), list):
                message["content"] = [p for p in message["content"] if p.get("type") != "text"]
    if "drop_media" in faults:  # parts the model cannot use, silently dropped
        for message in body["messages"]:
            if isinstance(message.get("content"), list):
                parts = message["content"]
                message["content"] = [p for p in parts if p.get("type") not in MEDIA_PARTS]
    if "drop_system" in faults:
        body["messages"] = [
            m for m in body["messages"] if m.get("role") not in ("system", "developer")
        ] or body["messages"][-1:]
    return body
