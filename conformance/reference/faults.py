"""Named fault switches: each reproduces one divergence seen in real "compatible" servers.

A fault lists the check IDs it must make fail and, per check, a fragment of the failure
message it must produce; the project's own tests run the suite against the reference server
with each fault and assert exactly that, which is how we know every check can fail *for its
own reason* (not merely through a precondition such as the HTTP status). Variants are the
opposite: framing and fields the spec allows, which must pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.reference.reasoning import FAULT_TABLE as REASONING_FAULTS
from conformance.reference.reasoning import PROFILES


@dataclass(frozen=True)
class Fault:
    name: str
    divergence: str


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        # --- non-streamed response shape -------------------------------------------------
        Fault("json_as_text_plain", "JSON body served as text/plain"),
        Fault("wrong_object", "object is 'text_completion'"),
        Fault("empty_id", "id is an empty string"),
        Fault("float_created", "created is a float"),
        Fault("created_millis", "created in milliseconds"),
        Fault("missing_model", "model key omitted"),
        Fault("index_from_one", "choice indices start at 1"),
        Fault("index_as_string", "choice index is a string"),
        Fault("wrong_role", "message role is 'model'"),
        Fault("content_as_list", "content is a list of parts"),
        Fault("finish_reason_eos", "finish_reason 'eos'"),
        Fault("omit_refusal", "message.refusal key omitted"),
        # --- streaming -------------------------------------------------------------------
        Fault("stream_as_json", "stream served as application/json"),
        Fault("non_json_event", "a 'keep-alive' data event"),
        Fault("chunk_bad_delta", "delta.content is a number"),
        Fault("wrong_chunk_object", "chunk object 'chat.completion'"),
        Fault("changing_id", "each chunk has a new id"),
        Fault("changing_created", "created ticks per chunk"),
        Fault("changing_model", "model changes mid-stream"),
        Fault("float_created_chunks", "chunk created is a float"),
        Fault("no_role", "first delta has no role"),
        Fault("no_finish_reason", "no finish_reason anywhere"),
        Fault("two_finish_reasons", "finish_reason sent twice"),
        Fault("content_after_finish", "content chunk after the finish_reason chunk"),
        Fault("missing_done", "no data: [DONE]"),
        Fault("data_after_done", "a chunk after [DONE]"),
        Fault("unterminated_done", "[DONE] not followed by a blank line (strict clients drop it)"),
        Fault("stream_content_differs", "stream drops the last token vs the JSON response"),
        # --- usage -----------------------------------------------------------------------
        Fault("no_usage", "usage omitted"),
        Fault("usage_total_wrong", "total_tokens != prompt + completion"),
        Fault("usage_over_max_tokens", "completion_tokens counts one more than max_tokens"),
        Fault("cached_exceeds_prompt", "cached_tokens > prompt_tokens"),
        Fault("no_usage_chunk", "include_usage ignored"),
        Fault("usage_chunk_with_choices", "usage chunk repeats the finish choice"),
        Fault("usage_chunk_not_last", "usage chunk sent before the finish chunk"),
        Fault("usage_on_every_chunk", "running usage on every chunk"),
        Fault("usage_chunk_unrequested", "usage chunk without include_usage"),
        Fault("stream_usage_differs", "streamed usage counts differ from non-streamed"),
        # --- errors ----------------------------------------------------------------------
        Fault("auth_not_enforced", "any or no API key accepted"),
        Fault("status_422", "validation errors are 422"),
        Fault("detail_envelope", "errors shaped {'detail': ...}"),
        Fault("error_200", "invalid input answered 200 with an error body"),
        Fault("bad_input_500", "invalid input causes 500"),
        Fault("param_null", "error param always null"),
        Fault("error_code_integer", "error code is an integer"),
        Fault("error_as_text", "errors are plain text"),
        Fault("unknown_model_served", "unknown model answered 200"),
        Fault(
            "stream_error_as_event", "invalid streaming request answered 200 with an error event"
        ),
        Fault(
            "usage_chunk_per_choice",
            "one usage chunk per choice, the first mid-stream (llama.cpp, n > 1)",
        ),
        Fault(
            "close_after_stream",
            "connection closed after a stream without 'Connection: close' (llama.cpp)",
        ),
        # --- request fields (issue 3): accepted and ignored, distorted, rejected ----------
        Fault("ignore_max_tokens", "max_tokens ignored"),
        Fault("ignore_max_completion_tokens", "max_completion_tokens ignored"),
        Fault("length_reported_as_stop", "finish_reason 'stop' when cut by the limit"),
        Fault("ignore_n", "n ignored (one choice)"),
        Fault("n_stream_role_only_first", "only choice 0 gets a role delta"),
        Fault("usage_counts_one_choice", "usage counts only the first choice"),
        Fault("ignore_seed", "seed ignored"),
        Fault("temp0_nondeterministic", "temperature 0 still samples"),
        Fault("accept_out_of_range", "out-of-range sampling values accepted"),
        Fault("reject_in_range", "bounds treated as exclusive"),
        Fault("ignore_stop", "stop ignored"),
        Fault("stop_left_in_output", "the stop sequence is included in the output"),
        Fault("stop_over_4_accepted", "more than 4 stop sequences accepted"),
        Fault("ignore_logprobs", "logprobs ignored (null)"),
        Fault("logprob_positive", "logprob > 0"),
        Fault("logprob_bytes_wrong", "bytes are UTF-16"),
        Fault("logprobs_tokens_mismatch", "logprob tokens for other text"),
        Fault("top_logprobs_unsorted", "alternatives least likely first"),
        Fault("top_logprobs_too_many", "two alternatives more than asked"),
        Fault("top_logprobs_ignored", "top_logprobs ignored (no alternatives)"),
        Fault("logprobs_missing_in_stream", "no logprobs on streamed chunks"),
        Fault("top_logprobs_unvalidated", "top_logprobs range and dependency unchecked"),
        Fault("logit_bias_unvalidated", "logit_bias 101 accepted"),
        Fault("ignore_logit_bias", "logit_bias ignored"),
        Fault("ignore_json_mode", "json_object ignored"),
        Fault("ignore_json_schema", "json_schema treated as json_object"),
        Fault("ignore_tools", "tools ignored"),
        Fault("tool_name_not_in_tools", "called function renamed"),
        Fault("tool_call_id_empty", "tool call id empty"),
        Fault("arguments_as_object", "arguments as a JSON object, not a string"),
        Fault("arguments_invalid", "arguments miss required properties"),
        Fault("tool_finish_reason_stop", "finish_reason 'stop' after required tool calls"),
        Fault("tool_finish_reason_length", "finish_reason 'length' after tool calls"),
        Fault("tool_choice_none_ignored", "tool_choice none still calls tools"),
        Fault("tool_delta_without_index", "tool-call deltas without index"),
        Fault("tool_delta_without_id", "first tool-call delta without id"),
        Fault("parallel_tool_calls_ignored", "parallel_tool_calls false ignored"),
        Fault("tool_history_rejected", "tool result messages rejected"),
        Fault("optional_fields_500", "optional fields crash the server"),
        Fault("stream_options_without_stream_accepted", "stream_options accepted without stream"),
        Fault("drop_system", "system and developer messages dropped"),
        Fault("content_parts_500", "text-part arrays crash the server"),
        Fault("non_user_roles_500", "system/developer/assistant messages crash the server"),
        Fault("reject_name", "messages[].name rejected"),
        Fault("image_500", "image parts crash the server"),
        Fault("audio_500", "audio parts crash the server"),
        # --- models ----------------------------------------------------------------------
        Fault("models_bare_list", "GET /models returns a bare array"),
        Fault("model_not_listed", "model under test missing from /models"),
        # --- issue 10: accepted-and-ignored made visible, what mocks got away with ---------
        Fault("tool_calls_without_tools", "tool_calls on a response to a request without tools"),
        Fault("content_null", "content null without tool_calls or a refusal"),
        Fault("refusal_always", "a refusal string on every answer"),
        Fault("same_id", "the same id on every completion"),
        Fault("usage_zero", "usage counts all zero"),
        Fault("logprobs_unrequested", "logprobs sent without being asked"),
        Fault("drop_media", "image and audio parts silently dropped"),
        Fault("ignore_penalties", "presence and frequency penalties ignored"),
        Fault("logit_bias_integer_500", "integer logit_bias values crash the server"),
        Fault("logit_bias_float_500", "float logit_bias values crash the server"),
        Fault(
            "response_format_prompt_only",
            "response_format ignored; JSON only when the prompt asks for it",
        ),
        Fault(
            "structured_null_content", "structured output answered content null without a refusal"
        ),
        Fault("tool_delta_without_type", "first tool-call delta without type"),
        Fault("tool_delta_wrong_choice", "tool-call argument fragments filed under another choice"),
        Fault("parts_text_dropped", "text parts ignored (only string content read)"),
        Fault("tool_delta_without_name", "first tool-call delta without function.name"),
        Fault("tool_call_type_wrong", "tool call type 'tool'"),
        Fault("json_object_not_object", "JSON mode answers a JSON array"),
        Fault("media_empty_answer", "an empty answer to image and audio input"),
        Fault("logprobs_empty", "logprobs.content is []"),
        Fault("logprobs_entry_malformed", "logprobs entries without top_logprobs"),
        Fault("completion_tokens_zero", "completion_tokens 0 beside real prompt_tokens"),
        Fault("usage_counts_as_strings", "usage counts as strings"),
        Fault("stream_no_choices", "a stream without any choice delta, only [DONE]"),
        Fault(
            "usage_stream_wrong_object",
            "chunk object 'chat.completion' only in the include_usage stream",
        ),
        # --- reasoning on / invalid requests (issue 15) ---
        Fault(
            "token_limit_below_one_accepted",
            "a token limit of 0 or -1 read as 'no limit' (llama.cpp's -1) instead of a 400",
        ),
        Fault("missing_model_accepted", "a request without model served by the default model"),
        Fault("temperature_type_unchecked", "temperature 'hot' ignored instead of a type 400"),
        Fault("messages_string_accepted", "messages as a string taken as one user message"),
        Fault("unknown_response_format_ignored", "an unknown response_format type ignored"),
        Fault("absent_tool_choice_ignored", "tool_choice naming no tool sent treated as auto"),
        Fault("unknown_roles_dropped", "messages with an unknown role silently dropped"),
        # --- effects and usage cross-checks ---
        Fault("constant_usage", "usage 10 prompt + 5 completion whatever is asked"),
        Fault("usage_off_by_one_when_cut", "completion_tokens one short when cut (FastChat)"),
        Fault("prompt_tokens_times_n", "prompt_tokens multiplied by n (FastChat)"),
        Fault("completion_tokens_one", "completion_tokens 1 whatever the answer"),
        Fault(
            "ignore_max_completion_tokens_in_stream",
            "max_completion_tokens and include_usage ignored in streams (llama-cpp-python)",
        ),
        Fault(
            "reasoning_effort_ignored",
            "reasoning_effort accepted by a model that does not reason (vLLM, llama.cpp)",
        ),
        # --- premises / streams and ids (issue 15) ---
        Fault("stray_audio", "an audio object on answers to text-only requests"),
        Fault(
            "stray_function_call", "a legacy function_call on answers to requests without functions"
        ),
        Fault("stray_annotations", "url_citation annotations without web search"),
        Fault("model_renamed", "model is another name than the one requested"),
        Fault("id_string", "every non-streamed completion id is 'string' (streams get real ids)"),
    )
}

FAULTS.update((name, Fault(name, divergence)) for name, divergence in REASONING_FAULTS)


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
            "dated_model",
            "model answered as a dated snapshot of the requested id (OpenAI: gpt-4o -> "
            "gpt-4o-2024-08-06)",
        ),
        Variant(
            "structured_refusal",
            "a structured-output refusal (content null, refusal string) is a valid answer",
        ),
        # --- reasoning on / invalid requests (issue 15): what OpenAI itself sends ---
        Variant("sdk_refusal", "a refusal (content null, refusal string) is a valid answer"),
        Variant(
            "sdk_function_call",
            "a legacy function_call answer (content null, finish_reason function_call) is valid",
        ),
        Variant(
            "choiceless_chunks",
            "chunks with choices [] (Azure OpenAI's prompt_filter_results) are allowed",
        ),
        Variant(
            "o1_mini_developer_role",
            "o1-mini rejects the developer role (400 naming messages[0].role): a documented "
            "model limitation",
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
