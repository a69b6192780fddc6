"""Side-by-side accuracy (``nox -s bench-peers``): ours and the peer load tools, one truth.

For each level (16, 64, 256 concurrent streams, closed loop, 100 output tokens) and each
tool, a fresh truth server (TTFT 50 ms, ITL 10 ms; ``loadtests.selfbench.truth_server``) is
pinned to
core 0 and the tool to core 1 (``taskset``), both at normal priority: no real-time
scheduling, so the numbers are what an ordinary user gets on this machine. The server logs
when each request arrived and when each token was sent; each tool's own per-request output
is joined with that log on the completion id.

Everything is judged in one window of the server's clock, ``[first arrival + 3 s, first
arrival + seconds - 2 s]``, the same for every tool (start-up, connection set-up and the
end of the run lie outside it):

* TTFT error: the tool's TTFT minus the true one (first token sent - request arrived);
* ITL error: each reported gap minus the true gap (GuideLLM: its per-request mean minus the
  true mean, all it reports);
* rate ratio: tokens the server sent inside the window per second, over the ideal closed
  loop rate ``streams * 100 / 1.04 s``: how well the tool keeps its streams busy.

    python -m loadtests.selfbench.peers [--levels 16,64,256] [--seconds 20] [--tools ...] [--docs]

Also printed: CPU used by the tool, the server and every other process during each run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from loadtests.selfbench import peer_tools
from loadtests.selfbench.accuracy import (
    ITL_MS,
    TOKENS,
    TTFT_MS,
    _csv_samples,
    _prefix,
    locust_command,
)
from loadtests.selfbench.peer_tools import Measured, Row, Skipped
from loadtests.selfbench.peers_report import TOOLS, machine, replace_section, report
from loadtests.selfbench.truth import TruthRecord, load_send_log
from loadtests.stats import summarize

WARMUP_S = 3.0
COOLDOWN_S = 2.0
ROOT = Path(__file__).resolve().parent.parent


def _busy_cpu_seconds() -> float:
    with open("/proc/stat") as handle:
        ticks = [int(x) for x in handle.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start_server(log: Path) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "loadtests.selfbench.truth_server", "--port", "0"]
    command += ["--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS), "--send-log", str(log)]
    command += ["--max-seconds", "900"]
    server = subprocess.Popen(
        _prefix(0, False) + command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # its own session: see run_one
    )
    assert server.stdout is not None
    port = int(server.stdout.readline().split()[2].rsplit(":", 1)[1])
    return server, port


def window(truth: dict[str, TruthRecord], seconds: float) -> tuple[int, int]:
    """The measurement window on the server's clock (ns), the same rule for every tool."""
    first = min(r.start_ns for r in truth.values())
    return first + int(WARMUP_S * 1e9), first + int((seconds - COOLDOWN_S) * 1e9)


