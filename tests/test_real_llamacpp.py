"""CI: the whole suite against llama.cpp's real server gives exactly the triaged verdicts.

``expectations/llamacpp.toml`` pins every check's verdict on llama.cpp (xllamacpp wheel,
SmolLM2-135M, temperature 0, per-slot KV cache) with one line of triage for each non-pass.
A changed verdict means llama.cpp changed or the suite's judgement did: either way a person
must look, so the test fails with ``check: expected X, got Y``. Verdicts marked ``unstable``
(sampling or timing dependent) are recorded but not compared. About 40 s on 2 idle cores
(one server start, one suite run: ~100 requests, ~5k tokens).

On a developer machine without xllamacpp the server tests skip; under CI (``CI`` set) a
missing xllamacpp is a failure, so the comparison can never silently drop out of CI.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from realservers import expectations
from realservers.suite_runner import SuiteRun, run_suite
from realservers.targets import start_target

ROOT = Path(__file__).resolve().parents[1]
EXPECTATIONS = ROOT / "expectations" / "llamacpp.toml"
REGENERATE = "nox -s real-llamacpp -- --update-expectations"

pytestmark = pytest.mark.real_server


def _require_xllamacpp() -> None:
    if importlib.util.find_spec("xllamacpp") is not None:
        return
    message = "xllamacpp (llama.cpp server wheel) is not installed: pip install -e '.[real]'"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def llamacpp_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SuiteRun, str]]:
    """One full suite run against a fresh llama.cpp server; yields the run and its API key."""
    _require_xllamacpp()
    work = tmp_path_factory.mktemp("real-llamacpp")
    with start_target("llamacpp", work / "server") as target:
        run = run_suite(target, work / "reports", timeout=600)
        key = target.api_key or ""
    yield run, key


def test_expectation_file_is_fully_triaged() -> None:
    """Every non-pass carries a one-line why; no TODO left by --update-expectations."""
    exp = expectations.load(EXPECTATIONS)
    assert exp.checks, f"{EXPECTATIONS} is missing or empty; create it with `{REGENERATE}`"
    assert expectations.problems(exp) == []


@pytest.mark.slow
def test_llamacpp_verdicts_match_expectations(llamacpp_run: tuple[SuiteRun, str]) -> None:
    run, _ = llamacpp_run
    comparison = expectations.compare(expectations.load(EXPECTATIONS), run.results)
    report = comparison.report("llamacpp", str(EXPECTATIONS.relative_to(ROOT)))
    assert comparison.ok, (
        f"\n{report}\n\nEvidence: {run.reports_dir}/report.html. If the new verdict is right, "
        f"triage it and run `{REGENERATE}`."
    )


@pytest.mark.slow
def test_llamacpp_run_leaks_no_key(llamacpp_run: tuple[SuiteRun, str]) -> None:
    """The key went to the server and the suite by environment: no file we wrote holds it."""
    run, key = llamacpp_run
    assert key.startswith("sk-")
    files = [p for p in run.reports_dir.parent.rglob("*") if p.is_file()]
    assert any(p.name == "llamacpp.log" for p in files)
    leaked = [p for p in files if key in p.read_text(errors="replace")]
    assert leaked == []
