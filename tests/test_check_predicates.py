"""Check predicates on shapes OpenAI sends that no reference-server fault plays: gpt-5 custom
tool calls, content null beside a legacy function_call or a refusal, tool-call fragments of
two choices interleaved in one stream (n=2), repetition for the penalty check.
"""

from __future__ import annotations

import pytest

from conformance.checks.response import content_allowed
from conformance.checks.sampling import repeats
from conformance.checks.tools import _argument_problems, call_name, stream_call_problems

CUSTOM_CALL = {
    "id": "call_custom_1",
    "type": "custom",
    "custom": {"name": "run_sql", "input": "SELECT 1"},
}
FUNCTION_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


@pytest.mark.parametrize(
    ("message", "allowed"),
    [
        ({"content": "hi"}, True),
        ({"content": None, "tool_calls": [FUNCTION_CALL]}, True),
        ({"content": None, "tool_calls": [CUSTOM_CALL]}, True),
        ({"content": None, "function_call": {"name": "f", "arguments": "{}"}}, True),
        ({"content": None, "refusal": "I can't help with that."}, True),
        ({"content": None, "refusal": None}, False),
        ({"content": None}, False),
        ({"content": [{"type": "text", "text": "hi"}]}, False),
    ],
)
def test_content_allowed(message, allowed):
    assert content_allowed(message) is allowed


def test_custom_tool_calls_are_judged_on_their_own_shape():
    assert call_name(CUSTOM_CALL) == "run_sql"
    assert _argument_problems(CUSTOM_CALL) is None
    broken = {**CUSTOM_CALL, "custom": {"name": "run_sql", "input": {"sql": "SELECT 1"}}}
    assert "custom.input is not a string" in _argument_problems(broken)


def _chunk(index: int, delta: dict) -> dict:
    return {"choices": [{"index": index, "delta": {"tool_calls": [delta]}}]}


def _head(name: str = "get_weather", **extra) -> dict:
    return {"index": 0, "id": "call_a", "type": "function", "function": {"name": name}, **extra}


def _args(text: str) -> dict:
    return {"index": 0, "function": {"arguments": text}}


def test_stream_deltas_group_per_choice():
    """With n=2 both choices have a call 0: grouped by index alone they join into bad JSON."""
    chunks = [
        _chunk(0, _head()),
        _chunk(1, _head()),
        _chunk(0, _args('{"city": ')),
        _chunk(1, _args('{"city": ')),
        _chunk(0, _args('"Paris"}')),
        _chunk(1, _args('"Rome"}')),
    ]
    assert stream_call_problems(chunks) == []


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([], "tool_calls deltas"),
        ([_chunk(0, {"id": "x", "function": {"name": "get_weather"}})], "integer index"),
        ([_chunk(0, {**_head(), "type": None})], "id, type and function.name"),
        ([_chunk(0, _head(name=""))], "id, type and function.name"),
        ([_chunk(0, _head()), _chunk(0, _args("{"))], "fragments concatenate"),
    ],
)
def test_stream_delta_problems(chunks, expected):
    problems = stream_call_problems(chunks)
    assert problems and expected in problems[0][0]


def test_streamed_custom_call_needs_no_arguments():
    head = {"index": 0, "id": "c", "type": "custom", "custom": {"name": "run_sql", "input": ""}}
    chunks = [_chunk(0, head), _chunk(0, {"index": 0, "custom": {"input": "SELECT 1"}})]
    assert stream_call_problems(chunks) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("echo echo echo", True), ("Echo, echo.", True), ("one two three", False), ("", False)],
)
def test_repeats(text, expected):
    assert repeats(text) is expected
