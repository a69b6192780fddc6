"""The accuracy benchmark (``nox -s bench-accuracy``): our numbers against the server's truth.

For each concurrency level it starts the truth server
(``loadtests.selfbench.truth_server``: TTFT 50 ms,
ITL 10 ms, 100 tokens, logging its own send times) pinned to one core, runs our locustfile
headless pinned to the other, joins the per-request CSV with the send log on the completion
id, and prints the error table: reported minus true, in ms (TTFT error p50/p99, ITL error
p99), content events/s against the ideal rate, achieved concurrency, and how much CPU other
processes on the machine used meanwhile (a shared machine makes every tool look worse).

    python -m loadtests.selfbench.accuracy [--levels 16,64,256] [--seconds 15] [--rt]
        [--user-stamps]

``--rt`` (the default when run as root) runs both processes SCHED_FIFO (``chrt -f 1``) so
that other processes on a shared machine cannot preempt them (``--no-rt``: taskset only);
``--user-stamps`` measures the fallback used where kernel receive timestamps are not
available; ``--server reference`` uses the uvicorn reference server instead (to show why
we do not: it cannot sustain 256 streams on one core).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from conformance.transport.ports import free_port, wait_for_port
from loadtests.selfbench.truth import compare, load_send_log
from loadtests.stats import summarize

TTFT_MS = 50.0
ITL_MS = 10.0
TOKENS = 100
TARGETS = {  # level: (TTFT err p50, TTFT err p99, ITL err p99, min events/s ratio), ms
    16: (0.3, 1.0, 0.1, None),
    64: (0.3, 2.5, 0.1, None),
    256: (0.5, 100.0, 2.0, 0.97),
}


@dataclass
class LevelResult:
    streams: int
    ttft_p50: float | None
    ttft_p99: float | None
    itl_p99: float | None
    itl_p50: float | None
    events_ratio: float
    events_per_s: float
    concurrency: float
    requests: int
    unmatched: int
    other_cpu: float
    tool_cpu: float
    server_cpu: float
    read_delay_p99: float | None


def _cpu_seconds_total() -> float:
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:]
    ticks = [int(x) for x in fields]
    busy = sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _cpu_seconds_tree(pid: int) -> float:
    """CPU time of a process and its children (reaped ones included)."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            parts = handle.read().rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(x) for x in parts[11:15])
        total = (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    return total


def _prefix(core: int, rt: bool) -> list[str]:
    out = []
    if rt and shutil.which("chrt"):
        out += ["chrt", "-f", "1"]
    if shutil.which("taskset"):
        out += ["taskset", "-c", str(core)]
    return out


def _start_server(kind: str, log: Path, rt: bool) -> tuple[subprocess.Popen, int]:
    if kind == "reference":
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "conformance.reference",
            "--port",
            str(port),
            "--ttft-ms",
            str(TTFT_MS),
            "--itl-ms",
            str(ITL_MS),
            "--send-log",
            str(log),
        ]
        server = subprocess.Popen(_prefix(0, rt) + command, stdout=subprocess.DEVNULL)
        wait_for_port(port, timeout=15)
        return server, port
    command = [
        sys.executable,
        "-m",
        "loadtests.selfbench.truth_server",
        "--port",
        "0",
        "--ttft-ms",
        str(TTFT_MS),
        "--itl-ms",
        str(ITL_MS),
        "--send-log",
        str(log),
        "--max-seconds",
        "900",
        "--spin-us",
        "0" if rt else "1500",
    ]
    server = subprocess.Popen(_prefix(0, rt) + command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline().split()[2].rsplit(":", 1)[1])
    return server, port


