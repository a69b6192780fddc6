"""The one HTTP layer of the suite: every request goes through here and becomes an Exchange.

An Exchange records what was sent (never the API key: only the fact that one was sent),
what came back (status, headers, body bytes, decoded SSE events with their raw framing) and
when (request start, headers, first byte, each event, end). Every request is bounded by
connect/read/total timeouts and by caps on body size and event count, so a hanging or
endless endpoint becomes a clear transport error on the Exchange, never a hung run.

Hostile endpoints are expected (tests/hostile_server.py plays them), hence three rules:

* **Nothing the endpoint sends can crash the run**: any failure to read a response becomes
  ``Exchange.error`` (one line saying what happened and which option bounds it).
* **The key never leaves and is never kept**: redirects are not followed (a redirect is an
  error naming its target), and if the endpoint echoes the key back, it is replaced by
  ``[REDACTED]`` in the recorded headers, body, events and error before any check sees it.
* **Rate limits are honoured, boundedly**: a 429 is retried at most ``Limits.max_retries``
  times, after the delay its ``Retry-After`` asks for (seconds or an HTTP date; 1 s when
  absent) if that is at most ``Limits.max_retry_wait`` seconds. Each retry is recorded on
  the Exchange (``retries``) and counted in ``Spend``; each attempt has its own timeouts.
* **A silent endpoint costs one timeout, not one per request**: see :class:`Breaker`. Once
  it trips, every later request of the run, the official SDK's included, fails at once
  ("not sent", not counted as spent).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from conformance.transport.sse import Event, Framing, SSEDecoder, SSEError

USER_AGENT = "chatcompat/0.1 (+conformance suite)"
NOT_JSON = object()
KEY_MARKER = "[REDACTED]"  # the same marker evidence.Redactor uses
REDIRECTS = (301, 302, 303, 307, 308)
STREAM_BODY_KEEP = 1024 * 1024  # raw bytes of a stream kept for evidence (events hold the rest)
DEFAULT_RETRY_WAIT = 1.0  # seconds, for a 429 without a usable Retry-After


@dataclass(frozen=True)
class Limits:
    """Timeouts (seconds) and caps applied to every request."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_body_bytes: int = 8 * 1024 * 1024
    max_events: int = 20_000
    max_concurrency: int = 4  # requests in flight at once (--concurrency)
    max_retries: int = 2  # retries of an HTTP 429 (see the module docstring)
    max_retry_wait: float = 10.0  # longest Retry-After honoured, seconds
    breaker_after: int = 3  # costly failures (timeouts, caps) after which the rest fail at once


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
    retries: list[str] = field(default_factory=list)  # one line per retried 429
    timed_out: bool = False
    sent: bool = True  # False: failed at once by the breaker
    in_flight: int = 1  # requests of the run in flight while this one was (1: it was alone)

    def __repr__(self) -> str:
        # pytest shows fixture values in tracebacks: never build the repr of an 8 MiB body.
        return (
            f"Exchange({self.label!r}, status={self.status}, body={self.body_size} bytes, "
            f"events={len(self.events)}, error={self.error!r})"
        )

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
            if event.invalid_utf8:  # JSON text is UTF-8 (RFC 8259); strict clients reject it
                out.append(NOT_JSON)
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

    @property
    def capped(self) -> bool:
        """Stopped at --max-body-bytes or --max-events."""
        return self.truncated or (self.error or "").startswith("stream rejected:")


Shape = tuple[str, str, bool]  # method, path, streamed


@dataclass(frozen=True)
class Failure:
    """What the transport keeps of each sent request that got no complete answer (for the
    run's findings: ``findings.py``)."""

    error: str
    in_flight: int
    streamed: bool


@dataclass(frozen=True)
class Answered:
    """How long a complete answer took and how many tokens it reported (the run's slowest is
    quoted when a timeout leaves checks unjudged: "answered 16 tokens in 29 s")."""

    seconds: float
    tokens: int | None


def _answered(exchange: Exchange) -> Answered | None:
    if not exchange.ok or exchange.t_end is None or exchange.spec.path != "/chat/completions":
        return None
    tokens = (exchange.usage or {}).get("completion_tokens")
    counted = isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0
    return Answered(exchange.t_end - exchange.t_start, tokens if counted else None)


def shape_of(spec: RequestSpec) -> Shape:
    return spec.method, spec.path, spec.wants_stream


