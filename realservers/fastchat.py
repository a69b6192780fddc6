"""FastChat (``fschat``): controller + model_worker + openai_api_server, as a real target.

FastChat serves in three processes: a controller that knows the workers, a model worker that
loads the model and registers with the controller, and the OpenAI-compatible API server that
asks the controller which worker serves a model. They start in that order, each ready when
it answers HTTP (the worker listens only once its model is loaded and registered).

Pins (:data:`FASTCHAT_VENV`) from the issue: FastChat 0.2.36 needs ``pydantic<2`` and
``fastapi==0.110.3``; with newer ones every stream is an empty 200. transformers stays on 4.x
(FastChat predates 5.x), so the worker gets a checkpoint written by transformers 4
(:func:`realservers.hf_model.ensure_hf_model` keys the cache by major version).

FastChat picks a prompt format by matching the model's *name* against its own list and never
reads the tokenizer's chat template; "smollm2" matches nothing and would fall back to a
few-shot "Human:/Assistant:" prompt. ``--conv-template qwen-7b-chat`` is FastChat's ChatML
format ("<|im_start|>role ... <|im_end|>", system "You are a helpful assistant."), the format
SmolLM2 was trained on. The key reaches the API server through :mod:`realservers.fastchat_api`.

A request without ``max_tokens`` (or with only ``max_completion_tokens``, which FastChat does
not know) is given "the context length minus the prompt": 8192 tokens for SmolLM2, tens of
minutes on a CPU. The worker therefore serves a view of the checkpoint (symlinks, and a
config whose ``max_position_embeddings`` is :data:`CONTEXT_LENGTH`, where FastChat reads the
context length), the 2048 tokens per request that llama.cpp and vLLM get here too. With
default RoPE that number changes no computation below it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realservers.fastchat_api import KEY_ENV
from realservers.hf_model import child_env, ensure_hf_model, model_facts
from realservers.process import LOOPBACK, ManagedProcess, free_port
from realservers.venvs import VenvSpec, interpreter_for, package_version

__all__ = ["FASTCHAT_VENV", "FastChatServer", "fastchat_server"]

DEFAULT_ALIAS = "smollm2-135m"
FASTCHAT_VERSION = "0.2.36"
CONV_TEMPLATE = "qwen-7b-chat"
FASTCHAT_VENV = VenvSpec(
    "fastchat",
    (
        ("torch==2.13.0",),
        (
            f"fschat[model_worker]=={FASTCHAT_VERSION}",
            "pydantic<2",
            "fastapi==0.110.3",
            "transformers==4.57.6",
            "gguf==0.19.0",
            "torch==2.13.0",
        ),
    ),
)
THREADS_ENV = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
CONTEXT_LENGTH = 2048


def capped_view(model_dir: Path, out: Path, context_length: int = CONTEXT_LENGTH) -> Path:
    """``model_dir`` seen through ``out``: every file symlinked but config.json, which is a
    copy with ``max_position_embeddings`` set to ``context_length``."""
    out.mkdir(parents=True, exist_ok=True)
    for src in model_dir.iterdir():
        dst = out / src.name
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        if src.name != "config.json":
            dst.symlink_to(src)
    config = json.loads((model_dir / "config.json").read_text())
    config["max_position_embeddings"] = context_length
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


@dataclass(frozen=True)
class FastChatServer:
    base_url: str
    model: str
    api_key: str | None
    version: str
    log_dir: Path
    startup_seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        """What the reports name: versions, model provenance, settings (no key)."""
        return {
            "server": "FastChat openai_api_server",
            "version": f"FastChat {self.version}",
            "versions": {"fschat": self.version, "transformers": "4.57.6"},
            "model": model_facts(self.model),
            "settings": dict(self.settings),
            "startup_seconds": round(self.startup_seconds, 2),
        }


@contextlib.contextmanager
def fastchat_server(
    *,
    workdir: Path,
    api_key: str | None = None,
    alias: str = DEFAULT_ALIAS,
    python: str | None = None,
    startup_timeout: float = 900.0,
    grace: float = 10.0,
) -> Iterator[FastChatServer]:
    """Start the three FastChat processes on 127.0.0.1; always stop all of them."""
    python = python or interpreter_for(FASTCHAT_VENV, "fschat", FASTCHAT_VERSION)
    model_dir = capped_view(ensure_hf_model(python), workdir / "model")
    (workdir / "fastchat-logs").mkdir(parents=True, exist_ok=True)
    ctl, worker, api = free_port(), free_port(), free_port()
    controller = f"http://{LOOPBACK}:{ctl}"
    worker_url = f"http://{LOOPBACK}:{worker}"
    # FastChat's own loggers write into $LOGDIR (default: the cwd, where ours are).
    env = child_env(THREADS_ENV | {"LOGDIR": str(workdir / "fastchat-logs")})
    env.pop(KEY_ENV, None)
    common = {"grace": grace, "cwd": workdir, "startup_timeout": startup_timeout}
    worker_argv = [
        python, "-m", "fastchat.serve.model_worker", "--host", LOOPBACK,
        "--port", str(worker), "--worker-address", worker_url,
        "--controller-address", controller, "--model-path", str(model_dir),
        "--model-names", alias, "--device", "cpu", "--conv-template", CONV_TEMPLATE,
    ]  # fmt: skip
    api_argv = [
        python, "-m", "realservers.fastchat_api", "--host", LOOPBACK,
        "--port", str(api), "--controller-address", controller,
    ]  # fmt: skip
    # A FastAPI app answers GET on a POST-only route with 405: the process is listening.
    procs = [
        ManagedProcess(
            [python, "-m", "fastchat.serve.controller", "--host", LOOPBACK, "--port", str(ctl)],
            ready_url=f"{controller}/test_connection",
            log_path=workdir / "controller.log",
            env=env,
            name="fastchat-controller",
            **common,
        ),
        ManagedProcess(
            worker_argv,
            ready_url=f"{worker_url}/worker_get_status",
            ready_statuses=(200, 405),
            log_path=workdir / "model_worker.log",
            env=env,
            name="fastchat-worker",
            **common,
        ),
        ManagedProcess(
            api_argv,
            ready_url=f"http://{LOOPBACK}:{api}/v1/models",
            ready_statuses=(200, 401),
            log_path=workdir / "openai_api_server.log",
            env=env | ({KEY_ENV: api_key} if api_key else {}),
            name="fastchat-api",
            **common,
        ),
    ]
    with contextlib.ExitStack() as stack:
        for proc in procs:
            stack.enter_context(proc)
        yield FastChatServer(
            base_url=f"http://{LOOPBACK}:{api}/v1",
            model=alias,
            api_key=api_key,
            version=package_version(python, "fschat"),
            log_dir=workdir,
            startup_seconds=sum(p.startup_seconds or 0.0 for p in procs),
            settings={
                "device": "cpu",
                "threads": 2,
                "conv_template": CONV_TEMPLATE,
                "context_length": CONTEXT_LENGTH,
                "processes": "controller + model_worker + openai_api_server",
            },
        )
