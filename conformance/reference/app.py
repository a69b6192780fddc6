"""The reference server's HTTP layer: routes, auth, errors, SSE framing, injected latency.

Faults are chosen per server (``ReferenceConfig.faults``) or per request through a path
prefix, ``/faults/<name>[,<name>...]/v1/...``, so one running server can play every broken
variant; the project's own tests rely on that to run the suite against each fault cheaply.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conformance.reference import reasoning, render, request_faults
from conformance.reference.faults import parse_names
from conformance.reference.validation import ApiError, parse_body, validate_request

DEFAULT_MODEL = "chatcompat-ref-1"
#: A second listed model that reasons as OpenAI's gpt-5 / o-series do (the ``reasoning``
#: profile), so one server offers two dialects and ``--all-models`` judges both.
REASONING_MODEL = "chatcompat-ref-reasoning-1"
#: Profiles a request's ``model`` switches on, beside the server's and the URL's faults.
MODEL_PROFILES: dict[str, frozenset[str]] = {REASONING_MODEL: frozenset({"reasoning"})}
MODEL_CREATED = 1735689600


@dataclass
class ReferenceConfig:
    api_key: str | None = None
    models: tuple[str, ...] = (DEFAULT_MODEL, REASONING_MODEL)
    faults: frozenset[str] = frozenset()
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    send_log: Path | None = None
    counters: dict[str, int] = field(default_factory=lambda: {"requests": 0})


class _FaultPrefix:
    """ASGI wrapper: strips ``/faults/<names>`` from the path and records the names."""

    def __init__(self, app: Any, faults: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.faults = faults  # the server-wide ones, for faults played below the app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/faults/"):
            _, _, names, *rest = scope["path"].split("/", 3)
            try:
                scope = {**scope, "chatcompat.faults": parse_names(names)}
            except ValueError as exc:
                response = JSONResponse(ApiError(404, str(exc)).body(), status_code=404)
                await response(scope, receive, send)
                return
            scope["path"] = "/" + (rest[0] if rest else "")
            scope["raw_path"] = scope["path"].encode()
        if "close_after_stream" in self.faults | scope.get("chatcompat.faults", frozenset()):
            send = _closing_after_stream(send)
        await self.app(scope, receive, send)


def _closing_after_stream(send: Any) -> Any:
    """Fault ``close_after_stream``: drop the TCP connection once a streamed response is
    complete, without announcing it (llama.cpp does this). ASGI has no "close" message, but
    uvicorn's ``send`` is a bound method of its request cycle, which holds the transport."""
    streaming = False

    async def wrapped(message: dict) -> None:
        nonlocal streaming
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
        await send(message)
        done = message["type"] == "http.response.body" and not message.get("more_body")
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if done and streaming and transport is not None:
            transport.close()

    return wrapped


def _faults(request: Request, config: ReferenceConfig) -> frozenset[str]:
    return config.faults | request.scope.get("chatcompat.faults", frozenset())


def error_response(error: ApiError, faults: frozenset[str], stream: bool = False) -> Response:
    """Render an error faithfully, or distorted by whichever error faults are on."""
    body: Any = error.body()
    status = error.status
    if error.status == 400:
        if "status_422" in faults:
            status = 422
        if "error_200" in faults:
            status = 200
        if "bad_input_500" in faults:
            status = 500
            body = ApiError(500, "Internal server error", "server_error").body()
        if "param_null" in faults:
            body["error"]["param"] = None
    if "error_code_integer" in faults and "error" in body:
        body["error"]["code"] = status
    if "detail_envelope" in faults:
        body = {"detail": error.message}
    if "error_as_text" in faults:
        return Response(f"Error: {error.message}", status_code=status, media_type="text/plain")
    if stream and "stream_error_as_event" in faults and status == 400:
        events = f"data: {json.dumps(body)}\n\ndata: [DONE]\n\n"
        return Response(events, status_code=200, media_type="text/event-stream")
    return JSONResponse(body, status_code=status)


def _check_auth(request: Request, config: ReferenceConfig, faults: frozenset[str]) -> None:
    if config.api_key is None or "auth_not_enforced" in faults:
        return
    header = request.headers.get("authorization", "")
    if not header:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or token.strip() != config.api_key:
        # OpenAI echoes a masked key here; we echo nothing: the suite must not see secrets.
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


def _sse_bytes(data: str, faults: frozenset[str], last: bool = False) -> bytes:
    eol = "\r\n" if "crlf" in faults else "\n"
    prefix = "data:" if "no_space_after_data" in faults else "data: "
    text = "".join(f"{prefix}{line}{eol}" for line in data.split("\n"))
    if not (last and "unterminated_done" in faults):
        text += eol
    if "sse_comments" in faults:
        text = f": keep-alive{eol}{eol}" + text
    return text.encode()