class Breaker:
    """Decides when the endpoint has cost enough: then nothing more is sent, on any path.

    A *costly* failure is one that cost a timeout (read, connect or total), hit a cap, or
    stayed rate-limited after the retries' waits; it counts against the request's shape
    (method, path, streamed or not). The breaker trips

    * at once, when a shape meets a costly failure before ever getting a complete answer
      (silence from the first contact: one timeout is all it costs);
    * or when the run's costly failures reach ``Limits.breaker_after``, however many complete
      answers came in between: an endpoint whose GET /models answers while every JSON body
      drips forever, or that hangs one request in eight, costs at most that many timeouts.

    Once tripped it stays so for the rest of the run.
    """

    def __init__(self, after: int) -> None:
        self.after = after
        self.reason: str | None = None  # why it tripped: one line, names the option
        self.not_sent = 0  # requests refused since
        self._costly: dict[Shape, int] = {}
        self._answered: set[Shape] = set()

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def answered(self, shape: Shape) -> None:
        self._answered.add(shape)

    def costly(self, shape: Shape, error: str) -> None:
        self._costly[shape] = self._costly.get(shape, 0) + 1
        if self.tripped:
            return
        count = sum(self._costly.values())
        if shape not in self._answered:
            self.reason = f"the first {_describe_shape(shape)} got no complete answer: {error}"
        elif count >= self.after:
            self.reason = f"{count} requests got no complete answer, the last: {error}"

    def record(self, exchange: Exchange) -> None:
        if not exchange.sent:
            return
        shape = shape_of(exchange.spec)
        waited_in_vain = exchange.status == 429 and bool(exchange.retries)
        if exchange.timed_out or exchange.capped or waited_in_vain:
            self.costly(shape, exchange.error or "no complete answer")
        elif exchange.status is not None and exchange.error is None:
            self.answered(shape)

    def refusal(self) -> str:
        self.not_sent += 1
        return f"not sent: {self.reason}; so the rest of the run fails at once"


def _describe_shape(shape: Shape) -> str:
    method, path, streamed = shape
    return f"{method} {path}{' (streamed)' if streamed else ''}"


