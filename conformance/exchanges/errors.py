"""The error exchanges: every deliberately invalid request of the errors.* checks (invalid
bodies, wrong or missing keys, an unknown model, a streamed twin), sent once, concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from conformance.api import dialect
from conformance.api.request_fields import TOOL
from conformance.exchanges.requests import chat_body
from conformance.transport.client import Exchange, RequestSpec


@dataclass(frozen=True)
class InvalidCase:
    """A request OpenAI answers with 400; ``param`` is the field the error should name."""

    body: dict[str, Any] | None
    param: str | None
    raw: bytes | None = None


#: Caps what a server that wrongly accepts an invalid request generates for it.
INVALID_MAX_TOKENS = 16


#: The one message of the cases that carry an invalid field beside valid messages: asks for a
#: word, so a server that wrongly accepts an unbounded request (limit 0 or -1 read as "no
#: limit", as llama.cpp reads -1) still stops soon.
ONE_WORD = [{"role": "user", "content": "Reply with one word: ok"}]
ABSENT_TOOL_CHOICE = {"type": "function", "function": {"name": "chatcompat_absent_tool"}}

#: Invalid cases whose streamed twin tests the streaming error path, in order of preference.
STREAM_TWIN_CASES = ("temperature_too_high", "n_zero", "missing_messages")


def invalid_cases(model: str) -> dict[str, InvalidCase]:
    user = [{"role": "user", "content": "hi"}]
    # max_tokens bounds the cost when a server wrongly accepts the request: llama.cpp generates
    # to the end of its context (minutes on CPU) for an empty or unbounded request.
    current = dialect.current()
    cap = {"model": model, **current.limit(INVALID_MAX_TOKENS), **current.extra_body}
    limit = current.token_field  # reasoning models reject max_tokens itself: the dialect's
    return {
        "malformed_json": InvalidCase(None, None, raw=b'{"model": "x", "messages": [{"role": '),
        "missing_messages": InvalidCase({**cap}, "messages"),
        "empty_messages": InvalidCase({**cap, "messages": []}, "messages"),
        # beside a valid message: a server that drops unknown roles answers 200, instead of a
        # 400 for the empty conversation left, which would look right for the wrong reason
        "bad_role": InvalidCase(
            {**cap, "messages": [{"role": "wizard", "content": "hi"}, *user]}, "messages"
        ),
        "temperature_too_high": InvalidCase(
            {**cap, "messages": user, "temperature": 5}, "temperature"
        ),
        "n_zero": InvalidCase({**cap, "messages": user, "n": 0}, "n"),
        # --- issue 15: what the spec rules out (and OpenAI answers 400 to) ---
        "token_limit_zero": InvalidCase({**cap, "messages": ONE_WORD, limit: 0}, limit),
        "token_limit_negative": InvalidCase({**cap, "messages": ONE_WORD, limit: -1}, limit),
        # OpenAI: "you must provide a model parameter", with param null
        "missing_model": InvalidCase(
            {k: v for k, v in cap.items() if k != "model"} | {"messages": user}, None
        ),
        "temperature_string": InvalidCase(
            {**cap, "messages": user, "temperature": "hot"}, "temperature"
        ),
        "messages_string": InvalidCase({**cap, "messages": "hi"}, "messages"),
        "response_format_unknown": InvalidCase(
            {**cap, "messages": user, "response_format": {"type": "yaml"}}, "response_format"
        ),
        "tool_choice_absent_tool": InvalidCase(
            {**cap, "messages": user, "tools": [TOOL], "tool_choice": ABSENT_TOOL_CHOICE},
            "tool_choice",
        ),
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
