"""Run many suite invocations in one process: ``python fault_worker.py jobs.json``.

Starting Python and importing pytest, httpx and the SDK costs about a second per run; the
fault matrix has a hundred runs. Repeating ``pytest.main`` in one warm process keeps each run
to its requests. Each job is ``{"reports": dir, "args": [...]}``; the worker writes the
terminal output to ``<dir>/output.txt`` and the exit code to ``<dir>/returncode``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest


def run_job(reports: Path, args: list[str]) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = pytest.main(
            [
                "--pyargs",
                "conformance",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--reports-dir={reports}",
                *args,
            ]
        )
    (reports / "output.txt").write_text(buffer.getvalue())
    (reports / "returncode").write_text(str(int(code)))


def main() -> None:
    for job in json.loads(Path(sys.argv[1]).read_text()):
        run_job(Path(job["reports"]), job["args"])


if __name__ == "__main__":
    main()
