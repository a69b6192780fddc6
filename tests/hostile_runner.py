"""Run the suite in subprocesses, several at once, measuring wall time and peak memory.

Why not ``suite_runner.run_suite``: the hostile tests must also prove that memory stays
bounded (a 1 GiB body, an endless stream), so each run's peak RSS is read from the kernel's
high-water mark (``VmHWM`` in /proc/PID/status, polled until the process exits; the
``ru_maxrss`` of ``wait4`` would include this test process's memory at fork time); and the
catalogue is run concurrently, most of its runs being spent waiting on timeouts. The command
line is the one a user types (``python -m pytest --pyargs conformance``), in a fresh working
directory per run, so every file a run writes is in it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_TIMEOUT_S = 150.0


@dataclass
class MeasuredRun:
    returncode: int
    output: str
    workdir: Path
    wall_s: float
    peak_rss_mb: float

    @property
    def reports(self) -> Path:
        return self.workdir / "reports"

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.reports / "results.json").read_text())

    @property
    def outcomes(self) -> dict[str, str]:
        return {cid: c["outcome"] for cid, c in self.results["checks"].items()}

    def messages(self, prefix: str = "") -> dict[str, str]:
        checks = self.results["checks"]
        return {cid: c["message"] for cid, c in checks.items() if cid.startswith(prefix)}

    def written_files(self) -> list[Path]:
        return [p for p in self.workdir.rglob("*") if p.is_file()]


def suite_command(reports: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "conformance",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",  # hypothesis's plugin costs a second of CPU per run
        f"--reports-dir={reports}",
        *args,
    ]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_suite(workdir: Path, *args: str) -> subprocess.Popen:
    """Start a suite run in ``workdir`` (output to workdir/output.txt); reap it with ``finish``."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONUNBUFFERED"] = "1"
    out = (workdir / "output.txt").open("wb")
    try:
        return subprocess.Popen(
            suite_command(workdir / "reports", *args),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            start_new_session=True,  # signals sent to it reach no one else
            # As a terminal would: a shell's background job (CI runners often are one) starts
            # with SIGINT ignored, the child would inherit that, and Ctrl-C could not be tested.
            preexec_fn=_default_sigint,
        )
    finally:
        out.close()


def _high_water_mb(pid: int) -> float:
    """The process's peak RSS so far (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def finish(proc: subprocess.Popen, workdir: Path, started: float, timeout: float) -> MeasuredRun:
    """Wait for the run (killing it after ``timeout``), tracking its peak RSS."""
    deadline = started + timeout
    peak = 0.0
    while True:
        peak = max(peak, _high_water_mb(proc.pid))
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status = os.waitpid(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = (workdir / "output.txt").read_text(errors="replace")
    return MeasuredRun(
        returncode=proc.returncode,
        output=output,
        workdir=workdir,
        wall_s=time.monotonic() - started,
        peak_rss_mb=peak,
    )


def run_suite_measured(workdir: Path, *args: str, timeout: float = RUN_TIMEOUT_S) -> MeasuredRun:
    started = time.monotonic()
    return finish(start_suite(workdir, *args), workdir, started, timeout)


def run_many(
    jobs: dict[str, tuple[Path, list[str]]],
    workers: int = 6,
    on_done: Callable[[str, MeasuredRun], None] | None = None,
) -> dict[str, MeasuredRun]:
    """Run several suites concurrently (most of their time is spent waiting on timeouts)."""

    def one(name: str) -> tuple[str, MeasuredRun]:
        workdir, args = jobs[name]
        run = run_suite_measured(workdir, *args)
        if on_done:
            on_done(name, run)
        return name, run

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, jobs))
