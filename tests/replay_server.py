"""A loopback server that answers with responses recorded from api.openai.com.

Why: the suite must accept what real OpenAI sends. The corpus in
``tests/fixtures/openai_recorded/`` holds real exchanges (bodies, raw SSE streams, errors) from
public test cassettes; this server plays them back so the suite's own checks judge them over
HTTP, exactly as they would judge a live endpoint.

Request bodies are read only to pick the recording. The base URL names a ``Route``, the
recordings to play for each kind of request, ``/replay/<name>,<name>,.../v1``:

* ``GET  .../v1/models``: a list holding the recorded model (the one synthesized answer);
* ``POST .../v1/chat/completions``, the first rule that matches:

  - a request for a model no recording of the route was asked for: the recorded 404
    ``model_not_found`` (``UNKNOWN_MODEL``);
  - an invalid request (the kinds the suite's error checks send): ``error``;
  - a request offering ``tools``: ``tool_stream`` when streamed, else ``tool_body``;
  - a streamed request: ``usage_stream`` when it sets ``stream_options.include_usage``,
    else ``stream`` (two recordings, so the suite sees two completions with two ids);
  - anything else: ``body``.

Every answer is the recording's status, Content-Type and body text, byte for byte. The
server binds to 127.0.0.1, stops itself after ``max_seconds`` or ``max_requests``, and is
also a context manager.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "fixtures" / "openai_recorded"
UNKNOWN_MODEL = "error_model_not_found"
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


@dataclass(frozen=True)
class Recording:
    """One recorded exchange: where it comes from, what was asked, what came back."""

    name: str
    provenance: dict[str, Any]
    request: dict[str, Any]
    status: int
    content_type: str
    body: str

    @property
    def is_stream(self) -> bool:
        return self.content_type.startswith("text/event-stream")

    @property
    def model(self) -> str:
        return str(self.request.get("model", ""))


def load_corpus(directory: Path = CORPUS) -> dict[str, Recording]:
    out = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        out[path.stem] = Recording(
            path.stem,
            data["provenance"],
            data["request"],
            data["status"],
            data["content_type"],
            data["body"],
        )
    return out


@dataclass(frozen=True)
class Route:
    """Which recording answers which kind of request (see the module docstring)."""

    body: str
    tool_body: str
    stream: str
    usage_stream: str
    tool_stream: str
    error: str

    def names(self) -> tuple[str, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def path(self) -> str:
        return f"/replay/{','.join(self.names())}/v1"

    def pick(self, request: Any, models: set[str]) -> str:
        if isinstance(request, dict) and "model" not in request:
            return self.error  # OpenAI: 400 "you must provide a model parameter"
        if isinstance(request, dict) and request.get("model") not in models:
            return UNKNOWN_MODEL
        if is_invalid(request):
            return self.error
        streamed = request.get("stream") is True
        if request.get("tools"):
            return self.tool_stream if streamed else self.tool_body
        if not streamed:
            return self.body
        options = request.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        return self.usage_stream if usage else self.stream


TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


def is_invalid(request: Any) -> bool:
    """The invalid requests the suite's error checks send (missing or empty messages, an
    unknown role, temperature out of range or not a number, n < 1, a token limit below 1,
    an unknown response_format type, tool_choice naming an absent tool, malformed JSON)."""
    if not isinstance(request, dict):
        return True
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return True
    if any(not isinstance(m, dict) or m.get("role") not in ROLES for m in messages):
        return True
    temperature = request.get("temperature")
    if temperature is not None and not isinstance(temperature, (int, float)):
        return True
    if isinstance(temperature, (int, float)) and not 0 <= temperature <= 2:
        return True
    if any(isinstance(request.get(f), int) and request[f] < 1 for f in TOKEN_FIELDS):
        return True
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in ("text", "json_object", "json_schema"):
        return True
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        sent = [t.get("function", {}).get("name") for t in request.get("tools") or []]
        if choice["function"].get("name") not in sent:
            return True
    n = request.get("n")
    return isinstance(n, int) and n < 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body leave in one write (no Nagle/delayed-ACK stall)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _route(self) -> tuple[Route, str] | None:
        parts = self.path.split("/", 4)  # "", "replay", names, "v1", rest
        if len(parts) < 5 or parts[1] != "replay" or parts[3] != "v1":
            return None
        names = parts[2].split(",")
        if len(names) != len(fields(Route)) or any(n not in self.server.corpus for n in names):
            return None
        return Route(*names), parts[4]

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _count(self) -> bool:
        with self.server.lock:
            self.server.requests += 1
            over = self.server.requests > self.server.max_requests
        if over:
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        return not over

    def do_GET(self) -> None:
        routed = self._route()
        if not self._count() or routed is None or routed[1] != "models":
            self._send(404, "text/plain", "not found")
            return
        model = self.server.corpus[routed[0].body].model
        listing = {"object": "list", "data": [{"id": model, "object": "model", "created": 0}]}
        self._send(200, "application/json", json.dumps(listing))

    def do_POST(self) -> None:
        routed = self._route()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self._count() or routed is None or routed[1] != "chat/completions":
            self._send(404, "text/plain", "not found")
            return
        route = routed[0]
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        models = {self.server.corpus[name].model for name in route.names()}
        recording = self.server.corpus[route.pick(request, models)]
        self._send(recording.status, recording.content_type, recording.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, corpus: dict[str, Recording], max_requests: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.corpus = corpus
        self.max_requests = max_requests
        self.requests = 0
        self.lock = threading.Lock()


class ReplayServer:
    """Plays recordings on a free loopback port until stopped, ``max_seconds`` or
    ``max_requests``, whichever comes first."""

    def __init__(
        self, corpus: dict[str, Recording], max_seconds: float = 300, max_requests: int = 20_000
    ) -> None:
        self._server = _Server(corpus, max_requests)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._timer = threading.Timer(max_seconds, self.stop)
        self._timer.daemon = True

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, route: Route) -> str:
        return self.origin + route.path

    def start(self) -> ReplayServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
