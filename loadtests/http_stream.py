"""A small HTTP/1.1 client for streamed responses that timestamps every read as it returns.

Why not Locust's HttpUser (requests) or FastHttpUser (geventhttpclient): both put a buffered
reader between the socket and the caller. FastHttpUser's ``iter_lines`` asks for 1024-byte
blocks and holds a small SSE event back until the block fills or the next event arrives;
``requests`` adds per-chunk generator layers that cost CPU at high event rates. Measured
against the truth server (see docs/loadtests.md, "Choosing the HTTP layer"), this client is
both the most accurate and the cheapest per event, because it does only this:

* the clock starts when the request is issued: before the connection is opened when one is
  needed (TCP connect and TLS handshake count, as every client experiences them), else right
  before the write. ``Response.connect_s`` says how long opening took (``None``: a kept-alive
  connection was reused) and ``Response.sent_at`` when the request's single write began (the
  server-side view: a latency from there excludes connection set-up);
* the request line, headers and body go out in one ``sendall`` (never the headers while the
  body is still to be written);
* every read (up to 64 KiB) is stamped with the time its bytes arrived, and every SSE event
  completed by that read carries that stamp. On Linux over plain TCP the stamp is the
  kernel's receive timestamp (``SO_TIMESTAMPNS``, taken when the segment reached this host),
  converted to the ``perf_counter`` clock; so a read that this process makes late — because
  another greenlet was running, the garbage collector ran, or the OS ran something else —
  still gets the true arrival time. When several segments are read at once, they all get
  the newest segment's stamp (never earlier than true). Elsewhere (TLS, other systems) the
  stamp is ``perf_counter()`` right after ``recv`` returns. ``Response.max_read_delay``
  records how late this process read the data (user-space time minus kernel time): the load
  tool's own lag;
* chunked transfer decoding and SSE decoding are incremental and linear (consumed bytes are
  dropped once per read; no re-scanning of a growing buffer).

It uses the ``socket`` and ``ssl`` modules as it finds them: under Locust they are gevent's
cooperative versions (Locust monkey-patches at import), in our tests they are the standard ones.
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from conformance.transport.sse import Event, SSEDecoder

READ_SIZE = 65536
PROBE_SIZE = 5  # the shortest possible chunk ("0\r\n\r\n"): a probe never reads past one
HEAD_READ_SIZE = 128  # head reads this small rarely reach past the segment holding the head
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; Python lacks the name
ANCILLARY_SIZE = 64
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class StreamError(Exception):
    """A transport or protocol failure; ``kind`` is a short stable label for error counts.

    ``response`` (set by ``StreamingClient.request``) carries the request's start and connect
    time, so a failed request is timed from the same moment as a successful one.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.response: Response | None = None


@dataclass
class Response:
    """What came back: status, headers, body (non-SSE) and when each piece arrived."""

    status: int = 0
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    start: float = 0.0  # perf_counter() when the request was issued (before any connect)
    sent_at: float = 0.0  # perf_counter() right before the request's single write
    connect_s: float | None = None  # time to open the connection; None: one was reused
    head_at: float = 0.0  # when the status line and headers were complete
    end: float = 0.0  # when the last byte of the response was read
    bytes_read: int = 0
    complete: bool = False  # the response reached its framed end (not cut off)
    stamps: str = "user"  # "kernel" (SO_TIMESTAMPNS) or "user" (perf_counter after recv)
    reads: int = 0
    max_read_delay: float = 0.0  # seconds this process read data after the kernel had it


