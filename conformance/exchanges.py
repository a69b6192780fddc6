"""Shared exchanges: a few requests made once per session, concurrently, asserted on by many
checks (vendors run this against paid, slow endpoints), plus small assertion helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from .checks import expect, short
from .client import NOT_JSON, Exchange, RequestSpec

PROMPT = "Say hello to a conformance test suite in one short sentence."
MAX_TOKENS = 24
SEED = 7


def chat_body(model: str, **extra: Any) -> dict[str, Any]:
    """A small, deterministic request: temperature 0, fixed seed, few tokens."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "seed": SEED,
    }
    body.update(extra)
    return body


def model_ids(exchange: Exchange) -> list[str]:
    body = exchange.json
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


@dataclass
class Shared:
    plain: Exchange
    stream: Exchange
    stream_usage: Exchange


@pytest.fixture(scope="session")
def shared(endpoint: Any) -> Shared:
    """The same request three ways: JSON, streamed, streamed with usage."""
    model = endpoint.model
    specs = [
        RequestSpec("non-streamed completion", json=chat_body(model)),
        RequestSpec("streamed completion", json=chat_body(model, stream=True)),
        RequestSpec(
            "streamed completion with usage",
            json=chat_body(model, stream=True, stream_options={"include_usage": True}),
        ),
    ]
    return Shared(*endpoint.transport.send_all(specs))


@dataclass(frozen=True)
class InvalidCase:
    """A request OpenAI answers with 400; ``param`` is the field the error should name."""

    body: dict[str, Any] | None
    param: str | None
    raw: bytes | None = None


def invalid_cases(model: str) -> dict[str, InvalidCase]:
    user = [{"role": "user", "content": "hi"}]
    return {
        "malformed_json": InvalidCase(None, None, raw=b'{"model": "x", "messages": [{"role": '),
        "missing_messages": InvalidCase({"model": model}, "messages"),
        "empty_messages": InvalidCase({"model": model, "messages": []}, "messages"),
        "bad_role": InvalidCase(
            {"model": model, "messages": [{"role": "wizard", "content": "hi"}]}, "messages"
        ),
        "temperature_too_high": InvalidCase(
            {"model": model, "messages": user, "temperature": 5}, "temperature"
        ),
        "n_zero": InvalidCase({"model": model, "messages": user, "n": 0}, "n"),
    }


INVALID_CASE_IDS = list(invalid_cases("m"))
AUTH_CASES = {"missing_key": False, "wrong_key": "sk-chatcompat-deliberately-wrong-key-0000"}


@dataclass
class ErrorExchanges:
    invalid: dict[str, Exchange]
    auth: dict[str, Exchange]
    unknown_model: Exchange
    stream_invalid: Exchange

    def all(self) -> list[Exchange]:
        return [
            *self.invalid.values(),
            *self.auth.values(),
            self.unknown_model,
            self.stream_invalid,
        ]


@pytest.fixture(scope="session")
def errors(endpoint: Any) -> ErrorExchanges:
    """Every deliberately invalid request of the error checks, sent concurrently."""
    model = endpoint.model
    specs = [
        RequestSpec(f"invalid request: {name}", json=case.body, content=case.raw)
        for name, case in invalid_cases(model).items()
    ]
    auth_names = list(AUTH_CASES) if endpoint.transport.has_key else []
    specs += [
        RequestSpec(f"auth: {name}", json=chat_body(model), auth=AUTH_CASES[name])
        for name in auth_names
    ]
    specs.append(RequestSpec("unknown model", json=chat_body("chatcompat-no-such-model-0")))
    specs.append(
        RequestSpec("invalid streaming request", json=chat_body(model, stream=True, temperature=5))
    )
    sent = endpoint.transport.send_all(specs)
    n_invalid = len(INVALID_CASE_IDS)
    return ErrorExchanges(
        invalid=dict(zip(INVALID_CASE_IDS, sent[:n_invalid], strict=True)),
        auth=dict(zip(auth_names, sent[n_invalid : n_invalid + len(auth_names)], strict=True)),
        unknown_model=sent[-2],
        stream_invalid=sent[-1],
    )


# --- assertion helpers -------------------------------------------------------------------


def describe_status(exchange: Exchange) -> str:
    if exchange.error:
        status = f"HTTP {exchange.status}, " if exchange.status else ""
        return f"{status}transport error: {exchange.error}"
    return f"HTTP {exchange.status}"


def ok_json(exchange: Exchange) -> dict[str, Any]:
    """The JSON object body of a successful exchange, or a failed check saying why not."""
    expect(exchange.ok, "HTTP 200", describe_status(exchange), exchange)
    body = exchange.json
    expect(body is not NOT_JSON, "a JSON body", "a body that is not JSON", exchange)
    expect(isinstance(body, dict), "a JSON object", f"JSON {type(body).__name__}", exchange)
    return body


def ok_stream(exchange: Exchange) -> list[dict[str, Any]]:
    """The JSON chunks of a successful stream, or a failed check saying why not."""
    expect(exchange.ok, "HTTP 200", describe_status(exchange), exchange)
    expect(
        bool(exchange.events),
        "at least one server-sent event",
        f"no events (body starts {short(exchange.body[:200])})",
        exchange,
    )
    return exchange.chunks


def choices_of(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return []
    return [c for c in choices if isinstance(c, dict)]


def streamed_content(chunks: list[dict[str, Any]], index: int = 0) -> str:
    """Concatenate delta.content of one choice, ignoring null/non-string pieces."""
    parts = []
    for chunk in chunks:
        for choice in choices_of(chunk):
            delta = choice.get("delta")
            if choice.get("index") == index and isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str):
                    parts.append(content)
    return "".join(parts)


# --- request batches for the field checks --------------------------------------------------

COUNT_PROMPT = "Count from 1 to {n}, separated by commas. Output only the numbers."


def count_body(model: str, upto: int, **extra: Any) -> dict[str, Any]:
    """'Count from 1 to N': an output real small models produce reliably at temperature 0."""
    messages = [{"role": "user", "content": COUNT_PROMPT.format(n=upto)}]
    return chat_body(model, messages=messages, **extra)


@dataclass(frozen=True)
class Planned:
    """One request of a batch and the capability it exercises (None: core behaviour)."""

    capability: str | None
    spec: RequestSpec


def send_batch(endpoint: Any, capabilities: Any, plan: dict[str, Planned]) -> dict[str, Any]:
    """Send a module's requests concurrently; capabilities declared absent are not sent."""
    wanted = {k: p for k, p in plan.items() if p.capability not in capabilities.absent}
    sent = endpoint.transport.send_all([p.spec for p in wanted.values()])
    out: dict[str, Any] = dict.fromkeys(plan)
    out.update(zip(wanted, sent, strict=True))
    return out


def first_choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = choices_of(body)
    expect(bool(choices), "at least one choice", short(body.get("choices")))
    return choices[0]


def message_of(exchange: Exchange) -> dict[str, Any]:
    """choices[0].message of a successful JSON exchange."""
    choice = first_choice(ok_json(exchange))
    message = choice.get("message")
    expect(isinstance(message, dict), "choices[0].message object", short(message), exchange)
    return message


def streamed_finish_reasons(chunks: list[dict[str, Any]], index: int = 0) -> list[str]:
    return [
        c["finish_reason"]
        for chunk in chunks
        for c in choices_of(chunk)
        if c.get("index") == index and c.get("finish_reason")
    ]
