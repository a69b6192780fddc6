"""What each request asks for: prompts (synthetic or from a dataset) and the request body.

Synthetic prompts are built from common English words, each of which is one token in the
usual BPE vocabularies (GPT-2/cl100k/Llama), so ``--prompt-tokens N`` gives prompts of about N
tokens; the server's own ``usage.prompt_tokens`` is what the report shows. Each prompt starts
with a request number so that no two prompts share a long prefix (prefix caches would
otherwise make TTFT look better than it is).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
]
TEMPLATE_TOKENS = 8  # "Request 123: ... Reply at length." and chat framing, roughly


class Prompts:
    """Endless, deterministic sequence of message lists for the requests of one process."""

    def __init__(self, prompt_tokens: int, dataset: str = "", seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.prompt_tokens = prompt_tokens
        self.dataset = load_dataset(Path(dataset)) if dataset else []
        self.count = 0

    def next(self) -> list[dict[str, Any]]:
        self.count += 1
        if self.dataset:
            messages = self.dataset[(self.count - 1) % len(self.dataset)]
            return json.loads(json.dumps(messages))  # a copy: callers may change it
        words = max(self.prompt_tokens - TEMPLATE_TOKENS, 1)
        text = " ".join(self.rng.choice(WORDS) for _ in range(words))
        content = f"Request {self.rng.getrandbits(32)}: {text}. Reply at length."
        return [{"role": "user", "content": content}]


def load_dataset(path: Path) -> list[list[dict[str, Any]]]:
    """JSONL lines with ``messages`` (chat) or ``prompt``/``text``; else one prompt per line."""
    out: list[list[dict[str, Any]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = line
        if isinstance(item, dict) and isinstance(item.get("messages"), list):
            out.append(item["messages"])
        elif isinstance(item, dict) and isinstance(item.get("prompt") or item.get("text"), str):
            out.append([{"role": "user", "content": item.get("prompt") or item["text"]}])
        else:
            out.append([{"role": "user", "content": line}])
    if not out:
        raise ValueError(f"{path}: no prompts found")
    return out


def request_body(
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    min_tokens: int = 0,
    ignore_eos: bool = False,
    include_usage: bool = True,
    extra: dict[str, Any] | None = None,
    token_field: str = "max_tokens",
) -> bytes:
    """The JSON body of one streamed chat completion request.

    ``token_field`` carries the limit: ``max_tokens``, or ``max_completion_tokens`` for
    endpoints (OpenAI's reasoning models among them) that reject ``max_tokens``.
    """
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if max_tokens:
        body[token_field] = max_tokens
    if min_tokens:
        body["min_tokens"] = min_tokens
    if ignore_eos:
        body["ignore_eos"] = True
    body.update(extra or {})
    return json.dumps(body, separators=(",", ":")).encode()
