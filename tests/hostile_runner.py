"""The hostile tests' view of ``conformance.face.runner``: one fresh working directory per run.

The command line is the one a user types (``python -m pytest --pyargs conformance``), run in
``workdir`` with reports in ``workdir/reports`` and the output in ``workdir/output.txt``, so
every file a run writes is in it (the key scan reads them all). Wall time and peak memory
come with every run (the hostile tests prove that memory stays bounded).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conformance.face import runner
from conformance.face.runner import SuiteRun

MeasuredRun = SuiteRun
RUN_TIMEOUT_S = 150.0


def start_suite(workdir: Path, *args: str) -> runner.Started:
    """Start a suite run in ``workdir``; reap it with ``finish``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return runner.start(
        workdir / "reports",
        args,
        cwd=workdir,
        env=runner.child_env(),
        output=workdir / "output.txt",
    )


def finish(run: runner.Started, timeout: float) -> SuiteRun:
    return runner.finish(run, timeout)


def run_suite_measured(workdir: Path, *args: str, timeout: float = RUN_TIMEOUT_S) -> SuiteRun:
    return finish(start_suite(workdir, *args), timeout)


def run_many(
    jobs: dict[str, tuple[Path, list[str]]],
    workers: int = 6,
    on_done: Callable[[str, SuiteRun], None] | None = None,
    timeout: float = RUN_TIMEOUT_S,
) -> dict[str, SuiteRun]:
    """Run several suites concurrently (most of their time is spent waiting on timeouts)."""
    calls = {
        name: (lambda w=workdir, a=args: run_suite_measured(w, *a, timeout=timeout))
        for name, (workdir, args) in jobs.items()
    }
    return runner.run_many(calls, workers, on_done)