@dataclass
class Spend:
    """Requests and tokens spent, printed at the end of every run."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0  # HTTP 429 answers that were retried (each also counts as a request)
    reasoning_tokens: int = 0  # part of completion_tokens (completion_tokens_details)

    def add(self, exchange: Exchange) -> None:
        if not exchange.sent:
            return
        self.requests += 1 + len(exchange.retries)
        self.retries += len(exchange.retries)
        usage = exchange.usage or {}
        for key in ("prompt_tokens", "completion_tokens"):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**7:
                setattr(self, key, getattr(self, key) + value)
        details = usage.get("completion_tokens_details")
        thought = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if isinstance(thought, int) and not isinstance(thought, bool) and 0 <= thought < 10**7:
            self.reasoning_tokens += thought


@dataclass(frozen=True)
class Completion:
    """What the run keeps of every chat completion answered 200: enough to judge what no one
    check sees (an id repeated anywhere in the run, streams cut while requests overlapped),
    without holding on to the bodies."""

    label: str
    id: Any
    streamed: bool
    #: a stream that ended with ``data: [DONE]``, yet left these choice indices without a
    #: finish_reason: the server cut it and said it was complete
    unfinished: tuple[Any, ...]
    t_start: float
    t_end: float
    in_flight: int

    def overlaps(self, other: Completion) -> bool:
        return other is not self and self.t_start < other.t_end and other.t_start < self.t_end


def completion_of(exchange: Exchange) -> Completion | None:
    """The record of an answered chat completion (None for anything else)."""
    spec = exchange.spec
    if not (exchange.ok and spec.method == "POST" and spec.path.endswith("/chat/completions")):
        return None
    unfinished: tuple[Any, ...] = ()
    if spec.wants_stream:
        chunks = exchange.chunks
        ident = chunks[0].get("id") if chunks else None
        seen: dict[Any, bool] = {}
        for chunk in chunks:
            for choice in chunk.get("choices") or []:
                if isinstance(choice, dict):
                    index = choice.get("index")
                    seen[index] = seen.get(index, False) or bool(choice.get("finish_reason"))
        done = any(e.data == "[DONE]" for e in exchange.events)
        unfinished = tuple(i for i, finished in seen.items() if not finished) if done else ()
    else:
        body = exchange.json
        ident = body.get("id") if isinstance(body, dict) else None
    return Completion(
        spec.label,
        ident,
        spec.wants_stream,
        unfinished,
        exchange.t_start,
        exchange.t_end or exchange.t_start,
        exchange.in_flight,
    )


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
        self.breaker = Breaker(self.limits.breaker_after)
        self.failures: list[Failure] = []
        self.slowest: Answered | None = None  # the slowest complete chat answer of the run
        #: every chat completion answered 200 in this run, in the order they ended
        self.completions: list[Completion] = []
        self._in_flight = 0

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def key_for_sdk(self) -> str:
        """The key, for handing to the official SDK only; never print or record it."""
        return self._api_key or "chatcompat-no-key"

    def sdk_http_client(self) -> httpx.Client:
        """An httpx client for the official SDK, bounded like this transport.

        The SDK reads whole bodies and iterates streams for as long as the server sends, and
        httpx has no total timeout: without this, a 1 GiB body, an endless stream or a
        one-byte-per-second drip would hang the run or exhaust memory. Every connection gets
        the total timeout (from connect to last byte) and the body cap (raw bytes, headers
        included); redirects are not followed; an echoed key is masked in each read.
        """
        limits = self.limits
        transport = httpx.HTTPTransport(verify=self.verify_tls, trust_env=False)
        # httpx builds its connection pool privately; swap it for one on a bounded backend.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=self.verify_tls, trust_env=False),
            max_keepalive_connections=0,
            network_backend=_BoundedBackend(limits, self._api_key, self.breaker),
        )
        timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)
        return httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        )

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
            # Bounded concurrency: a server with few slots (llama.cpp: n_parallel) queues the
            # rest, and a queued request that waits longer than the read timeout would be a
            # false failure of ours, not of the endpoint.
            slots = asyncio.Semaphore(limits.max_concurrency)

            async def bounded(spec: RequestSpec) -> Exchange:
                async with slots:
                    return await self._send(client, spec)

            return list(await asyncio.gather(*(bounded(s) for s in specs)))

    def send_on_one_connection(
        self, specs: Sequence[RequestSpec], pause: float = 0.3
    ) -> tuple[list[Exchange], int]:
        """Send specs one after another through a pool of ONE kept-alive connection.

        Returns the exchanges and how many TCP connections they took: 1 means the server kept
        the connection open between them. ``pause`` lets a server's close reach us first, so a
        close is observed deterministically instead of as a race.
        """
        exchanges, connections = asyncio.run(self._send_sequential(specs, pause))
        for exchange in exchanges:
            self.spend.add(exchange)
        return exchanges, connections

    async def _send_sequential(
        self, specs: Sequence[RequestSpec], pause: float
    ) -> tuple[list[Exchange], int]:
        streams: list[Any] = []  # kept alive, so identity comparisons stay meaningful

        async def on_response(response: httpx.Response) -> None:
            streams.append(response.extensions.get("network_stream"))

        limits = self.limits
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
            verify=self.verify_tls,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            event_hooks={"response": [on_response]},
        ) as client:
            exchanges = []
            for i, spec in enumerate(specs):
                if i:
                    await asyncio.sleep(pause)
                exchanges.append(await self._send(client, spec))
        distinct = [s for i, s in enumerate(streams) if all(s is not t for t in streams[:i])]
        return exchanges, len(distinct)

    def unsent(self, spec: RequestSpec, error: str) -> Exchange:
        """An exchange for ``spec`` that was not sent (by us): evidence and curl line only."""
        _, recorded = self._headers(spec)
        exchange = Exchange(spec=spec, url=self.base_url + spec.path, request_headers=recorded)
        exchange.t_start = exchange.t_end = time.perf_counter()
        exchange.sent = False
        exchange.error = error
        return exchange

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
        """One exchange, retrying a 429 as the module docstring says."""
        retries: list[str] = []
        while True:
            if self.breaker.tripped:
                if not retries:
                    return self.unsent(spec, self.breaker.refusal())
                break
            exchange = await self._attempt(client, spec)
            delay = (
                retry_delay(exchange, self.limits)
                if len(retries) < self.limits.max_retries
                else None
            )
            if delay is None:
                break
            after = exchange.header("retry-after")
            retries.append(f"HTTP 429 (Retry-After: {after!r}); retried after {delay:g} s")
            await asyncio.sleep(delay)
        exchange.retries = retries
        if exchange.status == 429 and exchange.error is None:
            exchange.error = _rate_limited(exchange, self.limits)
        self.breaker.record(exchange)
        answered = _answered(exchange)
        slowest = self.slowest
        if answered is not None and (slowest is None or answered.seconds > slowest.seconds):
            self.slowest = answered
        if exchange.error is not None:
            failure = Failure(exchange.error, exchange.in_flight, spec.wants_stream)
            self.failures.append(failure)
        completion = completion_of(exchange)
        if completion is not None:
            self.completions.append(completion)
        return exchange

    async def _attempt(self, client: httpx.AsyncClient, spec: RequestSpec) -> Exchange:
        headers, recorded = self._headers(spec)
        exchange = Exchange(spec=spec, url=self.base_url + spec.path, request_headers=recorded)
        exchange.t_start = time.perf_counter()
        limits = self.limits
        self._in_flight += 1
        exchange.in_flight = self._in_flight
        try:
            async with asyncio.timeout(limits.total_timeout):
                await self._receive(client, spec, headers, exchange)
        except TimeoutError:
            exchange.timed_out = True
            exchange.error = (
                f"no complete response within the total timeout of {limits.total_timeout:g} s "
                "(--total-timeout)"
            )
        except httpx.ConnectTimeout:
            exchange.timed_out = True
            exchange.error = (
                f"ConnectTimeout: no connection within {limits.connect_timeout:g} s "
                "(connect timeout, --request-timeout up to 10 s)"
            )
        except httpx.TimeoutException as exc:
            exchange.timed_out = True
            exchange.error = (
                f"{type(exc).__name__}: no data for {limits.read_timeout:g} s "
                "(read timeout, --request-timeout)"
            )
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {_detail(exc)}"[:500]
        except SSEError as exc:
            option = "--max-events" if "events" in str(exc) else "--max-body-bytes"
            exchange.error = f"stream rejected: {exc} ({option})"
        except Exception as exc:  # a hostile answer must never crash the run
            exchange.error = f"could not read the response: {type(exc).__name__}: {exc}"[:500]
        finally:
            exchange.t_end = time.perf_counter()
            exchange.in_flight = max(exchange.in_flight, self._in_flight)
            self._in_flight -= 1
        if exchange.error is None and exchange.status in REDIRECTS:
            exchange.error = _not_followed(exchange)
        self._scrub(exchange)
        return exchange

    def _scrub(self, exchange: Exchange) -> None:
        """Replace an echoed key everywhere the exchange recorded the response."""
        secret = self._api_key
        if not secret:
            return
        token, marker = secret.encode(), KEY_MARKER.encode()
        exchange.body = _scrub_bytes(exchange.body, token, marker)
        exchange.headers = [(k, v.replace(secret, KEY_MARKER)) for k, v in exchange.headers]
        for event in exchange.events:
            if secret in event.data or token in event.raw:
                event.data = event.data.replace(secret, KEY_MARKER)
                event.raw = event.raw.replace(token, marker)
        if exchange.framing is not None:
            tail = exchange.framing.unterminated_tail
            exchange.framing.unterminated_tail = _scrub_bytes(tail, token, marker)
        if exchange.error:
            exchange.error = exchange.error.replace(secret, KEY_MARKER)

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
            # A stream's content lives in its decoded events (each with its raw bytes); its
            # raw body is kept only as evidence, so a little of it is enough. Keeping all of it
            # too doubled the memory of every capped stream.
            keep = (
                min(limits.max_body_bytes, STREAM_BODY_KEEP)
                if decode_sse
                else (limits.max_body_bytes)
            )
            async for chunk in response.aiter_bytes():
                now = time.perf_counter()
                if exchange.t_first_byte is None:
                    exchange.t_first_byte = now
                exchange.body_size += len(chunk)
                if len(body) < keep:
                    body += chunk[: keep - len(body)]
                if decode_sse:
                    exchange.events.extend(decoder.feed(chunk, now=now))
                if exchange.body_size > limits.max_body_bytes:
                    exchange.truncated = True
                    exchange.error = (
                        f"response body exceeded the cap of {limits.max_body_bytes} bytes; "
                        "stopped reading (--max-body-bytes)"
                    )
                    return
            if decode_sse:
                decoder.close()
        finally:
            exchange.body = bytes(body)
            await response.aclose()


def _detail(exc: BaseException) -> str:
    """The exception's message, or its cause's (httpx.ReadError on a TCP reset has none)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if str(current):
            return str(current)
        current = current.__cause__ or current.__context__
        seen += 1
    return "the connection broke (no detail given)"


