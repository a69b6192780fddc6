"""SmolLM2-135M as a Hugging Face checkpoint, made from the project's pinned GGUF.

vLLM, ``transformers serve`` and FastChat load Hugging Face checkpoints, and machines here
reach no model hub. ``transformers`` reads the GGUF with ``gguf_file=`` (dequantising the
Q4_1 weights) and ``save_pretrained`` writes a float32 checkpoint, cached beside the GGUF.
Every server of the matrix then runs the same weights and chat template, so their verdicts
differ only where the servers do.

The conversion runs in a child process of the interpreter that will serve the model
(``python -m realservers.hf_model convert``), so the caller never loads torch, and the
checkpoint is written by the same ``transformers`` major version that reads it (v4 and v5
save tokenizers differently); the cache key holds that major version and the GGUF's sha256.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from realservers.models import SMOLLM2_135M, ensure_model, model_cache_dir

__all__ = ["OFFLINE_ENV", "child_env", "convert", "ensure_hf_model"]

_MARKER = "chatcompat-source.json"
#: No hub look-ups and no usage statistics, whatever the server's defaults are.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
_ROOT = Path(__file__).resolve().parents[1]


def model_facts(alias: str) -> dict[str, str]:
    """What a report says about the model a server loads from the dequantised directory."""
    return {
        "file": SMOLLM2_135M.filename,
        "source": f"PyPI wheel {SMOLLM2_135M.requirement}, dequantised to HF format",
        "sha256": SMOLLM2_135M.sha256,
        "alias": alias,
    }


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server child: offline, unbuffered, able to ``-m realservers``."""
    env = {**os.environ, **OFFLINE_ENV, "PYTHONUNBUFFERED": "1"}
    if (_ROOT / "pyproject.toml").is_file():  # source checkout: make -m find us
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    return env | (extra or {})


def _transformers_major(python: str) -> str:
    code = "import importlib.metadata as m; print(m.version('transformers').split('.')[0])"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} has no transformers: {proc.stderr.strip()[-300:]}")
    return proc.stdout.strip()


def ensure_hf_model(python: str = sys.executable, timeout: float = 900.0) -> Path:
    """The checkpoint directory for ``python``'s transformers (converted once, then cached)."""
    gguf = ensure_model(SMOLLM2_135M)
    major = _transformers_major(python)
    out = model_cache_dir() / f"SmolLM2-135M-Instruct-hf-t{major}"
    marker = out / _MARKER
    source = {"gguf": SMOLLM2_135M.filename, "sha256": SMOLLM2_135M.sha256, "transformers": major}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()) == source:
            return out
    cmd = [python, "-m", "realservers.hf_model", "convert", str(gguf), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env())
    if proc.returncode != 0:
        raise RuntimeError(f"GGUF -> HF conversion failed:\n{proc.stderr[-2000:]}")
    marker.write_text(json.dumps(source))
    return out


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
        raise SystemExit("the GGUF carried no chat template; no server could serve chat")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realservers.hf_model")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="GGUF -> Hugging Face checkpoint")
    conv.add_argument("gguf", type=Path)
    conv.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    convert(args.gguf, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
