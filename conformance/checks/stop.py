"""stop: the output never contains a stop sequence and generation halts there.

Judged against a twin without ``stop`` (sent twice, to know it is repeatable): the stopped
output must be the twin's text up to where the first stop sequence begins. What the model
chose to write does not matter, only where the API cut it; a model that never writes a stop
sequence leaves nothing to judge (not applicable).
"""

from __future__ import annotations

import pytest

from conformance.exchanges.expect import (
    expect_rejected,
    first_choice,
    message_of,
    ok_json,
    ok_stream,
    streamed_content,
    streamed_finish_reasons,
)
from conformance.exchanges.requests import Planned, count_body, send_batch
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import SILENT, check, expect, not_applicable, short
from conformance.verdicts.premises import FINISHED_STREAM

CASES = {
    "string": {"stop": "7"},
    "array": {"stop": ["7", "13"]},
    "streamed": {"stop": ["7"], "stream": True},
}


@pytest.fixture(scope="session")
def stopped(endpoint, capabilities):
    plan = {
        name: Planned(
            "stop",
            RequestSpec(
                f"stop {fields['stop']!r}",
                json=count_body(endpoint.model, 20, max_tokens=80, **fields),
            ),
        )
        for name, fields in CASES.items()
    }
    for number in (1, 2):
        plan[("twin", number)] = Planned(
            "stop",  # only needed, and sent, when stop checks run
            RequestSpec(
                f"the same count without stop ({number})",
                json=count_body(endpoint.model, 20, max_tokens=80),
            ),
        )
    too_many = count_body(endpoint.model, 20, stop=["a", "b", "c", "d", "e"], max_tokens=8)
    plan["five"] = Planned("stop", RequestSpec("stop with 5 sequences", json=too_many))
    return send_batch(endpoint, capabilities, plan)


def _output(exchange, case):
    if CASES[case].get("stream"):
        chunks = ok_stream(exchange)
        reasons = streamed_finish_reasons(chunks)
        return streamed_content(chunks), (reasons[0] if reasons else None)
    return message_of(exchange).get("content") or "", first_choice(ok_json(exchange)).get(
        "finish_reason"
    )


def _sequences(case: str) -> list[str]:
    stop = CASES[case]["stop"]
    return [stop] if isinstance(stop, str) else list(stop)


def _twin_cut(stopped, case: str) -> int:
    """Where the first stop sequence begins in the twin's text (not applicable: no twin to
    compare, a twin that is not repeatable, or a twin that never writes a stop sequence)."""
    twins = [stopped[("twin", n)] for n in (1, 2)]
    texts = [message_of(t).get("content") or "" for t in twins]
    if texts[0] != texts[1]:
        not_applicable("the same request without stop got two different answers")
    found = [texts[0].find(s) for s in _sequences(case) if s in texts[0]]
    if not found:
        not_applicable(
            f"without stop the model never writes {_sequences(case)} "
            f"({short(texts[0], 80)}), so there is nothing to stop at"
        )
    return min(found)


@check(
    "stop.excluded_from_output",
    "MUST",
    "stop: sequences where the API will stop generating further tokens. The returned text "
    "will not contain the stop sequence.",
    capability="stop",
    rationale="the documented contract; callers split on the stop string",
    broken_by={
        "ignore_stop": "in the output; got '1, 2, 3, 4, 5, 6, 7, 8",
        "stop_left_in_output": "got '1, 2, 3, 4, 5, 6, 7'",
        "unsupported_param_500": {"string": "HTTP 500"},
    },
)
@pytest.mark.parametrize("case", list(CASES))
def test_excluded(stopped, capabilities, case):
    exchange = stopped[case]
    capabilities.gate("stop", exchange)
    content, _ = _output(exchange, case)
    _twin_cut(stopped, case)
    inside = [s for s in _sequences(case) if s in content]
    expect(not inside, f"no {inside} in the output", short(content), exchange)


@check(
    "stop.halts_generation",
    "MUST",
    'Generation halts where the first stop sequence begins, with finish_reason "stop": the '
    "output is the text of the same request without stop, up to that sequence.",
    capability="stop",
    rationale="the caller's cut-off; " + SILENT,
    needs=(FINISHED_STREAM,),
    broken_by={"ignore_stop": "content '1, 2, 3, 4, 5, 6, 7, 8"},
)
@pytest.mark.parametrize("case", list(CASES))
def test_halts(stopped, capabilities, case):
    exchange = stopped[case]
    capabilities.gate("stop", exchange)
    content, finish = _output(exchange, case)
    # a stream that ends without any finish_reason was cut, not stopped: where it ended says
    # nothing about stop (the run-level cut-stream finding names it)
    FINISHED_STREAM.require(finish is not None or not CASES[case].get("stream"), exchange.label)
    twin = stopped[("twin", 1)]
    cut = _twin_cut(stopped, case)
    expected = (message_of(twin).get("content") or "")[:cut]
    expect(
        finish == "stop" and content.rstrip() == expected.rstrip(),
        f'finish_reason "stop" and the output {short(expected)} (the text without stop, up '
        "to the stop sequence)",
        f"finish_reason {finish!r}, content {short(content)}",
        exchange,
        twin,
    )


@check(
    "stop.at_most_four",
    "SHOULD",
    "stop: Up to 4 sequences; a request with more is rejected with 400.",
    capability="stop",
    rationale="validation OpenAI does; more sequences harm no client",
    broken_by={"stop_over_4_accepted": "expected HTTP 400; got HTTP 200"},
)
def test_at_most_four(stopped, capabilities):
    exchange = stopped["five"]
    capabilities.skip_if_absent("stop")
    expect_rejected(exchange)
