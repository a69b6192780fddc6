"""A deliberately hostile HTTP/1.1 server for our own tests (loopback only).

Why raw asyncio sockets and not starlette: the behaviours we need live below what an ASGI
server lets an application do: never answering, resetting the connection, a body delimited
by closing the connection, one byte per second including the status line, an answer that is
not HTTP at all.

One server plays every behaviour, chosen by URL prefix:

* ``/v1/...``            a clean pass-through to the upstream (the reference server);
* ``/b/<name>/v1/...``   behaviour ``name`` on chat completion requests only; everything else
                         (GET /models, ...) passes through, so the preflight succeeds and the
                         checks themselves meet the behaviour;
* ``/all/<name>/v1/...`` behaviour ``name`` on every request, GET /models included (the
                         expected result is then the preflight's one-line stop);
* ``/sdk/<name>/v1/...`` behaviour ``name`` on chat requests sent by the official SDK
                         only (its User-Agent), so the SDK's own client meets it.

``<name>~<tag>`` in either form tags the connection records, so tests that share one server
can tell their runs apart.

Each answer is built from the upstream's answer to the same request, so everything the
behaviour does not break is right, then broken as the behaviour says. The server records
every connection (``ConnectionRecord``): what reached it (e.g. whether a redirected client
sent its Authorization header) and when the client gave up (``client_gone``), which is how
the tests measure the time a behaviour took to be detected. ``mixed`` plays several
behaviours in turn, for load tests.

Bounded by construction: it binds 127.0.0.1, cuts every connection after
``MAX_CONNECTION_S``, and generates large bodies block by block (the 1 GiB body never exists
in memory). ``python tests/hostile_server.py --upstream URL`` serves it by hand.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import re
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx

MAX_CONNECTION_S = 90.0  # no connection outlives this, whatever the client does
MAX_REQUEST_BYTES = 16 * 1024 * 1024
GIB = 1 << 30
BLOCK = 64 * 1024
_DROP_HEADERS = {
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "content-encoding",
    "date",
    "server",
}
_ROUTE = re.compile(r"^/(b|all|sdk)/([A-Za-z0-9_]+)(?:~([A-Za-z0-9_.-]+))?(/.*)$")
INVALID_UTF8 = b"\xff\xfe\xc3("  # never valid UTF-8 in any position


# --- requests, upstream answers, records ------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str  # what the upstream sees: /v1/...
    headers: dict[str, str]
    body: bytes

    @property
    def is_chat(self) -> bool:
        return self.method == "POST" and self.path.split("?")[0].endswith("/chat/completions")

    @cached_property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def wants_stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Upstream:
    """The upstream's answer, minus the headers that describe its framing."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def is_stream(self) -> bool:
        return any(k == "content-type" and "event-stream" in v for k, v in self.headers)

    @property
    def events(self) -> list[bytes]:
        return [e + b"\n\n" for e in self.body.split(b"\n\n") if e.strip()]

    def chunk_json(self) -> dict[str, Any]:
        """The first streamed chunk that carries content, as a template for made-up ones."""
        for event in self.events:
            data = event.removeprefix(b"data: ").strip()
            if data.startswith(b"{") and b'"content"' in data:
                chunk = json.loads(data)
                if chunk.get("choices"):
                    return chunk
        return {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0, "model": "m"}


@dataclass
class ConnectionRecord:
    behaviour: str
    method: str
    path: str
    authorization: str | None
    stream: bool
    started: float
    tag: str = ""
    client_gone: float | None = None  # when the client closed its end
    ended: float | None = None
    bytes_sent: int = 0
    end: str = ""

    @property
    def detected_after(self) -> float | None:
        """Seconds from the request to the client giving up (or to the server's end)."""
        end = self.client_gone or self.ended
        return None if end is None else end - self.started


# --- HTTP framing helpers ---------------------------------------------------------------------


def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (empty data would end the body: callers never pass it)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def sse(data: bytes | str) -> bytes:
    return b"data: " + (data.encode() if isinstance(data, str) else data) + b"\n\n"


def error_body(message: str, kind: str = "server_error", code: str | None = None) -> bytes:
    error = {"message": message, "type": kind, "param": None, "code": code}
    return json.dumps({"error": error}).encode()


JSON = [("content-type", "application/json")]
EVENT_STREAM = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]


# --- one connection ---------------------------------------------------------------------------


