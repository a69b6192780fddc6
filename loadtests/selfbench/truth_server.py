"""A minimal streaming chat server that logs when it wrote every token: the accuracy yardstick.

Why not the reference server: it is uvicorn + starlette, and on one core it sustains about
17.7k SSE events/s with a median send lateness of 109 ms at 256 streams (measured with
``nox -s bench-accuracy``'s setup), far from the 25.6k events/s that 256 streams at a 10 ms
inter-token latency need. A load tool cannot be checked against a server that is itself
saturated, so this one does only what the measurement needs: one thread, one epoll loop,
non-blocking sockets, pre-rendered chunks, a heap of absolute send times, and a short spin
before each due time (epoll's timeout has millisecond granularity). Each chunk is sent with
``MSG_EOR`` so that TCP autocorking cannot hold it back to merge it with the next one.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies, chunked responses) and
Chat Completions (streamed and plain, ``max_tokens``, ``min_tokens``, ``ignore_eos``,
``stream_options.include_usage``, ``GET /v1/models``; also streamed legacy ``/v1/completions``,
which inference-perf's synthetic data needs). Its send log has the same JSON-lines
format as the reference server's ``--send-log``: ``{"id", "start_ns", "token_sent_ns"}``,
with ``start_ns`` the moment the complete request had been read, and each send time taken
right after the chunk's ``send`` returned (both ``perf_counter_ns``, CLOCK_MONOTONIC).
Streams still in progress at shutdown are logged too, with ``"done": false``, so that event
rates can be counted on the server's side for any client. ``GET /health`` answers 200, as
vLLM's does (GuideLLM checks it before a run). ``--stall-every N`` makes every N-th stream
send its headers and then nothing: a server stalling under load, for the SLO gates' tests.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MODEL = "chatcompat-ref-1"
WORDS = (" river", " stone", " light", " garden", " morning", " quiet", " paper", " city")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python does not export it
MAX_REQUEST_BYTES = 1 << 20
REJECT_MAX_TOKENS = json.dumps(  # what OpenAI's reasoning models answer to max_tokens
    {
        "error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }
).encode()


@dataclass
class Stream:
    """One streamed completion in progress: what is left to send and when."""

    conn: Connection
    cid: str
    start: float
    tokens: int
    include_usage: bool
    prompt_tokens: int
    text: bool = False  # a legacy /v1/completions stream (choices[].text), not chat
    sent: int = 0
    sent_ns: list[int] = field(default_factory=list)


@dataclass
class Connection:
    sock: socket.socket
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    busy: bool = False
    closed: bool = False


def _arrival(ancillary: list) -> float:
    """When the kernel received the bytes (SO_TIMESTAMPNS, realtime) on the perf_counter clock.

    This is the request's true arrival even when this loop was busy and read it late, so the
    logged TTFT includes the server's own queueing, as a client sees it.
    """
    now_ns = time.perf_counter_ns()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("qq", data)
            return (sec * 1_000_000_000 + nsec - (time.time_ns() - now_ns)) / 1e9
    return now_ns / 1e9


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(obj: object) -> bytes:
    return _chunked(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


class TruthServer:
    """Serve until ``deadline`` (monotonic seconds) or SIGTERM/SIGINT; then write the log."""

    def __init__(
        self,
        sock: socket.socket,
        ttft: float,
        itl: float,
        log: Path | None,
        deadline: float,
        spin: float = 0.0015,
        reasoning: int = 0,
        reject_max_tokens: bool = False,
        stall_every: int = 0,
    ) -> None:
        self.listener = sock
        self.stall_every = stall_every  # every N-th stream: headers, then nothing (a stall)
        self.streams_started = 0
        self.spin = spin
        self.reasoning = reasoning  # leading tokens streamed as reasoning_content deltas
        self.reject_max_tokens = reject_max_tokens  # answer max_tokens as reasoning models do
        self.ttft = ttft
        self.itl = itl
        self.log_path = log
        self.log_lines: list[str] = []
        self.deadline = deadline
        self.epoll = select.epoll()
        self.conns: dict[int, Connection] = {}
        self.heap: list[tuple[float, int, Stream]] = []
        self.seq = 0
        self.stop = False
        self.created = int(time.time())

    def run(self) -> None:
        self.listener.setblocking(False)
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)
        try:
            while not self.stop and time.monotonic() < self.deadline:
                self._tick()
        finally:
            self._flush_log()
            for conn in list(self.conns.values()):
                conn.sock.close()
            self.listener.close()
            self.epoll.close()

    def _tick(self) -> None:
        now = time.perf_counter()
        timeout = 0.2
        if self.heap:
            wait = self.heap[0][0] - now
            timeout = 0.0 if wait <= self.spin else min(wait - self.spin, 0.2)
        for fd, mask in self.epoll.poll(timeout):
            if fd == self.listener.fileno():
                self._accept()
            elif mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                self._read(self.conns.get(fd))
            if mask & select.EPOLLOUT and fd in self.conns:
                self._drain(self.conns[fd])
        heap = self.heap
        while heap and heap[0][0] <= time.perf_counter():
            _, _, stream = heapq.heappop(heap)
            self._send_token(stream)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.conns[sock.fileno()] = Connection(sock)
            self.epoll.register(sock.fileno(), select.EPOLLIN)

    def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns.pop(conn.sock.fileno(), None)
        with contextlib.suppress(OSError):
            self.epoll.unregister(conn.sock.fileno())
        conn.sock.close()

    def _read(self, conn: Connection | None) -> None:
        if conn is None:
            return
        try:
            data, ancillary, _, _ = conn.sock.recvmsg(65536, 64)
        except BlockingIOError:
            return
        except OSError:
            data, ancillary = b"", []
        if not data:
            self._close(conn)
            return
        arrived = _arrival(ancillary)
        conn.inbuf += data
        if len(conn.inbuf) > MAX_REQUEST_BYTES:
            self._close(conn)
            return
        while not conn.busy and not conn.closed and self._handle(conn, arrived):
            pass

    def _handle(self, conn: Connection, arrived: float) -> bool:
        """Serve one complete request from the buffer; False when it is not complete yet."""
        head_end = conn.inbuf.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = bytes(conn.inbuf[:head_end]).decode("latin-1")
        lines = head.split("\r\n")
        method, path, _ = [*lines[0].split(" "), "", "", ""][:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        length = int(headers.get("content-length", "0") or 0)
        if len(conn.inbuf) < head_end + 4 + length:
            return False
        body = bytes(conn.inbuf[head_end + 4 : head_end + 4 + length])
        del conn.inbuf[: head_end + 4 + length]
        if method == "GET" and path.rstrip("/").endswith("/health"):  # what vLLM answers
            self._respond(conn, 200, b"{}")
        elif method == "GET" and path.endswith("/models"):
            data = {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0}]}
            self._respond(conn, 200, json.dumps(data).encode())
        elif method == "POST" and path.endswith("/chat/completions"):
            self._chat(conn, body, arrived)
        elif method == "POST" and path.endswith("/completions"):  # inference-perf's datagen
            self._chat(conn, body, arrived, text=True)
        else:
            self._respond(conn, 404, b'{"error":{"message":"not found","type":"not_found"}}')
        return True

    def _respond(self, conn: Connection, status: int, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        self._write(conn, head + body)

    def _chat(self, conn: Connection, body: bytes, arrived: float, text: bool = False) -> None:
        try:
            request = json.loads(body)
            messages = [{"content": request["prompt"]}] if text else request["messages"]
        except (ValueError, KeyError, TypeError):
            self._respond(conn, 400, b'{"error":{"message":"bad request","type":"invalid"}}')
            return
        if self.reject_max_tokens and "max_tokens" in request:
            self._respond(conn, 400, REJECT_MAX_TOKENS)
            return
        limit = request.get("max_completion_tokens") or request.get("max_tokens") or 16
        natural = 12
        tokens = max(natural, request.get("min_tokens") or 0)
        if request.get("ignore_eos"):
            tokens = limit
        tokens = min(tokens, limit)
        prompt = sum(len(str(m.get("content", "")).split()) + 4 for m in messages) + 3
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        if not request.get("stream"):
            text = "".join(WORDS[i % len(WORDS)] for i in range(tokens))
            reply = self._completion(cid, request, text, tokens, prompt)
            self._respond(conn, 200, json.dumps(reply).encode())
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        stream = Stream(conn, cid, arrived, tokens, include_usage, prompt, text)
        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        if not text:
            role = {"role": "assistant", "content": "", "refusal": None}
            head += _event(self._chunk(stream, role))
        self._write(conn, head)
        conn.busy = True
        self.streams_started += 1
        if self.stall_every and self.streams_started % self.stall_every == 0:
            return  # held open without a token until the client gives up or the run ends
        if tokens == 0:
            self._finish(stream)
            return
        self.seq += 1
        heapq.heappush(self.heap, (arrived + self.ttft, self.seq, stream))

    def _chunk(self, stream: Stream, delta: dict, finish: str | None = None) -> dict:
        if stream.text:
            choice = {"index": 0, "text": delta.get("content", ""), "finish_reason": finish}
            chunk = {"id": stream.cid, "object": "text_completion", "created": self.created}
            chunk.update(model=MODEL, choices=[choice])
            return chunk
        chunk = {
            "id": stream.cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": MODEL,
            "system_fingerprint": "fp_chatcompat_truth",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if stream.include_usage:
            chunk["usage"] = None
        return chunk

    def _completion(self, cid: str, request: dict, text: str, tokens: int, prompt: int) -> dict:
        message = {"role": "assistant", "content": text, "refusal": None}
        return {
            "id": cid,
            "object": "chat.completion",
            "created": self.created,
            "model": request.get("model", MODEL),
            "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": tokens},
        }

    def _send_token(self, stream: Stream) -> None:
        conn = stream.conn
        if conn.closed:  # the client went away mid-stream: log what it was sent
            self._log(stream, done=False)
            return
        word = WORDS[stream.sent % len(WORDS)]
        key = "reasoning_content" if stream.sent < self.reasoning and not stream.text else "content"
        self._write(conn, _event(self._chunk(stream, {key: word})))
        stream.sent_ns.append(time.perf_counter_ns())
        stream.sent += 1
        if stream.sent >= stream.tokens:
            self._finish(stream)
            return
        self.seq += 1
        due = stream.start + self.ttft + stream.sent * self.itl
        heapq.heappush(self.heap, (due, self.seq, stream))

    def _finish(self, stream: Stream) -> None:
        tail = _event(self._chunk(stream, {}, "length" if stream.tokens else "stop"))
        if stream.include_usage:
            usage = {
                "prompt_tokens": stream.prompt_tokens,
                "completion_tokens": stream.tokens,
                "total_tokens": stream.prompt_tokens + stream.tokens,
            }
            if self.reasoning:
                reasoning = min(self.reasoning, stream.tokens)
                usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
            chunk = self._chunk(stream, {})
            chunk["choices"] = []
            chunk["usage"] = usage
            tail += _event(chunk)
        tail += _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        self._write(stream.conn, tail)
        self._log(stream, done=True)
        stream.conn.busy = False
        if stream.conn.inbuf:
            self._read_again(stream.conn)

    def _read_again(self, conn: Connection) -> None:
        now = time.perf_counter()
        while not conn.busy and not conn.closed and self._handle(conn, now):
            pass

    def _write(self, conn: Connection, data: bytes) -> None:
        if conn.closed:
            return
        if conn.outbuf:
            conn.outbuf += data
            return
        try:
            sent = conn.sock.send(data, socket.MSG_EOR)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            conn.outbuf += data[sent:]
            self.epoll.modify(conn.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)

    def _drain(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbuf, socket.MSG_EOR)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        del conn.outbuf[:sent]
        if not conn.outbuf:
            self.epoll.modify(conn.sock.fileno(), select.EPOLLIN)

    def _log(self, stream: Stream, done: bool) -> None:
        record = {"id": stream.cid, "start_ns": int(stream.start * 1e9), "done": done}
        record["token_sent_ns"] = stream.sent_ns
        self.log_lines.append(json.dumps(record))

    def _flush_log(self) -> None:
        for _, _, stream in self.heap:  # still streaming: what was sent counts for rates
            self._log(stream, done=False)
        self.heap.clear()
        if self.log_path is not None and self.log_lines:
            with self.log_path.open("a") as log:
                log.write("\n".join(self.log_lines) + "\n")
            self.log_lines.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.selfbench.truth_server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--send-log", type=Path)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long")
    parser.add_argument(
        "--spin-us",
        type=float,
        default=1500.0,
        help="busy-wait this long before each due time (epoll rounds timeouts up to 1 ms); "
        "0 under SCHED_FIFO, where spinning would starve the core",
    )
    parser.add_argument(
        "--reasoning-tokens",
        type=int,
        default=0,
        help="stream the first N tokens as reasoning_content deltas (a reasoning model)",
    )
    parser.add_argument(
        "--reject-max-tokens",
        action="store_true",
        help="answer requests carrying max_tokens with OpenAI's 400 for reasoning models",
    )
    parser.add_argument(
        "--stall-every",
        type=int,
        default=0,
        metavar="N",
        help="every N-th stream sends its headers and then nothing (a server stalling under "
        "load: the load test's censored requests)",
    )
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    server = TruthServer(
        sock,
        args.ttft_ms / 1000,
        args.itl_ms / 1000,
        args.send_log,
        time.monotonic() + args.max_seconds,
        args.spin_us / 1e6,
        args.reasoning_tokens,
        args.reject_max_tokens,
        args.stall_every,
    )

    def _stop(*_: object) -> None:
        server.stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"listening on 127.0.0.1:{sock.getsockname()[1]} pid {os.getpid()}", flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
