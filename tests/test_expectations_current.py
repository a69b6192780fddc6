"""Every expectations/<server>.toml describes the suite as it is now, not as it was.

A real server's file is compared in full only where that server runs (CI runs llama.cpp; the
others run on demand), so a catalog change would otherwise leave their files silently stale:
a new check with no expectation, or an expectation for a check that no longer exists. This
test needs no server: it lists the suite's check IDs (``--collect-only``, parametrised IDs
included) and compares every file with them. Fix a failure with
``nox -s rerecord -- <server>``, then triage what it prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from realservers import expectations
from realservers.suite_runner import catalog_check_ids

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "expectations").glob("*.toml"))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return catalog_check_ids(tmp_path_factory.mktemp("collect"))


def test_there_are_expectation_files() -> None:
    assert {p.stem for p in FILES} >= {"llamacpp", "litellm"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_expectations_match_the_catalog(path: Path, catalog: set[str]) -> None:
    missing, removed = expectations.staleness(expectations.load(path), catalog)
    fix = f"re-record with `nox -s rerecord -- {path.stem}` and triage the result"
    assert not missing, f"{path.name} misses {len(missing)} catalogued checks {missing}; {fix}"
    assert not removed, f"{path.name} names {len(removed)} removed checks {removed}; {fix}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_non_pass_is_triaged(path: Path) -> None:
    """A label (divergence, redundant, limitation, suite-issue) and one line of why each."""
    assert expectations.problems(expectations.load(path)) == []


def test_staleness_names_both_directions() -> None:
    exp = expectations.ExpectationFile(
        checks={
            "a.kept": expectations.Expectation("pass"),
            "a.gone": expectations.Expectation("pass"),
        }
    )
    assert expectations.staleness(exp, {"a.kept", "a.new"}) == (["a.new"], ["a.gone"])
