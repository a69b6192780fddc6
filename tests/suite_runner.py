"""Run the conformance suite in a subprocess, as a user would, and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUITE_TIMEOUT_S = 120
API_KEY = "sk-test-0123456789abcdef-SECRET"


@dataclass
class SuiteRun:
    returncode: int
    output: str
    reports: Path

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.reports / "results.json").read_text())

    @property
    def outcomes(self) -> dict[str, str]:
        return {cid: c["outcome"] for cid, c in self.results["checks"].items()}

    def not_passing(self) -> dict[str, str]:
        return {cid: o for cid, o in self.outcomes.items() if o not in ("pass", "info")}


def run_suite(reports: Path, *args: str, env: dict[str, str] | None = None) -> SuiteRun:
    """``python -m pytest --pyargs conformance ARGS`` with reports in ``reports``."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "conformance",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--reports-dir={reports}",
        *args,
    ]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    clean_env.update(env or {})
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_S,
        env=clean_env,
        cwd=reports.parent,
    )
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, reports)


def run_many(jobs: list[tuple[Path, list[str]]], workers: int = 2) -> list[SuiteRun]:
    """Run many suite invocations in ``workers`` warm processes (see fault_worker.py)."""
    if not jobs:
        return []
    here = Path(__file__).resolve().parent
    shares = [jobs[i::workers] for i in range(workers)]
    procs = []
    for number, share in enumerate(s for s in shares if s):
        plan = share[0][0].parent.parent / f"jobs-{number}.json"
        plan.write_text(json.dumps([{"reports": str(r), "args": a} for r, a in share]))
        procs.append(
            subprocess.Popen(
                [sys.executable, str(here / "fault_worker.py"), str(plan)],
                env={k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")},
            )
        )
    for proc in procs:
        proc.wait(timeout=SUITE_TIMEOUT_S * 5)
    return [
        SuiteRun(int((r / "returncode").read_text()), (r / "output.txt").read_text(), r)
        for r, _ in jobs
    ]


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
