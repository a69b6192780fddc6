"""Request dialects and reasoning models: the suite adapts, and a rejection counts only
against the capability whose parameter it names.

The whole suite runs against each reference-server profile (``conformance/reference/
reasoning.py``): an OpenAI-style reasoning model, a DeepSeek-style one, and servers that
reject exactly one parameter. Each must end with no failure, and lose exactly the
capabilities it does not offer, with evidence naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from suite_runner import SuiteRun, run_many, run_suite, suite_args

from conformance.api import dialect
from conformance.api.capabilities import Capabilities
from conformance.api.rejections import named_params
from conformance.transport.client import Exchange, RequestSpec

#: profile -> the capabilities it must lose, each with the parameter its evidence names.
LOST = {
    "reasoning": {
        "max_tokens": "max_tokens",
        "stop": "stop",
        "logprobs": "logprobs",
        "logit_bias": "logit_bias",
        "temperature": "temperature",
        "top_p": "top_p",
        "penalties": "penalty",
    },
    "reasoning_content": {},
    "reject_seed": {"seed": "seed"},
    "reject_temperature": {"temperature": "temperature"},
    "reject_stop": {"stop": "stop"},
}
KEPT = ("tools", "json_schema", "n", "json_object", "vision", "audio_input", "seed")


@pytest.fixture(scope="module")
def runs(reference, tmp_path_factory) -> dict[str, SuiteRun]:
    root = tmp_path_factory.mktemp("dialects")
    jobs = [(root / name / "reports", suite_args(reference.origin, name)) for name in LOST]
    return dict(zip(LOST, run_many(jobs), strict=True))


@pytest.mark.parametrize("profile", list(LOST))
def test_profile_passes(runs, profile):
    run = runs[profile]
    assert run.returncode == 0, run.output[-3000:]
    bad = {c: o for c, o in run.outcomes.items() if o in ("fail", "error", "warn")}
    assert bad == {}


@pytest.mark.parametrize("profile", list(LOST))
def test_profile_loses_exactly_its_capabilities(runs, profile):
    capabilities = runs[profile].results["capabilities"]
    lost = {name for name, c in capabilities.items() if c["status"] != "supported"}
    assert lost == set(LOST[profile])
    for name, param in LOST[profile].items():
        assert param in capabilities[name]["evidence"], (name, capabilities[name])
    for name in KEPT:
        if name not in LOST[profile]:
            assert capabilities[name]["status"] == "supported", name


def test_reasoning_profile_dialect(runs):
    results = runs["reasoning"].results
    chosen = results["dialect"]
    assert chosen["token_limit_field"] == "max_completion_tokens"
    assert chosen["temperature"] is None and chosen["reasoning"] is True
    assert chosen["reasoning_effort"] == "minimal"  # "none" is rejected naming it
    assert chosen["judging_effort"] == "minimal"  # it still reasons: cheap enough to judge
    assert results["spent"]["completion_tokens"] > 0
    outcomes = runs["reasoning"].outcomes
    assert outcomes["reasoning.budget_finish_length"] == "pass"
    assert outcomes["reasoning.tokens_within_completion"] == "pass"
    assert "omitted" in runs["reasoning"].results["checks"]["response.logprobs_key"]["message"]
    assert outcomes["sampling.temperature0_repeatable"] == "not_applicable"
    assert outcomes["params.optional_field[metadata]"] == "pass"  # sent with store: true


#: What a whole run may cost against an OpenAI-style reasoning model (README: "What it costs").
BUDGET = {"requests": 160, "total_tokens": 5000}


def test_reasoning_run_stays_within_its_token_budget(runs):
    spent = runs["reasoning"].results["spent"]
    assert spent["requests"] <= BUDGET["requests"], spent
    assert spent["total_tokens"] <= BUDGET["total_tokens"], spent


def test_visible_reasoning_is_judged_with_reasoning_on(runs):
    """The profile honours reasoning_effort "none" (gpt-5.1 style): every other check sends
    it, yet every reasoning check is judged, at the endpoint's default effort."""
    run = runs["reasoning_content"]
    chosen = run.results["dialect"]
    assert chosen["reasoning_field"] == "reasoning_content"
    assert chosen["reasoning_effort"] == "none" and chosen["judging_effort"] is None
    assert "reasoning checks send default effort" in chosen["summary"]
    judged = {c: o for c, o in run.outcomes.items() if c.startswith("reasoning.")}
    #: about a model that shows no reasoning: this one reasons, so it has nothing to judge
    about_silent_models = "reasoning.effort_needs_reasoning"
    assert judged.pop(about_silent_models) == "not_applicable"
    assert "the model reasons" in run.results["checks"][about_silent_models]["message"]
    assert {o for c, o in judged.items() if not c.startswith("reasoning.effort_values")} == {
        "pass"
    }, judged