class Conn:
    """What a behaviour gets: the request, the upstream, and ways to answer or misbehave."""

    def __init__(
        self,
        server: HostileServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: Request,
        record: ConnectionRecord,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.request = request
        self.record = record
        self.was_reset = False
        self._watch = asyncio.create_task(self._watch_client())

    async def _watch_client(self) -> None:
        """Notice the client closing (one request per connection: anything else is EOF)."""
        try:
            while await self.reader.read(BLOCK):
                pass
        except (ConnectionError, OSError):
            pass
        self.record.client_gone = time.monotonic()

    @property
    def client_gone(self) -> bool:
        return self._watch.done()

    def stop_watching(self) -> None:
        self._watch.cancel()

    async def hold(self) -> None:
        """Say nothing more until the client gives up."""
        await asyncio.shield(self._watch)

    async def upstream(self) -> Upstream:
        return await self.server.fetch_upstream(self.request)

    async def send(self, data: bytes) -> None:
        if self.client_gone:
            raise ConnectionResetError("the client went away")
        self.writer.write(data)
        self.record.bytes_sent += len(data)
        await self.writer.drain()

    async def respond(
        self, status: int, headers: list[tuple[str, str]], body: bytes, framing: str = "length"
    ) -> None:
        """A complete answer: framing ``length`` (Content-Length) or ``close`` (neither)."""
        extra = [("content-length", str(len(body)))] if framing == "length" else []
        await self.send(head(status, [*headers, *extra, ("connection", "close")]) + body)

    async def respond_stream(
        self, status: int, headers: list[tuple[str, str]], pieces: Iterator[bytes] | list[bytes]
    ) -> None:
        """A chunked answer, one HTTP chunk per piece, then the last chunk."""
        headers = [*headers, ("transfer-encoding", "chunked"), ("connection", "close")]
        await self.send(head(status, headers))
        for piece in pieces:
            if piece:
                await self.send(chunk(piece))
        await self.send(LAST_CHUNK)

    async def forward(self, up: Upstream) -> None:
        """Pass the upstream's answer on unchanged (chunked per event for streams)."""
        if up.is_stream:
            await self.respond_stream(up.status, up.headers, up.events)
        else:
            await self.respond(up.status, up.headers, up.body)

    async def reset(self, after: float = 0.3) -> None:
        """Let the client read what was sent, then abort the connection with a TCP RST."""
        await asyncio.sleep(after)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.was_reset = True
        self.record.end = "reset by the server"


# --- behaviours -------------------------------------------------------------------------------

Handler = Callable[[Conn], Awaitable[None]]


@dataclass(frozen=True)
class Behaviour:
    name: str
    summary: str
    handler: Handler
    streams_only: bool = False  # only streamed chat requests meet it; the rest passes through


BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(summary: str, streams_only: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        name = fn.__name__.removeprefix("b_")
        BEHAVIOURS[name] = Behaviour(name, summary, fn, streams_only)
        return fn

    return register


def _content_type(conn: Conn) -> list[tuple[str, str]]:
    return EVENT_STREAM if conn.request.wants_stream else JSON


@behaviour("accept the connection, read the request, never answer")
async def b_no_response(conn: Conn) -> None:
    await conn.hold()


@behaviour("streamed requests only: accept, read the request, never answer", streams_only=True)
async def b_stream_no_response(conn: Conn) -> None:
    await conn.hold()


@behaviour("send the status line and headers, then nothing")
async def b_headers_then_silence(conn: Conn) -> None:
    headers = [*_content_type(conn), ("transfer-encoding", "chunked")]
    await conn.send(head(200, headers))
    await conn.hold()


@behaviour("send the first two events (or half the JSON body), then nothing")
async def b_silence_mid_stream(conn: Conn) -> None:
    up = await conn.upstream()
    if up.is_stream:
        await conn.send(head(up.status, [*up.headers, ("transfer-encoding", "chunked")]))
        for event in up.events[:2]:
            await conn.send(chunk(event))
    else:
        length = [("content-length", str(len(up.body)))]
        await conn.send(head(up.status, [*up.headers, *length]) + up.body[: len(up.body) // 2])
    await conn.hold()


def _endless_events(template: dict[str, Any]) -> Iterator[bytes]:
    piece = sse(json.dumps(template)) * 64
    while True:
        yield piece


def _endless_json() -> Iterator[bytes]:
    yield b'{"id": "chatcmpl-endless", "object": "chat.completion", "choices": ['
    choice = {"index": 0, "message": {"role": "assistant", "content": "more"}}
    piece = (json.dumps(choice) + ", ").encode() * 256
    while True:
        yield piece


@behaviour("an endless stream of valid chunks (an endless JSON array without streaming)")
async def b_endless_stream(conn: Conn) -> None:
    up = await conn.upstream()
    if conn.request.wants_stream and up.is_stream:
        first = up.events[:1]
        await conn.respond_stream(200, up.headers, _chain(first, _endless_events(up.chunk_json())))
    else:
        await conn.respond_stream(200, JSON, _endless_json())


def _chain(*parts: Any) -> Iterator[bytes]:
    for part in parts:
        yield from part


def _big_content_chunk(template: dict[str, Any], size: int) -> bytes:
    chunk_json = dict(template)
    chunk_json["choices"] = [{"index": 0, "delta": {"content": "@"}, "finish_reason": None}]
    before, after = json.dumps(chunk_json).encode().split(b"@")
    return b"data: " + before + b"a" * size + after + b"\n\n"


async def _paced(pieces: Iterator[bytes], bytes_per_s: int) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await asyncio.sleep(len(piece) / bytes_per_s)


@behaviour("an endless answer at 64 KiB/s: a JSON body, or valid chunks when streaming")
async def b_trickle(conn: Conn) -> None:
    up = await conn.upstream()
    if conn.request.wants_stream and up.is_stream:
        pieces = _chain(up.events[:1], _endless_events(up.chunk_json()))
        headers = up.headers
    else:
        pieces, headers = _endless_json(), JSON
    headers = [*headers, ("transfer-encoding", "chunked"), ("connection", "close")]
    await conn.send(head(200, headers))
    async for piece in _paced(pieces, BLOCK):
        await conn.send(chunk(piece))


@behaviour("one 10 MB event (a 10 MB message content without streaming)")
async def b_big_event(conn: Conn) -> None:
    up = await conn.upstream()
    size = 10 * 1000 * 1000
    if up.is_stream:
        events = up.events
        big = _big_content_chunk(up.chunk_json(), size)
        await conn.respond_stream(up.status, up.headers, [events[0], big, *events[1:]])
        return
    body = json.loads(up.body)
    if isinstance(body, dict) and body.get("choices"):
        body["choices"][0]["message"]["content"] = "a" * size
    await conn.respond(up.status, up.headers, json.dumps(body).encode())


@behaviour("a 1 GiB body, generated 64 KiB at a time (events of 64 KiB when streaming)")
async def b_gigabyte_body(conn: Conn) -> None:
    if conn.request.wants_stream:
        up = await conn.upstream()
        event = _big_content_chunk(up.chunk_json(), BLOCK)
        await conn.respond_stream(200, EVENT_STREAM, (event for _ in range(GIB // len(event))))
        return
    opening = b'{"padding": "'
    await conn.send(head(200, [*JSON, ("content-length", str(GIB)), ("connection", "close")]))
    await conn.send(opening)
    sent, block = len(opening), b"a" * BLOCK
    while sent + BLOCK < GIB - 2:
        await conn.send(block)
        sent += BLOCK
    await conn.send(b"a" * (GIB - 2 - sent) + b'"}')


def _with_invalid_utf8(data: bytes) -> bytes:
    """JSON text whose non-empty content strings end in bytes that are not UTF-8."""
    try:
        value = json.loads(data)
    except ValueError:
        return data
    marker = "\u2603MARK\u2603"
    for choice in value.get("choices", []) if isinstance(value, dict) else []:
        part = choice.get("delta") or choice.get("message") or {}
        if isinstance(part.get("content"), str) and part["content"]:
            part["content"] += marker
    return json.dumps(value).encode().replace(json.dumps(marker).strip('"').encode(), INVALID_UTF8)


@behaviour("message content (and streamed deltas) containing bytes that are not UTF-8")
async def b_invalid_utf8(conn: Conn) -> None:
    up = await conn.upstream()
    if not up.is_stream:
        await conn.respond(up.status, up.headers, _with_invalid_utf8(up.body))
        return
    events = [sse(_with_invalid_utf8(e.removeprefix(b"data: ").strip())) for e in up.events]
    await conn.respond_stream(up.status, up.headers, events)


@behaviour("data lines that are plain text, not JSON", streams_only=True)
async def b_non_json_data(conn: Conn) -> None:
    up = await conn.upstream()
    events = [
        e if e.startswith(b"data: [DONE]") else sse(f"token number {i} (plain text)")
        for i, e in enumerate(up.events)
    ]
    await conn.respond_stream(up.status, up.headers, events)


HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The upstream model server is unavailable.</p></body></html>"
)


@behaviour("an HTML error page with status 200")
async def b_html_200(conn: Conn) -> None:
    await conn.respond(200, [("content-type", "text/html; charset=utf-8")], HTML_PAGE)


@behaviour("the first two events (or half the JSON body), then a TCP reset")
async def b_reset_mid_stream(conn: Conn) -> None:
    up = await conn.upstream()
    if up.is_stream:
        await conn.send(head(up.status, [*up.headers, ("transfer-encoding", "chunked")]))
        for event in up.events[:2]:
            await conn.send(chunk(event))
    else:
        length = [("content-length", str(len(up.body)))]
        await conn.send(head(up.status, [*up.headers, *length]) + up.body[: len(up.body) // 2])
    await conn.reset()


@behaviour("a body delimited by closing the connection (no Content-Length, no chunking)")
async def b_close_delimited(conn: Conn) -> None:
    up = await conn.upstream()
    await conn.respond(up.status, up.headers, up.body, framing="close")


@behaviour("the whole answer, status line included, at one byte per second")
async def b_drip(conn: Conn) -> None:
    up = await conn.upstream()
    data = head(up.status, [*up.headers, ("content-length", str(len(up.body)))]) + up.body
    for i in range(len(data)):
        await conn.send(data[i : i + 1])
        await asyncio.sleep(1.0)


@behaviour("a 307 redirect to another origin (the server's redirect_to)")
async def b_redirect(conn: Conn) -> None:
    target = (conn.server.redirect_to or "http://127.0.0.1:9") + conn.request.path
    await conn.respond(307, [("location", target)], b"")


@behaviour("gzip-encoded answers (streams compressed incrementally): these must WORK")
async def b_gzip(conn: Conn) -> None:
    up = await conn.upstream()
    accepted = "gzip" in conn.request.headers.get("accept-encoding", "")
    if not accepted:
        await conn.forward(up)
        return
    headers = [*up.headers, ("content-encoding", "gzip"), ("vary", "accept-encoding")]
    if not up.is_stream:
        await conn.respond(up.status, headers, gzip.compress(up.body))
        return
    packer = zlib.compressobj(wbits=31)  # gzip container
    pieces = [packer.compress(e) + packer.flush(zlib.Z_SYNC_FLUSH) for e in up.events]
    await conn.respond_stream(up.status, headers, [*pieces, packer.flush()])


def _echo_json(data: bytes, auth: str, request_body: str) -> bytes:
    """The upstream JSON with the caller's credentials and request woven into it."""
    key = auth.removeprefix("Bearer ")
    try:
        value = json.loads(data)
    except ValueError:
        return data
    if not isinstance(value, dict):
        return data
    if isinstance(value.get("error"), dict):
        error = value["error"]
        error["message"] = f"{error.get('message')} (you sent Authorization: {auth}; body: "
        error["message"] += request_body[:300] + ")"
        error["param"] = key
        return json.dumps(value).encode()
    value["echo"] = {"authorization": auth, "request": request_body}
    value["system_fingerprint"] = key
    if "object" in value:
        value["object"] = f"{value['object']} for {auth}"
    return json.dumps(value).encode()


@behaviour("answers that echo the request's Authorization header and body everywhere")
async def b_echo(conn: Conn) -> None:
    up = await conn.upstream()
    auth = conn.request.authorization or "(none)"
    key = auth.removeprefix("Bearer ")
    body = conn.request.body.decode("utf-8", "replace")
    headers = [*up.headers, ("x-echo-authorization", auth), ("x-echo-key", key)]
    if not up.is_stream:
        await conn.respond(up.status, headers, _echo_json(up.body, auth, body))
        return
    events = [sse(_echo_json(e.removeprefix(b"data: ").strip(), auth, body)) for e in up.events]
    # The key across the 80-character cut of the events_are_json evidence, and in a comment.
    extra = [sse("x" * 70 + key + " not json"), f": comment with {auth}\n".encode()]
    await conn.respond_stream(up.status, headers, [*extra, *events])


def _retry_after_error(seconds: str) -> tuple[list[tuple[str, str]], bytes]:
    body = error_body("Rate limit reached; retry later.", "rate_limit_error", "rate_limit_exceeded")
    return [*JSON, ("retry-after", seconds)], body


@behaviour("HTTP 429 with Retry-After: 1 the first time each request is seen, then a normal answer")
async def b_rate_limit_once(conn: Conn) -> None:
    request = conn.request
    # Per tag too: runs that share the server (same key, same bodies) each get their 429s.
    who = f"{conn.record.tag}|{request.authorization}|"
    seen = hashlib.sha256(who.encode() + request.body).hexdigest()
    if seen in conn.server.seen_requests:
        await conn.forward(await conn.upstream())
        return
    conn.server.seen_requests.add(seen)
    await conn.respond(429, *_retry_after_error("1"))


@behaviour("HTTP 429 with Retry-After: 1 on every request")
async def b_rate_limit_always(conn: Conn) -> None:
    await conn.respond(429, *_retry_after_error("1"))


@behaviour("HTTP 429 with Retry-After: 3600 (longer than the suite waits)")
async def b_rate_limit_long(conn: Conn) -> None:
    await conn.respond(429, *_retry_after_error("3600"))


@behaviour("HTTP 500 with an error envelope on every request")
async def b_server_error(conn: Conn) -> None:
    await conn.respond(500, JSON, error_body("The server had an error processing your request."))


@behaviour("an answer that is not HTTP at all (an SSH banner), then close")
async def b_not_http(conn: Conn) -> None:
    await conn.send(b"SSH-2.0-OpenSSH_9.6\r\n")


@behaviour(
    "streams as llama-cpp-python did: when another request arrives, the stream in flight gets "
    "[DONE] and its connection drops"
)
async def b_abort_on_overlap(conn: Conn) -> None:
    up = await conn.upstream()
    server = conn.server
    server.overlap_active += 1
    try:
        if not up.is_stream:
            await conn.forward(up)
            return
        await conn.send(head(up.status, [*up.headers, ("transfer-encoding", "chunked")]))
        started = server.overlap_arrivals
        for event in up.events:
            if server.overlap_arrivals > started or server.overlap_active > 1:
                await conn.send(chunk(sse("[DONE]")))
                await conn.reset(after=0.05)
                return
            await conn.send(chunk(event))
            await asyncio.sleep(0.02)
        await conn.send(LAST_CHUNK)
    finally:
        server.overlap_active -= 1


MIXED = (
    "clean",
    "reset_mid_stream",
    "html_200",
    "server_error",
    "rate_limit_long",
    "headers_then_silence",
    "non_json_data",
    "echo",
)


@behaviour("round robin over: " + ", ".join(MIXED) + " (for load tests)")
async def b_mixed(conn: Conn) -> None:
    turn = conn.server.next_turn()
    name = MIXED[turn % len(MIXED)]
    conn.record.end = f"played {name}"
    if name == "clean":
        await conn.forward(await conn.upstream())
    else:
        await BEHAVIOURS[name].handler(conn)


# --- the server ------------------------------------------------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict, bytes] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if not 0 <= length <= MAX_REQUEST_BYTES:
        return None
    body = await reader.readexactly(length) if length else b""
    return parts[0], parts[1], headers, body


class HostileServer:
    """``with HostileServer(upstream) as server: server.url("drip")``; see the module docstring."""

    def __init__(
        self,
        upstream: str,
        *,
        tls: ssl.SSLContext | None = None,
        redirect_to: str | None = None,
    ) -> None:
        self.upstream_origin = upstream.rstrip("/")
        self.tls = tls
        self.redirect_to = redirect_to
        self.port = 0
        self.records: list[ConnectionRecord] = []
        self.loop_errors: list[str] = []
        self.seen_requests: set[str] = set()
        self.overlap_active = 0  # abort_on_overlap: its connections open now
        self.overlap_arrivals = 0  # abort_on_overlap: its connections so far
        self._turns = 0
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def url(
        self, name: str | None = None, everywhere: bool = False, tag: str = "", sdk: bool = False
    ) -> str:
        """The base URL (ending in /v1) under which the server plays ``name``."""
        if name is None:
            return f"{self.origin}/v1"
        if name not in BEHAVIOURS:
            raise KeyError(f"no behaviour {name!r}; known: {', '.join(sorted(BEHAVIOURS))}")
        suffix = f"~{tag}" if tag else ""
        mode = "all" if everywhere else ("sdk" if sdk else "b")
        return f"{self.origin}/{mode}/{name}{suffix}/v1"

    def next_turn(self) -> int:
        """A counter for round-robin behaviours (the server's loop is its only user)."""
        self._turns += 1
        return self._turns - 1

    def records_of(self, name: str, tag: str | None = None) -> list[ConnectionRecord]:
        return [r for r in list(self.records) if r.behaviour == name and tag in (None, r.tag)]

    def start(self, timeout: float = 10.0) -> HostileServer:
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the hostile server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(
            lambda _loop, context: self.loop_errors.append(str(context.get("message")))
        )
        self._stop = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=30.0, trust_env=False)
        server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.tls, limit=MAX_REQUEST_BYTES
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    async def fetch_upstream(self, request: Request) -> Upstream:
        assert self._client is not None
        names = ("authorization", "content-type", "accept")
        headers = {k: v for k, v in request.headers.items() if k in names}
        response = await self._client.request(
            request.method,
            self.upstream_origin + request.path,
            headers=headers,
            content=request.body or None,
        )
        kept = [(k.lower(), v) for k, v in response.headers.multi_items()]
        kept = [(k, v) for k, v in kept if k not in _DROP_HEADERS]
        return Upstream(response.status_code, kept, response.content)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        record: ConnectionRecord | None = None
        conn: Conn | None = None
        try:
            async with asyncio.timeout(MAX_CONNECTION_S):
                parsed = await _read_request(reader)
                if parsed is None:
                    return
                method, target, headers, body = parsed
                match = _ROUTE.match(target)
                mode, name, tag, path = match.groups() if match else ("", "clean", "", target)
                request = Request(method, path, headers, body)
                record = ConnectionRecord(
                    name,
                    method,
                    path,
                    request.authorization,
                    request.wants_stream,
                    time.monotonic(),
                    tag or "",
                )
                self.records.append(record)
                conn = Conn(self, reader, writer, request, record)
                await self._dispatch(conn, mode, name)
                record.end = record.end or "answered"
        except TimeoutError:
            if record is not None:
                record.end = f"cut by the server after {MAX_CONNECTION_S:g} s"
        except (ConnectionError, OSError):
            if record is not None:
                record.end = "the client went away"
        except asyncio.CancelledError:
            if record is not None:
                record.end = "server stopped"
        finally:
            if record is not None:
                record.ended = time.monotonic()
            if conn is not None:
                conn.stop_watching()
            if not (conn and conn.was_reset):
                writer.close()
            self._tasks.discard(task)

    async def _dispatch(self, conn: Conn, mode: str, name: str) -> None:
        found = BEHAVIOURS.get(name)
        if mode and found is None:
            await conn.respond(404, JSON, error_body(f"no behaviour {name!r}", "not_found"))
            return
        request = conn.request
        from_sdk = request.headers.get("user-agent", "").startswith("OpenAI/")
        applies = found is not None and (
            mode == "all" or (request.is_chat and (mode == "b" or from_sdk))
        )
        if found is not None and found.streams_only and not request.wants_stream:
            applies = False
        if not applies:
            await conn.forward(await conn.upstream())
            return
        assert found is not None
        if name == "abort_on_overlap":
            self.overlap_arrivals += 1
        await found.handler(conn)


# --- TLS --------------------------------------------------------------------------------------


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (made now)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chatcompat hostile test")])
    now = dt.datetime.now(dt.UTC)
    ip = ipaddress.ip_address("127.0.0.1")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def main() -> None:
    """Serve by hand: ``python tests/hostile_server.py --upstream http://127.0.0.1:8000``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="origin of an OpenAI-compatible server")
    parser.add_argument("--seconds", type=float, default=600, help="stop after this long")
    args = parser.parse_args()
    with HostileServer(args.upstream) as server:
        print(f"hostile server on {server.origin}; behaviours under /b/<name>/v1:")
        for item in BEHAVIOURS.values():
            print(f"  {item.name:<22} {item.summary}")
        time.sleep(args.seconds)


if __name__ == "__main__":
    main()
