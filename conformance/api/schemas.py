"""Load the JSON Schemas in ``schemas/`` and turn validation errors into readable paths.

The schemas live at the repository's top level (``schemas/``); a built wheel carries them as
``conformance/_schemas``. Both locations are tried so a source checkout, an editable install
and a regular install all work.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

_PACKAGE = Path(__file__).resolve().parents[1]  # conformance/
_CANDIDATES = (_PACKAGE / "_schemas", _PACKAGE.parent / "schemas")


def schema_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "response.json").is_file():
            return candidate
    raise FileNotFoundError(
        "chatcompat schemas not found (looked in conformance/_schemas, schemas/)"
    )


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Schema by short name: response, chunk, error, models, request."""
    return json.loads((schema_dir() / f"{name}.json").read_text())


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def json_path(path: Any) -> str:
    """Render a jsonschema path deque as ``choices[0].delta.content``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """anyOf/oneOf errors hide the useful reason in their context: surface the deepest."""
    if not error.context:
        return [error]
    deepest = max(len(e.absolute_path) for e in error.context)
    if deepest <= len(error.absolute_path):
        return [error]
    return [e for e in error.context if len(e.absolute_path) == deepest]


def schema_errors(instance: Any, name: str, limit: int = 10) -> list[str]:
    """Readable error lines (``path: message``); empty when the instance is valid."""
    lines: list[str] = []
    for error in sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.path)):
        for leaf in _leaf_errors(error):
            message = leaf.message if len(leaf.message) < 200 else leaf.message[:200] + "..."
            line = f"{json_path(leaf.absolute_path)}: {message}"
            if line not in lines:
                lines.append(line)
    return lines[:limit]
