"""Run the whole conformance suite against a target and collect its verdicts.

The run itself is ``conformance.face.runner``'s (a child process; the API key travels in its
environment, never in argv, so it shows in no process list, log or report). Besides the
suite's own reports, ``run.json`` records what was tested (versions, settings) and what the
run cost (wall time, requests, tokens): ``docs/compatibility.md`` and the expectation files
are built from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.face import runner
from conformance.face.runner import EXIT_FAILURES, EXIT_OK
from realservers.targets import Target

__all__ = ["SuiteRun", "SuiteRunError", "catalog_check_ids", "run_suite"]

EXIT_INCOMPLETE = 2  # some checks got no answer in time (conformance.face.reporting)

#: A model on two shared CPU cores can stall for many seconds when the machine is busy; the
#: suite's defaults (30 s without data) are meant for hosted endpoints. Longer limits turn a
#: slow-but-correct answer into a verdict on its content instead of a timeout.
SUITE_ARGS = ["--request-timeout=120", "--total-timeout=300"]
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


def suite_args(target: Target, extra: list[str]) -> list[str]:
    """The suite's arguments for ``target`` (the key goes by environment, not here); a server
    with no key option is run with ``--no-api-key``."""
    keyless = [] if target.api_key else ["--no-api-key"]
    base = [f"--base-url={target.base_url}", f"--model={target.model}", "-rN", *keyless]
    return [*base, *SUITE_ARGS, *extra]


def run_suite(
    target: Target,
    reports_dir: Path,
    *,
    extra_args: list[str] | None = None,
    timeout: float = 900.0,
    allow_incomplete: bool = False,
) -> SuiteRun:
    """Run the suite against ``target``; raise :class:`SuiteRunError` if it gave no verdicts.

    Exit code 1 (MUST failures) is a normal outcome against a real server: the verdicts are
    what we compare. ``timeout`` bounds the whole run. ``allow_incomplete`` accepts a run in
    which some checks got no answer in time (exit 2 with verdicts for the others, results
    ``complete: false``): the matrix publishes those as *not judged*, where a comparison
    with expectations would rather stop.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "results.json").unlink(missing_ok=True)  # never read a previous run's
    log_path = reports_dir / "pytest.log"
    args = suite_args(target, list(extra_args or []))
    cwd = _PROJECT_ROOT if (_PROJECT_ROOT / "pyproject.toml").is_file() else None
    done = runner.run_suite(
        reports_dir,
        args,
        cwd=cwd,
        env=runner.child_env(api_key=target.api_key),
        output=log_path,
        timeout=timeout,
    )
    if done.timed_out:
        raise SuiteRunError(f"suite run exceeded {timeout:.0f}s; see {log_path}")
    accepted = (
        (EXIT_OK, EXIT_FAILURES, EXIT_INCOMPLETE) if allow_incomplete else (EXIT_OK, EXIT_FAILURES)
    )
    if done.returncode not in accepted or not _judged_any(done):
        tail = done.output.strip().splitlines()[-25:]
        raise SuiteRunError(
            f"suite run against {target.title} gave no verdicts (exit {done.returncode}):\n"
            + "\n".join(tail)
        )
    results = done.results
    spent = results.get("spent", {})
    run = {
        "target": target.name,
        "title": target.title,
        "facts": target.facts,
        "finished_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "suite_exit_code": done.returncode,
        "suite_wall_seconds": round(done.wall_s, 2),
        "suite_duration_s": results.get("duration_s"),
        "requests": spent.get("requests"),
        "total_tokens": spent.get("total_tokens"),
        "counts": results.get("counts", {}),
        "command": " ".join(runner.suite_command(reports_dir, args)),  # no key: that went by env
    }
    (reports_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    return SuiteRun(results=results, run=run, reports_dir=reports_dir)


def _judged_any(done: runner.SuiteRun) -> bool:
    """Results with at least one verdict (a preflight stop, also exit 2, has none)."""
    if not done.has_results:
        return False
    checks = done.results.get("checks") or {}
    return any(c.get("outcome") != "not_judged" for c in checks.values())


def catalog_check_ids(workdir: Path, timeout: float = 300.0) -> set[str]:
    """Every check ID the suite collects now, parametrised ones included (``--collect-only``:
    nothing is sent; the run lists each check as not judged in its results.json)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cwd = _PROJECT_ROOT if (_PROJECT_ROOT / "pyproject.toml").is_file() else None
    done = runner.run_suite(
        workdir,
        ["--collect-only"],
        cwd=cwd,
        env=runner.child_env(),
        output=workdir / "pytest.log",
        timeout=timeout,
    )
    if not done.has_results or not done.results.get("checks"):
        tail = "\n".join(done.output.strip().splitlines()[-15:])
        code = done.returncode
        raise SuiteRunError(f"collecting the suite's checks failed (exit {code}):\n{tail}")
    return set(done.results["checks"])