async def _stream_body(
    frames: list[render.Frame],
    faults: frozenset[str],
    started: float,
    config: ReferenceConfig,
    completion_id: str,
):
    """Send frames on an absolute schedule (no drift); log token send times if asked."""
    sent_ns: list[int] = []
    for position, frame in enumerate(frames):
        delay = started + frame.at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        data = frame.data if isinstance(frame.data, str) else json.dumps(frame.data)
        payload = _sse_bytes(data, faults, last=position == len(frames) - 1)
        if "split_writes" in faults and len(payload) > 2:
            cut = random.randint(1, len(payload) - 1)
            yield payload[:cut]
            yield payload[cut:]
        else:
            yield payload
        if frame.carries_token:
            sent_ns.append(time.perf_counter_ns())
    if config.send_log is not None:
        record = {"id": completion_id, "start_ns": int(started * 1e9), "token_sent_ns": sent_ns}
        with config.send_log.open("a") as log:
            log.write(json.dumps(record) + "\n")


async def _generation_time(
    chat_request: render.ChatRequest,
    generations: list[Any],
    faults: frozenset[str],
    started: float,
    config: ReferenceConfig,
) -> None:
    """A non-streamed answer comes when its last token would have been streamed: a slow
    model is as slow without ``stream`` (what the suite's preflight pace must cope with)."""
    if not (config.ttft_ms or config.itl_ms):
        return
    frames = render.build_stream(
        chat_request, generations, faults, config.ttft_ms / 1000, config.itl_ms / 1000
    )
    delay = started + max(f.at for f in frames) - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


def _model_profile(body: dict[str, Any]) -> frozenset[str]:
    """The profile the requested model plays (routing by ``model``, as a gateway would)."""
    model = body.get("model")
    return MODEL_PROFILES.get(model, frozenset()) if isinstance(model, str) else frozenset()


def create_app(config: ReferenceConfig | None = None) -> Any:
    """Build the ASGI app; ``config`` carries key, models, faults and injected latency."""
    config = config or ReferenceConfig()

    async def models(request: Request) -> Response:
        faults = _faults(request, config)
        try:
            _check_auth(request, config, faults)
        except ApiError as error:
            return error_response(error, faults)
        ids = ("chatcompat-ref-other",) if "model_not_listed" in faults else config.models
        data = [
            {"id": m, "object": "model", "created": MODEL_CREATED, "owned_by": "chatcompat"}
            for m in ids
        ]
        if "models_bare_list" in faults:
            return JSONResponse(data)
        return JSONResponse({"object": "list", "data": data})

    async def chat(request: Request) -> Response:
        started = time.perf_counter()
        config.counters["requests"] += 1
        faults = request_faults.for_client(_faults(request, config), request.headers)
        body: dict[str, Any] = {}
        try:
            _check_auth(request, config, faults)
            body = parse_body(await request.body())
            faults = faults | _model_profile(body)
            body = request_faults.lenient(body, faults, config.models[0])
            validate_request(body, faults)
            request_faults.reject(body, faults)
            reasoning.reject(body, faults)
            if body["model"] not in config.models and "unknown_model_served" not in faults:
                raise ApiError(
                    404,
                    f"The model `{body['model'][:100]}` does not exist or you do not have "
                    "access to it.",
                    code="model_not_found",
                )
        except ApiError as error:
            return error_response(error, faults, stream=bool(body.get("stream")))
        chat_request = render.ChatRequest.from_body(request_faults.distort(body, faults))
        generations = render.generate(
            chat_request, call_prefix=f"{random.getrandbits(32):08x}", faults=faults
        )
        if not chat_request.stream:
            media = "text/plain" if "json_as_text_plain" in faults else "application/json"
            payload = render.build_response(chat_request, generations, faults)
            await _generation_time(chat_request, generations, faults, started, config)
            return Response(json.dumps(payload), media_type=media)
        frames = render.build_stream(
            chat_request, generations, faults, config.ttft_ms / 1000, config.itl_ms / 1000
        )
        completion_id = next((f.data["id"] for f in frames if isinstance(f.data, dict)), "unknown")
        media = "application/json" if "stream_as_json" in faults else "text/event-stream"
        return StreamingResponse(
            _stream_body(frames, faults, started, config, completion_id),
            media_type=media,
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.config = config
    return _FaultPrefix(app, config.faults)
