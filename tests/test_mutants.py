"""The fast mutation subset CI runs: review's surviving mutants are now killed, and an
unchanged copy survives (the judge raises no false kills). ``nox -s mutants`` runs them all.
"""

from __future__ import annotations

import mutation
import pytest

#: The four mutants issue 10 found surviving, plus the not-applicable path it asked for.
FAST = (
    "stream-skips-include-usage-stream",
    "null-content-always-allowed",
    "tool-deltas-grouped-across-choices",
    "tool-delta-name-not-required",
    "usage-shape-judged-without-usage-chunk",
)
IDENTITY = mutation.Mutant(
    "identity",
    "response.py",
    "def content_allowed",
    "def content_allowed",
    checks=["response.content_string"],
)


@pytest.fixture(scope="module")
def judged() -> dict[str, mutation.Mutant]:
    chosen = [m for m in mutation.HAND_MUTANTS if m.name in FAST]
    return {m.name: m for m in mutation.run([*chosen, IDENTITY])}


@pytest.mark.parametrize("name", FAST)
def test_mutant_is_killed(judged, name):
    mutant = judged[name]
    assert mutant.killed, f"{name} survived: {mutant.old!r} -> {mutant.new!r}"


def test_unchanged_copy_survives(judged):
    assert judged["identity"].killed is False, judged["identity"].killed_by


def test_every_hand_mutant_applies():
    for mutant in mutation.HAND_MUTANTS:
        source = (mutation.PACKAGE / mutant.module).read_text()
        assert mutation.apply(mutant, source) != source, mutant.name
