"""Turn generations into OpenAI-shaped JSON responses and stream chunks, faults applied here.

Every fault that changes the *shape* of a response or chunk lives in this module, next to
the faithful shape it distorts, so a reader can see both side by side.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from conformance.reference import model, reasoning

SYSTEM_FINGERPRINT = "fp_chatcompat_ref"


@dataclass
class ChatRequest:
    """The fields of a validated request that shape the reply."""

    model: str
    messages: list[dict[str, Any]]
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    sampling: model.Sampling = field(default_factory=model.Sampling)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] = field(default_factory=dict)
    reasoning_effort: str | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatRequest:
        stop = body.get("stop")
        limit = body.get("max_completion_tokens")
        if limit is None:
            limit = body.get("max_tokens")
        temperature = body.get("temperature")
        return cls(
            model=body["model"],
            messages=body["messages"],
            n=body.get("n") or 1,
            stream=bool(body.get("stream")),
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
            sampling=model.Sampling(
                temperature=1.0 if temperature is None else float(temperature),
                seed=body.get("seed"),
                max_tokens=limit,
                min_tokens=body.get("min_tokens") or 0,
                ignore_eos=bool(body.get("ignore_eos")),
                stop=[stop] if isinstance(stop, str) else list(stop or []),
                logprobs=bool(body.get("logprobs")),
                top_logprobs=body.get("top_logprobs") or 0,
                logit_bias=body.get("logit_bias") or {},
                presence_penalty=float(body.get("presence_penalty") or 0),
                frequency_penalty=float(body.get("frequency_penalty") or 0),
            ),
            tools=body.get("tools") or [],
            tool_choice=body.get("tool_choice"),
            parallel_tool_calls=body.get("parallel_tool_calls", True) is not False,
            response_format=body.get("response_format") or {},
            reasoning_effort=body.get("reasoning_effort"),
        )


def generate(
    request: ChatRequest, call_prefix: str, faults: frozenset[str] = frozenset()
) -> list[model.Generation]:
    """Run the toy model once per choice; output faults distort the result here."""
    sampling = request.sampling
    if "temp0_nondeterministic" in faults and sampling.temperature == 0:
        sampling = dataclasses.replace(sampling, temperature=1.0, seed=None)
    thinking = reasoning.hidden_tokens({"reasoning_effort": request.reasoning_effort}, faults)
    out = []
    for index in range(request.n):
        calls = model.tool_calls_for(
            request.tools,
            request.tool_choice or "auto",
            request.messages,
            request.parallel_tool_calls,
            f"{call_prefix}{index}_",
        )
        if calls:
            named = isinstance(request.tool_choice, dict)
            finish = "stop" if named or "tool_finish_reason_stop" in faults else "tool_calls"
            if "tool_finish_reason_length" in faults:
                finish = "length"
            calls = [_distort_call(c, faults) for c in calls]
            out.append(_with_reasoning(model.Generation([], finish, calls), thinking, faults))
            continue
        legacy = _sdk_variant(request, faults)
        if legacy is not None:
            out.append(legacy)
            continue
        refusal = _refusal(request, faults)
        if refusal is not None:
            out.append(model.Generation([], "stop", refusal=refusal))
            continue
        if request.response_format.get("type") in ("json_object", "json_schema"):
            prompt = str(request.messages)
            text = model.json_output(request.response_format, model._rng("json", prompt, index))
            if "json_object_not_object" in faults:  # valid JSON, but not an object
                text = json.dumps([json.loads(text)])
        else:
            text = model.base_text(request.messages, sampling, index)
        if "media_empty_answer" in faults and any(map(model.media_parts, request.messages)):
            text = ""
        tokens = model.apply_penalties(model.tokenize(text), sampling, text)
        tokens = model.extend_to_min(tokens, sampling, text)
        limited, spent = _after_reasoning(sampling, thinking)
        if "reasoning_outside_budget" in faults:  # the limit bounds the content alone
            limited, spent = sampling, thinking
        tokens, finish = model.apply_limits(
            tokens, limited, keep_stop="stop_left_in_output" in faults
        )
        if spent and not tokens and "budget_exhausted_stop" in faults:
            finish = "stop"
        if "length_reported_as_stop" in faults:
            finish = "stop"
        generation = model.Generation(tokens, finish)
        if sampling.logprobs:
            entries = model.token_logprobs(tokens, sampling.top_logprobs)
            entries = [] if "logprobs_empty" in faults else entries
            generation.logprobs = [_distort_logprob(e, faults) for e in entries]
            if "logprobs_tokens_mismatch" in faults and entries:
                entries[0].update(token=" bogus", bytes=list(b" bogus"))
        out.append(_with_reasoning(generation, spent, faults))
    return out


def _after_reasoning(sampling: model.Sampling, thinking: int) -> tuple[model.Sampling, int]:
    """Reasoning is spent first, against the token limit: what is left for the output."""
    limit = sampling.max_tokens
    if limit is None or not thinking:
        return sampling, thinking
    spent = min(thinking, limit)
    return dataclasses.replace(sampling, max_tokens=limit - spent), spent


def _with_reasoning(g: model.Generation, spent: int, faults: frozenset[str]) -> model.Generation:
    """Record the reasoning a choice spent; the visible style also keeps its text."""
    g.reasoning_tokens = spent
    if spent and reasoning.style(faults) == "visible":
        g.reasoning = reasoning.thought(spent)
    return g


def _reasoning_key(faults: frozenset[str], streamed: bool) -> str:
    mismatch = streamed and "reasoning_field_mismatch" in faults
    return "reasoning" if mismatch else "reasoning_content"


REFUSAL = "I'm sorry, I can't help with that."


def _sdk_variant(request: ChatRequest, faults: frozenset[str]) -> model.Generation | None:
    """Variants ``sdk_refusal`` / ``sdk_function_call``: a plain request (no tools, no
    response_format) answered with a refusal or a legacy function_call, as OpenAI may."""
    if request.tools or request.response_format.get("type"):
        return None
    if "sdk_refusal" in faults:
        return model.Generation([], "stop", refusal=REFUSAL)
    if "sdk_function_call" in faults:
        call = ("lookup", json.dumps({"query": "hello"}))
        return model.Generation([], "function_call", function_call=call)
    return None


def _refusal(request: ChatRequest, faults: frozenset[str]) -> str | None:
    """Variant ``structured_refusal``: structured output the prompt did not ask for is refused
    (content null, a refusal string), as OpenAI's models may. Fault ``structured_null_content``
    answers content null without a refusal ("" here: the model refused without saying so)."""
    if request.response_format.get("type") != "json_schema":
        return None
    if "structured_null_content" in faults:
        return ""
    asked = "json" in str(request.messages).lower()
    return REFUSAL if "structured_refusal" in faults and not asked else None


def _distort_call(call: model.ToolCall, faults: frozenset[str]) -> model.ToolCall:
    if "tool_name_not_in_tools" in faults:
        call.name += "_v2"
    if "tool_call_id_empty" in faults:
        call.id = ""
    if "arguments_invalid" in faults:
        call.arguments = "{}"
    return call


def _distort_logprob(entry: dict[str, Any], faults: frozenset[str]) -> dict[str, Any]:
    if "no_token_ids" in faults:
        entry.pop("id", None)
    if "logprob_positive" in faults:
        entry["logprob"] = 0.5
    if "logprob_bytes_wrong" in faults:
        entry["bytes"] = list(entry["token"].encode("utf-16-le"))
    if "logprobs_entry_malformed" in faults:
        entry.pop("top_logprobs", None)
    if "top_logprobs_ignored" in faults:
        entry["top_logprobs"] = []
    if "top_logprobs_unsorted" in faults:
        entry["top_logprobs"] = entry["top_logprobs"][::-1]
    if "top_logprobs_too_many" in faults:
        extra = {"token": " extra", "logprob": -30.0, "bytes": list(b" extra")}
        entry["top_logprobs"] = [*entry["top_logprobs"], extra, extra]
    return entry


def completion_tokens(generations: list[model.Generation]) -> int:
    total = 0
    for g in generations:
        total += len(g.tokens)
        for call in g.tool_calls:
            total += len(model.tokenize(call.name)) + len(model.tokenize(call.arguments))
    return total


def usage(
    request: ChatRequest,
    generations: list[model.Generation],
    faults: frozenset[str],
    streamed: bool,
) -> dict[str, Any]:
    prompt = model.count_prompt_tokens(request.messages)
    counted = generations[:1] if "usage_counts_one_choice" in faults else generations
    completion = completion_tokens(counted)
    thought = sum(g.reasoning_tokens for g in counted)
    completion += thought
    if "reasoning_tokens_exceed_completion" in faults:
        thought = completion + 5
    if "reasoning_tokens_unreported" in faults:
        thought = 0
    if "usage_over_max_tokens" in faults and request.sampling.max_tokens:
        completion = request.sampling.max_tokens * request.n + 1
    if streamed and "stream_usage_differs" in faults:
        completion += 1
    prompt, completion = _misreported(request, generations, faults, prompt, completion)
    if "usage_zero" in faults:
        prompt = completion = 0
    if "completion_tokens_zero" in faults:  # prompt counted, output not
        completion = 0
    total = prompt + completion + (7 if "usage_total_wrong" in faults else 0)
    cached = prompt + 5 if "cached_exceeds_prompt" in faults else 0
    if "usage_counts_as_strings" in faults:
        prompt, completion = str(prompt), str(completion)  # type: ignore[assignment]
        total = str(total)  # type: ignore[assignment]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": thought,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _misreported(
    request: ChatRequest, generations: list[model.Generation], faults: frozenset[str], *counts: int
) -> tuple[int, int]:
    """(prompt, completion) as the usage cross-check faults report them."""
    prompt, completion = counts
    if "constant_usage" in faults:  # a mock's canned numbers, whatever was asked
        return 10, 5
    if "usage_off_by_one_when_cut" in faults and any(
        g.finish_reason == "length" for g in generations
    ):
        completion -= 1  # FastChat: max_tokens 1 -> "Once", 0 tokens
    if "prompt_tokens_times_n" in faults:
        prompt *= request.n  # FastChat: the prompt billed once per choice
    if "completion_tokens_one" in faults:
        completion = 1
    return prompt, completion


def new_completion_id(faults: frozenset[str] = frozenset()) -> str:
    if "same_id" in faults:  # a mock that serves one canned completion
        return "chatcmpl-0000000000000000000000000"
    return "chatcmpl-" + uuid.uuid4().hex[:24]


_STRAY_CALL = {
    "id": "call_stray",
    "type": "function",
    "function": {"name": "lookup", "arguments": "{}"},
}


#: Faults stray_*: outputs a request without audio, functions or web search never asked for.
_STRAY_OUTPUTS = {
    "stray_audio": (
        "audio",
        {"id": "audio_stray", "data": "", "expires_at": 0, "transcript": "stray"},
    ),
    "stray_function_call": ("function_call", {"name": "lookup", "arguments": "{}"}),
    "stray_annotations": (
        "annotations",
        [
            {
                "type": "url_citation",
                "url_citation": {
                    "start_index": 0,
                    "end_index": 1,
                    "title": "stray",
                    "url": "https://example.invalid/",
                },
            }
        ],
    ),
}
DATED_SUFFIX = "-2024-08-06"


def served_model(requested: str, faults: frozenset[str]) -> str:
    """The model a response names: the requested id, a dated snapshot of it (variant
    ``dated_model``, as OpenAI answers) or another name (fault ``model_renamed``)."""
    if "model_renamed" in faults:
        return "renamed-model"
    return requested + DATED_SUFFIX if "dated_model" in faults else requested


def _unrequested(g: model.Generation, faults: frozenset[str]) -> list[dict[str, Any]] | None:
    """Fault ``logprobs_unrequested``: logprobs on every choice, asked for or not."""
    return model.token_logprobs(g.tokens, 0) if "logprobs_unrequested" in faults else None


def _logprobs_block(entries: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return None if entries is None else {"content": entries, "refusal": None}


def _arguments(call: model.ToolCall, faults: frozenset[str]) -> Any:
    return json.loads(call.arguments) if "arguments_as_object" in faults else call.arguments


def _tool_calls_json(g: model.Generation, faults: frozenset[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "type": "tool" if "tool_call_type_wrong" in faults else "function",
            "function": {"name": c.name, "arguments": _arguments(c, faults)},
        }
        for c in g.tool_calls
    ]


def _json_id(faults: frozenset[str]) -> str:
    """Fault ``id_string``: a mock that fills the schema's example into every JSON reply."""
    return "string" if "id_string" in faults else new_completion_id(faults)


