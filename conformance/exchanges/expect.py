"""Expectation helpers: read a response the way every check needs it (a complete 200, its
choices, its streamed content), failing the check with evidence when it is not there.
"""

from __future__ import annotations

from typing import Any

from conformance.transport.client import NOT_JSON, Exchange
from conformance.verdicts.check import expect, short
from conformance.verdicts.premises import SSE_STREAM


def model_ids(exchange: Exchange) -> list[str]:
    body = exchange.json
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


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


def leaned_stream(exchange: Exchange | None) -> list[dict[str, Any]]:
    """The chunks of a stream a check only leans on (its requirement is about something
    else): a stream that is not a complete 200 with events is ``SSE_STREAM`` unmet, which
    stream.content_type judges, never this check's failure. A transport error still fails
    through ``ok_stream``, so the check ends not judged as every unanswered request does."""
    if exchange is not None and exchange.error is not None:
        return ok_stream(exchange)
    SSE_STREAM.require(
        exchange is not None and exchange.ok and exchange.events,
        "not sent"
        if exchange is None
        else f"{describe_status(exchange)}, {len(exchange.events)} events",
    )
    assert exchange is not None
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
