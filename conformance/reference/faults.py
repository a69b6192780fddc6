"""Named fault switches: each reproduces one divergence seen in real "compatible" servers.

A fault lists the check IDs it must make fail and, per check, a fragment of the failure
message it must produce; the project's own tests run the suite against the reference server
with each fault and assert exactly that, which is how we know every check can fail *for its
own reason* (not merely through a precondition such as the HTTP status). Variants are the
opposite: framing and fields the spec allows, which must pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from conformance.api.request_fields import OPTIONAL
from conformance.reference.fault_messages import EXPECTED_MESSAGES
from conformance.reference.reasoning import FAULT_TABLE as REASONING_FAULTS
from conformance.reference.reasoning import PROFILES


@dataclass(frozen=True)
class Fault:
    name: str
    divergence: str
    breaks: tuple[str, ...]
    #: check id, or base id for all its parameters -> a fragment of the expected message
    #: ("expected ...; got ..."); filled from fault_messages.EXPECTED_MESSAGES unless given.
    messages: Mapping[str, str] = field(default_factory=dict, compare=False)

    def fragment(self, check_id: str) -> str | None:
        """The message fragment expected for ``check_id`` (exact id first, then base id)."""
        return self.messages.get(check_id) or self.messages.get(check_id.split("[")[0])


_OPTIONAL_CASES = tuple(OPTIONAL)
_INVALID_CASES = (
    "malformed_json",
    "missing_messages",
    "empty_messages",
    "bad_role",
    "temperature_too_high",
    "n_zero",
)


def _each(check: str, *cases: str) -> tuple[str, ...]:
    return tuple(f"{check}[{case}]" for case in cases)


_MODES = ("non-streamed", "streamed")
_STOP_CASES = ("string", "array", "streamed")
_FORCED = ("required", "named")
_RANGE_INSIDE = tuple(
    f"{name}={value}"
    for name, values in (
        ("temperature", (0, 2)),
        ("top_p", (0, 1)),
        ("presence_penalty", (-2, 2)),
        ("frequency_penalty", (-2, 2)),
    )
    for value in values
)
_RANGE_OUTSIDE = (
    "temperature=-0.1",
    "temperature=2.1",
    "top_p=-0.1",
    "top_p=1.1",
    "presence_penalty=-2.1",
    "presence_penalty=2.1",
    "frequency_penalty=-2.1",
    "frequency_penalty=2.1",
)


def _invalid(check: str, with_param: bool = False) -> tuple[str, ...]:
    cases = _INVALID_CASES[1:] if with_param else _INVALID_CASES  # malformed JSON names no field
    return tuple(f"{check}[{case}]" for case in cases)


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        # --- non-streamed response shape -------------------------------------------------
        Fault(
            "json_as_text_plain", "JSON body served as text/plain", ("response.content_type_json",)
        ),
        Fault("wrong_object", "object is 'text_completion'", ("response.object",)),
        Fault("empty_id", "id is an empty string", ("response.id_nonempty",)),
        Fault("float_created", "created is a float", ("response.created_integer",)),
        Fault("created_millis", "created in milliseconds", ("response.created_recent",)),
        Fault("missing_model", "model key omitted", ("response.model_present",)),
        Fault("index_from_one", "choice indices start at 1", ("response.choice_indices",)),
        Fault("index_as_string", "choice index is a string", ("response.schema",)),
        Fault("wrong_role", "message role is 'model'", ("response.message_role",)),
        Fault(
            "content_as_list",
            "content is a list of parts",
            ("response.content_string", "sdk.plain_completion"),
        ),
        Fault("finish_reason_eos", "finish_reason 'eos'", ("response.finish_reason_enum",)),
        Fault("omit_refusal", "message.refusal key omitted", ("response.refusal_key",)),
        # --- streaming -------------------------------------------------------------------
        Fault("stream_as_json", "stream served as application/json", ("stream.content_type",)),
        Fault(
            "non_json_event", "a 'keep-alive' data event", ("stream.events_are_json", "sdk.stream")
        ),
        Fault("chunk_bad_delta", "delta.content is a number", ("stream.chunk_schema",)),
        Fault("wrong_chunk_object", "chunk object 'chat.completion'", ("stream.chunk_object",)),
        Fault("changing_id", "each chunk has a new id", ("stream.id_constant",)),
        Fault("changing_created", "created ticks per chunk", ("stream.created_constant",)),
        Fault("changing_model", "model changes mid-stream", ("stream.model_constant",)),
        Fault("float_created_chunks", "chunk created is a float", ("stream.chunk_schema",)),
        Fault("no_role", "first delta has no role", ("stream.first_delta_role",)),
        Fault("no_finish_reason", "no finish_reason anywhere", ("stream.one_finish_reason",)),
        Fault(
            "two_finish_reasons",
            "finish_reason sent twice",
            ("stream.one_finish_reason", "n.stream_choices"),
        ),
        Fault(
            "content_after_finish",
            "content chunk after the finish_reason chunk",
            ("stream.finish_reason_last",),
        ),
        Fault("missing_done", "no data: [DONE]", ("stream.terminates_with_done",)),
        Fault("data_after_done", "a chunk after [DONE]", ("stream.nothing_after_done",)),
        Fault(
            "unterminated_done",
            "[DONE] not followed by a blank line (strict clients drop it)",
            ("stream.events_terminated",),
        ),
        Fault(
            "stream_content_differs",
            "stream drops the last token vs the JSON response",
            ("stream.matches_non_streamed",),
        ),
        # --- usage -----------------------------------------------------------------------
        Fault("no_usage", "usage omitted", ("usage.present", "usage.total_is_sum[non-streamed]")),
        Fault(
            "usage_total_wrong",
            "total_tokens != prompt + completion",
            ("usage.total_is_sum[non-streamed]", "usage.total_is_sum[streamed]"),
        ),
        Fault(
            "usage_over_max_tokens",
            "completion_tokens counts one more than max_tokens",
            ("usage.within_max_tokens",),
        ),
        Fault(
            "cached_exceeds_prompt",
            "cached_tokens > prompt_tokens",
            ("usage.details_within_totals",),
        ),
        Fault("no_usage_chunk", "include_usage ignored", ("usage.stream_one_usage_chunk",)),
        Fault(
            "usage_chunk_with_choices",
            "usage chunk repeats the finish choice",
            ("usage.stream_chunk_empty_choices",),
        ),
        Fault(
            "usage_chunk_not_last",
            "usage chunk sent before the finish chunk",
            ("usage.stream_chunk_last",),
        ),
        Fault(
            "usage_on_every_chunk",
            "running usage on every chunk",
            ("usage.stream_null_elsewhere", "usage.stream_one_usage_chunk"),
        ),
        Fault(
            "usage_chunk_unrequested",
            "usage chunk without include_usage",
            ("usage.stream_absent_unrequested",),
        ),
        Fault(
            "stream_usage_differs",
            "streamed usage counts differ from non-streamed",
            ("usage.stream_matches_non_streamed",),
        ),
        # --- errors ----------------------------------------------------------------------
        Fault(
            "auth_not_enforced",
            "any or no API key accepted",
            ("errors.auth[missing_key]", "errors.auth[wrong_key]"),
        ),
        Fault("status_422", "validation errors are 422", _invalid("errors.invalid_is_400")),
        Fault(
            "detail_envelope",
            "errors shaped {'detail': ...}",
            (*_invalid("errors.invalid_envelope"), "errors.auth[wrong_key]"),
        ),
        Fault(
            "error_200",
            "invalid input answered 200 with an error body",
            (*_invalid("errors.invalid_is_400"), *_invalid("errors.invalid_envelope")),
        ),
        Fault("bad_input_500", "invalid input causes 500", _invalid("errors.invalid_is_400")),
        Fault(
            "param_null",
            "error param always null",
            (
                *_invalid("errors.invalid_names_param", with_param=True),
                *_each("sampling.range_error_names_field", *_RANGE_OUTSIDE),
            ),
        ),
        Fault("error_code_integer", "error code is an integer", ("errors.envelope_types",)),
        Fault("error_as_text", "errors are plain text", ("errors.are_json",)),
        Fault("unknown_model_served", "unknown model answered 200", ("errors.unknown_model",)),
        Fault(
            "stream_error_as_event",
            "invalid streaming request answered 200 with an error event",
            ("errors.stream_invalid_is_http_error",),
        ),
        Fault(
            "usage_chunk_per_choice",
            "one usage chunk per choice, the first mid-stream (llama.cpp, n > 1)",
            ("n.stream_usage_once",),
        ),
        Fault(
            "close_after_stream",
            "connection closed after a stream without 'Connection: close' (llama.cpp)",
            ("stream.connection_persists",),
        ),
        # --- request fields (issue 3): accepted and ignored, distorted, rejected ----------
        Fault(
            "ignore_max_tokens",
            "max_tokens ignored",
            (*_each("max_tokens.respected", *_MODES), *_each("max_tokens.finish_length", *_MODES)),
        ),
        Fault(
            "ignore_max_completion_tokens",
            "max_completion_tokens ignored",
            (
                *_each("max_completion_tokens.respected", *_MODES),
                *_each("max_completion_tokens.finish_length", *_MODES),
            ),
        ),
        Fault(
            "length_reported_as_stop",
            "finish_reason 'stop' when cut by the limit",
            (
                *_each("max_tokens.finish_length", *_MODES),
                *_each("max_completion_tokens.finish_length", *_MODES),
            ),
        ),
        Fault("ignore_n", "n ignored (one choice)", ("n.choices", "n.stream_choices")),
        Fault("n_stream_role_only_first", "only choice 0 gets a role delta", ("n.stream_choices",)),
        Fault(
            "usage_counts_one_choice",
            "usage counts only the first choice",
            ("n.usage_counts_all_choices", "n.stream_usage_once"),
        ),
        Fault("ignore_seed", "seed ignored", ("seed.repeatable",)),
        Fault(
            "temp0_nondeterministic",
            "temperature 0 still samples",
            ("sampling.temperature0_repeatable",),
        ),
        Fault(
            "accept_out_of_range",
            "out-of-range sampling values accepted",
            _each("sampling.range_rejected", *_RANGE_OUTSIDE),
        ),
        Fault(
            "reject_in_range",
            "bounds treated as exclusive",
            _each("sampling.range_accepted", *_RANGE_INSIDE),
        ),
        Fault(
            "ignore_stop",
            "stop ignored",
            (
                *_each("stop.excluded_from_output", *_STOP_CASES),
                *_each("stop.halts_generation", *_STOP_CASES),
            ),
        ),
        Fault(
            "stop_left_in_output",
            "the stop sequence is included in the output",
            _each("stop.excluded_from_output", *_STOP_CASES),
        ),
        Fault(
            "stop_over_4_accepted", "more than 4 stop sequences accepted", ("stop.at_most_four",)
        ),
        Fault("ignore_logprobs", "logprobs ignored (null)", ("logprobs.structure",)),
        Fault("logprob_positive", "logprob > 0", ("logprobs.values_valid",)),
        Fault("logprob_bytes_wrong", "bytes are UTF-16", ("logprobs.bytes_match_tokens",)),
        Fault(
            "logprobs_tokens_mismatch",
            "logprob tokens for other text",
            ("logprobs.concatenate_to_content",),
        ),
        Fault(
            "top_logprobs_unsorted",
            "alternatives least likely first",
            ("logprobs.top_logprobs_bounded_sorted",),
        ),
        Fault(
            "top_logprobs_too_many",
            "two alternatives more than asked",
            ("logprobs.top_logprobs_bounded_sorted",),
        ),
        Fault(
            "top_logprobs_ignored",
            "top_logprobs ignored (no alternatives)",
            ("logprobs.top_logprobs_bounded_sorted",),
        ),
        Fault(
            "logprobs_missing_in_stream",
            "no logprobs on streamed chunks",
            ("logprobs.streamed_per_chunk",),
        ),
        Fault(
            "top_logprobs_unvalidated",
            "top_logprobs range and dependency unchecked",
            ("logprobs.top_without_logprobs_rejected", "logprobs.top_above_20_rejected"),
        ),
        Fault("logit_bias_unvalidated", "logit_bias 101 accepted", ("logit_bias.range_validated",)),
        Fault("ignore_logit_bias", "logit_bias ignored", ("logit_bias.bans_token",)),
        Fault(
            "ignore_json_mode", "json_object ignored", _each("response_format.json_object", *_MODES)
        ),
        Fault(
            "ignore_json_schema",
            "json_schema treated as json_object",
            (*_each("response_format.json_schema", *_MODES), "sdk.structured_output"),
        ),
        Fault("ignore_tools", "tools ignored", _each("tools.forced_call", *_FORCED)),
        Fault(
            "tool_name_not_in_tools", "called function renamed", _each("tools.call_names", *_FORCED)
        ),
        Fault("tool_call_id_empty", "tool call id empty", _each("tools.call_ids", *_FORCED)),
        Fault(
            "arguments_as_object",
            "arguments as a JSON object, not a string",
            _each("tools.arguments_json_string", *_FORCED),
        ),
        Fault(
            "arguments_invalid",
            "arguments miss required properties",
            _each("tools.arguments_json_string", *_FORCED),
        ),
        Fault(
            "tool_finish_reason_stop",
            "finish_reason 'stop' after required tool calls",
            ("tools.finish_reason[required]", "tools.stream_finish_reason"),
        ),
        Fault(
            "tool_finish_reason_length",
            "finish_reason 'length' after tool calls",
            (*_each("tools.finish_reason", *_FORCED), "tools.stream_finish_reason"),
        ),
        Fault(
            "tool_choice_none_ignored",
            "tool_choice none still calls tools",
            ("tools.choice_none_no_calls",),
        ),
        Fault(
            "tool_delta_without_index",
            "tool-call deltas without index",
            ("tools.stream_deltas", "sdk.stream_tools"),
        ),
        Fault(
            "tool_delta_without_id", "first tool-call delta without id", ("tools.stream_deltas",)
        ),
        Fault(
            "parallel_tool_calls_ignored",
            "parallel_tool_calls false ignored",
            ("tools.parallel_false_single_call",),
        ),
        Fault("tool_history_rejected", "tool result messages rejected", ("tools.round_trip",)),
        Fault(
            "optional_fields_500",
            "optional fields crash the server",
            tuple(f"params.optional_field[{c}]" for c in _OPTIONAL_CASES),
        ),
        Fault(
            "stream_options_without_stream_accepted",
            "stream_options accepted without stream",
            ("params.stream_options_requires_stream",),
        ),
        Fault(
            "drop_system",
            "system and developer messages dropped",
            _each("messages.system_honoured", "system", "developer"),
        ),
        Fault(
            "content_parts_500",
            "text-part arrays crash the server",
            _each("messages.content_parts", "system", "developer", "user", "assistant"),
        ),
        Fault(
            "non_user_roles_500",
            "system/developer/assistant messages crash the server",
            _each("messages.role_accepted", "system", "developer", "assistant"),
        ),
        Fault("reject_name", "messages[].name rejected", ("messages.name_accepted",)),
        Fault("image_500", "image parts crash the server", ("messages.image_input",)),
        Fault("audio_500", "audio parts crash the server", ("messages.audio_input",)),
        # --- models ----------------------------------------------------------------------
        Fault("models_bare_list", "GET /models returns a bare array", ("models.list_schema",)),
        Fault("model_not_listed", "model under test missing from /models", ("models.lists_model",)),
        # --- issue 10: accepted-and-ignored made visible, what mocks got away with ---------
        Fault(
            "tool_calls_without_tools",
            "tool_calls on a response to a request without tools",
            ("response.no_tool_calls_without_tools",),
        ),
        Fault(
            "content_null",
            "content null without tool_calls or a refusal",
            ("response.content_string", "tools.round_trip"),
        ),
        Fault("refusal_always", "a refusal string on every answer", ("response.refusal_null",)),
        Fault("same_id", "the same id on every completion", ("response.distinct_ids",)),
        Fault("usage_zero", "usage counts all zero", ("usage.completion_tokens_nonzero",)),
        Fault(
            "logprobs_unrequested",
            "logprobs sent without being asked",
            ("response.no_logprobs_unrequested",),
        ),
        Fault(
            "drop_media",
            "image and audio parts silently dropped",
            ("messages.image_input", "messages.audio_input"),
        ),
        Fault(
            "ignore_penalties",
            "presence and frequency penalties ignored",
            _each("sampling.penalty_effect", "presence_penalty", "frequency_penalty"),
        ),
        Fault(
            "logit_bias_integer_500",
            "integer logit_bias values crash the server",
            ("logit_bias.value_forms[integer]",),
        ),
        Fault(
            "logit_bias_float_500",
            "float logit_bias values crash the server",
            ("logit_bias.value_forms[float]",),
        ),
        Fault(
            "response_format_prompt_only",
            "response_format ignored; JSON only when the prompt asks for it",
            (
                *_each("response_format.json_object", *_MODES),
                *_each("response_format.json_schema", *_MODES),
            ),
        ),
        Fault(
            "structured_null_content",
            "structured output answered content null without a refusal",
            _each("response_format.json_schema", *_MODES),
        ),
        Fault(
            "tool_delta_without_type",
            "first tool-call delta without type",
            ("tools.stream_deltas",),
        ),
        Fault(
            "tool_delta_wrong_choice",
            "tool-call argument fragments filed under another choice",
            ("tools.stream_deltas",),
        ),
        Fault(
            "parts_text_dropped",
            "text parts ignored (only string content read)",
            _each("messages.content_parts", "system", "developer", "user", "assistant"),
        ),
        Fault(
            "tool_delta_without_name",
            "first tool-call delta without function.name",
            ("tools.stream_deltas",),
        ),
        Fault("tool_call_type_wrong", "tool call type 'tool'", _each("tools.call_ids", *_FORCED)),
        Fault(
            "json_object_not_object",
            "JSON mode answers a JSON array",
            _each("response_format.json_object", *_MODES),
        ),
        Fault(
            "media_empty_answer",
            "an empty answer to image and audio input",
            ("messages.image_input", "messages.audio_input"),
        ),
        Fault("logprobs_empty", "logprobs.content is []", ("logprobs.structure",)),
        Fault(
            "logprobs_entry_malformed",
            "logprobs entries without top_logprobs",
            ("logprobs.structure",),
        ),
        Fault(
            "completion_tokens_zero",
            "completion_tokens 0 beside real prompt_tokens",
            ("usage.completion_tokens_nonzero",),
        ),
        Fault(
            "usage_counts_as_strings",
            "usage counts as strings",
            ("usage.present", "usage.total_is_sum[non-streamed]"),
        ),
        Fault(
            "stream_no_choices",
            "a stream without any choice delta, only [DONE]",
            ("stream.first_delta_role", "stream.one_finish_reason"),
        ),
        Fault(
            "usage_stream_wrong_object",
            "chunk object 'chat.completion' only in the include_usage stream",
            ("stream.chunk_object",),
        ),
    )
}
FAULTS = {
    name: replace(f, messages={**EXPECTED_MESSAGES.get(name, {}), **f.messages})
    for name, f in FAULTS.items()
}

FAULTS.update(
    (name, Fault(name, divergence, breaks, messages))
    for name, divergence, breaks, messages in REASONING_FAULTS
)


@dataclass(frozen=True)
class Variant:
    name: str
    allowed_because: str


# Spec-allowed framing and fields: the suite must pass with every one of these switched on.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("crlf", "WHATWG event streams allow CRLF and CR line endings"),
        Variant("no_space_after_data", "the space after 'data:' is optional"),
        Variant("sse_comments", "lines starting with ':' are comments (keep-alives)"),
        Variant("vendor_fields", "extra fields are allowed by the schemas"),
        Variant("null_content_deltas", "delta.content may be null"),
        Variant("usage_null_chunks", "usage: null on non-final chunks (OpenAI does this)"),
        Variant("split_writes", "events may arrive split across network reads"),
        Variant("no_vision", "cleanly rejecting image input (400) is an honest 'unsupported'"),
        Variant("no_audio", "cleanly rejecting audio input (400) is an honest 'unsupported'"),
        Variant("unknown_params_accepted", "ignoring unknown parameters is reported as INFO"),
        Variant("no_token_ids", "logprobs entries need no token id (OpenAI sends none)"),
        Variant(
            "omit_logprobs_key",
            "choices[].logprobs omitted: OpenAI does so for reasoning, audio and search models",
        ),
        Variant(
            "structured_refusal",
            "a structured-output refusal (content null, refusal string) is a valid answer",
        ),
    )
}


def parse_names(value: str) -> frozenset[str]:
    """Parse 'a,b' into a validated set of fault / variant names."""
    names = frozenset(n.strip() for n in value.split(",") if n.strip())
    unknown = names - FAULTS.keys() - VARIANTS.keys() - PROFILES.keys()
    if unknown:
        raise ValueError(f"unknown fault or variant: {', '.join(sorted(unknown))}")
    return names
