"""Run the whole conformance suite against a target, in a subprocess, and collect its verdicts.

A subprocess, not an in-process ``pytest.main``: the suite is a pytest plugin with session
state, and the caller is often pytest itself (the CI test) or nox. The API key travels in the
child's environment (``OPENAI_API_KEY``), never in argv, so it shows in no process list, log
or report. Besides the suite's own reports, ``run.json`` records what was tested (versions,
settings) and what the run cost (wall time, requests, tokens): ``docs/compatibility.md`` and
the expectation files are built from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .targets import Target

__all__ = ["SuiteRun", "SuiteRunError", "run_suite"]

EXIT_OK, EXIT_FAILURES, EXIT_PREFLIGHT = 0, 1, 2
#: A model on two shared CPU cores can stall for many seconds when the machine is busy; the
#: suite's defaults (30 s without data) are meant for hosted endpoints. Longer limits turn a
#: slow-but-correct answer into a verdict on its content instead of a timeout.
SUITE_ARGS = ["--request-timeout=120", "--total-timeout=300"]
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SuiteRunError(RuntimeError):
    """The suite reached no verdicts (preflight stop, crash, timeout); carries the log tail."""


@dataclass(frozen=True)
class SuiteRun:
    """One finished run: its verdicts (results.json) and the facts of the run (run.json)."""

    results: dict[str, Any]
    run: dict[str, Any]
    reports_dir: Path

    @property
    def outcomes(self) -> dict[str, str]:
        return {cid: c["outcome"] for cid, c in self.results.get("checks", {}).items()}


def suite_command(target: Target, reports_dir: Path, extra: list[str]) -> list[str]:
    """The pytest command line; ``--pyargs`` so it works from a source tree or a wheel."""
    return [
        sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-rN",
        f"--base-url={target.base_url}", f"--model={target.model}",
        f"--reports-dir={reports_dir}", *SUITE_ARGS, *extra,
    ]  # fmt: skip


def run_suite(
    target: Target,
    reports_dir: Path,
    *,
    extra_args: list[str] | None = None,
    timeout: float = 900.0,
) -> SuiteRun:
    """Run the suite against ``target``; raise :class:`SuiteRunError` if it gave no verdicts.

    Exit code 1 (MUST failures) is a normal outcome against a real server: the verdicts are
    what we compare. ``timeout`` bounds the whole run.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    results_path = reports_dir / "results.json"
    results_path.unlink(missing_ok=True)  # never read a previous run's verdicts
    log_path = reports_dir / "pytest.log"
    cmd = suite_command(target, reports_dir, list(extra_args or []))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if target.api_key:
        env["OPENAI_API_KEY"] = target.api_key
    cwd = _PROJECT_ROOT if (_PROJECT_ROOT / "pyproject.toml").is_file() else None
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=cwd, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise SuiteRunError(f"suite run exceeded {timeout:.0f}s; see {log_path}") from exc
    wall = time.monotonic() - started
    if proc.returncode not in (EXIT_OK, EXIT_FAILURES) or not results_path.is_file():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-25:]
        raise SuiteRunError(
            f"suite run against {target.title} gave no verdicts (exit {proc.returncode}):\n"
            + "\n".join(tail)
        )
    results = json.loads(results_path.read_text())
    spent = results.get("spent", {})
    run = {
        "target": target.name,
        "title": target.title,
        "facts": target.facts,
        "finished_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "suite_exit_code": proc.returncode,
        "suite_wall_seconds": round(wall, 2),
        "suite_duration_s": results.get("duration_s"),
        "requests": spent.get("requests"),
        "total_tokens": spent.get("total_tokens"),
        "counts": results.get("counts", {}),
        "command": " ".join(cmd),  # holds no key: that went through the environment
    }
    (reports_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    return SuiteRun(results=results, run=run, reports_dir=reports_dir)
