"""stop: the output never contains a stop sequence and generation halts there."""

from __future__ import annotations

import re

import pytest

from .checks import check, expect, short
from .client import RequestSpec
from .exchanges import (
    Planned,
    count_body,
    expect_rejected,
    first_choice,
    message_of,
    ok_json,
    ok_stream,
    send_batch,
    streamed_content,
    streamed_finish_reasons,
)

CASES = {
    "string": {"stop": "7"},
    "array": {"stop": ["7", "13"]},
    "streamed": {"stop": ["7"], "stream": True},
}
FIRST_STOP_NUMBER = 7


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


@check(
    "stop.excluded_from_output",
    "MUST",
    "stop: sequences where the API will stop generating further tokens. The returned text "
    "will not contain the stop sequence.",
    capability="stop",
)
@pytest.mark.parametrize("case", list(CASES))
def test_excluded(stopped, capabilities, case):
    exchange = stopped[case]
    capabilities.gate("stop", exchange)
    content, _ = _output(exchange, case)
    expect("7" not in content, "no '7' in the output", short(content), exchange)


@check(
    "stop.halts_generation",
    "MUST",
    'Generation halts at the first stop sequence, with finish_reason "stop".',
    capability="stop",
)
@pytest.mark.parametrize("case", list(CASES))
def test_halts(stopped, capabilities, case):
    exchange = stopped[case]
    capabilities.gate("stop", exchange)
    content, finish = _output(exchange, case)
    later = [int(n) for n in re.findall(r"\d+", content) if int(n) > FIRST_STOP_NUMBER]
    expect(
        finish == "stop" and not later,
        'finish_reason "stop" and no number after 6 (the prompt counts 1..20)',
        f"finish_reason {finish!r}, content {short(content)}",
        exchange,
        note="a model that skipped '7' would also fail here; the content shows which",
    )


@check(
    "stop.at_most_four",
    "SHOULD",
    "stop: Up to 4 sequences; a request with more is rejected with 400.",
    capability="stop",
)
def test_at_most_four(stopped, capabilities):
    exchange = stopped["five"]
    capabilities.skip_if_absent("stop")
    expect_rejected(exchange)
