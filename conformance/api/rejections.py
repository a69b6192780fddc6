"""Reading an endpoint's rejections: the error envelope, the parameters it names, one line
describing the answer. Shared by the dialect negotiation, the capability decisions and the
checks that judge a 400, so all of them read a rejection the same way.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.transport.client import NOT_JSON, Exchange

_QUOTED = re.compile(r"""['"`]([A-Za-z_][A-Za-z0-9_.\[\]]*)['"`]""")


def error_of(exchange: Exchange) -> dict[str, Any] | None:
    """The ``error`` object of a JSON body, if there is one."""
    body = exchange.json
    if body is NOT_JSON or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    return body["error"]


def has_envelope(exchange: Exchange) -> bool:
    """OpenAI's error envelope: ``{"error": {"message": "...", ...}}``."""
    error = error_of(exchange)
    return error is not None and isinstance(error.get("message"), str)


def named_params(exchange: Exchange) -> set[str]:
    """The request parameters a rejection names: its ``param`` and names quoted in its message.

    ``param`` paths (``messages[0].content[1].image_url``, ``body.messages``) yield every
    segment, so a rejection of a nested field names the top-level field and the part.
    """
    error = error_of(exchange)
    if error is None:
        return set()
    names: set[str] = set()
    param = error.get("param")
    texts = [param] if isinstance(param, str) else []
    message = error.get("message")
    if isinstance(message, str):
        texts += _QUOTED.findall(message)
    for text in texts:
        names.update(s for s in re.split(r"[.\[\]]+", text) if s and not s.isdigit())
    return names


def rejection_names(exchange: Exchange, params: tuple[str, ...] | frozenset[str]) -> bool:
    """True when ``exchange`` is a 400 whose error names one of ``params``."""
    return exchange.status == 400 and bool(named_params(exchange) & set(params))


def says_unsupported(exchange: Exchange, name: str) -> bool:
    """A 400 naming ``name`` that says the model does not support it (OpenAI's reasoning
    models: code unsupported_parameter / unsupported_value), rather than "out of range"."""
    if not rejection_names(exchange, (name,)):
        return False
    error = error_of(exchange) or {}
    words = f"{error.get('code')} {error.get('message')}".lower()
    return "unsupported" in words or "not supported" in words


def describe_answer(exchange: Exchange, limit: int = 200) -> str:
    """One line: the transport error, or the status with the error message (else the body)."""
    if exchange.error:
        return f"transport error: {exchange.error}"
    error = error_of(exchange)
    if error is not None and isinstance(error.get("message"), str):
        return f"HTTP {exchange.status}: {error['message'][:limit]!r}"
    return f"HTTP {exchange.status}: {exchange.body[:limit]!r}"
