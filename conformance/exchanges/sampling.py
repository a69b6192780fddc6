"""The sampling batch: n, seeds, temperature 0 twice, the range edges and the penalty
twins, sent together once and judged by checks/n.py, seed.py and sampling.py.
"""

from __future__ import annotations

import pytest

from conformance.api import dialect
from conformance.exchanges.expect import message_of
from conformance.exchanges.requests import Planned, chat_body, count_body, send_batch
from conformance.transport.client import RequestSpec

N = 2
#: An answer that repeats one word, so that a penalty on repeats has something to change.
REPEAT_PROMPT = "Repeat after me: echo echo echo echo echo echo echo echo echo echo echo echo"
PENALTIES = ("presence_penalty", "frequency_penalty")
N_LIMIT = 5
IN_RANGE = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
}
OUT_OF_RANGE = {name: (low - 0.1, high + 0.1) for name, (low, high) in IN_RANGE.items()}
RANGE_CAPABILITY = {
    "temperature": "temperature",
    "top_p": "top_p",
    "presence_penalty": "penalties",
    "frequency_penalty": "penalties",
}
INSIDE = [f"{name}={value}" for name, values in IN_RANGE.items() for value in values]
OUTSIDE = [f"{name}={value:g}" for name, values in OUT_OF_RANGE.items() for value in values]


def _edge_body(model: str, case: str) -> dict:
    name, value = case.split("=")
    return chat_body(model, max_tokens=4, **{name: float(value)})


@pytest.fixture(scope="session")
def sampled(endpoint, capabilities):
    model = endpoint.model
    seeded = chat_body(model, temperature=1, seed=42, max_tokens=16)
    # n > 1 at temperature 1: vLLM rejects n > 1 with greedy sampling ("n must be 1 when using
    # greedy sampling"), which would read as "n unsupported" and skip every n check.
    n_body = count_body(model, 50, n=N, max_tokens=N_LIMIT, temperature=1)
    plan = {
        "n": Planned("n", RequestSpec("n=2", json=n_body)),
        "n_stream": Planned(
            "n",
            RequestSpec(
                "n=2, streamed with usage",
                json={**n_body, "stream": True, "stream_options": {"include_usage": True}},
            ),
        ),
        "seed_a": Planned("seed", RequestSpec("seed=42 (first)", json=seeded)),
        "seed_b": Planned("seed", RequestSpec("seed=42 (second)", json=seeded)),
        "seed_other": Planned("seed", RequestSpec("seed=43", json={**seeded, "seed": 43})),
    }
    if dialect.current().deterministic:  # else the endpoint fixed the temperature: no premise
        for key, which in (("greedy_a", "first"), ("greedy_b", "second")):
            plan[key] = Planned(
                None, RequestSpec(f"temperature=0 ({which})", json=chat_body(model))
            )
    for case in INSIDE + OUTSIDE:
        plan[case] = Planned(None, RequestSpec(case, json=_edge_body(model, case)))
    repeat = [{"role": "user", "content": REPEAT_PROMPT}]
    # Temperature 1 with the dialect's seed: a penalty reshapes the distribution the seed
    # samples from, so its effect shows on any model; at temperature 0 a greedy answer may
    # keep its top token under a presence penalty (llama.cpp does), which is no evidence.
    for number in (1, 2):  # twice, to know the seeded answer repeats
        body = chat_body(model, messages=repeat, temperature=1)
        plan[("unpenalized", number)] = Planned(
            "penalties", RequestSpec(f"repetitive answer, no penalty ({number})", json=body)
        )
    for name in PENALTIES:
        body = chat_body(model, messages=repeat, temperature=1, **{name: 2.0})
        plan[name] = Planned("penalties", RequestSpec(f"repetitive answer, {name} 2", json=body))
    return send_batch(endpoint, capabilities, plan)


def content_of(exchange) -> str | None:
    """choices[0].message.content of a JSON exchange."""
    return message_of(exchange).get("content")
