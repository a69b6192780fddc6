"""Derive our JSON Schema 2020-12 documents from OpenAI's OpenAPI fragments.

Run from the repository root: ``python schemas/derive.py [SPEC_DIR]`` (default
``../shared/reference/openai-openapi/normalized_2020_12``). The fragments there already have
OpenAPI-3.0 ``nullable`` rewritten to 2020-12 null unions (the raw spec rejects its own
example chunk otherwise). This script only re-homes ``components.schemas`` under ``$defs``,
drops vendor ``x-`` keys, and applies the few documented relaxations below, so the MUST-level
schema checks flag real divergences and nothing the spec (or OpenAI itself) allows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SPEC = HERE.parent.parent / "shared/reference/openai-openapi/normalized_2020_12"

SOURCES = {
    "response.json": "CreateChatCompletionResponse.json",
    "chunk.json": "CreateChatCompletionStreamResponse.json",
    "error.json": "ErrorResponse.json",
    "request.json": "CreateChatCompletionRequest.json",
}

# Keys that are "required" in the spec but nullable, and that many servers simply omit.
# Their absence is reported by separate SHOULD-level checks, not by the MUST schema check.
RELAX_REQUIRED = {
    "response.json": [
        (("$defs", "CreateChatCompletionResponse", "properties", "choices", "items"), "logprobs"),
        (
            (
                "$defs",
                "ChatCompletionResponseMessage",
            ),
            "refusal",
        ),
    ],
    "chunk.json": [],
    "error.json": [],
    "request.json": [],
}

# system_fingerprint is typed "string" but OpenAI itself sends null for some models.
ALLOW_NULL = {
    "response.json": [
        ("$defs", "CreateChatCompletionResponse", "properties", "system_fingerprint")
    ],
    "chunk.json": [
        ("$defs", "CreateChatCompletionStreamResponse", "properties", "system_fingerprint")
    ],
    "error.json": [],
    "request.json": [],
}


def _clean(node: Any) -> Any:
    """Drop x- extension keys and rewrite component refs to $defs refs."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key.startswith("x-") or key == "discriminator":
                continue
            if key == "$ref" and isinstance(value, str):
                value = value.replace("#/components/schemas/", "#/$defs/")
            out[key] = _clean(value)
        return out
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _at(doc: dict, path: tuple[str, ...]) -> dict:
    for part in path:
        doc = doc[part]
    return doc


def derive(spec_dir: Path, name: str, source: str) -> dict:
    fragment = json.loads((spec_dir / source).read_text())
    commit = fragment.get("x-extracted-from", {}).get("commit", "unknown")
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://chatcompat.invalid/schemas/{name}",
        "$comment": (
            f"Derived by schemas/derive.py from openai-openapi {source} at commit {commit}. "
            "Relaxed: required-but-nullable keys servers commonly omit (checked at SHOULD level "
            "elsewhere) and system_fingerprint may be null (OpenAI sends null)."
        ),
        "$ref": fragment["$ref"].replace("#/components/schemas/", "#/$defs/"),
        "$defs": _clean(fragment["components"]["schemas"]),
    }
    for path, key in RELAX_REQUIRED[name]:
        target = _at(doc, path)
        target["required"] = [k for k in target["required"] if k != key]
    for path in ALLOW_NULL[name]:
        target = _at(doc, path)
        target["type"] = [target["type"], "null"]
    return doc


def main() -> None:
    spec_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC
    for name, source in SOURCES.items():
        doc = derive(spec_dir, name, source)
        (HERE / name).write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
        print(f"wrote schemas/{name}")


if __name__ == "__main__":
    main()