def judge(
    tool: str,
    version: str,
    streams: int,
    measured: list[Measured],
    truth: dict[str, TruthRecord],
    seconds: float,
) -> Row:
    """Errors of the tool's own numbers against the send log, inside the common window."""
    lo, hi = window(truth, seconds)
    ttft, itl = [], []
    basis = "gap"
    for m in measured:
        record = truth.get(m.completion_id)
        if record is None or not record.done or not lo <= record.start_ns < hi:
            continue
        if m.ttft_ms is not None:
            ttft.append(m.ttft_ms - record.ttft_ms)
        true_gaps = record.gaps_ms()
        if m.gaps_ms is not None:
            itl += [r - t for r, t in zip(m.gaps_ms, true_gaps, strict=False)]
        elif m.itl_mean_ms is not None and true_gaps:
            basis = "request mean"
            itl.append(m.itl_mean_ms - sum(true_gaps) / len(true_gaps))
    sent = sum(lo <= t < hi for r in truth.values() for t in r.token_sent_ns)
    ideal = streams * TOKENS / ((TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000.0)
    ttft_s, itl_s = summarize(ttft), summarize(itl)
    return Row(
        tool=tool,
        version=version,
        streams=streams,
        ttft_err_p50_ms=ttft_s["p50"],
        ttft_err_p99_ms=ttft_s["p99"],
        itl_err_p99_ms=itl_s["p99"],
        rate_ratio=sent / ((hi - lo) / 1e9) / ideal,
        requests=len(ttft),
        itl_basis=basis,
    )


def _ours(port: int, streams: int, seconds: float, workdir: Path, processes: int) -> list[str]:
    """Our locustfile; ``--processes N`` forks N workers (all on the tool's one core).

    ``--itl-rows none``: Locust's own statistics rows (one per ITL gap by default) are a
    display for its web UI, not a measurement; they cost about a quarter of the tool's
    CPU, and the peers keep no such live rows either. Our report is unchanged by it.
    """
    command = locust_command(port, streams, seconds, workdir, f"ours-{streams}")
    command += ["--itl-rows", "none"]
    return command + (["--processes", str(processes)] if processes > 1 else [])


def _read_ours(workdir: Path, streams: int) -> list[Measured]:
    rows = _csv_samples(workdir / f"ours-{streams}-samples.csv")
    return [Measured(cid, ttft, gaps_ms=gaps) for cid, ttft, gaps in rows]


def run_one(
    tool: str,
    streams: int,
    seconds: float,
    workdir: Path,
    envs: dict[str, Path],
    tokenizer: Path,
    processes: int = 1,
) -> Row:
    """One tool at one level against a fresh truth server; returns its row.

    Server and tool each start in a new session, as each would from its own terminal. Where
    Linux groups CPU time by session (autogroup), each then gets its own share of its core
    instead of splitting one share between them; the same for every tool.
    """
    work = workdir / f"{tool}-{streams}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "send.log"
    log.unlink(missing_ok=True)  # the server appends
    server, port = _start_server(log)
    if tool == "chatcompat":
        command, version = _ours(port, streams, seconds, work, processes), _our_version()
    elif tool == "inference-perf":
        env = envs[tool]
        command = peer_tools.inference_perf_command(env, port, streams, seconds, work, tokenizer)
        version = peer_tools.version_of(env, tool)
    else:
        env = envs[tool]
        command = peer_tools.guidellm_command(env, port, streams, seconds, work, tokenizer)
        version = peer_tools.version_of(env, tool)
    busy0, children0, started = _busy_cpu_seconds(), _children_cpu(), time.monotonic()
    with (work / "tool.log").open("w") as out:
        tool_proc = subprocess.Popen(
            _prefix(1, False) + command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work,
            env={**os.environ, **peer_tools.OFFLINE},
            start_new_session=True,
        )
        try:
            tool_proc.wait(timeout=seconds + 240)
        except subprocess.TimeoutExpired:
            os.killpg(tool_proc.pid, signal.SIGKILL)
            tool_proc.wait()
    elapsed = time.monotonic() - started
    tool_cpu = _children_cpu() - children0
    server.terminate()
    server.wait(timeout=30)
    server_cpu = _children_cpu() - children0 - tool_cpu
    busy = _busy_cpu_seconds() - busy0
    truth = load_send_log(log)
    if not truth:
        raise RuntimeError(f"{tool} at {streams} streams: no request reached the server")
    readers = {
        "chatcompat": lambda: _read_ours(work, streams),
        "inference-perf": lambda: peer_tools.read_inference_perf(work),
        "guidellm": lambda: peer_tools.read_guidellm(work),
    }
    row = judge(tool, version, streams, readers[tool](), truth, seconds)
    row.processes = processes if tool == "chatcompat" else 1
    row.tool_cpu = tool_cpu / elapsed
    row.server_cpu = server_cpu / elapsed
    row.other_cpu = max(busy - tool_cpu - server_cpu, 0.0) / elapsed
    return row


def _our_version() -> str:
    try:
        from importlib.metadata import version

        return version("chatcompat")
    except Exception:  # a source checkout without metadata
        return "dev"


def prepare(tools: list[str], root: Path) -> tuple[dict[str, Path], dict[str, str], Path | None]:
    """Install the peers (skipping those that cannot run, with the reason) and the tokenizer."""
    envs, skipped = {}, {}
    for tool in tools:
        if tool == "chatcompat":
            continue
        try:
            if tool == "vllm":
                raise Skipped(vllm_reason())
            envs[tool] = peer_tools.ensure_env(tool, root)
        except Skipped as exc:
            skipped[tool] = str(exc)
    tokenizer = None
    builder = envs.get("guidellm") or envs.get("inference-perf")
    if builder is not None:
        tokenizer = peer_tools.build_tokenizer(builder / "bin" / "python", root)
    return envs, skipped, tokenizer


def vllm_reason() -> str:
    """Why vLLM's ``bench serve`` is not run (checked with ``pip install --dry-run vllm``)."""
    return (
        "not installed: vllm 0.33.0 resolves to 146 packages, torch 2.14.0 with 25 NVIDIA "
        "CUDA packages among them (several GB), to run a benchmark client on a CPU machine"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.selfbench.peers")
    parser.add_argument("--levels", default="16,64,256")
    parser.add_argument("--seconds", type=float, default=20.0, help="run time per tool and level")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--envs", type=Path, default=None, help="where the peers' venvs live")
    parser.add_argument("--keep", type=Path, help="keep every log and report here")
    parser.add_argument(
        "--processes",
        default="16:1,64:1,256:1",
        help="our Locust worker processes per level (level:N,...), all on the tool's core",
    )
    parser.add_argument("--json", type=Path, help="write the rows here (docs/bench-peers.json)")
    parser.add_argument(
        "--docs", type=Path, help="replace the bench-peers section of this Markdown file"
    )
    args = parser.parse_args(argv)
    if args.seconds < WARMUP_S + COOLDOWN_S + 1:
        parser.error(
            f"--seconds must be at least {WARMUP_S + COOLDOWN_S + 1:g} (warm-up, cool-down)"
        )
    tools = [t for t in args.tools.split(",") if t]
    root = args.envs or peer_tools.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    envs, skipped, tokenizer = prepare(tools, root)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="chatcompat-peers-"))
    rows: list[Row] = []
    processes = {int(k): int(v) for k, v in (x.split(":") for x in args.processes.split(","))}
    for level in (int(x) for x in args.levels.split(",") if x):
        for tool in tools:
            if tool in skipped or (tool != "chatcompat" and tokenizer is None):
                continue
            row = run_one(
                tool, level, args.seconds, workdir, envs, tokenizer or root, processes.get(level, 1)
            )
            rows.append(row)
            print(f"measured {tool} at {level} streams", file=sys.stderr, flush=True)
    text = report(rows, skipped, args.seconds)
    print("\n" + text)
    if args.json:
        measured = machine()["date"]
        data = [{**asdict(r), "measured": measured} for r in rows]
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    if args.docs:
        replace_section(args.docs, text)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
