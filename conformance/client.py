"""The one HTTP layer of the suite: every request goes through here and becomes an Exchange.

An Exchange records what was sent (never the API key: only the fact that one was sent),
what came back (status, headers, body bytes, decoded SSE events with their raw framing) and
when (request start, headers, first byte, each event, end). Every request is bounded by
connect/read/total timeouts and by caps on body size and event count, so a hanging or
endless endpoint becomes a clear transport error on the Exchange, never a hung run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import httpx

from .sse import Event, Framing, SSEDecoder, SSEError

USER_AGENT = "chatcompat/0.1 (+conformance suite)"
NOT_JSON = object()


@dataclass(frozen=True)
class Limits:
    """Timeouts (seconds) and caps applied to every request."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_body_bytes: int = 8 * 1024 * 1024
    max_events: int = 20_000


@dataclass
class RequestSpec:
    """What to send. ``auth``: True = the configured key, False = none, str = that key."""

    label: str
    json: Any = None
    method: str = "POST"
    path: str = "/chat/completions"
    content: bytes | None = None
    auth: bool | str = True
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def wants_stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))

    def body_bytes(self) -> bytes | None:
        if self.content is not None:
            return self.content
        if self.json is None:
            return None
        return json.dumps(self.json).encode()


@dataclass
class Exchange:
    """One request and everything observed about its response."""

    spec: RequestSpec
    url: str
    request_headers: dict[str, str]
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    body_size: int = 0
    truncated: bool = False
    events: list[Event] = field(default_factory=list)
    framing: Framing | None = None
    error: str | None = None
    t_start: float = 0.0
    t_headers: float | None = None
    t_first_byte: float | None = None
    t_end: float | None = None

    @property
    def label(self) -> str:
        return self.spec.label

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @cached_property
    def json(self) -> Any:
        """The parsed body, or NOT_JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return NOT_JSON

    @cached_property
    def payloads(self) -> list[Any]:
        """Each event's data parsed as JSON; '[DONE]' stays a string, junk becomes NOT_JSON."""
        out: list[Any] = []
        for event in self.events:
            if event.data == "[DONE]":
                out.append("[DONE]")
                continue
            try:
                out.append(json.loads(event.data))
            except ValueError:
                out.append(NOT_JSON)
        return out

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """The JSON-object events before any '[DONE]' (what a client would process)."""
        out = []
        for payload in self.payloads:
            if payload == "[DONE]":
                break
            if isinstance(payload, dict):
                out.append(payload)
        return out

    @property
    def usage(self) -> dict[str, Any] | None:
        """Usage from the JSON body or from the last chunk carrying a non-null usage."""
        if self.spec.wants_stream:
            found = [c["usage"] for c in self.chunks if isinstance(c.get("usage"), dict)]
            return found[-1] if found else None
        body = self.json
        if isinstance(body, dict) and isinstance(body.get("usage"), dict):
            return body["usage"]
        return None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def elapsed_ms(self) -> float | None:
        if self.t_end is None:
            return None
        return (self.t_end - self.t_start) * 1000