# --- unit tests of the pieces -----------------------------------------------------------------


def _exchange(status: int, body: Any, spec_json: Any = None) -> Exchange:
    import json

    exchange = Exchange(RequestSpec("t", json=spec_json or {}), "http://x/v1", {})
    exchange.status = status
    exchange.body = json.dumps(body).encode()
    return exchange


def _error(message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param}}


NAMED = [
    (_error("Unsupported parameter: 'max_tokens' is not supported.", "max_tokens"), {"max_tokens"}),
    (_error("Invalid type for 'messages[0].content[1]'."), {"messages", "content"}),
    (_error("bad", "body.messages"), {"body", "messages"}),
    (_error("Unrecognized request argument supplied: `seed`"), {"seed"}),
    (_error("Something went wrong."), set()),
    ({"detail": "seed not allowed"}, set()),
]


@pytest.mark.parametrize(("body", "names"), NAMED)
def test_named_params(body, names):
    assert named_params(_exchange(400, body)) == names


@dataclass
class FakeEndpoint:
    """Answers like a reasoning model: rejects what ``rejects`` names, reasons ``thinking``."""

    rejects: tuple[str, ...] = ("max_tokens", "temperature")
    thinking: int = 10
    efforts: tuple[str, ...] = ("low", "medium")
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, spec: RequestSpec) -> Exchange:
        body = spec.json
        self.sent.append(body)
        for name in self.rejects:
            if name in body:
                return _exchange(400, _error(f"Unsupported parameter: '{name}'", name))
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in self.efforts:
            return _exchange(400, _error(f"'{effort}' not supported", "reasoning_effort"))
        usage = {"completion_tokens": self.thinking + 1}
        usage["completion_tokens_details"] = {"reasoning_tokens": self.thinking}
        message = {"role": "assistant", "content": "ready"}
        return _exchange(200, {"choices": [{"message": message}], "usage": usage})


@dataclass
class ByEffort(FakeEndpoint):
    """A reasoning model whose reasoning depends on the effort (None: the default)."""

    by_effort: dict[str | None, int] = field(default_factory=dict)

    def send(self, spec: RequestSpec) -> Exchange:
        self.thinking = self.by_effort.get(spec.json.get("reasoning_effort"), 0)
        return super().send(spec)


def test_negotiation_renames_drops_and_picks_cheapest_effort():
    endpoint = FakeEndpoint()
    chosen = dialect.negotiate(endpoint, "m", dialect.Overrides())
    assert chosen.token_field == "max_completion_tokens"
    assert chosen.temperature is None and chosen.seed == dialect.DEFAULT_SEED
    assert chosen.reasoning and chosen.reasoning_effort == "low"
    assert chosen.headroom() == dialect.HEADROOM_FLOOR  # 4 x 10 seen is below the floor
    assert chosen.limit(5) == {"max_completion_tokens": 5 + dialect.HEADROOM_FLOOR}
    assert chosen.probes == len(endpoint.sent) == 6  # 3 base + none, minimal, low


def test_negotiation_respects_overrides_and_rejections_naming_other_fields():
    endpoint = FakeEndpoint(rejects=("top_k",), thinking=0)
    overrides = dialect.Overrides(token_field="max_completion_tokens", extra_body={"top_k": 1})
    chosen = dialect.negotiate(endpoint, "m", overrides)
    assert chosen.token_field == "max_completion_tokens"
    assert chosen.temperature == 0  # a 400 naming top_k decides nothing else
    assert len(endpoint.sent) == 1
    assert "base request still rejected" in chosen.notes[-1]


