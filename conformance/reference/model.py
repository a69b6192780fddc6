"""The reference server's deterministic toy model.

It is not a language model: it is a small rule-based generator whose every behaviour the
suite can predict, so that each request field has an observable, checkable effect:

* temperature 0 is a pure function of the prompt; temperature > 0 with a seed is a pure
  function of (prompt, seed, choice index); without a seed it is random.
* "count from A to B" prompts produce "1, 2, 3, ..." (what checks of ``stop`` use on real
  models too); "repeat after me: X" echoes X; anything else yields words from a fixed
  vocabulary ending in a period.
* tools, JSON object and JSON schema output are produced from the request's own schemas.
* tokens come from a tiny regex tokenizer, so usage and logprobs are exact and consistent.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

VOCABULARY = [
    "the",
    "a",
    "reference",
    "model",
    "answers",
    "every",
    "question",
    "with",
    "care",
    "and",
    "plain",
    "words",
    "about",
    "weather",
    "time",
    "colour",
    "river",
    "mountain",
    "city",
    "light",
    "music",
    "number",
    "garden",
    "table",
    "window",
    "morning",
    "evening",
    "quiet",
    "bright",
    "small",
    "large",
    "green",
    "blue",
    "red",
    "yellow",
    "simple",
    "useful",
    "today",
    "tomorrow",
    "always",
    "never",
    "often",
    "rarely",
    "here",
    "there",
    "friend",
    "story",
    "paper",
    "stone",
]

TOKEN_PATTERN = re.compile(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]|\s+")
COUNT_PATTERN = re.compile(r"count(?:ing)? from (\d+) to (\d+)", re.IGNORECASE)
REPEAT_PATTERN = re.compile(r"repeat after me:\s*(.+)", re.IGNORECASE | re.DOTALL)

JSON_REQUEST_PATTERN = re.compile(r"\b(?:in|as) json\b", re.IGNORECASE)
INSTRUCTION_PATTERN = re.compile(r"reply with only the word\s+([A-Za-z]+)", re.IGNORECASE)
MEDIA_TYPES = ("image_url", "input_audio")
MEDIA_TOKENS = 85
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMER_TOKENS = 3


def tokenize(text: str) -> list[str]:
    """Split text into tokens; concatenating them gives the text back exactly."""
    return TOKEN_PATTERN.findall(text)


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens as OpenAI counts them: content tokens plus a per-message overhead."""
    total = REPLY_PRIMER_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + len(tokenize(message_text(message)))
        total += MEDIA_TOKENS * len(media_parts(message))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            total += len(tokenize(str(function.get("name", ""))))
            total += len(tokenize(str(function.get("arguments", ""))))
    return total


def media_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The image_url / input_audio parts of a message (each costs MEDIA_TOKENS)."""
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") in MEDIA_TYPES]


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whether its content is a string, null or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Generation:
    """One choice's output: tokens (content) or tool calls, and why it ended."""

    tokens: list[str]
    finish_reason: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None
    reasoning_tokens: int = 0  # spent before the output, counted in completion_tokens
    reasoning: list[str] = field(default_factory=list)  # visible reasoning text, as tokens
    refusal: str | None = None  # set: the model refused (content null)
    function_call: tuple[str, str] | None = None  # legacy (name, arguments), content null

    @property
    def content(self) -> str:
        return "".join(self.tokens)


@dataclass
class Sampling:
    """The request fields that steer generation."""

    temperature: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    min_tokens: int = 0
    ignore_eos: bool = False
    stop: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    logit_bias: dict[str, float] = field(default_factory=dict)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


def base_text(messages: list[dict[str, Any]], sampling: Sampling, index: int) -> str:
    """The natural (untruncated) reply for a plain text request."""
    prompt = "\n".join(message_text(m) for m in messages)
    last_user = next(
        (message_text(m) for m in reversed(messages) if m.get("role") == "user"), prompt
    )
    if messages and messages[-1].get("role") == "tool":
        return f"The tool returned {message_text(messages[-1])[:80]}."
    for message in messages:
        if message.get("role") in ("system", "developer"):
            instruction = INSTRUCTION_PATTERN.search(message_text(message))
            if instruction:
                return instruction.group(1)
    media = [p["type"] for m in messages for p in media_parts(m)]
    if media:
        return (
            "I received "
            + " and ".join("an image" if kind == "image_url" else "an audio clip" for kind in media)
            + "."
        )
    if JSON_REQUEST_PATTERN.search(last_user):  # a prompt asking for JSON gets JSON
        return json.dumps({"answer": _rng("asked json", prompt).choice(VOCABULARY)})
    counting = COUNT_PATTERN.search(last_user)
    if counting:
        start, end = int(counting.group(1)), int(counting.group(2))
        step = 1 if end >= start else -1
        return ", ".join(str(i) for i in range(start, end + step, step)[:200])
    repeat = REPEAT_PATTERN.search(last_user)
    if repeat:
        return repeat.group(1).strip()
    rng = _sampling_rng(prompt, sampling, index)
    words = _biased_vocabulary(sampling.logit_bias)
    length = rng.randint(8, 16)
    text = " ".join(rng.choice(words) for _ in range(length))
    return text[:1].upper() + text[1:] + "."


def _sampling_rng(prompt: str, sampling: Sampling, index: int) -> random.Random:
    if sampling.temperature == 0:
        return _rng("greedy", prompt)
    if sampling.seed is not None:
        return _rng("seeded", prompt, sampling.seed, index, sampling.temperature)
    return random.Random()