def _scrub_bytes(data: bytes, token: bytes, marker: bytes) -> bytes:
    """``data`` without ``token``, nor a long prefix of it cut off at the end (a capped body)."""
    if token in data:
        data = data.replace(token, marker)
    for size in range(min(len(token) - 1, len(data)), 7, -1):
        if data.endswith(token[:size]):
            return data[:-size] + marker
    return data


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date), None if junk."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def retry_delay(exchange: Exchange, limits: Limits) -> float | None:
    """Seconds to wait before retrying this exchange, or None: do not retry it."""
    if exchange.status != 429 or exchange.error is not None:
        return None
    header = exchange.header("retry-after")
    delay = DEFAULT_RETRY_WAIT if header is None else parse_retry_after(header)
    if delay is None or delay > limits.max_retry_wait:
        return None
    return delay


def _rate_limited(exchange: Exchange, limits: Limits) -> str:
    after = exchange.header("retry-after")
    asked = f" (Retry-After: {after!r})" if after is not None else ""
    if exchange.retries:
        return f"rate limited: HTTP 429{asked} after {len(exchange.retries)} retries"
    wait = parse_retry_after(after)
    if after is not None and (wait is None or wait > limits.max_retry_wait):
        return (
            f"rate limited: HTTP 429{asked}; not retried: the suite waits at most "
            f"{limits.max_retry_wait:g} s"
        )
    return f"rate limited: HTTP 429{asked}; not retried"


