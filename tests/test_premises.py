"""Premises: a check that cannot judge ends not applicable naming the check that reports what
is missing, a premise a check did not declare is a suite defect, and the run-level records
(completion ids, cut streams) say what no single check sees."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conformance.checks.messages import _prompt_counts
from conformance.checks.n import _require_count
from conformance.checks.response import model_matches
from conformance.checks.stream import _constant
from conformance.face.catalog import load_all_checks
from conformance.transport.client import Completion
from conformance.verdicts import premises
from conformance.verdicts.check import CheckInfo, Level
from conformance.verdicts.findings import CUT_STREAMS, cut_streams
from conformance.verdicts.outcomes import _classify
from conformance.verdicts.premises import (
    NOT_APPLICABLE_PREFIX,
    TWO_CHUNKS,
    USAGE_CHUNK,
    Premise,
    PremiseUnmet,
)

ALL = [v for v in vars(premises).values() if isinstance(v, Premise)]


@pytest.fixture(scope="module")
def checks() -> dict[str, CheckInfo]:
    return load_all_checks()


@pytest.mark.parametrize("premise", ALL, ids=lambda p: p.name)
def test_unmet_premise_is_not_applicable_naming_its_reporter(premise, checks):
    with pytest.raises(PremiseUnmet) as caught:
        premise.require(False, "detail")
    message = caught.value.msg
    assert message.startswith(NOT_APPLICABLE_PREFIX) and "detail" in message
    if premise.reported_by:
        assert f"({premise.reported_by} reports it)" in message
        assert premise.reported_by in checks, "the reporter is a real check"


@pytest.mark.parametrize("premise", ALL, ids=lambda p: p.name)
def test_every_premise_is_declared_by_a_check(premise, checks):
    assert any(premise in info.needs for info in checks.values())


def test_met_premise_lets_the_check_go_on():
    USAGE_CHUNK.require([{"usage": {}}])


def _verdict(premise: Premise, needs: tuple[Premise, ...]):
    """What the plugin makes of a check ending on ``premise`` while declaring ``needs``."""
    error = PremiseUnmet(premise)
    report = SimpleNamespace(
        skipped=True, failed=False, when="call", outcome="skipped", longrepr=("f", 1, error.msg)
    )
    call = SimpleNamespace(excinfo=SimpleNamespace(value=error))
    info = CheckInfo("area.example", Level.MUST, "a requirement", needs=needs)
    state = SimpleNamespace(redact=lambda text: text)
    return _classify(report, call, info, info.id, state, False)


def test_declared_premise_ends_not_applicable():
    verdict = _verdict(USAGE_CHUNK, (USAGE_CHUNK,))
    assert verdict.outcome == "not_applicable"
    assert "usage.stream_one_usage_chunk reports it" in verdict.message


def test_undeclared_premise_is_a_suite_defect():
    verdict = _verdict(USAGE_CHUNK, ())
    assert verdict.outcome == "error"
    assert "does not declare" in verdict.message and "usage_chunk" in verdict.message


def _stream(chunks: list[dict]) -> SimpleNamespace:
    events = [object()] * len(chunks)
    return SimpleNamespace(ok=True, error=None, status=200, events=events, chunks=chunks, body=b"")


def test_one_chunk_stream_proves_no_field_constant():
    shared = SimpleNamespace(stream=_stream([{"id": "a"}]), stream_usage=None)
    with pytest.raises(PremiseUnmet) as caught:
        _constant(shared, "id")
    assert caught.value.premise is TWO_CHUNKS


def test_two_chunk_stream_is_judged():
    shared = SimpleNamespace(stream=_stream([{"id": "a"}, {"id": "b"}]), stream_usage=None)
    with pytest.raises(AssertionError, match="2 distinct values"):
        _constant(shared, "id")


@pytest.mark.parametrize(
    ("requested", "served", "ok"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-2024-08-06", True),
        ("o3-mini", "o3-mini-2025-01-31", True),
        ("gpt-4o-search-preview", "gpt-4o-search-preview-2025-03-11", True),
        ("gpt-4", "gpt-4-0613", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-4o", "gpt-4o-mini-2024-07-18", False),
        ("chatcompat-ref-1", "renamed-model", False),
        ("gpt-4o", None, False),
    ],
)
def test_model_requested_or_dated_snapshot(requested, served, ok):
    assert model_matches(requested, served) is ok


def _completion(label: str, start: float, end: float, unfinished=(), in_flight=1) -> Completion:
    return Completion(label, "id-" + label, True, tuple(unfinished), start, end, in_flight)


def test_cut_stream_finding_names_requests_and_overlap():
    lines = cut_streams(
        [_completion("a", 0, 2, unfinished=[0]), _completion("b", 1, 3), _completion("c", 5, 6)]
    )
    assert len(lines) == 1 and lines[0].startswith(CUT_STREAMS)
    assert "'a'" in lines[0] and "1 of them while another request was in flight" in lines[0]


def test_cut_stream_alone_says_no_overlap():
    lines = cut_streams([_completion("a", 0, 1, unfinished=[0]), _completion("b", 2, 3)])
    assert "no other request overlapped them" in lines[0]


def test_no_cut_stream_no_finding():
    assert cut_streams([_completion("a", 0, 1), _completion("b", 0, 1)]) == []


#: Issue 15 item 1's triage: checks that only lean on what another check reports declare it.
LEANS_ON = {
    "stream_choices": (
        "stream.matches_non_streamed",
        "stream.chunk_object",
        "n.stream_choices",
        "sdk.stream",
        "tools.stream_deltas",
        "response_format.json_object",
        "max_tokens.finish_length",
    ),
    "prompt_counted": ("messages.image_input", "messages.audio_input"),
    "n_choices": ("n.usage_counts_all_choices",),
    "n_stream_choices": ("n.stream_usage_once",),  # streamed: named after the stream's check
    "usage_counts": (
        "n.usage_counts_all_choices",
        "n.stream_usage_once",
        "usage.completion_tokens_plausible",
        "usage.prompt_tokens_grow",
        "reasoning.tokens_within_completion",
    ),
    "content_string": (
        "response_format.json_schema",
        "logprobs.concatenate_to_content",
        "stream.matches_non_streamed",
        "usage.completion_tokens_plausible",
    ),
    "logprob_entries": ("logprobs.values_valid", "logprobs.streamed_per_chunk"),
    "tool_call_made": ("sdk.stream_tools", "tools.stream_deltas"),
    "error_envelope": ("reasoning.effort_values",),
    "rejected": ("errors.invalid_envelope",),
}


@pytest.mark.parametrize("premise", LEANS_ON)
def test_leaning_checks_declare_the_premise(premise, checks):
    undeclared = [c for c in LEANS_ON[premise] if premise not in checks[c].need_names]
    assert undeclared == []


def _usage(prompt_tokens) -> SimpleNamespace:
    return SimpleNamespace(usage={"prompt_tokens": prompt_tokens})


@pytest.mark.parametrize(
    ("counts", "seen"),
    [((10, 10, 10), {10}), ((12, 30, "7"), {12, 30}), ((None,), set())],
)
def test_prompt_counts_show_whether_prompts_are_counted(counts, seen):
    messaged = {i: _usage(c) if c is not None else None for i, c in enumerate(counts)}
    assert _prompt_counts(messaged) == seen


@pytest.mark.parametrize("tokens", [None, "10", True])
def test_n_usage_without_an_integer_count_is_not_judged(tokens):
    with pytest.raises(PremiseUnmet, match=r"usage\.present reports it"):
        _require_count(tokens, "the n > 1 completion")
    _require_count(10, "the n > 1 completion")