#: (efforts accepted, reasoning tokens per effort (None: the default), user's effort) ->
#: (cheap effort, judging effort). The judging effort is the lowest that reasoned at preflight.
EFFORT_CASES = {
    "none honoured (gpt-5.1, DeepSeek style)": (
        ("none", "low"),
        {"none": 0, "low": 10, None: 30},
        None,
        ("none", None),
    ),
    "cheapest still reasons (gpt-5 minimal)": (
        ("minimal", "low"),
        {"minimal": 8, "low": 16, None: 30},
        None,
        ("minimal", "minimal"),
    ),
    "no effort accepted": ((), {None: 30}, None, (None, None)),
    "set by the user": (("none", "high"), {"high": 40, None: 30}, "high", ("high", "high")),
}


@pytest.mark.parametrize("case", EFFORT_CASES)
def test_judging_effort_is_the_lowest_that_reasoned(case):
    efforts, thinking, user, (cheap, judging) = EFFORT_CASES[case]
    endpoint = ByEffort(efforts=efforts, by_effort=thinking)
    chosen = dialect.negotiate(endpoint, "m", dialect.Overrides(reasoning_effort=user))
    assert (chosen.reasoning_effort, chosen.judging_effort) == (cheap, judging)
    body = chosen.judging("m", [], 5)
    assert body.get("reasoning_effort") == judging
    assert body["max_completion_tokens"] == 5 + chosen.judging_headroom()
    assert chosen.probes <= 6  # no probe of its own


def test_judging_body_without_reasoning_is_the_base_body():
    plain = dialect.Dialect()
    assert plain.judging("m", [], 5) == plain.base("m", [], 5)


@dataclass
class Gpt51(FakeEndpoint):
    """gpt-5.1: effort none by default (no reasoning), where temperature is accepted; any
    other effort reasons and rejects a temperature other than 1."""

    rejects: tuple[str, ...] = ("max_tokens",)
    efforts: tuple[str, ...] = ("none", "low", "medium", "high")

    def send(self, spec: RequestSpec) -> Exchange:
        effort = spec.json.get("reasoning_effort") or "none"
        self.thinking = 0 if effort == "none" else 10
        if effort != "none" and spec.json.get("temperature") not in (None, 1):
            self.sent.append(spec.json)
            return _exchange(400, _error("Unsupported value: 'temperature'", "temperature"))
        return super().send(spec)


@pytest.mark.parametrize(("user_effort", "temperature"), [(None, 0), ("low", None)])
def test_gpt51_temperature_follows_the_effort_sent(user_effort, temperature):
    """At effort none gpt-5.1 takes temperature 0: the dialect keeps it; an effort that
    reasons rejects it naming temperature: then none is sent."""
    overrides = dialect.Overrides(reasoning_effort=user_effort)
    chosen = dialect.negotiate(Gpt51(), "m", overrides)
    assert chosen.token_field == "max_completion_tokens"
    assert chosen.temperature == temperature
    assert chosen.judging("m", [], 5).get("temperature") == temperature


@dataclass
class _Result:
    nodeid: str
    outcome: str
    message: str = "unsupported: ..."


def test_reconcile_turns_a_rejected_use_into_a_failure_whatever_the_order():
    capabilities = Capabilities()
    capabilities.accepted_by["stop"] = "stop string"
    capabilities.rejected_checks["stop"] = ["conformance/checks/stop.py::test_x[array]"]
    results = {"stop.x[array]": _Result("conformance/checks/stop.py::test_x[array]", "unsupported")}
    assert capabilities.reconcile(results) == 1
    assert results["stop.x[array]"].outcome == "fail"
    assert capabilities.summary()["stop"]["status"] == "inconsistent"


def test_logprobs_key_observation_follows_the_endpoint(reference, tmp_path):
    """INFO: OpenAI omits the key for some models; the observation must still see it."""
    seen = {}
    for name in ("", "omit_logprobs_key"):
        names = (name,) if name else ()
        run = run_suite(
            tmp_path / (name or "clean"),
            *suite_args(reference.origin, *names),
            "-k",
            "logprobs_key",
        )
        seen[name] = run.results["checks"]["response.logprobs_key"]["message"]
    assert "present" in seen[""] and "omitted" in seen["omit_logprobs_key"]


