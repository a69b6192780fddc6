"""Request fields the suite sends for their own sake: one definition for the check modules,
the catalogue and the reference server's faults (none of which may import a check module).

Enum values are read from the spec, so a value OpenAI adds is tried by the next run.
"""

from __future__ import annotations

from typing import Any

from conformance.api.schemas import load_schema


def enum_values(name: str) -> list[str]:
    """Every enum value of a top-level request field in the spec (through $ref / anyOf)."""
    defs = load_schema("request")["$defs"]

    def values(node: Any) -> list[str]:
        if isinstance(node, dict):
            if "enum" in node:
                return [v for v in node["enum"] if isinstance(v, str)]
            if "$ref" in node:
                return values(defs[node["$ref"].rsplit("/", 1)[-1]])
            return [
                v
                for key in ("anyOf", "oneOf", "allOf")
                for sub in node.get(key, [])
                for v in values(sub)
            ]
        return []

    for part in defs["CreateChatCompletionRequest"]["allOf"]:
        if name in part.get("properties", {}):
            return values(part["properties"][name])
        if "$ref" in part:
            props = defs[part["$ref"].rsplit("/", 1)[-1]].get("properties", {})
            if name in props:
                return values(props[name])
    return []


TOOL = {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}
#: The params.optional_field battery: case -> the fields its request adds.
OPTIONAL: dict[str, dict[str, Any]] = {
    "user": {"user": "chatcompat-user-1"},
    # OpenAI answers 400 to metadata unless store is true ("only allowed when 'store' is
    # enabled"): sent together, so the case judges metadata, not that documented rule
    "metadata": {"metadata": {"suite": "chatcompat"}, "store": True},
    "store": {"store": False},
    "modalities": {"modalities": ["text"]},
    "prediction": {"prediction": {"type": "content", "content": "Hello"}},
    "safety_identifier": {"safety_identifier": "chatcompat-hash-1"},
    "prompt_cache_key": {"prompt_cache_key": "chatcompat"},
    "parallel_tool_calls": {"parallel_tool_calls": True, "tools": [TOOL]},
    **{f"service_tier={v}": {"service_tier": v} for v in enum_values("service_tier")},
    **{f"verbosity={v}": {"verbosity": v} for v in enum_values("verbosity")},
}
#: The optional fields under test (one per case, without the values).
OPTIONAL_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(c.split("=")[0] for c in OPTIONAL))
#: Every field the battery's requests carry (the tools a parallel_tool_calls case needs too).
OPTIONAL_SENT: tuple[str, ...] = tuple(dict.fromkeys(f for b in OPTIONAL.values() for f in b))
#: reasoning_effort's documented values (reasoning.effort_values).
REASONING_EFFORTS: tuple[str, ...] = tuple(enum_values("reasoning_effort"))