def _biased_vocabulary(logit_bias: dict[str, float]) -> list[str]:
    """Token ids are vocabulary indices; -100 bans a word, +100 forces it."""
    forced = [VOCABULARY[int(k)] for k, v in logit_bias.items() if v >= 100 and _valid_id(k)]
    if forced:
        return forced
    banned = {int(k) for k, v in logit_bias.items() if v <= -100 and _valid_id(k)}
    allowed = [w for i, w in enumerate(VOCABULARY) if i not in banned]
    return allowed or VOCABULARY


def _valid_id(key: str) -> bool:
    return key.isdigit() and int(key) < len(VOCABULARY)


def apply_penalties(tokens: list[str], sampling: Sampling, seed_text: str) -> list[str]:
    """Positive presence / frequency penalties make repeated words unlikely: every repeat of
    a word already generated is replaced by a vocabulary word not yet used (deterministic)."""
    if sampling.presence_penalty <= 0 and sampling.frequency_penalty <= 0:
        return tokens
    seen: set[str] = set()
    fresh = iter([w for w in _rng("penalty", seed_text).sample(VOCABULARY, len(VOCABULARY))])
    out = []
    for token in tokens:
        word = token.strip().lower()
        if word.isalpha() and word in seen:
            replacement = next((w for w in fresh if w not in seen), word)
            token = token[: len(token) - len(token.lstrip())] + replacement
            word = replacement
        seen.add(word)
        out.append(token)
    return out


def extend_to_min(tokens: list[str], sampling: Sampling, seed_text: str) -> list[str]:
    """Honour min_tokens / ignore_eos (benchmark knobs) by continuing past the natural end."""
    target = sampling.min_tokens
    if sampling.ignore_eos and sampling.max_tokens:
        target = max(target, sampling.max_tokens)
    rng = _rng("extend", seed_text)
    while len(tokens) < target:
        tokens.append(" " + rng.choice(VOCABULARY))
    return tokens


def apply_limits(
    tokens: list[str], sampling: Sampling, keep_stop: bool = False
) -> tuple[list[str], str]:
    """Cut at the first stop sequence (excluded from output), then at max_tokens."""
    text = "".join(tokens)
    finish = "stop"
    found = [(text.find(s), s) for s in sampling.stop if s and s in text]
    if found:
        cut, stop = min(found)
        tokens = tokenize(text[: cut + (len(stop) if keep_stop else 0)])
    if sampling.max_tokens is not None and len(tokens) > sampling.max_tokens:
        tokens = tokens[: sampling.max_tokens]
        finish = "length"
    return tokens, finish


def token_logprobs(tokens: list[str], top_n: int) -> list[dict[str, Any]]:
    """Deterministic, well-formed logprobs: chosen token first, alternatives sorted."""
    entries = []
    for position, token in enumerate(tokens):
        rng = _rng("logprob", token, position)
        chosen = -round(rng.uniform(0.0005, 1.5), 6)
        alternatives = [w for w in VOCABULARY if " " + w != token][: max(top_n - 1, 0)]
        top = [{"token": token, "logprob": chosen, "bytes": list(token.encode())}]
        for rank, word in enumerate(alternatives, start=1):
            alt = " " + word
            logprob = round(chosen - rank - rng.random(), 6)
            top.append({"token": alt, "logprob": logprob, "bytes": list(alt.encode())})
        entry = {
            "token": token,
            "logprob": chosen,
            "bytes": list(token.encode()),
            "top_logprobs": top[:top_n],
        }
        if token.strip().lower() in VOCABULARY:
            # vendor extension (as llama.cpp and vLLM send): lets checks learn token ids
            entry["id"] = VOCABULARY.index(token.strip().lower())
        entries.append(entry)
    return entries


def instance_for_schema(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A small value that validates against a JSON schema (the subset tools and outputs use)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return instance_for_schema(schema[key][0], rng, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            name: instance_for_schema(sub, rng, depth + 1)
            for name, sub in props.items()
            if name in schema.get("required", props)
        }
    if kind == "array":
        count = max(schema.get("minItems", 1), 1)
        return [instance_for_schema(schema.get("items", {}), rng, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(max(schema.get("minimum", 1), 1))
    if kind == "number":
        return float(max(schema.get("minimum", 1.5), 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    word = rng.choice(VOCABULARY)
    return word.ljust(schema.get("minLength", 0), "x")


def tool_calls_for(
    tools: list[dict[str, Any]],
    choice: Any,
    messages: list[dict[str, Any]],
    parallel: bool,
    call_prefix: str,
) -> list[ToolCall]:
    """Which functions to call: forced by tool_choice, or named in the last user message."""
    functions = [t["function"] for t in tools if t.get("type") == "function"]
    if choice == "none" or not functions or (messages and messages[-1].get("role") == "tool"):
        return []
    if isinstance(choice, dict):
        wanted = [f for f in functions if f["name"] == choice.get("function", {}).get("name")]
    else:
        last_user = next(
            (message_text(m) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        wanted = [f for f in functions if f["name"] in last_user]
        if choice == "required" and not wanted:
            wanted = functions[:1]
    if not parallel:
        wanted = wanted[:1]
    calls = []
    for number, function in enumerate(wanted):
        args = instance_for_schema(function.get("parameters", {}), _rng("args", function["name"]))
        calls.append(
            ToolCall(
                id=f"call_{call_prefix}{number}",
                name=function["name"],
                arguments=json.dumps(args if args is not None else {}),
            )
        )
    return calls


def json_output(response_format: dict[str, Any], rng: random.Random) -> str:
    """Content for response_format json_object / json_schema."""
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return json.dumps(instance_for_schema(schema, rng))
    return json.dumps({"answer": rng.choice(VOCABULARY)})
