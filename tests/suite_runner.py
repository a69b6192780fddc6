"""The project's tests run the suite through ``conformance.face.runner``; these are their shortcuts
(the names test modules import: SuiteRun, run_suite, run_many, suite_args, API_KEY)."""

from __future__ import annotations

from pathlib import Path

from conformance.face import runner
from conformance.face.runner import SuiteRun

__all__ = ["API_KEY", "SuiteRun", "fault_url", "run_many", "run_suite", "suite_args"]

SUITE_TIMEOUT_S = 120
API_KEY = "sk-test-0123456789abcdef-SECRET"


def run_suite(reports: Path, *args: str, env: dict[str, str] | None = None) -> SuiteRun:
    """``python -m pytest --pyargs conformance ARGS`` with reports in ``reports``."""
    return runner.run_suite(
        reports, args, cwd=reports.parent, env=runner.child_env(env), timeout=SUITE_TIMEOUT_S
    )


def run_many(jobs: list[tuple[Path, list[str]]], workers: int = 2) -> list[SuiteRun]:
    """Run many suite invocations in ``workers`` warm processes."""
    return runner.run_batches(jobs, workers, timeout=SUITE_TIMEOUT_S * 5)


def fault_url(origin: str, *names: str) -> str:
    """Base URL under which the reference server plays the given faults / variants."""
    return f"{origin}/faults/{','.join(names)}/v1" if names else f"{origin}/v1"


def suite_args(origin: str, *names: str) -> list[str]:
    """Arguments pointing the suite at a (faulty) reference server with our test key."""
    return [
        f"--base-url={fault_url(origin, *names)}",
        f"--api-key={API_KEY}",
        "--model=chatcompat-ref-1",
    ]
