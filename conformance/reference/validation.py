"""Request validation with OpenAI-shaped errors (status, message, type, param, code).

The common cases (the ones users hit and the suite probes) get hand-written messages in
OpenAI's wording style; everything else falls back to validating against the request schema
derived from OpenAI's spec, with ``param`` set to the failing field's path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from conformance.api.schemas import load_schema

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# Benchmark knobs some servers offer (vLLM, SGLang); the reference honours them too.
EXTENSION_FIELDS = frozenset({"min_tokens", "ignore_eos"})


@dataclass
class ApiError(Exception):
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


@cache
def _request_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("request"))


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The body must be a JSON object "
            "as described in the Chat Completions API reference.",
        )
    return body


def _range(body: dict, name: str, low: float, high: float, integer: bool = False) -> None:
    if name not in body or body[name] is None:
        return
    value = body[name]
    kind = "integer" if integer else "decimal"
    valid_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not valid_type or isinstance(value, bool):
        expected = "an integer" if integer else "a number"
        raise ApiError(
            400,
            f"Invalid type for '{name}': expected {expected}, but got {type(value).__name__}.",
            param=name,
            code="invalid_type",
        )
    if value < low:
        raise ApiError(
            400,
            f"Invalid '{name}': {kind} below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            param=name,
            code=f"{kind}_below_min_value",
        )
    if value > high:
        raise ApiError(
            400,
            f"Invalid '{name}': {kind} above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            param=name,
            code=f"{kind}_above_max_value",
        )


def _check_messages(body: dict) -> None:
    if "messages" not in body:
        raise ApiError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        raise ApiError(
            400,
            "Invalid type for 'messages': expected an array of objects.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(
                400,
                f"Invalid type for 'messages[{i}]': expected an object.",
                param=f"messages[{i}]",
                code="invalid_type",
            )
        role = message.get("role")
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES)
            raise ApiError(
                400,
                f"Invalid value: {json.dumps(role)}. Supported values are: {supported}.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        if role == "tool" and not message.get("tool_call_id"):
            raise ApiError(
                400,
                f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                param=f"messages[{i}].tool_call_id",
                code="missing_required_parameter",
            )
        if "content" not in message and not (role == "assistant" and message.get("tool_calls")):
            raise ApiError(
                400,
                f"Missing required parameter: 'messages[{i}].content'.",
                param=f"messages[{i}].content",
                code="missing_required_parameter",
            )


def _check_combinations(body: dict, faults: frozenset[str]) -> None:
    checks_stream_options = "stream_options_without_stream_accepted" not in faults
    if checks_stream_options and body.get("stream_options") is not None and not body.get("stream"):
        raise ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    if (
        body.get("top_logprobs") is not None
        and not body.get("logprobs")
        and ("top_logprobs_unvalidated" not in faults)
    ):
        raise ApiError(
            400,
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true.",
            param="top_logprobs",
            code="invalid_value",
        )
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > 4 and "stop_over_4_accepted" not in faults:
        raise ApiError(
            400,
            f"Invalid 'stop': array too long. Expected an array with maximum length 4, "
            f"but got an array with length {len(stop)} instead.",
            param="stop",
            code="array_above_max_length",
        )
    for key, bias in (body.get("logit_bias") or {}).items():
        if "logit_bias_unvalidated" in faults:
            break
        if not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
            raise ApiError(
                400,
                f"Invalid 'logit_bias': bias for token {key} must be between -100 and 100.",
                param="logit_bias",
                code="invalid_value",
            )
    if body.get("tool_choice") is not None and not body.get("tools"):
        raise ApiError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            param="tool_choice",
            code=None,
        )
    _check_tool_choice(body)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        text = json.dumps(body.get("messages", [])).lower()
        if "json" not in text:
            raise ApiError(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' "
                "of type 'json_object'.",
                param="messages",
            )


def _check_tool_choice(body: dict) -> None:
    """A named tool_choice must name one of the tools sent (OpenAI answers 400)."""
    choice = body.get("tool_choice")
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    names = {
        t["function"].get("name")
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    }
    if name is not None and name not in names:
        raise ApiError(
            400,
            f"Invalid value for 'tool_choice': tool '{str(name)[:100]}' is not one of the "
            "'tools' sent.",
            param="tool_choice",
            code="invalid_value",
        )


def _schema_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_SCHEMA_CODES = {
    "type": "invalid_type",
    "enum": "invalid_value",
    "const": "invalid_value",
    "required": "missing_required_parameter",
    "maxItems": "array_above_max_length",
    "minItems": "array_below_min_length",
    "maxLength": "string_above_max_length",
}


def _check_schema(body: dict, faults: frozenset[str]) -> None:
    known = load_schema("request")["$defs"]["CreateChatCompletionRequest"]
    fields = set(_all_properties(known)) | EXTENSION_FIELDS
    for name in body:
        if name not in fields and "unknown_params_accepted" not in faults:
            raise ApiError(400, f"Unrecognized request argument supplied: {name}", param=name)
    relaxed = {
        "accept_out_of_range": ("temperature", "top_p", "presence_penalty", "frequency_penalty"),
        "stop_over_4_accepted": ("stop",),
        "top_logprobs_unvalidated": ("top_logprobs",),
        "logit_bias_unvalidated": ("logit_bias",),
    }
    skip = {name for fault, names in relaxed.items() if fault in faults for name in names}
    errors = sorted(
        (e for e in _request_validator().iter_errors(body) if not (e.path and e.path[0] in skip)),
        key=lambda e: len(list(e.path)),
    )
    if errors:
        error = errors[0]
        param = _schema_path(error.absolute_path) or None
        raise ApiError(
            400,
            f"Invalid '{param or 'body'}': {error.message[:300]}",
            param=param,
            code=_SCHEMA_CODES.get(str(error.validator), "invalid_value"),
        )


def _all_properties(schema: dict) -> list[str]:
    names = list(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            ref = part["$ref"].rsplit("/", 1)[-1]
            names += _all_properties(load_schema("request")["$defs"][ref])
        else:
            names += _all_properties(part)
    return names


RANGES = (
    ("temperature", 0, 2),
    ("top_p", 0, 1),
    ("presence_penalty", -2, 2),
    ("frequency_penalty", -2, 2),
)


def validate_request(body: dict[str, Any], faults: frozenset[str] = frozenset()) -> None:
    """Raise ApiError for the first problem found, in the order OpenAI tends to report.

    Validation faults relax (or tighten) exactly one rule each; see faults.py.
    """
    if not isinstance(body.get("model"), str) or not body.get("model"):
        raise ApiError(
            400,
            "You must provide a model parameter.",
            param="model",
            code="missing_required_parameter",
        )
    _check_messages(body)
    for name, low, high in RANGES:
        if "accept_out_of_range" in faults:  # the bounds only: a string is still no number
            low, high = float("-inf"), float("inf")
        elif "reject_in_range" in faults:  # the classic off-by-one: exclusive bounds
            low, high = low + 1e-9, high - 1e-9
        _range(body, name, low, high)
    _range(body, "n", 1, 128, integer=True)
    if "top_logprobs_unvalidated" not in faults:
        _range(body, "top_logprobs", 0, 20, integer=True)
    _range(body, "max_tokens", 1, 1 << 31, integer=True)
    _range(body, "max_completion_tokens", 1, 1 << 31, integer=True)
    _check_combinations(body, faults)
    _check_schema(body, faults)
