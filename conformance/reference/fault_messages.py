"""What each fault's failure must say: fault name -> {check id (or base id): fragment}.

The fault matrix asserts the fragment appears in the check's results.json message
("expected ...; got ..."), so a check that fails for the wrong reason (a precondition, a
different assertion) is a test failure. Faults may also carry ``messages=`` inline.
"""

from __future__ import annotations

_HTTP_500 = "got HTTP 500"
_GOT_200 = "expected HTTP 400; got HTTP 200"
_REJECTED = "expected HTTP 200; got HTTP 400"

EXPECTED_MESSAGES: dict[str, dict[str, str]] = {
    # --- response shape
    "json_as_text_plain": {"response.content_type_json": "got 'text/plain"},
    "wrong_object": {"response.object": "got 'text_completion'"},
    "empty_id": {"response.id_nonempty": "non-empty string id; got ''"},
    "float_created": {"response.created_integer": "expected an integer; got 1"},
    "created_millis": {"response.created_recent": "within a day of now"},
    "missing_model": {"response.model_present": "model string; got None"},
    "index_from_one": {"response.choice_indices": "got [1]"},
    "index_as_string": {"response.schema": "'0' is not of type 'integer'"},
    "wrong_role": {"response.message_role": "got ['model']"},
    "content_as_list": {
        "response.content_string": "got [{'type': 'text'",
        "sdk.plain_completion": "content a string; got ChatCompletionMessage(content=[",
    },
    "content_null": {
        "response.content_string": "function_call or a refusal); got None",
        "tools.round_trip": "an answer (content string)",
    },
    "finish_reason_eos": {"response.finish_reason_enum": "got ['eos']"},
    "omit_refusal": {"response.refusal_key": "refusal present (null ok); got key missing"},
    "tool_calls_without_tools": {"response.no_tool_calls_without_tools": "'call_stray'"},
    "refusal_always": {"response.refusal_null": 'got refusal ["I can\'t help."]'},
    "same_id": {"response.distinct_ids": "3 different ids for 3 completions; got ['chatcmpl-000"},
    "logprobs_unrequested": {"response.no_logprobs_unrequested": "got [{'content': [{'token'"},
    # --- streaming
    "stream_as_json": {"stream.content_type": "got 'application/json'"},
    "non_json_event": {
        "stream.events_are_json": "(2, 'keep-alive')",
        "sdk.stream": "JSONDecodeError",
    },
    "chunk_bad_delta": {"stream.chunk_schema": "delta.content: 5 is not valid"},
    "wrong_chunk_object": {"stream.chunk_object": "got ['chat.completion']"},
    "usage_stream_wrong_object": {"stream.chunk_object": "got ['chat.completion']"},
    "changing_id": {"stream.id_constant": "distinct values"},
    "changing_created": {"stream.created_constant": "distinct values"},
    "changing_model": {"stream.model_constant": "2 distinct values"},
    "float_created_chunks": {"stream.chunk_schema": "is not of type 'integer'"},
    "stream_no_choices": {
        "stream.first_delta_role": "at least one choice delta; got none",
        "stream.one_finish_reason": "at least one choice delta; got none",
    },
    "no_role": {"stream.first_delta_role": "got first delta {'content': ''"},
    "no_finish_reason": {"stream.one_finish_reason": "got 0: []"},
    "two_finish_reasons": {
        "stream.one_finish_reason": "got 2: ['stop', 'stop']",
        "n.stream_choices": "exactly one finish_reason; got [",
    },
    "content_after_finish": {"stream.finish_reason_last": "1 more chunk(s)"},
    "missing_done": {"stream.terminates_with_done": "got 0 [DONE] events"},
    "data_after_done": {"stream.nothing_after_done": "got 1 event(s)"},
    "unterminated_done": {"stream.events_terminated": "unterminated tail b'data: [DONE]"},
    "stream_content_differs": {"stream.matches_non_streamed": "plain.'; got 'Every"},
    "close_after_stream": {"stream.connection_persists": "closed the connection after the stream"},
    # --- usage
    "no_usage": {
        "usage.present": "a usage object; got None",
        "usage.total_is_sum": "a usage object on the non-streamed completion",
    },
    "usage_counts_as_strings": {
        "usage.present": "non-negative integer token counts",
        "usage.total_is_sum": "non-negative integer token counts",
    },
    "completion_tokens_zero": {"usage.completion_tokens_nonzero": "completion_tokens 0 for"},
    "usage_total_wrong": {"usage.total_is_sum": "got total_tokens 37"},
    "usage_over_max_tokens": {"usage.within_max_tokens": "; got 25"},
    "cached_exceeds_prompt": {"usage.details_within_totals": "got {'cached_tokens': 24}"},
    "no_usage_chunk": {"usage.stream_one_usage_chunk": "got 0 chunks with usage"},
    "usage_chunk_with_choices": {"usage.stream_chunk_empty_choices": "'finish_reason': 'stop'"},
    "usage_chunk_not_last": {"usage.stream_chunk_last": "after it carry choices"},
    "usage_on_every_chunk": {
        "usage.stream_null_elsewhere": "got usage on chunks [0, 1",
        "usage.stream_one_usage_chunk": "chunks with usage",
    },
    "usage_chunk_unrequested": {"usage.stream_absent_unrequested": "got usage on chunk(s)"},
    "stream_usage_differs": {"usage.stream_matches_non_streamed": "'completion_tokens': 12"},
    "usage_zero": {"usage.completion_tokens_nonzero": "got prompt_tokens 0, completion_tokens 0"},
    "usage_chunk_per_choice": {"n.stream_usage_once": "one usage chunk, the last; got usage on"},
    # --- errors
    "auth_not_enforced": {"errors.auth": "expected HTTP 401; got HTTP 200"},
    "status_422": {"errors.invalid_is_400": "got HTTP 422"},
    "detail_envelope": {"errors.invalid_envelope": "got {'detail'", "errors.auth": "{'detail'"},
    "error_200": {
        "errors.invalid_is_400": _GOT_200,
        "errors.invalid_envelope": "an HTTP error status; got HTTP 200",
    },
    "bad_input_500": {"errors.invalid_is_400": _HTTP_500},
    "param_null": {
        "errors.invalid_names_param": "; got None",
        "sampling.range_error_names_field": "; got None",
    },
    "error_code_integer": {"errors.envelope_types": "error.code: 400"},
    "error_as_text": {"errors.are_json": "got 'text/plain"},
    "unknown_model_served": {"errors.unknown_model": "got HTTP 200"},
    "stream_error_as_event": {"errors.stream_invalid_is_http_error": "got HTTP 200"},
    # --- token limits, n, seed, sampling
    "ignore_max_tokens": {
        "max_tokens.respected": "<= 5; got 140",
        "max_tokens.finish_length": "(140 tokens); got 'stop'",
    },
    "ignore_max_completion_tokens": {
        "max_completion_tokens.respected": "<= 5; got 140",
        "max_completion_tokens.finish_length": "(140 tokens); got 'stop'",
    },
    "length_reported_as_stop": {
        "max_tokens.finish_length": "(5 tokens); got 'stop'",
        "max_completion_tokens.finish_length": "(5 tokens); got 'stop'",
    },
    "ignore_n": {"n.choices": "got [0]", "n.stream_choices": "deltas for choice 1; got none"},
    "n_stream_role_only_first": {"n.stream_choices": "choice 1: first delta with role"},
    "usage_counts_one_choice": {
        "n.usage_counts_all_choices": "(every choice counted); got 5",
        "n.stream_usage_once": "(every choice counted); got 5",
    },
    "ignore_seed": {"seed.repeatable": "the same content twice"},
    "temp0_nondeterministic": {"sampling.temperature0_repeatable": "the same content twice"},
    "accept_out_of_range": {"sampling.range_rejected": _GOT_200},
    "reject_in_range": {"sampling.range_accepted": _REJECTED},
    "ignore_penalties": {"sampling.penalty_effect": "got the same answer with"},
    # --- stop
    "ignore_stop": {
        "stop.excluded_from_output": "in the output; got '1, 2, 3, 4, 5, 6, 7, 8",
        "stop.halts_generation": "content '1, 2, 3, 4, 5, 6, 7, 8",
    },
    "stop_left_in_output": {"stop.excluded_from_output": "got '1, 2, 3, 4, 5, 6, 7'"},
    "stop_over_4_accepted": {"stop.at_most_four": _GOT_200},
    # --- logprobs, logit_bias
    "ignore_logprobs": {"logprobs.structure": "logprobs = {content: [...]}; got None"},
    "logprob_positive": {"logprobs.values_valid": "('Every', 0.5)"},
    "logprob_bytes_wrong": {"logprobs.bytes_match_tokens": "('Every', [69, 0, 118"},
    "logprobs_tokens_mismatch": {"logprobs.concatenate_to_content": "got ' bogus"},
    "top_logprobs_unsorted": {"logprobs.top_logprobs_bounded_sorted": "sorted by logprob"},
    "top_logprobs_ignored": {"logprobs.top_logprobs_bounded_sorted": "got [('Every', [])"},
    "top_logprobs_too_many": {"logprobs.top_logprobs_bounded_sorted": "-30.0, -30.0"},
    "logprobs_missing_in_stream": {"logprobs.streamed_per_chunk": "missing on chunks [1"},
    "top_logprobs_unvalidated": {
        "logprobs.top_without_logprobs_rejected": _GOT_200,
        "logprobs.top_above_20_rejected": _GOT_200,
    },
    "logit_bias_unvalidated": {"logit_bias.range_validated": _GOT_200},
    "ignore_logit_bias": {"logit_bias.bans_token": "never generated; got generated as"},
    "logit_bias_integer_500": {"logit_bias.value_forms": _HTTP_500},
    "logit_bias_float_500": {"logit_bias.value_forms": _HTTP_500},
    # --- structured output
    "ignore_json_mode": {"response_format.json_object": "content that parses as JSON; got '"},
    "ignore_json_schema": {
        "response_format.json_schema": "valid against the schema; got {'answer'",
        "sdk.structured_output": "ValidationError",
    },
    "response_format_prompt_only": {
        "response_format.json_object": "content that parses as JSON; got '",
        "response_format.json_schema": "content that parses as JSON; got '",
    },
    "structured_null_content": {
        "response_format.json_schema[non-streamed]": "got content None without a refusal",
        "response_format.json_schema[streamed]": "parses as JSON; got ''",
    },
    # --- tools
    "ignore_tools": {"tools.forced_call": "got no tool call"},
    "tool_name_not_in_tools": {"tools.call_names": "got ['get_weather_v2']"},
    "tool_call_id_empty": {"tools.call_ids": "non-empty unique ids; got ['']"},
    "arguments_as_object": {"tools.arguments_json_string": "arguments is dict"},
    "arguments_invalid": {"tools.arguments_json_string": "'city' is a required property"},
    "tool_finish_reason_stop": {
        "tools.finish_reason": "got 'stop'",
        "tools.stream_finish_reason": "got ['stop']",
    },
    "tool_finish_reason_length": {
        "tools.finish_reason": "got 'length'",
        "tools.stream_finish_reason": "got ['length']",
    },
    "tool_choice_none_ignored": {"tools.choice_none_no_calls": "no tool_calls; got [{'id'"},
    "tool_delta_without_index": {
        "tools.stream_deltas": "an integer index on every tool_calls delta",
        "sdk.stream_tools": "TypeError",
    },
    "tool_delta_without_id": {"tools.stream_deltas": "got {'index': 0, 'type': 'function'"},
    "tool_delta_without_name": {"tools.stream_deltas": "'function': {'arguments': ''}}"},
    "tool_call_type_wrong": {"tools.call_ids": "got ['tool']"},
    "json_object_not_object": {"response_format.json_object": "a JSON object; got ["},
    "media_empty_answer": {
        "messages.image_input": "a text answer; got ''",
        "messages.audio_input": "a text answer; got ''",
    },
    "logprobs_empty": {"logprobs.structure": "a non-empty content list"},
    "logprobs_entry_malformed": {"logprobs.structure": "top_logprobs is not a list"},
    "tool_delta_without_type": {"tools.stream_deltas": "got {'index': 0, 'id': 'call_"},
    "tool_delta_wrong_choice": {
        "tools.stream_deltas": "choice 0 call 0: fragments concatenate to valid arguments"
    },
    "parallel_tool_calls_ignored": {"tools.parallel_false_single_call": "got 2 calls"},
    "tool_history_rejected": {"tools.round_trip": "accepted back; got HTTP 400"},
    # --- request fields and messages
    "optional_fields_500": {"params.optional_field": _HTTP_500},
    "stream_options_without_stream_accepted": {"params.stream_options_requires_stream": _GOT_200},
    "drop_system": {"messages.system_honoured": "got the same answer with and without it"},
    "content_parts_500": {"messages.content_parts": _HTTP_500},
    "parts_text_dropped": {"messages.content_parts": "the answer to the same text as a string"},
    "non_user_roles_500": {"messages.role_accepted": _HTTP_500},
    "reject_name": {"messages.name_accepted": _REJECTED},
    "image_500": {"messages.image_input": _HTTP_500},
    "audio_500": {"messages.audio_input": _HTTP_500},
    "drop_media": {
        "messages.image_input": "the image part was accepted and ignored",
        "messages.audio_input": "the audio part was accepted and ignored",
    },
    # --- models
    "models_bare_list": {"models.list_schema": "got JSON list"},
    "model_not_listed": {"models.lists_model": "got ['chatcompat-ref-other']"},
}