def locust_command(port: int, streams: int, seconds: float, workdir: Path, name: str) -> list[str]:
    """Our locustfile, headless, closed loop: ``streams`` users, 100 tokens, reports in workdir."""
    locustfile = Path(__file__).with_name("locustfile.py")
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--only-summary",
        "--host",
        f"http://127.0.0.1:{port}/v1",
        "-u",
        str(streams),
        "-r",
        str(streams),
        "-t",
        f"{seconds:g}s",
        "--max-tokens",
        str(TOKENS),
        "--ignore-eos",
        "--prompt-tokens",
        "32",
        "--warmup",
        "2",
        "--report-dir",
        str(workdir),
        "--report-name",
        name,
        "--max-seconds",
        str(seconds + 30),
        "--exit-code-on-error",
        "0",
    ]
    return command


def run_level(
    streams: int,
    seconds: float,
    workdir: Path,
    rt: bool,
    user_stamps: bool,
    server_kind: str,
    extra: list[str],
    layer: str = "",
) -> LevelResult:
    log = workdir / f"send-{streams}.log"
    log.unlink(missing_ok=True)
    server, port = _start_server(server_kind, log, rt)
    name = f"accuracy-{streams}"
    command = locust_command(port, streams, seconds, workdir, name)
    if user_stamps:
        command.append("--user-stamps")
    command += extra
    if layer:  # one HTTP layer in the bare gevent harness instead of the Locust user
        command = [
            sys.executable,
            "-m",
            "loadtests.selfbench.layers",
            "--host",
            f"http://127.0.0.1:{port}/v1",
        ]
        command += ["--layer", layer, "--streams", str(streams), "--seconds", f"{seconds:g}"]
        command += ["--tokens", str(TOKENS), "--out", str(workdir / f"{name}-layer.json")]
    cpu_before = _cpu_seconds_total()
    started = time.monotonic()
    tool = subprocess.Popen(
        _prefix(1, rt) + command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    tool_cpu = 0.0
    try:
        while tool.poll() is None:
            tool_cpu = max(tool_cpu, _cpu_seconds_tree(tool.pid))
            server_cpu = _cpu_seconds_tree(server.pid)
            time.sleep(0.2)
            if time.monotonic() - started > seconds + 120:
                tool.kill()
    finally:
        server_cpu = _cpu_seconds_tree(server.pid)
        server.terminate()
        server.wait(timeout=30)
    elapsed = time.monotonic() - started
    other_cpu = max(_cpu_seconds_total() - cpu_before - tool_cpu - server_cpu, 0.0) / elapsed
    if layer:
        harness = json.loads((workdir / f"{name}-layer.json").read_text())
        rows = [(r[0], r[1], r[2]) for r in harness["samples"]]
        events = sum(r[4] for r in harness["samples"]) / harness["elapsed_s"]
        overall = {"achieved_concurrency": float(streams), "read_delay_ms": {"p99": None}}
    else:
        overall = json.loads((workdir / f"{name}.json").read_text())["overall"]
        rows = _csv_samples(workdir / f"{name}-samples.csv")
        events = overall["throughput"]["content_events_per_s"]
    errors = compare(rows, load_send_log(log))
    ttft, itl = summarize(errors.ttft), summarize(errors.itl)
    ideal = streams * TOKENS / ((TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000.0)
    return LevelResult(
        streams=streams,
        ttft_p50=ttft["p50"],
        ttft_p99=ttft["p99"],
        itl_p99=itl["p99"],
        itl_p50=itl["p50"],
        events_ratio=events / ideal,
        events_per_s=events,
        concurrency=overall["achieved_concurrency"],
        requests=errors.matched,
        unmatched=errors.unmatched,
        other_cpu=other_cpu,
        tool_cpu=tool_cpu / elapsed,
        server_cpu=server_cpu / elapsed,
        read_delay_p99=overall["read_delay_ms"]["p99"],
    )


def _csv_samples(path: Path) -> list[tuple[str, float | None, list[float]]]:
    out = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["ok"] != "1":
                continue
            ttft = float(row["ttft_ms"]) if row["ttft_ms"] else None
            gaps = [float(g) for g in row["itl_ms"].split()]
            out.append((row["completion_id"], ttft, gaps))
    return out


def _fmt(value: float | None, digits: int = 2, sign: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def table(results: list[LevelResult]) -> str:
    lines = [
        "| streams | TTFT err p50 | TTFT err p99 | ITL err p99 | events/s vs ideal "
        "| achieved concurrency | requests | tool lag p99 | tool CPU | server CPU | other CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.streams} | {_fmt(r.ttft_p50, 3)} | {_fmt(r.ttft_p99, 3)} "
            f"| {_fmt(r.itl_p99, 3)} | {r.events_ratio:.3f} ({r.events_per_s:.0f}/s) "
            f"| {r.concurrency:.1f} | {r.requests} | {_fmt(r.read_delay_p99, 2, False)} ms "
            f"| {r.tool_cpu:.2f} | {r.server_cpu:.2f} | {r.other_cpu:.2f} |"
        )
    return "\n".join(lines)


def verdicts(results: list[LevelResult]) -> list[str]:
    out = []
    for r in results:
        target = TARGETS.get(r.streams)
        if target is None:
            continue
        p50, p99, itl, ratio = target
        misses = []
        if r.ttft_p50 is None or abs(r.ttft_p50) > p50:
            misses.append(f"TTFT p50 {_fmt(r.ttft_p50, 3)} (target <= {p50})")
        if r.ttft_p99 is None or r.ttft_p99 > p99:
            misses.append(f"TTFT p99 {_fmt(r.ttft_p99, 3)} (target <= {p99})")
        if r.itl_p99 is None or r.itl_p99 > itl:
            misses.append(f"ITL p99 {_fmt(r.itl_p99, 3)} (target <= {itl})")
        if ratio is not None and r.events_ratio < ratio:
            misses.append(f"events/s {r.events_ratio:.3f} (target >= {ratio})")
        verdict = "meets the target" if not misses else "misses: " + "; ".join(misses)
        out.append(f"{r.streams} streams: {verdict}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.selfbench.accuracy")
    parser.add_argument("--levels", default="16,64,256")
    parser.add_argument("--seconds", type=float, default=15.0, help="run time per level")
    parser.add_argument(
        "--rt",
        action=argparse.BooleanOptionalAction,
        default=os.geteuid() == 0 and shutil.which("chrt") is not None,
        help="run server and tool SCHED_FIFO (default: when root and chrt exists)",
    )
    parser.add_argument("--user-stamps", action="store_true", help="measure user-space stamps")
    parser.add_argument("--server", choices=["truth", "reference"], default="truth")
    parser.add_argument("--keep", type=Path, help="keep the reports and logs in this directory")
    parser.add_argument("--locust-args", default="", help="more locust options, one string")
    parser.add_argument(
        "--layer",
        default="",
        help="measure one HTTP layer of loadtests.selfbench.layers "
        "(raw, raw-user, fasthttp, requests, "
        "requests-unbuffered) in a bare gevent harness instead of the Locust user",
    )
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="chatcompat-accuracy-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for level in (int(x) for x in args.levels.split(",") if x):
        result = run_level(
            level,
            args.seconds,
            workdir,
            args.rt,
            args.user_stamps,
            args.server,
            shlex.split(args.locust_args),
            args.layer,
        )
        results.append(result)
        print(f"measured {level} streams", file=sys.stderr, flush=True)
    stamps = "user-space" if args.user_stamps else "kernel receive (user-space fallback)"
    if args.layer:
        stamps = f"HTTP layer {args.layer!r} in the bare gevent harness"
    isolation = "SCHED_FIFO + taskset" if args.rt else "taskset"
    print(
        f"\naccuracy vs {args.server} server (TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, {TOKENS} "
        f"tokens); errors = reported - true, ms; stamps: {stamps}; isolation: {isolation}; "
        f"{args.seconds:g} s per level; CPU columns in cores\n"
    )
    print(table(results))
    print()
    print("\n".join(verdicts(results)))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
