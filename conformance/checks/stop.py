"""stop: the output never contains a stop sequence and generation halts there.

The stop strings come from the model's own answer: the same count is first sent without
``stop`` (twice, to know it is repeatable), and words from the middle of that answer become
the stop sequences. The stopped output must then be the twin's text up to where the first
of them begins. What the model chose to write does not matter, only where the API cut it,
so a server that ignores ``stop`` is caught on any model (a fixed stop string the model
never writes would leave it unjudged, and "stop" wrongly supported).
"""

from __future__ import annotations

import re

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

#: case -> (which words of the baseline answer become stop sequences, as fractions of its
#: length; a string or a list in the request; streamed).
CASES = {
    "string": ((0.5,), False, False),
    "array": ((0.75, 0.5), True, False),
    "streamed": ((0.5,), True, True),
}


def pick_stops(text: str, fractions: tuple[float, ...]) -> list[str] | None:
    """Words of ``text`` at the given fractions of its length, each moved on to the first
    word whose first occurrence is not at the very start (a cut there shows nothing);
    None when the answer has no such word."""
    words = [(m.group(), m.start()) for m in re.finditer(r"[^\W_]+", text)]
    picked = []
    for fraction in fractions:
        later = [w for w, _ in words[int(len(words) * fraction) :] if text.find(w) > 0]
        if not later:
            return None
        picked.append(later[0])
    return picked


def _baseline(endpoint, capabilities) -> dict:
    plan = {
        ("twin", number): Planned(
            "stop",  # only needed, and sent, when stop checks run
            RequestSpec(
                f"the same count without stop ({number})",
                json=count_body(endpoint.model, 20, max_tokens=80),
            ),
        )
        for number in (1, 2)
    }
    too_many = count_body(endpoint.model, 20, stop=["a", "b", "c", "d", "e"], max_tokens=8)
    plan["five"] = Planned("stop", RequestSpec("stop with 5 sequences", json=too_many))
    return send_batch(endpoint, capabilities, plan)


def _twin_text(exchange) -> str | None:
    if exchange is None or not exchange.ok or not isinstance(exchange.json, dict):
        return None
    choices = exchange.json.get("choices")
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


@pytest.fixture(scope="session")
def stopped(endpoint, capabilities):
    out = _baseline(endpoint, capabilities)
    text = _twin_text(out[("twin", 1)])
    plan = {}
    for case, (fractions, as_list, streamed) in CASES.items():
        stops = pick_stops(text, fractions) if text else None
        out[("stops", case)] = stops
        if stops is None:
            continue
        fields = {"stop": stops if as_list else stops[0], **({"stream": True} if streamed else {})}
        plan[case] = Planned(
            "stop",
            RequestSpec(
                f"stop {fields['stop']!r}",
                json=count_body(endpoint.model, 20, max_tokens=80, **fields),
            ),
        )
    out.update(send_batch(endpoint, capabilities, plan))
    return out


def _output(exchange, case):
    if CASES[case][2]:
        chunks = ok_stream(exchange)
        reasons = streamed_finish_reasons(chunks)
        return streamed_content(chunks), (reasons[0] if reasons else None)
    return message_of(exchange).get("content") or "", first_choice(ok_json(exchange)).get(
        "finish_reason"
    )


def _twin_cut(stopped, case: str) -> tuple[list[str], int]:
    """The stop sequences of ``case`` and where the first of them begins in the twin's text
    (not applicable: no usable twin, a twin that is not repeatable, or no word to stop at)."""
    twins = [stopped[("twin", n)] for n in (1, 2)]
    texts = [_twin_text(t) for t in twins]
    if texts[0] is None:
        message_of(twins[0])  # fails with the twin's own answer when it is not a 200
        not_applicable("the same count without stop has no text content to cut")
    if texts[0] != texts[1]:
        not_applicable("the same request without stop got two different answers")
    stops = stopped[("stops", case)]
    if not stops:
        not_applicable(f"the answer without stop has no word to stop at ({short(texts[0], 80)})")
    return stops, min(texts[0].find(s) for s in stops)


def _stopped_exchange(stopped, capabilities, case):
    """(stop sequences, cut in the twin, the stopped exchange once its use is gated)."""
    stops, cut = _twin_cut(stopped, case)
    exchange = stopped[case]
    capabilities.gate("stop", exchange)
    return stops, cut, exchange


@check(
    "stop.excluded_from_output",
    "MUST",
    "stop: sequences where the API will stop generating further tokens. The returned text "
    "will not contain the stop sequence.",
    capability="stop",
    rationale="the documented contract; callers split on the stop string",
    broken_by={
        "ignore_stop": "in the output; got '1, 2, 3, 4, 5, 6, 7, 8",
        "stop_left_in_output": "in the output; got '1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11'",
        "unsupported_param_500": {"string": "HTTP 500"},
    },
)
@pytest.mark.parametrize("case", list(CASES))
def test_excluded(stopped, capabilities, case):
    stops, _, exchange = _stopped_exchange(stopped, capabilities, case)
    content, _ = _output(exchange, case)
    inside = [s for s in stops if s in content]
    expect(not inside, f"no {inside} in the output", short(content), exchange)


@check(
    "stop.halts_generation",
    "MUST",
    'Generation halts where the first stop sequence begins, with finish_reason "stop": the '
    "output is the text of the same request without stop, up to that sequence.",
    capability="stop",
    rationale="the caller's cut-off; " + SILENT,
    needs=(FINISHED_STREAM,),
    broken_by={
        "content_after_finish": {"streamed": " late'"},
        "chunk_bad_delta": {"streamed": "content ', 2, 3"},
        "stop_left_in_output": "10, 11'",
        "finish_reason_eos": {
            "array": "got finish_reason 'eos'",
            "string": "got finish_reason 'eos'",
        },
        "ignore_stop": "content '1, 2, 3, 4, 5, 6, 7, 8",
    },
)
@pytest.mark.parametrize("case", list(CASES))
def test_halts(stopped, capabilities, case):
    stops, cut, exchange = _stopped_exchange(stopped, capabilities, case)
    content, finish = _output(exchange, case)
    # a stream that ends without any finish_reason was cut, not stopped: where it ended says
    # nothing about stop (the run-level cut-stream finding names it)
    FINISHED_STREAM.require(finish is not None or not CASES[case][2], exchange.label)
    twin = stopped[("twin", 1)]
    whole = _twin_text(twin) or ""
    expected = whole[:cut]
    capabilities.effect(
        "stop",
        content.rstrip() != whole.rstrip(),
        f"stop {stops} taken from the answer without stop",
        exchange,
    )
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
