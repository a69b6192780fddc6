"""llama.cpp's own HTTP server (via the ``xllamacpp`` wheel) as a real conformance target.

``xllamacpp.Server`` embeds upstream llama.cpp's C++ server and starts it *in the calling
process*, holding the GIL while the model loads and installing its own SIGTERM handler. A test
run must not host that, so this module has two halves:

- a runner, ``python -m realservers.llamacpp``, that owns one ``Server`` in its own
  process, blocks until SIGTERM / its lifetime cap / its parent disappearing, and exits;
- :func:`llamacpp_server`, a context manager that starts the runner through
  :class:`~realservers.process.ManagedProcess` and yields connection details and the
  server version once ``/health`` answers 200 (llama.cpp answers 503 while loading the model).

Observed with xllamacpp 2026.10.11549 (llama.cpp b11549), worth knowing for clients: the server
closes the TCP connection after every streamed response although it advertised
``Keep-Alive: timeout=5, max=100``, so a pooled client that reuses that connection at once can
get "server disconnected without sending a response".
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from realservers.models import SMOLLM2_135M, ensure_model
from realservers.process import LOOPBACK, ManagedProcess, free_port

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_ALIAS",
    "LlamaCppServer",
    "LlamaCppUnavailable",
    "LlamaCppVersion",
    "llamacpp_server",
    "llamacpp_version",
    "main",
]

DEFAULT_ALIAS = "smollm2-135m"
#: The runner reads the API key from the environment so it never shows in argv, ps or the log.
API_KEY_ENV = "CHATCOMPAT_LLAMACPP_API_KEY"
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the checkout that holds realservers/


class LlamaCppUnavailable(RuntimeError):
    """``xllamacpp`` is not installed, so no llama.cpp server can be started."""


@dataclass(frozen=True)
class LlamaCppVersion:
    """What a report needs to name the server under test."""

    xllamacpp: str
    #: llama.cpp release tag, e.g. "b11549"; xllamacpp's CalVer ends with it (YYYY.M.NNNN),
    #: which matters because the wheel's own build info says "b0-unknown".
    llama_cpp: str | None
    build_info: str | None = None  # as reported by GET /props, when the server knows it

    def __str__(self) -> str:
        return f"llama.cpp {self.llama_cpp or '(unknown build)'} via xllamacpp {self.xllamacpp}"


def llamacpp_version() -> LlamaCppVersion:
    """Version of the installed wheel, read from package metadata without loading the 100 MB .so."""
    try:
        version = importlib.metadata.version("xllamacpp")
    except importlib.metadata.PackageNotFoundError as exc:
        raise LlamaCppUnavailable("xllamacpp is not installed (pip install xllamacpp)") from exc
    build = version.split(".")[-1]
    return LlamaCppVersion(xllamacpp=version, llama_cpp=f"b{build}" if build.isdigit() else None)


@dataclass(frozen=True)
class LlamaCppServer:
    """A running llama.cpp server: where to reach it and what it is."""

    base_url: str  # "http://127.0.0.1:PORT/v1", the value for --base-url
    root_url: str  # without /v1: /health, /props, /slots live here
    model: str  # the alias to send as "model"
    api_key: str | None
    model_path: Path
    log_path: Path
    version: LlamaCppVersion
    startup_seconds: float
    settings: Mapping[str, Any] = field(default_factory=dict)
    process: ManagedProcess | None = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for reports; the API key itself is never included."""
        return {
            "server": "llama.cpp",
            "version": asdict(self.version),
            "base_url": self.base_url,
            "model": self.model,
            "model_file": self.model_path.name,
            "api_key_required": self.api_key is not None,
            "startup_seconds": round(self.startup_seconds, 3),
            "settings": dict(self.settings),
            "log_path": str(self.log_path),
        }


