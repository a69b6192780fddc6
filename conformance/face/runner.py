"""Run the suite as a user would and read what it wrote: the one place that does it.

Every caller that needs verdicts from a whole run comes here: the real-server launcher
(``realservers.suite_runner``), the project's own tests (``tests/suite_runner.py``,
``tests/hostile_runner.py``) and the warm batch worker (``python -m conformance.face.runner
JOBS.json``). A run is ``python -m pytest --pyargs conformance ...`` in a child process:

* the environment drops every ``OPENAI_*`` variable (a key travels as ``OPENAI_API_KEY`` only
  when the caller passes one, never in argv, so no process list or log shows it);
* output goes to a file, the child gets its own session (a timeout kills its whole process
  group; a signal sent to it reaches no one else) and default SIGINT (a shell's background job
  starts with it ignored);
* wall time and peak memory (the kernel's ``VmHWM``, polled until exit: ``ru_maxrss`` of
  ``wait4`` would include the parent's memory at fork time) are measured for every run.

The batch worker runs many jobs in one warm process (``pytest.main`` again and again):
importing pytest, httpx and the SDK costs about a second per run, and the fault matrix has a
hundred. Each job writes ``output.txt`` and ``returncode`` into its reports directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

K = TypeVar("K", bound=Hashable)
#: The suite's pytest arguments: no cache files, no hypothesis plugin (a second of CPU a run).
SUITE = ("--pyargs", "conformance", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
RUN_TIMEOUT_S = 900.0
EXIT_OK, EXIT_FAILURES, EXIT_PREFLIGHT, EXIT_USAGE = 0, 1, 2, 4


@dataclass
class SuiteRun:
    """One finished run: exit code, terminal output, where its reports are, what it cost."""

    returncode: int
    output: str
    reports: Path
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    timed_out: bool = False  # killed after the caller's timeout
    workdir: Path | None = None  # the run's working directory, when it had one of its own

    @property
    def results(self) -> dict[str, Any]:
        """results.json (raises if the run wrote none)."""
        return json.loads((self.reports / "results.json").read_text())

    @property
    def has_results(self) -> bool:
        return (self.reports / "results.json").is_file()

    @property
    def outcomes(self) -> dict[str, str]:
        return {cid: c["outcome"] for cid, c in self.results.get("checks", {}).items()}

    def not_passing(self) -> dict[str, str]:
        return {cid: o for cid, o in self.outcomes.items() if o not in ("pass", "info")}

    def messages(self, prefix: str = "") -> dict[str, str]:
        checks = self.results["checks"]
        return {cid: c["message"] for cid, c in checks.items() if cid.startswith(prefix)}

    def written_files(self) -> list[Path]:
        root = self.workdir or self.reports
        return [p for p in root.rglob("*") if p.is_file()]


def pytest_args(reports: Path, args: Sequence[str]) -> list[str]:
    """The suite's arguments; the caller's come last, so they win (e.g. --reports-dir)."""
    return [*SUITE, f"--reports-dir={reports}", *args]


def suite_command(reports: Path, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *pytest_args(reports, args)]


def child_env(extra: Mapping[str, str] | None = None, api_key: str | None = None) -> dict:
    """This environment without ``OPENAI_*``, plus ``extra`` and the key (if any)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    if api_key:
        env["OPENAI_API_KEY"] = api_key
    return env


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Started:
    """A run in progress: reap it with :func:`finish`."""

    proc: subprocess.Popen
    reports: Path
    output: Path
    started: float
    workdir: Path | None


def start(
    reports: Path,
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    output: Path | None = None,
) -> Started:
    """Start a suite run; its output goes to ``output`` (default: beside ``reports``)."""
    reports = Path(reports)
    output = output or reports.with_name(reports.name + ".output.txt")
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            suite_command(reports, args),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(env) if env is not None else child_env(),
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    return Started(proc, reports, output, time.monotonic(), cwd)


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


def finish(run: Started, timeout: float = RUN_TIMEOUT_S) -> SuiteRun:
    """Wait for the run, tracking its peak memory; kill its process group after ``timeout``."""
    proc, deadline, peak, timed_out = run.proc, run.started + timeout, 0.0, False
    while True:
        peak = max(peak, _high_water_mb(proc.pid))
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            pid, status = os.waitpid(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return SuiteRun(
        returncode=proc.returncode,
        output=run.output.read_text(errors="replace"),
        reports=run.reports,
        wall_s=time.monotonic() - run.started,
        peak_rss_mb=peak,
        timed_out=timed_out,
        workdir=run.workdir,
    )


def run_suite(
    reports: Path,
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    output: Path | None = None,
    timeout: float = RUN_TIMEOUT_S,
) -> SuiteRun:
    """Run the suite once and wait for it (see :func:`start`, :func:`finish`)."""
    return finish(start(reports, args, cwd=cwd, env=env, output=output), timeout)


def run_many(
    jobs: Mapping[K, Callable[[], SuiteRun]],
    workers: int,
    on_done: Callable[[K, SuiteRun], None] | None = None,
) -> dict[K, SuiteRun]:
    """Run jobs (each a call that runs one suite) ``workers`` at a time; most of a hostile
    run's time is spent waiting on timeouts, so they overlap well."""

    def one(key: K) -> tuple[K, SuiteRun]:
        result = jobs[key]()
        if on_done:
            on_done(key, result)
        return key, result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(pool.map(one, jobs))


# --- the warm batch worker ---------------------------------------------------------------------


def run_in_process(reports: Path, args: Sequence[str]) -> int:
    """One job in this process: writes ``output.txt`` and ``returncode`` into ``reports``."""
    reports.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = int(pytest.main(pytest_args(reports, args)))
    (reports / "output.txt").write_text(buffer.getvalue())
    (reports / "returncode").write_text(str(code))
    return code


def read_job(reports: Path) -> SuiteRun:
    """The run a batch job left in ``reports``."""
    return SuiteRun(
        int((reports / "returncode").read_text()), (reports / "output.txt").read_text(), reports
    )


def run_batches(
    jobs: Sequence[tuple[Path, Sequence[str]]], workers: int = 2, timeout: float = RUN_TIMEOUT_S
) -> list[SuiteRun]:
    """Run many jobs in ``workers`` warm processes; results in the order of ``jobs``."""
    if not jobs:
        return []
    shares = [list(jobs[i::workers]) for i in range(workers)]
    procs = []
    for number, share in enumerate(s for s in shares if s):
        plan = Path(share[0][0]).parent.parent / f"jobs-{number}.json"
        plan.write_text(json.dumps([{"reports": str(r), "args": list(a)} for r, a in share]))
        command = [sys.executable, "-m", "conformance.face.runner", str(plan)]
        procs.append(subprocess.Popen(command, env=child_env(), stdin=subprocess.DEVNULL))
    for proc in procs:
        proc.wait(timeout=timeout)
    return [read_job(Path(r)) for r, _ in jobs]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m conformance.face.runner JOBS.json``: the warm batch worker."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for job in json.loads(Path(argv[0]).read_text()):
        run_in_process(Path(job["reports"]), job["args"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
