"""Our schemas: derived reproducibly from OpenAI's spec, and strict where it matters only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.api.schemas import load_schema, schema_dir, schema_errors

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared/reference/openai-openapi/normalized_2020_12"

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "system_fingerprint": "fp",
    "choices": [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": "hi"},
            "logprobs": None,
            "finish_reason": None,
        }
    ],
}


@pytest.mark.skipif(not SPEC.is_dir(), reason="OpenAI spec fragments not beside the checkout")
@pytest.mark.parametrize("name", ["response", "chunk", "error", "request"])
def test_derivation_is_reproducible(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location("derive", ROOT / "schemas/derive.py")
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    doc = derive.derive(SPEC, f"{name}.json", derive.SOURCES[f"{name}.json"])
    assert doc == json.loads((schema_dir() / f"{name}.json").read_text())


def test_spec_allowed_chunk_passes():
    vendor = {**CHUNK, "usage": None, "x_vendor": 1, "system_fingerprint": None}
    assert schema_errors(CHUNK, "chunk") == []
    assert schema_errors(vendor, "chunk") == []


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda c: c["choices"][0].pop("index"), "choices[0]"),
        (lambda c: c["choices"][0].update(finish_reason=""), "choices[0].finish_reason"),
        (lambda c: c.update(created=1.5), "created"),
        (
            lambda c: c["choices"][0]["delta"].update(tool_calls=[{"id": "x"}]),
            "choices[0].delta.tool_calls[0]",
        ),
    ],
)
def test_real_divergences_are_flagged(mutate, path):
    chunk = json.loads(json.dumps(CHUNK))
    mutate(chunk)
    errors = schema_errors(chunk, "chunk")
    assert errors and errors[0].startswith(path), errors


def test_omitted_nullable_keys_are_not_schema_errors():
    """message.refusal and choices[].logprobs are checked at SHOULD level instead."""
    response = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
        ],
    }
    assert schema_errors(response, "response") == []


def test_all_schemas_are_valid_2020_12():
    from jsonschema import Draft202012Validator

    for name in ("response", "chunk", "error", "request", "models"):
        Draft202012Validator.check_schema(load_schema(name))


def test_readme_catalogue_is_current():
    from conformance.face.catalog import main

    assert main(["--check", str(ROOT / "README.md")]) == 0
