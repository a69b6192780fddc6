"""Issue 15 items 4 and 5: a capability is "supported" only when its effect was seen, and usage
is cross-checked rather than believed.

1. Offline: the capability state machine (accepted -> undecided; effect seen -> supported;
   effect absent -> ignored, whatever the order) and the choice of stop strings.
2. Suite runs on the reference server: each "accepted and ignored" fault ends its capability
   ``ignored``, with evidence naming the exchange, and the checks that judge the effect fail;
   each usage fault fails its cross-check; a server that ignores ``n`` no longer passes the
   usage-of-n checks (they have no n choices to judge).
"""

from __future__ import annotations

from typing import Any

import pytest
from suite_runner import SuiteRun, run_many, suite_args

from conformance.api.capabilities import Capabilities
from conformance.checks.stop import pick_stops
from conformance.transport.client import Exchange, RequestSpec


def _ok(label: str = "use") -> Exchange:
    spec = RequestSpec(label, json={"model": "m", "messages": []})
    return Exchange(spec=spec, url="http://x/v1", request_headers={}, status=200, body=b"{}")


@pytest.fixture
def caps() -> Capabilities:
    return Capabilities()


def test_accepted_is_undecided_until_an_effect_is_seen(caps):
    caps.gate("stop", _ok("stopped"))
    assert caps.summary()["stop"]["status"] == "undecided"
    caps.effect("stop", True, "cut at '11'", _ok("stopped"))
    assert caps.summary()["stop"] == {
        "status": "supported",
        "evidence": "effect seen: cut at '11' ('stopped')",
    }


def test_a_capability_without_an_effect_check_is_supported_when_accepted(caps):
    caps.gate("streaming", _ok("streamed"))
    assert caps.summary()["streaming"]["status"] == "supported"


@pytest.mark.parametrize("order", [(True, False), (False, True)])
def test_absence_wins_whatever_the_order(caps, order):
    caps.gate("n", _ok())
    for seen in order:
        caps.effect("n", seen, f"seen={seen}", _ok(f"use {seen}"))
    state = caps.summary()["n"]
    assert state["status"] == "ignored"
    assert state["evidence"] == "accepted and ignored: seen=False ('use False')"


@pytest.mark.parametrize(
    ("text", "fractions", "stops"),
    [
        ("1, 2, 3, 4, 5, 6", (0.5,), ["4"]),
        ("1, 2, 3, 4, 5, 6", (0.75, 0.5), ["5", "4"]),
        ("echo echo echo then more", (0.5,), ["then"]),  # a repeat of the start cuts nothing
        ("echo echo", (0.5,), None),
        ("", (0.5,), None),
    ],
)
def test_stop_strings_come_from_the_middle_of_the_answer(text, fractions, stops):
    assert pick_stops(text, fractions) == stops


#: fault -> (capability it must leave "ignored", checks that must not pass).
IGNORED: dict[str, tuple[str, tuple[str, ...]]] = {
    "ignore_stop": ("stop", ("stop.halts_generation[string]", "stop.excluded_from_output")),
    "ignore_n": ("n", ("n.choices",)),
    "ignore_logprobs": ("logprobs", ("logprobs.structure",)),
    "ignore_tools": ("tools", ("tools.forced_call",)),
    "ignore_json_schema": ("json_schema", ("response_format.json_schema",)),
    "response_format_prompt_only": ("json_object", ("response_format.json_object",)),
    "ignore_seed": ("seed", ("seed.repeatable",)),
    "ignore_penalties": ("penalties", ("sampling.penalty_effect",)),
    "ignore_max_tokens": ("max_tokens", ("max_tokens.respected",)),
    "ignore_max_completion_tokens_in_stream": (
        "max_completion_tokens",
        ("max_completion_tokens.respected[streamed]",),
    ),
    "drop_media": ("vision", ("messages.image_input",)),
    "ignore_logit_bias": ("logit_bias", ("logit_bias.bans_token",)),
}
#: fault -> the usage cross-check it must fail.
USAGE: dict[str, str] = {
    "constant_usage": "usage.prompt_tokens_grow",
    "usage_off_by_one_when_cut": "usage.length_spends_limit",
    "prompt_tokens_times_n": "usage.prompt_tokens_once_for_n",
    "completion_tokens_one": "usage.completion_tokens_plausible",
}
AREAS = (
    "stop. or n. or logprobs. or tools. or response_format. or seed. or sampling. or max_"
    " or messages. or logit_bias."
)


@pytest.fixture(scope="module")
def runs(reference, tmp_path_factory) -> dict[str, SuiteRun]:
    root = tmp_path_factory.mktemp("effects")
    names = [*IGNORED, *USAGE]
    jobs = [
        (root / name / "reports", [*suite_args(reference.origin, name), "-k", AREAS + " or usage."])
        for name in names
    ]
    return dict(zip(names, run_many(jobs), strict=True))


def _outcome(run: SuiteRun, check_id: str) -> list[Any]:
    """Outcomes of a check id (a base id: every parametrization)."""
    outcomes = run.outcomes
    return [o for c, o in outcomes.items() if c == check_id or c.split("[")[0] == check_id]


@pytest.mark.parametrize("fault", list(IGNORED))
def test_an_ignored_field_ends_its_capability_ignored(runs, fault):
    name, checks = IGNORED[fault]
    state = runs[fault].results["capabilities"][name]
    assert state["status"] == "ignored", state
    assert state["evidence"].startswith("accepted and ignored: ") and "('" in state["evidence"]
    for check_id in checks:
        outcomes = _outcome(runs[fault], check_id)
        assert outcomes and all(o in ("fail", "warn") for o in outcomes), (check_id, outcomes)


@pytest.mark.parametrize("fault", list(USAGE))
def test_usage_is_cross_checked(runs, fault):
    assert _outcome(runs[fault], USAGE[fault]) == ["fail"]


def test_ignored_n_leaves_the_usage_of_n_unjudged(runs):
    outcomes = runs["ignore_n"].outcomes
    assert outcomes["n.usage_counts_all_choices"] == "not_applicable"
    assert outcomes["n.stream_usage_once"] == "not_applicable"