def build_response(
    request: ChatRequest, generations: list[model.Generation], faults: frozenset[str]
) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object."""
    created: Any = int(time.time())
    if "float_created" in faults:
        created = time.time()
    if "created_millis" in faults:
        created = int(time.time() * 1000)
    choices = []
    for index, g in enumerate(generations):
        message: dict[str, Any] = {
            "role": "model" if "wrong_role" in faults else "assistant",
            "content": None
            if g.tool_calls or g.refusal is not None or g.function_call
            else g.content,
            "refusal": g.refusal or ("I can't help." if "refusal_always" in faults else None),
            "annotations": [],
        }
        if g.reasoning and "think_tags_in_content" in faults:
            message["content"] = f"<think>{''.join(g.reasoning)}</think>\n\n{g.content}"
        elif g.reasoning:
            message[_reasoning_key(faults, streamed=False)] = "".join(g.reasoning)
        if "content_null" in faults:  # null without tool calls or a refusal to explain it
            message["content"] = None
        if "content_as_list" in faults and message["content"] is not None:
            message["content"] = [{"type": "text", "text": g.content}]
        if g.function_call:
            message["function_call"] = dict(
                zip(("name", "arguments"), g.function_call, strict=True)
            )
        if g.tool_calls:
            message["tool_calls"] = _tool_calls_json(g, faults)
        elif "tool_calls_without_tools" in faults and not request.tools:
            message["tool_calls"] = [_STRAY_CALL]
        if "omit_refusal" in faults:
            del message["refusal"]
        for fault, (key, value) in _STRAY_OUTPUTS.items():
            if fault in faults:
                message[key] = value
        choice_index: Any = index + 1 if "index_from_one" in faults else index
        if "index_as_string" in faults:
            choice_index = str(index)
        choice: dict[str, Any] = {
            "index": choice_index,
            "message": message,
            "logprobs": _logprobs_block(
                g.logprobs if g.logprobs is not None else _unrequested(g, faults)
            ),
            "finish_reason": "eos" if "finish_reason_eos" in faults else g.finish_reason,
        }
        hidden = reasoning.style(faults) == "hidden"  # OpenAI omits the key for these models
        if ("omit_logprobs_key" in faults or hidden) and choice["logprobs"] is None:
            del choice["logprobs"]
        if "vendor_fields" in faults:
            choice["stop_reason"] = None
        choices.append(choice)
    body: dict[str, Any] = {
        "id": "" if "empty_id" in faults else _json_id(faults),
        "object": "text_completion" if "wrong_object" in faults else "chat.completion",
        "created": created,
        "model": served_model(request.model, faults),
        "choices": choices,
        "usage": usage(request, generations, faults, streamed=False),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if "missing_model" in faults:
        del body["model"]
    if "no_usage" in faults:
        del body["usage"]
    if "vendor_fields" in faults:
        body["x_vendor_info"] = {"engine": "reference", "queue_ms": 0}
        body["prompt_logprobs"] = None
    return body


@dataclass
class Frame:
    """One SSE event to send: a chunk dict or literal data, and when to send it."""

    data: dict[str, Any] | str
    at: float = 0.0  # seconds after the request arrived
    carries_token: bool = False


class _ChunkFactory:
    """Builds chunks that share id/created/model, distorted per chunk by the stream faults."""

    def __init__(self, request: ChatRequest, faults: frozenset[str]) -> None:
        self.request = request
        self.faults = faults
        self.id = new_completion_id(faults)
        self.created = int(time.time())
        self.count = 0

    def _wrong_object(self) -> bool:
        """Faults ``wrong_chunk_object`` (every stream), ``usage_stream_wrong_object`` (only
        the include_usage stream: a check that skips that stream misses it)."""
        only_usage = "usage_stream_wrong_object" in self.faults and self.request.include_usage
        return "wrong_chunk_object" in self.faults or only_usage

    def chunk(self, choices: list[dict[str, Any]], usage_value: Any = None) -> dict[str, Any]:
        faults = self.faults
        k = self.count
        self.count += 1
        created: Any = self.created + (k if "changing_created" in faults else 0)
        if "float_created_chunks" in faults:
            created = self.created + 0.25
        chunk: dict[str, Any] = {
            "id": f"{self.id}-{k}" if "changing_id" in faults else self.id,
            "object": "chat.completion" if self._wrong_object() else "chat.completion.chunk",
            "created": created,
            "model": served_model(self.request.model, faults)
            + ("-b" if "changing_model" in faults and k >= 2 else ""),
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if self.request.include_usage or "usage_null_chunks" in faults or usage_value:
            chunk["usage"] = usage_value
        if "vendor_fields" in faults:
            chunk["x_vendor_info"] = {"chunk": k}
        return chunk


def _choice(index: int, delta: dict[str, Any], finish: str | None = None, logprobs=None) -> dict:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _tool_pieces(g: model.Generation, faults: frozenset[str]) -> list[dict[str, Any]]:
    """Tool-call deltas: a head with id, type and name, then argument fragments."""
    deltas = []
    for number, call in enumerate(g.tool_calls):
        head: dict[str, Any] = {
            "index": number,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        if "tool_delta_without_id" in faults:
            del head["id"]
        if "tool_delta_without_type" in faults:
            del head["type"]
        if "tool_delta_without_name" in faults:
            del head["function"]["name"]
        fragments = [
            {"index": number, "function": {"arguments": call.arguments[start : start + 8]}}
            for start in range(0, len(call.arguments), 8)
        ]
        if "arguments_as_object" in faults:
            head["function"]["arguments"] = json.loads(call.arguments)
            fragments = []
        for delta in [head, *fragments]:
            if "tool_delta_without_index" in faults:
                del delta["index"]
            deltas.append({"tool_calls": [delta]})
    return deltas


def _pieces(g: model.Generation, faults: frozenset[str]) -> list[tuple[dict[str, Any], Any]]:
    """The per-step deltas of one choice after its role delta: tokens or tool-call fragments."""
    pieces: list[tuple[dict[str, Any], Any]] = [(d, None) for d in _tool_pieces(g, faults)]
    if g.refusal:
        pieces += [({"refusal": piece}, None) for piece in model.tokenize(g.refusal)]
    if g.function_call:
        name, arguments = g.function_call
        pieces.append(({"function_call": {"name": name, "arguments": ""}}, None))
        pieces += [({"function_call": {"arguments": a}}, None) for a in model.tokenize(arguments)]
    tokens = g.tokens[:-1] if "stream_content_differs" in faults and g.tokens else g.tokens
    for position, token in enumerate(tokens):
        content: Any = token
        if "chunk_bad_delta" in faults and position == 0:
            content = 5
        logprobs = None
        if g.logprobs and "logprobs_missing_in_stream" not in faults:
            logprobs = _logprobs_block([g.logprobs[position]])
        pieces.append(({"content": content}, logprobs))
    if not g.reasoning or "reasoning_dropped_in_stream" in faults:
        return pieces
    if "reasoning_after_content" in faults:
        return pieces + _reasoning_pieces(g, faults)
    return _reasoning_pieces(g, faults) + pieces


def _reasoning_pieces(g: model.Generation, faults: frozenset[str]) -> list[tuple[dict, Any]]:
    """Reasoning deltas (DeepSeek style) that precede the content."""
    key = _reasoning_key(faults, streamed=True)
    if "think_tags_in_content" in faults:
        words = ["<think>", *g.reasoning, "</think>\n\n"]
        return [({"content": w}, None) for w in words]
    return [({key: token}, None) for token in g.reasoning]


def _stream_index(index: int, delta: dict[str, Any], faults: frozenset[str]) -> int:
    """Fault ``tool_delta_wrong_choice``: argument fragments filed under the next choice."""
    calls = delta.get("tool_calls") or [{}]
    fragment = "id" not in calls[0] and "function" in calls[0]
    return index + 1 if "tool_delta_wrong_choice" in faults and fragment else index


def build_stream(
    request: ChatRequest,
    generations: list[model.Generation],
    faults: frozenset[str],
    ttft: float = 0.0,
    itl: float = 0.0,
) -> list[Frame]:
    """The whole event sequence of a streamed reply, each frame with its send time."""
    factory = _ChunkFactory(request, faults)
    frames: list[Frame] = []
    for index, g in enumerate(generations):
        empty = None if g.tool_calls or g.refusal is not None or g.function_call else ""
        delta: dict[str, Any] = {"content": empty, "refusal": None}
        if "null_content_deltas" in faults:
            delta["content"] = None
        if "no_role" not in faults and not (index and "n_stream_role_only_first" in faults):
            delta = {"role": "assistant", **delta}
        frames.append(Frame(factory.chunk([_choice(index, delta)])))
    if "choiceless_chunks" in faults:  # Azure OpenAI's first chunk: filter results only
        filtered = factory.chunk([])
        filtered["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
        frames.insert(0, Frame(filtered))
    per_choice = [_pieces(g, faults) for g in generations]
    steps = max((len(p) for p in per_choice), default=0)
    for step in range(steps):
        at = ttft + step * itl
        for index, pieces in enumerate(per_choice):
            if step < len(pieces):
                delta, logprobs = pieces[step]
                choice = _choice(_stream_index(index, delta, faults), delta, logprobs=logprobs)
                frames.append(Frame(factory.chunk([choice]), at=at, carries_token=True))
            if "non_json_event" in faults and step == 0 and index == 0:
                frames.append(Frame("keep-alive", at=at))
    end = ttft + max(steps - 1, 0) * itl
    usage_value = usage(request, generations, faults, streamed=True)
    usage_frame = Frame(factory.chunk([], usage_value), at=end)
    wants_usage = request.include_usage or "usage_chunk_unrequested" in faults
    if wants_usage and "no_usage_chunk" not in faults and "usage_chunk_not_last" in faults:
        frames.append(usage_frame)
    for index, g in enumerate(generations):
        finish: str | None = g.finish_reason
        if "no_finish_reason" in faults:
            finish = None
        final_delta: dict[str, Any] = {"content": None} if "null_content_deltas" in faults else {}
        if "two_finish_reasons" in faults:
            frames.append(Frame(factory.chunk([_choice(index, {}, finish)]), at=end))
        running = usage_value if "usage_on_every_chunk" in faults else None
        frames.append(Frame(factory.chunk([_choice(index, final_delta, finish)], running), at=end))
        if wants_usage and "usage_chunk_per_choice" in faults:  # llama.cpp with n > 1
            frames.append(Frame(factory.chunk([], usage_value), at=end))
        if "content_after_finish" in faults:
            frames.append(Frame(factory.chunk([_choice(index, {"content": " late"})]), at=end))
    last_usage = ("no_usage_chunk", "usage_chunk_not_last", "usage_chunk_per_choice")
    if wants_usage and not any(f in faults for f in last_usage):
        if "usage_chunk_with_choices" in faults:
            usage_frame.data["choices"] = [_choice(0, {}, generations[0].finish_reason)]
        frames.append(usage_frame)
    if "usage_on_every_chunk" in faults:
        for frame in frames:
            if isinstance(frame.data, dict):
                frame.data["usage"] = usage_value
    if "stream_no_choices" in faults:  # a stream of nothing but framing
        frames = [f for f in frames if not (isinstance(f.data, dict) and f.data["choices"])]
    if "missing_done" not in faults:
        frames.append(Frame("[DONE]", at=end))
    if "data_after_done" in faults:
        frames.append(Frame(factory.chunk([_choice(0, {}, "stop")]), at=end))
    return frames
