"""A small HTTP/1.1 client for streamed responses that timestamps every read as it returns.

Why not Locust's HttpUser (requests) or FastHttpUser (geventhttpclient): both put a buffered
reader between the socket and the caller. FastHttpUser's ``iter_lines`` asks for 1024-byte
blocks and holds a small SSE event back until the block fills or the next event arrives;
``requests`` adds per-chunk generator layers that cost CPU at high event rates. Measured
against the truth server (see docs/loadtests.md, "Choosing the HTTP layer"), this client is
both the most accurate and the cheapest per event, because it does only this:

* the request line, headers and body go out in one ``sendall``, and the clock starts right
  before it (never at the headers while the body is still to be written);
* each ``recv`` (up to 64 KiB) is stamped with ``perf_counter()`` the moment it returns, and
  every SSE event completed by that read carries that stamp;
* chunked transfer decoding and SSE decoding are incremental and linear (consumed bytes are
  dropped once per read; no re-scanning of a growing buffer).

It uses the ``socket`` and ``ssl`` modules as it finds them: under Locust they are gevent's
cooperative versions (Locust monkey-patches at import), in our tests they are the standard ones.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from conformance.sse import SSEDecoder

READ_SIZE = 65536
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class StreamError(Exception):
    """A transport or protocol failure; ``kind`` is a short stable label for error counts."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Response:
    """What came back: status, headers, body (non-SSE) and when each piece arrived."""

    status: int = 0
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    start: float = 0.0  # perf_counter() right before the request was written
    head_at: float = 0.0  # when the status line and headers were complete
    end: float = 0.0  # when the last byte of the response was read
    bytes_read: int = 0
    complete: bool = False  # the response reached its framed end (not cut off)


class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` decoder; returns payload bytes per feed."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # payload bytes still to come in the current chunk
        self._crlf = False  # a chunk's payload ended; its CRLF is still to come
        self.done = False

    def feed(self, data: bytes) -> bytes:
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

    def __init__(self, base_url: str, timeout: float = 60.0, connect_timeout: float = 10.0):
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
        clock: Callable[[], float] = time.perf_counter,
    ) -> Response:
        """Send one request and read the whole response.

        ``on_events`` receives each batch of SSE events (``conformance.sse.Event``, stamped with
        the read that completed them) as soon as a read completes them; it may raise to abort.
        A reused keep-alive connection the server had already closed is retried once.
        """
        payload = self.request_bytes("POST", path, body, headers)
        for attempt in (0, 1):
            reused = self._sock is not None
            if self._sock is None:
                self._sock = self._connect()
            response = Response()
            try:
                response.start = clock()
                self._sock.sendall(payload)
                self._read(self._sock, response, on_events, clock)
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
        clock: Callable[[], float],
    ) -> None:
        head = bytearray()
        recv = sock.recv
        while True:
            data = recv(READ_SIZE)
            now = clock()
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
        decoder = SSEDecoder() if is_sse and on_events is not None else None
        dechunk = ChunkedDecoder() if chunked else None
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
            data = recv(READ_SIZE)
            now = clock()
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


class StaleConnection(Exception):
    """A reused keep-alive connection was closed by the server before any reply byte."""