def _not_followed(exchange: Exchange) -> str:
    location = exchange.header("location") or "(no Location header)"
    parts = urlsplit(location)
    target = f"{parts.scheme}://{parts.hostname}" if parts.hostname else ""
    if parts.port:
        target += f":{parts.port}"
    target += parts.path
    return (
        f"redirected (HTTP {exchange.status}) to {target or location[:200]!r}; not followed: "
        "chatcompat never follows redirects, so the API key cannot reach another origin "
        "(point --base-url at the final location)"
    )


# --- bounded network streams for the official SDK (Transport.sdk_http_client) ---------------

_HEAD_ALLOWANCE = 64 * 1024  # status line and headers, on top of the body cap


class _BoundedStream(httpcore.NetworkStream):
    """One connection: reads end at the total deadline and at the byte cap."""

    def __init__(self, inner: httpcore.NetworkStream, limits: Limits, secret: bytes | None) -> None:
        self._inner = inner
        self._limits = limits
        self._deadline = time.monotonic() + limits.total_timeout
        self._left = limits.max_body_bytes + _HEAD_ALLOWANCE
        self._secret = secret

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        remaining = self._deadline - time.monotonic()
        total = f"no complete response within the total timeout of {self._limits.total_timeout:g} s"
        if remaining <= 0:
            raise httpcore.ReadTimeout(total)
        try:
            data = self._inner.read(max_bytes, min(timeout or remaining, remaining))
        except httpcore.ReadTimeout:
            if time.monotonic() >= self._deadline:
                raise httpcore.ReadTimeout(total) from None
            raise
        self._left -= len(data)
        if self._left < 0:
            cap = self._limits.max_body_bytes
            raise httpcore.ReadError(f"response exceeded the cap of {cap} bytes (--max-body-bytes)")
        if self._secret and self._secret in data:  # same length: framing stays valid
            data = data.replace(self._secret, b"*" * len(self._secret))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._inner = self._inner.start_tls(ssl_context, server_hostname, timeout)
        return self

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    """Connections for the SDK: none at all once the run's breaker has tripped."""

    def __init__(self, limits: Limits, secret: str | None, breaker: Breaker) -> None:
        self._inner = httpcore.SyncBackend()
        self._limits = limits
        self._secret = secret.encode() if secret else None
        self._breaker = breaker

    def _refuse_if_tripped(self) -> None:
        if self._breaker.tripped:
            raise httpcore.ConnectError(self._breaker.refusal())

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        self._refuse_if_tripped()
        inner = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _BoundedStream(inner, self._limits, self._secret)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        self._refuse_if_tripped()
        inner = self._inner.connect_unix_socket(path, timeout, socket_options)
        return _BoundedStream(inner, self._limits, self._secret)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
