"""On demand: the whole suite against the LiteLLM proxy (in front of llama.cpp) gives exactly
the triaged verdicts of ``expectations/litellm.toml``.

Needs ``litellm[proxy]`` and ``xllamacpp`` in this interpreter (``nox -s real-litellm``
installs both; about 750 MB, so CI does not). Skips when either is missing. See
``test_real_llamacpp.py`` for what the comparison means.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from realservers import expectations
from realservers.suite_runner import SuiteRun, run_suite
from realservers.targets import start_target

ROOT = Path(__file__).resolve().parents[1]
EXPECTATIONS = ROOT / "expectations" / "litellm.toml"
REGENERATE = "nox -s real-litellm -- --update-expectations"

pytestmark = pytest.mark.real_server


@pytest.fixture(scope="module")
def litellm_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRun]:
    for module in ("litellm", "xllamacpp"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (nox -s real-litellm installs it)")
    work = tmp_path_factory.mktemp("real-litellm")
    with start_target("litellm", work / "server") as target:
        yield run_suite(target, work / "reports", timeout=600)


def test_expectation_file_is_fully_triaged() -> None:
    exp = expectations.load(EXPECTATIONS)
    assert exp.checks, f"{EXPECTATIONS} is missing or empty; create it with `{REGENERATE}`"
    assert expectations.problems(exp) == []


@pytest.mark.slow
def test_litellm_verdicts_match_expectations(litellm_run: SuiteRun) -> None:
    comparison = expectations.compare(expectations.load(EXPECTATIONS), litellm_run.results)
    report = comparison.report("litellm", str(EXPECTATIONS.relative_to(ROOT)))
    assert comparison.ok, (
        f"\n{report}\n\nEvidence: {litellm_run.reports_dir}/report.html. If the new verdict is "
        f"right, triage it and run `{REGENERATE}`."
    )
