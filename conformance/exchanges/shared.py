"""Shared exchanges: a few requests made once per session, concurrently, asserted on by many
checks (vendors run this against paid, slow endpoints), plus small assertion helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from conformance.api import dialect
from conformance.transport.client import NOT_JSON, Exchange, RequestSpec
from conformance.verdicts.check import expect, short

PROMPT = "Say hello to a conformance test suite in one short sentence."
MAX_TOKENS = 24  # visible tokens; the dialect adds headroom for reasoning


def chat_body(model: str, **extra: Any) -> dict[str, Any]:
    """A small request in the negotiated dialect (see ``dialect.py``), plus ``extra``.

    ``max_tokens=N`` in ``extra`` means "N visible tokens": it is sent as the dialect's
    token-limit field with the reasoning headroom added. ``temperature=1`` (the default value)
    is left out where the endpoint accepts no temperature. A check about a token-limit field
    itself sets it literally with ``with_limit``.
    """
    current = dialect.current()
    visible = extra.pop("max_tokens", MAX_TOKENS)
    messages = extra.pop("messages", [{"role": "user", "content": PROMPT}])
    body = current.base(model, messages, visible)
    if current.temperature is None and extra.get("temperature") == 1:
        del extra["temperature"]
    body.update(extra)
    return body


def sent_limit(exchange: Exchange) -> tuple[str, int]:
    """(field, value) of the token limit the request of ``exchange`` carried."""
    body = exchange.spec.json if isinstance(exchange.spec.json, dict) else {}
    for name in dialect.TOKEN_FIELDS:
        if isinstance(body.get(name), int):
            return name, body[name]
    raise AssertionError(f"request {exchange.label!r} carried no token limit")


def with_limit(body: dict[str, Any], field: str, value: int) -> dict[str, Any]:
    """``body`` with exactly one token-limit field, ``field``, set literally to ``value``."""
    out = {k: v for k, v in body.items() if k not in dialect.TOKEN_FIELDS}
    out[field] = value
    return out


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
    stream_usage: Exchange | None  # None: usage_in_stream declared absent, not sent


@pytest.fixture(scope="session")
def shared(endpoint: Any, capabilities: Any) -> Shared:
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
    if "usage_in_stream" in capabilities.absent:
        return Shared(*endpoint.transport.send_all(specs[:2]), None)
    return Shared(*endpoint.transport.send_all(specs))


@dataclass(frozen=True)
class InvalidCase:
    """A request OpenAI answers with 400; ``param`` is the field the error should name."""

    body: dict[str, Any] | None
    param: str | None
    raw: bytes | None = None


#: Caps what a server that wrongly accepts an invalid request generates for it.
INVALID_MAX_TOKENS = 16
#: Invalid cases whose streamed twin tests the streaming error path, in order of preference.
STREAM_TWIN_CASES = ("temperature_too_high", "n_zero", "missing_messages")


def invalid_cases(model: str) -> dict[str, InvalidCase]:
    user = [{"role": "user", "content": "hi"}]
    # max_tokens bounds the cost when a server wrongly accepts the request: llama.cpp generates
    # to the end of its context (minutes on CPU) for an empty or unbounded request.
    current = dialect.current()
    cap = {"model": model, **current.limit(INVALID_MAX_TOKENS), **current.extra_body}
    return {
        "malformed_json": InvalidCase(None, None, raw=b'{"model": "x", "messages": [{"role": '),
        "missing_messages": InvalidCase({**cap}, "messages"),
        "empty_messages": InvalidCase({**cap, "messages": []}, "messages"),
        "bad_role": InvalidCase(
            {**cap, "messages": [{"role": "wizard", "content": "hi"}]}, "messages"
        ),
        "temperature_too_high": InvalidCase(
            {**cap, "messages": user, "temperature": 5}, "temperature"
        ),
        "n_zero": InvalidCase({**cap, "messages": user, "n": 0}, "n"),
    }


INVALID_CASE_IDS = list(invalid_cases("m"))
AUTH_CASES = {"missing_key": False, "wrong_key": "sk-chatcompat-deliberately-wrong-key-0000"}


@dataclass
class ErrorExchanges:
    invalid: dict[str, Exchange]
    auth: dict[str, Exchange]
    unknown_model: Exchange
    stream_invalid: Exchange | None  # None: the server rejected no twin-able case unstreamed

    def all(self) -> list[Exchange]:
        return [
            *self.invalid.values(),
            *self.auth.values(),
            self.unknown_model,
            *([self.stream_invalid] if self.stream_invalid is not None else []),
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
    sent = endpoint.transport.send_all(specs)
    n_invalid = len(INVALID_CASE_IDS)
    invalid = dict(zip(INVALID_CASE_IDS, sent[:n_invalid], strict=True))
    return ErrorExchanges(
        invalid=invalid,
        auth=dict(zip(auth_names, sent[n_invalid : n_invalid + len(auth_names)], strict=True)),
        unknown_model=sent[-1],
        stream_invalid=_stream_twin(endpoint, invalid),
    )


def _stream_twin(endpoint: Any, invalid: dict[str, Exchange]) -> Exchange | None:
    """The streamed twin of an invalid request the server rejected with 400 unstreamed.

    A fixed invalid body (say temperature 5) would fail this check on every server that
    accepts that value at all, restating errors.invalid_is_400 instead of testing whether
    errors on the streaming path come as an HTTP status or inside a 200 stream.
    """
    for name in STREAM_TWIN_CASES:
        if invalid[name].status == 400:
            body = {**invalid_cases(endpoint.model)[name].body, "stream": True}
            return endpoint.transport.send(
                RequestSpec(f"invalid streaming request ({name})", json=body)
            )
    return None


# --- assertion helpers -------------------------------------------------------------------


def describe_status(exchange: Exchange) -> str:
    if exchange.error:
        # "HTTP 200, then ...": the status arrived, the rest of the response did not.
        status = f"HTTP {exchange.status}, then " if exchange.status else ""
        return f"{status}transport error: {exchange.error}"
    return f"HTTP {exchange.status}"


def expect_rejected(exchange: Exchange) -> None:
    """The request is invalid: it must be answered 400 (not 2xx, 422 or 5xx)."""
    expect(exchange.status == 400, "HTTP 400", describe_status(exchange), exchange)


#: Not just "HTTP 200": a response cut off by a transport error also has status 200.
OK_EXPECTED = "a complete HTTP 200 response"


def ok_json(exchange: Exchange) -> dict[str, Any]:
    """The JSON object body of a successful exchange, or a failed check saying why not."""
    expect(exchange.ok, OK_EXPECTED, describe_status(exchange), exchange)
    body = exchange.json
    expect(body is not NOT_JSON, "a JSON body", "a body that is not JSON", exchange)
    expect(isinstance(body, dict), "a JSON object", f"JSON {type(body).__name__}", exchange)
    return body


def ok_stream(exchange: Exchange) -> list[dict[str, Any]]:
    """The JSON chunks of a successful stream, or a failed check saying why not."""
    expect(exchange.ok, OK_EXPECTED, describe_status(exchange), exchange)
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
