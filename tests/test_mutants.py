"""The fast mutation subset CI runs: review's surviving mutants are now killed, one mutant of
each newer operator (a premise guard removed, a check returning at once) is killed, and an
unchanged copy survives (the judge raises no false kills). ``nox -s mutants`` runs them all.
"""

from __future__ import annotations

import ast

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
#: Generated mutants picked by function and operator (line numbers move with every edit).
GENERATED = (
    ("test_stream_chunk_empty_choices", "drop-guard"),  # judged without a usage chunk
    ("test_content_string", "early-return"),  # passes whatever the content is
)
IDENTITY = mutation.Mutant(
    "identity",
    "response.py",
    "def content_allowed",
    "def content_allowed",
    checks=["response.content_string"],
)


def _generated(function: str, operator: str) -> mutation.Mutant:
    mutants = mutation.generated_mutants((operator,))
    return next(m for m in mutants if m.function == function)


@pytest.fixture(scope="module")
def judged() -> dict[str, mutation.Mutant]:
    chosen = [m for m in mutation.HAND_MUTANTS if m.name in FAST]
    chosen += [_generated(*pick) for pick in GENERATED]
    return {m.name: m for m in mutation.run([*chosen, IDENTITY])}


@pytest.mark.parametrize("name", FAST)
def test_mutant_is_killed(judged, name):
    mutant = judged[name]
    assert mutant.killed, f"{name} survived: {mutant.old!r} -> {mutant.new!r}"


@pytest.mark.parametrize("pick", GENERATED, ids="-".join)
def test_generated_mutant_is_killed(judged, pick):
    mutant = judged[_generated(*pick).name]
    assert mutant.killed, f"{mutant.name} survived: {mutant.old!r} -> {mutant.new!r}"


def test_unchanged_copy_survives(judged):
    assert judged["identity"].killed is False, judged["identity"].killed_by


def test_every_hand_mutant_applies():
    for mutant in mutation.HAND_MUTANTS:
        source = (mutation.CHECKS / mutant.module).read_text()
        assert mutation.apply(mutant, source) != source, mutant.name


def test_every_check_module_is_mutated():
    """Every module with a check function of its own (max_completion_tokens.py applies
    max_tokens.py's two factories, whose mutants judge both fields)."""
    modules = {
        p.name
        for p in mutation.CHECKS.glob("*.py")
        if any(isinstance(n, ast.FunctionDef) for n in ast.parse(p.read_text()).body)
    }
    assert {m.module for m in mutation.generated_mutants()} == modules


def test_every_check_function_gets_both_early_exits():
    mutants = mutation.generated_mutants(("early-return", "early-na"))
    for path in sorted(mutation.CHECKS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and mutation._check_ids(node):
                made = {m.name.rsplit(":", 1)[1] for m in mutants if m.function == node.name}
                assert made == {"early-return", "early-na"}, (path.name, node.name)


def test_every_generated_mutant_applies_and_compiles():
    for mutant in mutation.generated_mutants():
        source = (mutation.CHECKS / mutant.module).read_text()
        mutated = mutation.apply(mutant, source)
        assert mutated != source, mutant.name
        compile(mutated, mutant.module, "exec")