# --- the switches -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extra-body={not json"], "--extra-body is not valid JSON"),
        (["--extra-body=[1, 2]"], "--extra-body must be a JSON object"),
        (["--token-limit-field=max_len"], "invalid choice: 'max_len'"),
    ],
)
def test_bad_dialect_switches_give_one_line(tmp_path, args, message):
    run = run_suite(tmp_path / "reports", *args)
    assert run.returncode == 4, run.output[-2000:]
    assert message in run.output and "Traceback" not in run.output


def test_switches_fix_the_dialect_and_extra_body_reaches_every_request(reference, tmp_path):
    """``ignore_eos`` is a vendor field the reference server honours (and validates)."""
    switches = [
        "--token-limit-field=max_completion_tokens",
        "--no-temperature",
        "--no-seed",
        '--extra-body={"ignore_eos": false}',
    ]
    run = run_suite(
        tmp_path / "reports", *suite_args(reference.origin), *switches, "-k", "response. or sdk."
    )
    assert run.returncode == 0, run.output[-3000:]
    chosen = run.results["dialect"]
    assert chosen["token_limit_field"] == "max_completion_tokens"
    assert chosen["temperature"] is None and chosen["seed"] is None
    assert chosen["extra_body_keys"] == ["ignore_eos"] and chosen["probe_requests"] == 1
    assert "dialect: max_completion_tokens, temperature not sent, seed not sent" in run.output


class _Twins:
    """A transport for twin requests: answers 200 (or 400) and records what was sent."""

    def __init__(self, ok: bool) -> None:
        self.ok, self.sent = ok, []

    def send(self, spec: RequestSpec) -> Exchange:
        self.sent.append(spec.json)
        return _exchange(200 if self.ok else 400, {} if self.ok else _error("still bad"))


#: case -> (capability, request body, rejection, twin answers 200 (None: no twin transport),
#: verdict, fragment of its message). A 400 is evidence only about what it names.
GATE_CASES = {
    "param names another parameter": (
        "logprobs",
        {"logprobs": True, "temperature": 0},
        _error("temperature is out of range", "temperature"),
        True,  # the twin would pass, but the rejection already named something else
        "not applicable",
        "naming 'temperature', which is no evidence about 'logprobs'",
    ),
    "message quotes another parameter": (
        "stop",
        {"stop": ["x"], "top_k": 3},
        _error("Unrecognized request argument supplied: 'top_k'"),
        True,
        "not applicable",
        "naming 'top_k'",
    ),
    "names nothing, twin still rejected": (
        "seed",
        {"seed": 1},
        _error("bad request"),
        False,
        "not applicable",
        "naming nothing",
    ),
    "names nothing, no twin to ask": (
        "seed",
        {"seed": 1},
        _error("bad request"),
        None,
        "not applicable",
        "naming nothing",
    ),
    "param names the capability": (
        "logprobs",
        {"logprobs": True},
        _error("not supported", "logprobs"),
        None,
        "unsupported",
        "capability 'logprobs' rejected cleanly",
    ),
    "message names the capability unquoted": (
        "vision",
        {"messages": []},
        _error("image_url is only supported by certain models", "messages[0].content[1].type"),
        None,
        "unsupported",
        "capability 'vision' rejected cleanly",
    ),
    "names nothing, twin accepted": (
        "seed",
        {"seed": 1},
        _error("bad request"),
        True,
        "unsupported",
        "capability 'seed' rejected cleanly",
    ),
}


@pytest.mark.parametrize("case", GATE_CASES)
def test_a_clean_400_counts_only_against_the_capability_it_names(case):
    name, body, error, twin_ok, verdict, fragment = GATE_CASES[case]
    capabilities = Capabilities()
    capabilities.transport = None if twin_ok is None else _Twins(twin_ok)
    with pytest.raises(pytest.skip.Exception) as ended:
        capabilities.gate(name, _exchange(400, error, body))
    message = str(ended.value)
    assert message.startswith(f"{verdict}:") and fragment in message, message
    learned = capabilities.summary().get(name, {}).get("status")
    assert learned == ("unsupported" if verdict == "unsupported" else None)
    if named_params(_exchange(400, error)) and twin_ok is not None:
        assert capabilities.transport.sent == []  # named something: no twin needed
