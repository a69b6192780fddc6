"""seed.*: a seed makes sampling repeatable; other seeds may differ."""

from __future__ import annotations

from conformance.exchanges.expect import ok_json
from conformance.exchanges.sampling import content_of as _content
from conformance.verdicts.check import check, expect, observe, short


@check(
    "seed.repeatable",
    "SHOULD",
    "seed: repeated requests with the same seed and parameters should return the same result "
    "(best effort; compare system_fingerprint).",
    capability="seed",
    rationale="OpenAI promises best effort only",
    broken_by={"ignore_seed": "the same content twice"},
)
def test_seed_repeatable(sampled, capabilities):
    a, b = sampled["seed_a"], sampled["seed_b"]
    capabilities.gate("seed", a)
    fingerprints = {ok_json(x).get("system_fingerprint") for x in (a, b)}
    capabilities.effect("seed", _content(a) == _content(b), "seed 42 twice at temperature 1", b)
    expect(
        _content(a) == _content(b),
        f"the same content twice: {short(_content(a))}",
        short(_content(b)),
        a,
        b,
        note=f"system_fingerprint {sorted(map(str, fingerprints))} (temperature 1, seed 42)",
    )


@check(
    "seed.different_seeds_differ",
    "INFO",
    "Different seeds at temperature 1 usually give different outputs.",
    capability="seed",
    rationale="usually true, not promised",
)
def test_different_seeds(sampled, capabilities):
    capabilities.gate("seed", sampled["seed_other"])
    same = _content(sampled["seed_a"]) == _content(sampled["seed_other"])
    observe("seeds 42 and 43 gave the same content" if same else "seeds 42 and 43 differ")
