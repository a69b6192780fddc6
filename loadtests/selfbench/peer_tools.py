"""The peer load tools of ``nox -s bench-peers``: install, run, and read their own outputs.

Each peer gets its own virtualenv (its pins must not meet ours), installed from PyPI at an
exact version. Each is run as its documents describe, closed loop at N concurrent streams
with 100 output tokens, and each is judged only by what it wrote per request:

* inference-perf: ``per_request_lifecycle_metrics.json``: ``start_time`` (``perf_counter``
  before ``session.post``) and ``chunk_times`` (``perf_counter`` when a content-bearing SSE
  event was split from the buffer); TTFT = first chunk - start, ITL = each chunk gap. Its
  synthetic data for chat needs multimodal inputs, so it sends legacy ``/v1/completions``
  (the truth server streams those with the same timing);
* GuideLLM: the JSON report's per-request ``request_start`` (``time.time()`` at the first
  header write), ``first_token_iteration``, ``last_token_iteration``: TTFT, and ITL only as
  a per-request mean, ``(last - first) / (tokens - 1)``, so its ITL error is per request,
  not per gap (a mean hides the spread of the gaps);
* vLLM ``bench serve``: only when ``vllm`` installs (its wheel pins a CUDA build of torch).

Completion ids join every request with the truth server's send log.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

PINS = {
    "inference-perf": ["inference-perf==0.7.0"],
    "guidellm": ["torch==2.13.0", "guidellm==0.8.1"],  # torch: the CPU build this machine has
}
VERSIONS = {"inference-perf": "0.7.0", "guidellm": "0.8.1"}
MIN_PYTHON = {"inference-perf": (3, 12)}
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
PIP_TIMEOUT_S = 1800


@dataclass
class Measured:
    """One request as a tool reported it: TTFT, and ITL per gap or as a per-request mean."""

    completion_id: str
    ttft_ms: float | None
    gaps_ms: list[float] | None = None
    itl_mean_ms: float | None = None


class Skipped(Exception):
    """A peer that cannot run here; the message is the reason printed in the table."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("CHATCOMPAT_PEERS", Path(base) / "chatcompat" / "peers"))