class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` decoder; returns payload bytes per feed."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # payload bytes still to come in the current chunk
        self._crlf = False  # a chunk's payload ended; its CRLF is still to come
        self.done = False

    @property
    def inside(self) -> bool:
        """Inside a chunk's payload: more of it is still to come."""
        return self._left > 0

    def wanted(self) -> int:
        """Bytes that end the current chunk exactly, or probe the next chunk's size line.

        Reads no longer than this stay inside one chunk. Servers write each SSE event as one
        chunk in one write, so each read then carries the kernel stamp of its own event, even
        when several events wait in the socket because this process was stalled (a large
        read would give them all the newest one's stamp).
        """
        if self._left:
            return self._left + 2
        if self._crlf:
            return max(2 - len(self._buf), 1)
        if len(self._buf) >= PROBE_SIZE:  # a long size line (extensions): stop being exact
            return READ_SIZE
        return PROBE_SIZE - len(self._buf)

    def feed(self, data: bytes) -> bytes:
        if not self._buf and not self._crlf:
            payload = self._exact(data) if self._left else self._one_chunk(data)
            if payload is not None:
                return payload
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        while not self.done:
            if self._left:
                take = min(self._left, len(buf) - pos)
                if take <= 0:
                    break
                out += buf[pos : pos + take]
                pos += take
                self._left -= take
                if self._left == 0:
                    self._crlf = True
                continue
            if self._crlf:
                if len(buf) - pos < 2:
                    break
                pos += 2
                self._crlf = False
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > 1024:
                    raise StreamError("bad_chunking", "chunk size line too long")
                break
            size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise StreamError("bad_chunking", f"bad chunk size {size_text[:20]!r}") from exc
            pos = eol + 2
            if size == 0:
                self.done = True  # trailers, if any, are ignored
                break
            self._left = size
        del buf[:pos]
        return bytes(out)

    def _one_chunk(self, data: bytes) -> bytes | None:
        """Fast paths: ``data`` is one whole chunk (one event per read), or a size line and
        the start of its payload (the probe of an exact read)."""
        eol = data.find(b"\r\n", 0, 18)
        if eol <= 0:
            return None
        try:
            size = int(data[:eol], 16)
        except ValueError:
            return None
        end = eol + 2 + size
        if size > 0 and len(data) == end + 2 and data.endswith(b"\r\n"):
            return data[eol + 2 : end]
        if size > 0 and len(data) <= end:
            self._left = end - len(data)
            self._crlf = self._left == 0
            return data[eol + 2 :]
        return None

    def _exact(self, data: bytes) -> bytes | None:
        """Fast paths inside a chunk: its exact rest (CRLF included), or payload only."""
        left = self._left
        if len(data) == left + 2 and data.endswith(b"\r\n"):
            self._left = 0
            return data[:left]
        if len(data) <= left:
            self._left = left - len(data)
            self._crlf = self._left == 0
            return data
        return None


class EventSplitter:
    """SSE events from payloads: a fast path for plain ``data: ...`` events, else SSEDecoder.

    Almost every payload a chat server sends is one or more events of the form
    ``data: <json>\n\n``, possibly cut across reads (exact-size reads cut every event).
    Those are split directly (about 1 us instead of 5), an unfinished one kept until its end
    arrives. The first payload that is anything else (a comment, CRLF framing, a multi-line
    event) hands this stream, from the start of the pending event on, to
    ``conformance.transport.sse.SSEDecoder`` for good, so the WHATWG rules decide every other case.
    """

    def __init__(self) -> None:
        self.decoder: SSEDecoder | None = None
        self.pending = b""

    def feed(self, payload: bytes, now: float) -> list[Event]:
        if self.decoder is None:
            data = self.pending + payload if self.pending else payload
            cut = data.rfind(b"\n\n") + 2
            rest = data[cut:] if cut > 1 else data
            parts = data[: cut - 2].split(b"\n\n") if cut > 1 else []
            if (
                b"\r" not in data
                and b"\n" not in rest
                and all(p.startswith(b"data: ") and len(p) > 6 and b"\n" not in p for p in parts)
            ):
                self.pending = rest
                return [
                    Event(p[6:].decode("utf-8", "replace"), raw=p + b"\n\n", received_at=now)
                    for p in parts
                ]
            self.decoder = SSEDecoder()
            payload, self.pending = data, b""
        return self.decoder.feed(payload, now)

    def close(self) -> None:
        if self.decoder is None and self.pending:
            self.decoder = SSEDecoder()
            self.decoder.feed(self.pending, 0.0)
        if self.decoder is not None:
            self.decoder.close()


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise StreamError("bad_response", f"not an HTTP status line: {lines[0][:60]!r}")
    try:
        status = int(parts[1])
    except ValueError as exc:
        raise StreamError("bad_response", f"bad status code {parts[1][:10]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return status, (parts[2] if len(parts) > 2 else ""), headers


class StreamingClient:
    """One keep-alive connection to one origin; ``post`` sends a request and reads its reply."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        kernel_stamps: bool = True,
        exact_reads: bool = True,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r} (http or https)")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.base_path = parts.path.rstrip("/")
        default_port = self.port == (443 if self.tls else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.kernel_stamps = kernel_stamps and sys.platform == "linux" and not self.tls
        self.exact_reads = exact_reads  # chunk-by-chunk reads (see ChunkedDecoder.wanted)
        self._sock: socket.socket | None = None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout)
        except TimeoutError as exc:
            raise StreamError("connect_timeout", f"connect timed out: {exc}") from exc
        except OSError as exc:
            raise StreamError("connect_error", f"connect failed: {exc.strerror or exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.kernel_stamps:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                self.kernel_stamps = False
        if self.tls:
            context = ssl.create_default_context()
            try:
                sock = context.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise StreamError("tls_error", f"TLS handshake failed: {exc}") from exc
        sock.settimeout(self.timeout)
        return sock

    def request_bytes(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The whole request as one buffer, so it leaves in one write."""
        lines = [f"{method} {self.base_path}{path} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def post(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str],
        on_events: Callable[[list], None] | None = None,
        issued: float | None = None,
    ) -> Response:
        return self.request("POST", path, body, headers, on_events, issued)

    def request(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        on_events: Callable[[list], None] | None = None,
        issued: float | None = None,
    ) -> Response:
        """Send one request and read the whole response.

        ``on_events`` receives each batch of SSE events (``conformance.transport.sse.Event``,
        stamped with
        the read that completed them) as soon as a read completes them; it may raise to abort.
        A reused keep-alive connection the server had already closed is retried once.
        ``issued`` (a ``perf_counter`` reading) lets the caller start the clock itself, so
        that a request interrupted before this returns is timed from the same moment.
        """
        if issued is None:
            issued = time.perf_counter()
        payload = self.request_bytes(method, path, body, headers)
        response = Response(start=issued)
        try:
            return self._exchange(payload, response, on_events)
        except StreamError as exc:
            exc.response = response
            raise

    def _open(self, response: Response) -> socket.socket:
        """Connect (TCP, TLS) and add the time it took to ``response.connect_s``."""
        began = time.perf_counter()
        try:
            self._sock = self._connect()
        finally:
            response.connect_s = (response.connect_s or 0.0) + time.perf_counter() - began
        return self._sock

    def _exchange(
        self, payload: bytes, response: Response, on_events: Callable[[list], None] | None
    ) -> Response:
        """Write the request and read its reply, retrying once on a stale kept-alive socket.

        A retry keeps the original start: the caller waited for the failed attempt too.
        """
        for attempt in (0, 1):
            reused = self._sock is not None
            sock = self._sock if self._sock is not None else self._open(response)
            response.bytes_read = response.reads = 0
            try:
                response.sent_at = time.perf_counter()
                sock.sendall(payload)
                self._read(sock, response, on_events)
            except StaleConnection:
                self.close()
                if reused and attempt == 0:
                    continue
                raise StreamError("connection_closed", "server closed the connection") from None
            except TimeoutError as exc:
                self.close()
                raise StreamError("read_timeout", f"no data for {self.timeout} s") from exc
            except StreamError:
                self.close()
                raise
            except OSError as exc:
                self.close()
                if reused and attempt == 0 and response.bytes_read == 0:
                    continue
                raise StreamError("connection_error", f"{exc.strerror or exc}") from exc
            except BaseException:
                self.close()  # killed mid-request (test stop): the connection is unusable
                raise
            if response.headers.get("connection", "").lower() == "close":
                self.close()
            return response
        raise AssertionError("unreachable")

    def _read(
        self,
        sock: socket.socket,
        response: Response,
        on_events: Callable[[list], None] | None,
    ) -> None:
        head = bytearray()
        recv = self._reader(sock, response)
        exact = self.exact_reads and response.stamps == "kernel"
        head_size = HEAD_READ_SIZE if exact else READ_SIZE
        while True:
            data, now = recv(head_size)
            if not data:
                if response.bytes_read == 0:
                    raise StaleConnection
                raise StreamError("truncated_headers", "connection closed inside the headers")
            response.bytes_read += len(data)
            head += data
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(head) > MAX_HEAD_BYTES:
                raise StreamError("bad_response", "response headers too long")
        response.status, response.reason, response.headers = _parse_head(bytes(head[:end]))
        response.head_at = now
        rest = bytes(head[end + 4 :])
        if response.status in (100, 103):  # interim response: the real one follows
            raise StreamError("bad_response", "interim 1xx responses are not supported")
        chunked = "chunked" in response.headers.get("transfer-encoding", "").lower()
        length_text = response.headers.get("content-length")
        length = int(length_text) if length_text and length_text.isdigit() else None
        is_sse = "text/event-stream" in response.headers.get("content-type", "")
        decoder = EventSplitter() if is_sse and on_events is not None else None
        dechunk = ChunkedDecoder() if chunked else None
        if exact and dechunk is not None and decoder is not None:
            self._read_chunks(recv, response, dechunk, decoder, on_events, rest, now)
            return
        received = 0
        data = rest
        while True:
            if data:
                payload = dechunk.feed(data) if dechunk is not None else data
                received += len(payload)
                if decoder is not None:
                    if payload:
                        events = decoder.feed(payload, now)
                        if events:
                            on_events(events)
                elif len(response.body) + len(payload) <= MAX_BODY_BYTES:
                    response.body += payload
                if dechunk is not None and dechunk.done:
                    break
                if length is not None and received >= length:
                    break
            if length == 0:
                break
            data, now = recv(READ_SIZE)
            if not data:
                self.close()
                if dechunk is None and length is None:
                    break  # body delimited by connection close
                response.end = now
                raise StreamError("truncated_body", "connection closed before the response ended")
            response.bytes_read += len(data)
        if decoder is not None:
            decoder.close()
        response.end = now
        response.complete = True

    def _read_chunks(
        self,
        recv: Callable[[int], tuple[bytes, float]],
        response: Response,
        dechunk: ChunkedDecoder,
        decoder: EventSplitter,
        on_events: Callable[[list], None],
        data: bytes,
        now: float,
    ) -> None:
        """A chunked event stream, read chunk by chunk (``ChunkedDecoder.wanted``).

        A chunk's payload goes to the SSE splitter once the chunk is complete, stamped with
        the read that completed it: one parse per event, as with whole-chunk reads.
        """
        held = b""
        while True:
            if data:
                payload = dechunk.feed(data)
                if dechunk.inside:
                    held += payload
                else:
                    if held:
                        payload, held = held + payload, b""
                    if payload:
                        events = decoder.feed(payload, now)
                        if events:
                            on_events(events)
                if dechunk.done:
                    break
            data, now = recv(dechunk.wanted())
            if not data:
                self.close()
                if held:  # whole events before the cut still count
                    events = decoder.feed(held, now)
                    if events:
                        on_events(events)
                response.end = now
                raise StreamError("truncated_body", "connection closed before the response ended")
            response.bytes_read += len(data)
        decoder.close()
        response.end = now
        response.complete = True

    def _reader(
        self, sock: socket.socket, response: Response
    ) -> Callable[[int], tuple[bytes, float]]:
        """A function reading up to n bytes: (bytes, arrival stamp); kernel stamps if we can."""
        perf_ns = time.perf_counter_ns
        if not self.kernel_stamps:
            recv = sock.recv

            def read_user(size: int) -> tuple[bytes, float]:
                data = recv(size)
                response.reads += 1
                return data, perf_ns() / 1e9

            return read_user
        response.stamps = "kernel"
        recvmsg = sock.recvmsg
        real_ns = time.time_ns
        unpack = struct.unpack_from

        def read_kernel(size: int) -> tuple[bytes, float]:
            data, ancillary, _, _ = recvmsg(size, ANCILLARY_SIZE)
            user_ns = perf_ns()
            response.reads += 1
            for _, kind, raw in ancillary:
                if kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = unpack("qq", raw)
                    kernel_ns = sec * 1_000_000_000 + nsec - (real_ns() - user_ns)
                    delay = (user_ns - kernel_ns) / 1e9
                    if delay > response.max_read_delay:
                        response.max_read_delay = delay
                    return data, min(kernel_ns, user_ns) / 1e9
            return data, user_ns / 1e9

        return read_kernel


class StaleConnection(Exception):
    """A reused keep-alive connection was closed by the server before any reply byte."""
