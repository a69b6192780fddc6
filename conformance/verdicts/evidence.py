"""Evidence for failing checks: redacted exchanges, truncation notes, curl reproductions.

Redaction happens at the source (the transport never records the key) and again here over
every text we emit, so an endpoint that echoes the Authorization header or the key into its
body or error messages cannot smuggle it into a report.
"""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from conformance.transport.client import KEY_MARKER, Exchange

REDACTED = KEY_MARKER  # one marker for the transport and the evidence
BODY_LIMIT = 4000
EVENT_EDGE = 5  # events shown at each end of a long stream
EVENT_CHARS = 300
_BEARER = re.compile(r"(?i)(bearer\s+)(?!\$OPENAI_API_KEY)[A-Za-z0-9._~+/=-]{8,}")
_KEYISH_QUERY = re.compile(r"(?i)(key|token|secret|signature|sig|password)")


class Redactor:
    """Removes one secret (and bearer tokens in general) from any text."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret or None

    def __call__(self, text: str) -> str:
        if self.secret and self.secret in text:
            text = text.replace(self.secret, REDACTED)
        return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


def redact_url(url: str) -> str:
    """Drop userinfo and key-like query values from a URL before showing it."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = f"{REDACTED}@{netloc}"
    query = urlencode(
        [(k, REDACTED if _KEYISH_QUERY.search(k) else v) for k, v in parse_qsl(parts.query)]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [truncated: showing {limit} of {len(text)} characters]"


def _request_body(exchange: Exchange) -> str:
    spec = exchange.spec
    if spec.content is not None:
        return spec.content.decode("utf-8", "replace")
    if spec.json is None:
        return ""
    return json.dumps(spec.json)


def _event_line(raw: bytes, data: str) -> str:
    text = repr(raw)[2:-1] if raw else f"data: {data}"
    return text if len(text) <= EVENT_CHARS else text[:EVENT_CHARS] + " ..."


def _response_body(exchange: Exchange) -> str:
    if exchange.events:
        events = exchange.events
        head = events if len(events) <= 2 * EVENT_EDGE else events[:EVENT_EDGE]
        lines = [_event_line(e.raw, e.data) for e in head]
        if len(events) > 2 * EVENT_EDGE:
            lines.append(f"... [{len(events) - 2 * EVENT_EDGE} events omitted] ...")
            lines += [_event_line(e.raw, e.data) for e in events[-EVENT_EDGE:]]
        text = _truncate("\n".join(lines), BODY_LIMIT)
        if exchange.framing and exchange.framing.unterminated_tail:
            text += f"\n(unterminated tail: {exchange.framing.unterminated_tail[-200:]!r})"
        return text
    # Decode only what is shown: a capped body is megabytes, the evidence a few thousand chars.
    text = _truncate(exchange.body[: BODY_LIMIT * 4].decode("utf-8", "replace"), BODY_LIMIT)
    if len(exchange.body) > BODY_LIMIT * 4:
        text += f" (of {len(exchange.body)} bytes)"
    if exchange.body_size > len(exchange.body):
        text += f"\n... [body capped: {len(exchange.body)} of {exchange.body_size} bytes kept]"
    return text


def format_exchange(exchange: Exchange, redact: Redactor) -> str:
    """Request and response, headers sorted, bodies truncated with a note."""
    lines = [f"> {exchange.spec.method} {redact_url(exchange.url)}"]
    lines += [f"> {k}: {v}" for k, v in sorted(exchange.request_headers.items())]
    body = _request_body(exchange)
    if body:
        lines.append("> " + _truncate(body, 1000))
    if exchange.status is not None:
        timing = f"{exchange.elapsed_ms:.1f} ms" if exchange.elapsed_ms is not None else "?"
        lines.append(f"< HTTP {exchange.status}  ({timing})")
        lines += [f"< {k}: {v}" for k, v in sorted(exchange.headers)]
        lines.append("< " + _response_body(exchange))
    if exchange.error:
        lines.append(f"!! transport: {exchange.error}")
    return redact("\n".join(lines))


def curl_command(exchange: Exchange, redact: Redactor) -> str:
    """A shell line that reproduces the request; the key comes from the environment."""
    parts = ["curl", "-sS", "-i"]
    if exchange.spec.wants_stream:
        parts.append("-N")
    parts += ["-X", exchange.spec.method, shlex.quote(redact_url(exchange.url))]
    for name, value in sorted(exchange.request_headers.items()):
        if name == "authorization":
            if "$OPENAI_API_KEY" in value:
                parts += ["-H", '"Authorization: Bearer $OPENAI_API_KEY"']
            else:
                parts += ["-H", shlex.quote("Authorization: Bearer wrong-key")]
        elif name in ("content-type",):
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    body = _request_body(exchange)
    if body:
        parts += ["--data-raw", shlex.quote(body)]
    return redact(" ".join(parts))