@contextlib.contextmanager
def llamacpp_server(
    *,
    model_path: Path | str | None = None,
    alias: str = DEFAULT_ALIAS,
    n_ctx: int = 4096,
    n_parallel: int = 2,
    threads: int = 2,
    kv_unified: bool = False,
    n_predict: int = -1,
    api_key: str | None = None,
    port: int | None = None,
    log_path: Path | str | None = None,
    startup_timeout: float = 180.0,
    grace: float = 10.0,
    max_lifetime: float = 3600.0,
) -> Iterator[LlamaCppServer]:
    """Start llama.cpp on 127.0.0.1, yield it once the model is loaded, always stop it.

    ``model_path`` defaults to SmolLM2-135M-Instruct from :func:`ensure_model`. ``n_ctx`` is
    llama.cpp's total context, split evenly over ``n_parallel`` slots (2048 tokens per request
    by default). ``kv_unified`` stays off by default: with a unified KV cache (llama-server's
    own default), temperature-0 output of an identical request was seen to change with the
    server's request history (prompt-cache reuse), which would make reproducibility checks
    flaky for reasons unrelated to the API. ``n_predict`` is llama-server's ``-n``: a
    server-side cap on generated tokens per request (-1 = none, llama.cpp's default); requests
    that omit ``max_tokens`` otherwise generate until the slot's context is full, which costs
    a conformance run tens of seconds per invalid request the server wrongly accepts.
    ``max_lifetime`` caps the runner even if this process is killed outright.
    """
    version = llamacpp_version()
    model = Path(model_path).resolve() if model_path is not None else ensure_model(SMOLLM2_135M)
    port = port or free_port()
    root = f"http://{LOOPBACK}:{port}"
    settings = {
        "n_ctx": n_ctx,
        "n_ctx_per_request": n_ctx if kv_unified else n_ctx // max(1, n_parallel),
        "n_parallel": n_parallel,
        "threads": threads,
        "kv_unified": kv_unified,
        "n_predict": n_predict,
    }
    argv = [
        sys.executable, "-m", "realservers.llamacpp",
        "--model", str(model), "--port", str(port), "--alias", alias,
        "--n-ctx", str(n_ctx), "--parallel", str(n_parallel), "--threads", str(threads),
        "--max-seconds", str(max_lifetime), "--kv-unified" if kv_unified else "--no-kv-unified",
        "--n-predict", str(n_predict),
    ]  # fmt: skip
    env = dict(os.environ)
    if (_PACKAGE_ROOT / "pyproject.toml").is_file():  # source checkout: make -m find us
        paths = [str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop(API_KEY_ENV, None)
    if api_key is not None:
        env[API_KEY_ENV] = api_key
    proc = ManagedProcess(
        argv,
        ready_url=f"{root}/health",
        startup_timeout=startup_timeout,
        grace=grace,
        log_path=log_path,
        env=env,
        name="llamacpp",
    )
    with proc:
        build_info = _props_build_info(root, api_key)
        if build_info and not build_info.startswith("b0-"):
            version = LlamaCppVersion(version.xllamacpp, version.llama_cpp, build_info)
        yield LlamaCppServer(
            base_url=f"{root}/v1",
            root_url=root,
            model=alias,
            api_key=api_key,
            model_path=model,
            log_path=proc.log_path,
            version=version,
            startup_seconds=proc.startup_seconds or 0.0,
            settings=settings,
            process=proc,
        )


def _props_build_info(root: str, api_key: str | None) -> str | None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx.get(f"{root}/props", headers=headers, timeout=5.0, trust_env=False)
        value = resp.json().get("build_info") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


# -- runner (child process) ----------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m realservers.llamacpp",
        description="Serve one GGUF model with llama.cpp (xllamacpp) on loopback until SIGTERM. "
        f"API key, if any, is read from ${API_KEY_ENV}.",
    )
    parser.add_argument("--model", type=Path, help="GGUF file (default: SmolLM2-135M, cached)")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--alias", default=DEFAULT_ALIAS)
    parser.add_argument("--n-ctx", type=int, default=4096, help="total, split over slots")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kv-unified", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--n-predict", type=int, default=-1, help="token cap per request")
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="exit after this long regardless"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one llama.cpp server in this process; return when told to stop."""
    args = _parse_args(argv)
    import xllamacpp  # deferred: only the runner pays for loading the native library

    model = args.model or ensure_model(SMOLLM2_135M)
    port = args.port or free_port()
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.hostnames = [LOOPBACK]
    params.port = port
    params.model_alias = {args.alias}
    params.n_ctx = args.n_ctx
    params.n_parallel = args.parallel
    params.kv_unified = args.kv_unified
    params.n_predict = args.n_predict
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.ui = False
    if key := os.environ.get(API_KEY_ENV):
        params.api_keys = [key]

    started = time.monotonic()
    server = xllamacpp.Server(params)  # returns once the model is loaded; raises on failure
    print(
        "chatcompat-runner: ready "
        + json.dumps(
            {
                "url": server.listening_address,
                "xllamacpp": getattr(xllamacpp, "__version__", None),
                "build": getattr(xllamacpp, "BUILD_INFO", None),
                "load_seconds": round(time.monotonic() - started, 3),
            }
        ),
        flush=True,
    )

    # The C++ server installed its own SIGTERM/SIGINT handlers during start-up; take them back
    # so the signal reaches Python, which then destroys the Server (stopping its loop) cleanly.
    stop = threading.Event()
    reason = ["lifetime cap reached"]

    def _on_signal(signum: int, _frame: object) -> None:
        reason[0] = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    parent = os.getppid()
    deadline = started + args.max_seconds
    while not stop.wait(timeout=0.5):
        if os.getppid() != parent:
            reason[0] = "parent process went away"
            break
        if time.monotonic() >= deadline:
            break
    print(f"chatcompat-runner: stopping ({reason[0]})", flush=True)
    del server
    print("chatcompat-runner: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
