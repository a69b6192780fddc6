"""Request builders: every body the checks send starts from the dialect's base (token-limit field,
temperature, seed, reasoning effort) so that one endpoint's quirks are decided once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.api import dialect
from conformance.transport.client import Exchange, RequestSpec

PROMPT = "Say hello to a conformance test suite in one short sentence."


MAX_TOKENS = 24  # visible tokens; the dialect adds headroom for reasoning


def chat_body(model: str, *, judging: bool = False, **extra: Any) -> dict[str, Any]:
    """A small request in the negotiated dialect (see ``dialect.py``), plus ``extra``.

    ``max_tokens=N`` in ``extra`` means "N visible tokens": it is sent as the dialect's
    token-limit field with the reasoning headroom added. ``temperature=1`` (the default value)
    is left out where the endpoint accepts no temperature. A check about a token-limit field
    itself sets it literally with ``with_limit``. ``judging=True`` sends the dialect's judging
    effort instead of the cheapest one: for checks that must see the model reason.
    """
    current = dialect.current()
    visible = extra.pop("max_tokens", MAX_TOKENS)
    messages = extra.pop("messages", [{"role": "user", "content": PROMPT}])
    build = current.judging if judging else current.base
    body = build(model, messages, visible)
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
