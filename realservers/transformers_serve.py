"""Hugging Face ``transformers serve`` (its OpenAI-compatible server) as a real target.

``transformers serve MODEL`` pins the server to one model, which it loads before it listens.
The model is the SmolLM2 checkpoint that :mod:`realservers.hf_model` makes from the project's
GGUF, reached through a symlink named like the other servers' alias (``smollm2-135m``) in the
server's working directory: the server names a model by the path it was given, so requests
and ``/v1/models`` use the alias instead of a cache path.

The server has no API key option: it answers every request, authenticated or not, so the
suite runs against it without a key (its auth checks then judge what it does without one).
It runs from a private virtualenv (:data:`TRANSFORMERS_VENV`: CPU torch, the pinned
transformers with its ``serving`` extra). A first start on 2 busy cores can take minutes
(imports, weights), hence the long readiness deadline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realservers.hf_model import child_env, ensure_hf_model, model_facts
from realservers.process import LOOPBACK, ManagedProcess, free_port
from realservers.venvs import VenvSpec, interpreter_for, package_version

__all__ = ["TRANSFORMERS_VENV", "TransformersServer", "transformers_server"]

DEFAULT_ALIAS = "smollm2-135m"
TRANSFORMERS_VERSION = "5.25.0"
#: torch alone first: ``torch==2.13.0`` is the CPU build on local disk.
TRANSFORMERS_VENV = VenvSpec(
    "transformers-serve",
    (
        ("torch==2.13.0",),
        (f"transformers[serving]=={TRANSFORMERS_VERSION}", "gguf==0.19.0", "torch==2.13.0"),
    ),
)
#: Two threads, like every other server of the matrix (the machine has two cores).
THREADS_ENV = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


@dataclass(frozen=True)
class TransformersServer:
    base_url: str
    model: str
    version: str
    log_path: Path
    startup_seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        """What the reports name: versions, model provenance, settings."""
        return {
            "server": "transformers serve",
            "version": f"transformers {self.version} serve",
            "versions": {"transformers": self.version},
            "model": model_facts(self.model),
            "settings": dict(self.settings),
            "startup_seconds": round(self.startup_seconds, 2),
        }


@contextlib.contextmanager
def transformers_server(
    *,
    workdir: Path,
    alias: str = DEFAULT_ALIAS,
    python: str | None = None,
    port: int | None = None,
    startup_timeout: float = 900.0,
    grace: float = 15.0,
) -> Iterator[TransformersServer]:
    """Start ``transformers serve`` on 127.0.0.1 with the converted SmolLM2; always stop it."""
    python = python or interpreter_for(TRANSFORMERS_VENV, "transformers", TRANSFORMERS_VERSION)
    model_dir = ensure_hf_model(python)
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / alias
    link.unlink(missing_ok=True)
    link.symlink_to(model_dir, target_is_directory=True)
    port = port or free_port()
    root = f"http://{LOOPBACK}:{port}"
    settings = {"device": "cpu", "dtype": "auto (float32 weights)", "threads": 2}
    argv = [
        python, "-m", "transformers.cli.transformers", "serve", alias,
        "--host", LOOPBACK, "--port", str(port), "--device", "cpu", "--log-level", "info",
    ]  # fmt: skip
    proc = ManagedProcess(
        argv,
        ready_url=f"{root}/health",
        startup_timeout=startup_timeout,
        grace=grace,
        log_path=workdir / "transformers-serve.log",
        env=child_env(THREADS_ENV),
        cwd=workdir,
        name="transformers-serve",
    )
    with proc:
        yield TransformersServer(
            base_url=f"{root}/v1",
            model=alias,
            version=package_version(python, "transformers"),
            log_path=proc.log_path,
            startup_seconds=proc.startup_seconds or 0.0,
            settings=settings,
        )
