"""The LiteLLM proxy (``litellm[proxy]``) as a real conformance target, in front of an upstream.

LiteLLM is a gateway: it re-serialises every request and response through its own types, so
its divergences are its own even when the upstream (here llama.cpp) behaves. We start it the
way its docs do, ``litellm --config config.yaml``, with one model routed to an
OpenAI-compatible upstream, on a free loopback port, through
:class:`~realservers.process.ManagedProcess`.

Secrets never touch the config file or argv: the file says ``os.environ/NAME`` and the child's
environment carries the values. ``LITELLM_LOCAL_MODEL_COST_MAP=True`` keeps LiteLLM from
fetching its price list from the internet at import time (it would retry, then fall back).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realservers.process import LOOPBACK, ManagedProcess, free_port
from realservers.venvs import VenvSpec, interpreter_for

__all__ = [
    "LITELLM_VENV",
    "LiteLLMProxy",
    "LiteLLMUnavailable",
    "litellm_proxy",
    "litellm_version",
]

LITELLM_VERSION = "1.108.7"
#: Its own environment: litellm[proxy] pins its own pydantic, fastapi, openai, ...
LITELLM_VENV = VenvSpec("litellm", ((f"litellm[proxy]=={LITELLM_VERSION}",),))

MASTER_KEY_ENV = "CHATCOMPAT_LITELLM_MASTER_KEY"
UPSTREAM_KEY_ENV = "CHATCOMPAT_LITELLM_UPSTREAM_KEY"
#: Keeps the proxy offline: without it LiteLLM fetches its model price map at import time.
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


class LiteLLMUnavailable(RuntimeError):
    """The given interpreter has no ``litellm`` (pip install 'litellm[proxy]')."""


@dataclass(frozen=True)
class LiteLLMProxy:
    """A running LiteLLM proxy: where to reach it and what it routes to."""

    base_url: str
    root_url: str
    model: str
    api_key: str  # the proxy's master key; never written to reports
    version: str
    upstream_base_url: str
    config_path: Path
    log_path: Path
    startup_seconds: float
    process: ManagedProcess | None = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for reports; no key is included."""
        return {
            "server": "LiteLLM proxy",
            "version": {"litellm": self.version},
            "base_url": self.base_url,
            "model": self.model,
            "upstream": self.upstream_base_url,
            "startup_seconds": round(self.startup_seconds, 3),
            "config": self.config_path.read_text(),
            "log_path": str(self.log_path),
        }


def litellm_version(python: str = sys.executable) -> str:
    """Installed LiteLLM version of ``python``'s environment, without importing LiteLLM.

    Importing it takes seconds and, without the offline switch, reaches for the network.
    """
    if python == sys.executable:
        try:
            return importlib.metadata.version("litellm")
        except importlib.metadata.PackageNotFoundError as exc:
            raise LiteLLMUnavailable(
                "litellm is not installed (pip install 'litellm[proxy]')"
            ) from exc
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise LiteLLMUnavailable(f"{python} has no litellm: {proc.stderr.strip()[-300:]}")
    return proc.stdout.strip()


def render_config(model: str, upstream_base_url: str, *, timeout: float) -> str:
    """The proxy config: one model group, upstream via LiteLLM's generic OpenAI provider.

    ``openai/<name>`` makes LiteLLM speak the OpenAI protocol to ``api_base`` and pass the
    name through. Keys are references to environment variables, resolved by LiteLLM.
    """
    lines = [
        "# written by chatcompat (realservers/litellm_proxy.py)",
        "model_list:",
        f"  - model_name: {json.dumps(model)}",
        "    litellm_params:",
        f"      model: {json.dumps('openai/' + model)}",
        f"      api_base: {json.dumps(upstream_base_url)}",
        f"      api_key: os.environ/{UPSTREAM_KEY_ENV}",
        f"      timeout: {timeout:g}",
        "general_settings:",
        f"  master_key: os.environ/{MASTER_KEY_ENV}",
    ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def litellm_proxy(
    *,
    upstream_base_url: str,
    model: str,
    upstream_api_key: str | None = None,
    master_key: str | None = None,
    python: str | None = None,
    port: int | None = None,
    workdir: Path | str | None = None,
    upstream_timeout: float = 120.0,
    startup_timeout: float = 120.0,
    grace: float = 10.0,
) -> Iterator[LiteLLMProxy]:
    """Start ``litellm --config`` on 127.0.0.1 routing ``model`` upstream; always stop it.

    ``master_key`` (default: a fresh random one) is what clients must send; LiteLLM requires
    it to start with ``sk-``. ``python`` is the interpreter whose environment has LiteLLM
    (default: this one if it has the pinned version, else :data:`LITELLM_VENV`).
    Readiness is ``/health/liveliness``, which answers once the app has started (it needs no
    key and does not call the upstream).
    """
    python = python or interpreter_for(LITELLM_VENV, "litellm", LITELLM_VERSION)
    version = litellm_version(python)
    master_key = master_key or "sk-chatcompat-" + secrets.token_hex(12)
    if not master_key.startswith("sk-"):
        raise ValueError("LiteLLM master keys must start with 'sk-'")
    port = port or free_port()
    root = f"http://{LOOPBACK}:{port}"
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="chatcompat-litellm-"))
        work = Path(workdir).resolve()  # the child runs in it: no relative paths
        work.mkdir(parents=True, exist_ok=True)
        config = work / "litellm-config.yaml"
        config.write_text(render_config(model, upstream_base_url, timeout=upstream_timeout))
        env = {**os.environ, **OFFLINE_ENV, "PYTHONUNBUFFERED": "1"}
        env[MASTER_KEY_ENV] = master_key
        env[UPSTREAM_KEY_ENV] = upstream_api_key or "sk-no-key-required"
        env.pop("LITELLM_MASTER_KEY", None)  # ours comes from the config, not a stray env
        argv = [
            python, "-m", "litellm.proxy.proxy_cli", "--config", str(config),
            "--host", LOOPBACK, "--port", str(port), "--num_workers", "1",
        ]  # fmt: skip
        proc = ManagedProcess(
            argv,
            ready_url=f"{root}/health/liveliness",
            startup_timeout=startup_timeout,
            grace=grace,
            log_path=work / "litellm.log",
            env=env,
            cwd=work,
            name="litellm",
        )
        with proc:
            yield LiteLLMProxy(
                base_url=f"{root}/v1",
                root_url=root,
                model=model,
                api_key=master_key,
                version=version,
                upstream_base_url=upstream_base_url,
                config_path=config,
                log_path=proc.log_path,
                startup_seconds=proc.startup_seconds or 0.0,
                process=proc,
            )