@dataclass
class Spend:
    """Requests and tokens spent, printed at the end of every run."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, exchange: Exchange) -> None:
        self.requests += 1
        usage = exchange.usage or {}
        for key in ("prompt_tokens", "completion_tokens"):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**7:
                setattr(self, key, getattr(self, key) + value)


class Transport:
    """Sends RequestSpecs to one endpoint; synchronous facade over a concurrent async core."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        limits: Limits | None = None,
        verify_tls: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.limits = limits or Limits()
        self.verify_tls = verify_tls
        self.spend = Spend()

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def send(self, spec: RequestSpec) -> Exchange:
        return self.send_all([spec])[0]

    def send_all(self, specs: Sequence[RequestSpec]) -> list[Exchange]:
        """Send every spec concurrently; exchanges come back in the order given."""
        exchanges = asyncio.run(self._send_all(specs))
        for exchange in exchanges:
            self.spend.add(exchange)
        return exchanges

    async def _send_all(self, specs: Sequence[RequestSpec]) -> list[Exchange]:
        limits = self.limits
        timeout = httpx.Timeout(
            connect=limits.connect_timeout,
            read=limits.read_timeout,
            write=limits.read_timeout,
            pool=limits.total_timeout,
        )
        async with httpx.AsyncClient(
            timeout=timeout,
            verify=self.verify_tls,
            follow_redirects=False,  # credentials must never follow a redirect elsewhere
            trust_env=False,
            # No connection reuse: some servers (llama.cpp) close after a stream despite
            # Keep-Alive, and a stale pooled connection would turn into a false failure.
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            return list(await asyncio.gather(*(self._send(client, s) for s in specs)))

    def _headers(self, spec: RequestSpec) -> tuple[dict[str, str], dict[str, str]]:
        """Headers to send, and the same headers as recorded (key replaced by a marker)."""
        headers = {"user-agent": USER_AGENT, "accept": "application/json, text/event-stream"}
        if spec.body_bytes() is not None:
            headers["content-type"] = "application/json"
        headers.update({k.lower(): v for k, v in spec.headers.items()})
        recorded = dict(headers)
        key = self._api_key if spec.auth is True else (spec.auth or None)
        if key:
            headers["authorization"] = f"Bearer {key}"
            marker = "$OPENAI_API_KEY" if spec.auth is True else "(a deliberately wrong key)"
            recorded["authorization"] = f"Bearer {marker}"
        return headers, recorded

    async def _send(self, client: httpx.AsyncClient, spec: RequestSpec) -> Exchange:
        headers, recorded = self._headers(spec)
        exchange = Exchange(spec=spec, url=self.base_url + spec.path, request_headers=recorded)
        exchange.t_start = time.perf_counter()
        try:
            async with asyncio.timeout(self.limits.total_timeout):
                await self._receive(client, spec, headers, exchange)
        except TimeoutError:
            exchange.error = (
                f"no complete response within the total timeout of {self.limits.total_timeout:g} s"
            )
        except httpx.TimeoutException as exc:
            kind = type(exc).__name__
            exchange.error = f"{kind}: no data for {self.limits.read_timeout:g} s (read timeout)"
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"[:500]
        except SSEError as exc:
            exchange.error = f"stream rejected: {exc}"
        finally:
            exchange.t_end = time.perf_counter()
        return exchange

    async def _receive(
        self, client: httpx.AsyncClient, spec: RequestSpec, headers: dict, exchange: Exchange
    ) -> None:
        limits = self.limits
        decoder = SSEDecoder(max_line_bytes=limits.max_body_bytes, max_events=limits.max_events)
        request = client.build_request(
            spec.method, exchange.url, headers=headers, content=spec.body_bytes()
        )
        response = await client.send(request, stream=True)
        body = bytearray()  # appended in place: linear even for a capped multi-MB body
        try:
            exchange.t_headers = time.perf_counter()
            exchange.status = response.status_code
            exchange.headers = [(k.lower(), v) for k, v in response.headers.multi_items()]
            decode_sse = spec.wants_stream or "event-stream" in exchange.content_type
            if decode_sse:
                exchange.framing = decoder.framing
            async for chunk in response.aiter_bytes():
                now = time.perf_counter()
                if exchange.t_first_byte is None:
                    exchange.t_first_byte = now
                exchange.body_size += len(chunk)
                if len(body) < limits.max_body_bytes:
                    body += chunk[: limits.max_body_bytes - len(body)]
                if decode_sse:
                    exchange.events.extend(decoder.feed(chunk, now=now))
                if exchange.body_size > limits.max_body_bytes:
                    exchange.truncated = True
                    exchange.error = (
                        f"response body exceeded the cap of {limits.max_body_bytes} bytes; "
                        "stopped reading"
                    )
                    return
            if decode_sse:
                decoder.close()
        finally:
            exchange.body = bytes(body)
            await response.aclose()