def _python_at_least(version: tuple[int, int]) -> str | None:
    """An interpreter of at least ``version``: ours, one on PATH, or one pyenv installed."""
    if sys.version_info[:2] >= version:
        return sys.executable
    names = [f"python3.{minor}" for minor in range(version[1], 15)]
    candidates = [found for name in names if (found := shutil.which(name))]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for minor in range(version[1], 15):
        candidates += [str(p / "bin" / "python3") for p in sorted(pyenv.glob(f"3.{minor}.*"))]
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", f"import sys; print(sys.version_info[:2] >= {version!r})"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def ensure_env(tool: str, root: Path) -> Path:
    """The peer's virtualenv (created and installed once); raises Skipped with the reason."""
    env = root / tool
    python = env / "bin" / "python"
    marker = env / ".installed"
    if marker.exists() and marker.read_text() == " ".join(PINS[tool]):
        return env
    interpreter = _python_at_least(MIN_PYTHON.get(tool, (3, 10)))
    if interpreter is None:
        raise Skipped(f"{tool} needs Python >= {'.'.join(map(str, MIN_PYTHON[tool]))}")
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([interpreter, "-m", "venv", str(env)], check=True)
    print(f"installing {' '.join(PINS[tool])} into {env}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *PINS[tool]],
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Skipped(f"pip install {tool} took over {PIP_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if x.startswith("ERROR")] or ["failed"]
        raise Skipped(f"pip install {' '.join(PINS[tool])}: {lines[-1][:160]}")
    marker.write_text(" ".join(PINS[tool]))
    return env


def build_tokenizer(python: Path, root: Path) -> Path:
    """A Hugging Face tokenizer directory made from the SmolLM2 GGUF the project already uses.

    The GGUF file embeds its tokenizer; ``transformers`` (with ``gguf``) rebuilds it, so no
    model hub is contacted. The peers need it to size their synthetic prompts.
    """
    target = root / "smollm2-tokenizer"
    if (target / "tokenizer.json").exists():
        return target
    from realservers.models import SMOLLM2_135M, ensure_model

    gguf = ensure_model(SMOLLM2_135M)
    pip = [str(python), "-m", "pip", "install", "--quiet", "gguf"]  # transformers reads GGUF
    subprocess.run(pip, check=True, capture_output=True, timeout=PIP_TIMEOUT_S)
    script = (
        "import sys\nfrom transformers import AutoTokenizer\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2])\n"
        "t.save_pretrained(sys.argv[3])\n"
    )
    subprocess.run(
        [str(python), "-c", script, str(gguf.parent), gguf.name, str(target)],
        check=True,
        env={**os.environ, **OFFLINE},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return target


def inference_perf_command(
    env: Path, port: int, streams: int, seconds: float, workdir: Path, tokenizer: Path
) -> list[str]:
    """Closed loop at ``streams``; enough requests to keep every stream busy for ``seconds``."""
    requests = math.ceil(streams * (seconds + 4) / 1.04)
    config = {
        "api": {"type": "completion", "streaming": True},
        "data": {
            "type": "shared_prefix",
            "shared_prefix": {
                "num_groups": 1,
                "num_prompts_per_group": 256,
                "system_prompt_len": 8,
                "question_len": 24,
                "output_len": 100,
            },
        },
        "load": {
            "type": "concurrent",
            "num_workers": 2,
            "worker_max_concurrency": max(100, math.ceil(streams / 2)),
            "stages": [{"num_requests": requests, "concurrency_level": streams}],
        },
        "server": {
            "type": "vllm",
            "model_name": "chatcompat-ref-1",
            "base_url": f"http://127.0.0.1:{port}",
            "ignore_eos": True,
        },
        "tokenizer": {"pretrained_model_name_or_path": str(tokenizer)},
        "report": {"request_lifecycle": {"summary": True, "per_stage": False, "per_request": True}},
        "storage": {"local_storage": {"path": str(workdir / "inference-perf")}},
    }
    path = workdir / "inference-perf.json"  # YAML is a superset of JSON
    path.write_text(json.dumps(config))
    return [str(env / "bin" / "inference-perf"), "--config_file", str(path)]


def guidellm_command(
    env: Path, port: int, streams: int, seconds: float, workdir: Path, tokenizer: Path
) -> list[str]:
    return [
        str(env / "bin" / "guidellm"),
        "run",
        "--backend",
        f"kind=openai_http,target=http://127.0.0.1:{port}",
        "--profile",
        f"kind=concurrent,streams={streams}",
        "--constraint",
        f"kind=max_duration,seconds={seconds:g}",
        "--data",
        "kind=synthetic_text,prompt_tokens=32,output_tokens=100",
        "--tokenizer",
        f"kind=hf_auto,model={tokenizer}",
        "--output",
        f"kind=json,path={workdir / 'guidellm.json'}",
        "--disable-console",
    ]


def read_inference_perf(workdir: Path) -> list[Measured]:
    out = []
    path = workdir / "inference-perf" / "per_request_lifecycle_metrics.json"
    for entry in json.loads(path.read_text()):
        metrics = (entry.get("info") or {}).get("response_metrics") or {}
        times, chunks = metrics.get("chunk_times") or [], metrics.get("response_chunks") or []
        if entry.get("error") or not times or not chunks:
            continue
        cid = json.loads(chunks[0]).get("id", "")
        start = entry["start_time"]
        gaps = [(b - a) * 1000.0 for a, b in pairwise(times)]
        out.append(Measured(cid, (times[0] - start) * 1000.0, gaps_ms=gaps))
    return out


def read_guidellm(workdir: Path) -> list[Measured]:
    out = []
    report = json.loads((workdir / "guidellm.json").read_text())
    for benchmark in report["benchmarks"]:
        for entry in benchmark["requests"]["successful"]:
            timings = entry["info"]["timings"]
            first, start = timings.get("first_token_iteration"), timings.get("request_start")
            if first is None or start is None or not entry.get("response_id"):
                continue
            ttft = (first - start) * 1000.0
            out.append(
                Measured(
                    entry["response_id"], ttft, itl_mean_ms=entry.get("inter_token_latency_ms")
                )
            )
    return out


def version_of(env: Path, package: str) -> str:
    probe = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-c",
            f"import importlib.metadata as m; print(m.version({package!r}))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() or VERSIONS.get(package, "?")


#: One table row: a tool's accuracy at one stream count (reported - true, ms), with the CPU the
#: tool, the server and everything else used (peers.py measures it, peers_report.py shows it).
@dataclass
class Row:
    tool: str
    version: str
    streams: int
    ttft_err_p50_ms: float | None
    ttft_err_p99_ms: float | None
    itl_err_p99_ms: float | None
    rate_ratio: float | None
    requests: int = 0
    itl_basis: str = "gap"
    processes: int = 1  # our Locust worker processes (all on the tool's one core)
    tool_cpu: float = 0.0
    server_cpu: float = 0.0
    other_cpu: float = 0.0
