"""The request dialect: the base body every check builds on, negotiated once at preflight.

OpenAI's own current models do not accept the 2024 body (``max_tokens``, ``temperature: 0``,
``seed``): reasoning models (gpt-5 family, o-series) answer 400 naming ``max_tokens`` ("use
``max_completion_tokens``") or ``temperature`` ("only the default (1) value is supported"),
and spend hidden reasoning tokens, counted in ``completion_tokens`` and against
``max_completion_tokens``, before any visible output. So before any check runs, a few small
probe requests settle:

* the token-limit field: ``max_tokens``, or ``max_completion_tokens`` when a 400 names
  ``max_tokens``;
* whether ``temperature: 0`` is accepted (else no temperature is sent) and whether ``seed``
  is (else none is sent);
* reasoning: seen as ``completion_tokens_details.reasoning_tokens > 0``, a
  ``reasoning_content`` / ``reasoning`` field, or empty content cut by the limit. Then the
  lowest ``reasoning_effort`` the endpoint accepts is used, and every token limit becomes the
  visible output a check needs plus headroom for the reasoning observed.

Each decision is taken only from a 400 that *names* the parameter (``param`` or the name
quoted in the message): a rejection naming something else decides nothing. Users override
any of it by hand (``--token-limit-field``, ``--no-temperature``, ``--no-seed``,
``--reasoning-effort``, ``--extra-body``); every check gets its base body from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformance.api.rejections import describe_answer, named_params, rejection_names
from conformance.transport.client import Exchange, RequestSpec

TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")
DEFAULT_TEMPERATURE = 0
DEFAULT_SEED = 7
#: reasoning_effort values, cheapest first (OpenAI documents none/minimal/low/medium/high/xhigh
#: by model); the base request uses the first one the endpoint accepts.
EFFORTS_CHEAPEST_FIRST = ("none", "minimal", "low")
REASONING_FIELDS = ("reasoning_content", "reasoning")
#: Headroom for hidden reasoning on top of the visible tokens a check needs: a multiple of
#: what the preflight observed, never below a floor (reasoning varies by prompt), and capped
#: so a runaway model cannot make the run expensive.
HEADROOM_FACTOR = 4
HEADROOM_FLOOR = 64
HEADROOM_CAP = 2048
PROBE_PROMPT = "Reply with the single word: ready"
PROBE_TOKENS = 16


@dataclass
class Overrides:
    """What the user fixed by hand; None leaves the choice to negotiation."""

    token_field: str | None = None
    temperature: bool | None = None  # False: never send one
    seed: bool | None = None  # False: never send one
    reasoning_effort: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dialect:
    token_field: str = "max_tokens"
    temperature: float | None = DEFAULT_TEMPERATURE
    seed: int | None = DEFAULT_SEED
    reasoning: bool = False
    reasoning_effort: str | None = None
    reasoning_tokens: int = 0  # the most the preflight saw, with the chosen effort
    reasoning_field: str | None = None  # where visible reasoning text goes, if anywhere
    #: the effort of the checks that judge reasoning (None: omitted, the endpoint's default),
    #: the reasoning tokens the preflight saw with it, and whether its output was cut empty
    judging_effort: str | None = None
    judging_tokens: int = 0
    judging_starved: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how each choice was made, with evidence
    probes: int = 0

    @property
    def deterministic(self) -> bool:
        """Whether repeat requests may be expected to agree (temperature 0 was accepted)."""
        return self.temperature == 0

    def headroom(self) -> int:
        if not self.reasoning:
            return 0
        return min(HEADROOM_CAP, max(HEADROOM_FLOOR, HEADROOM_FACTOR * self.reasoning_tokens))

    def limit(self, visible: int) -> dict[str, int]:
        """The token-limit field for a check that needs ``visible`` output tokens."""
        return {self.token_field: visible + self.headroom()}

    def judging_headroom(self) -> int:
        """Headroom at the judging effort: the cap when the preflight saw it use up the probe
        (its reasoning length is unknown), else as ``headroom`` for the tokens it saw."""
        if not self.reasoning:
            return 0
        if self.judging_starved:
            return HEADROOM_CAP
        return min(HEADROOM_CAP, max(HEADROOM_FLOOR, HEADROOM_FACTOR * self.judging_tokens))

    def judging(self, model: str, messages: list[dict[str, Any]], visible: int) -> dict[str, Any]:
        """The base body at the judging effort: for checks that must see reasoning."""
        body = self.base(model, messages, visible)
        if not self.reasoning:
            return body
        body[self.token_field] = visible + self.judging_headroom()
        body.pop("reasoning_effort", None)
        if self.judging_effort is not None:
            body["reasoning_effort"] = self.judging_effort
        if "reasoning_effort" in self.extra_body:  # the user's word wins, as in ``base``
            body["reasoning_effort"] = self.extra_body["reasoning_effort"]
        return body

    def base(self, model: str, messages: list[dict[str, Any]], visible: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": messages, **self.limit(visible)}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.seed is not None:
            body["seed"] = self.seed
        if self.reasoning_effort is not None:
            body["reasoning_effort"] = self.reasoning_effort
        body.update(self.extra_body)
        return body

    def summary(self) -> str:
        parts = [self.token_field]
        parts.append(
            "temperature not sent"
            if self.temperature is None
            else f"temperature {self.temperature}"
        )
        parts.append("seed not sent" if self.seed is None else f"seed {self.seed}")
        if self.reasoning:
            effort = self.reasoning_effort or "default effort"
            judging = self.judging_effort or "default effort"
            where = f", visible in '{self.reasoning_field}'" if self.reasoning_field else ""
            parts.append(
                f"reasoning{where} (checks send {effort}: {self.reasoning_tokens} tokens seen, "
                f"+{self.headroom()} tokens headroom per limit; reasoning checks send "
                f"{judging}: {self.judging_tokens} tokens seen, +{self.judging_headroom()})"
            )
        if self.extra_body:
            parts.append(f"extra body {json.dumps(self.extra_body, sort_keys=True)}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_limit_field": self.token_field,
            "temperature": self.temperature,
            "seed": self.seed,
            "reasoning": self.reasoning,
            "reasoning_effort": self.reasoning_effort,
            "reasoning_tokens_seen": self.reasoning_tokens,
            "reasoning_field": self.reasoning_field,
            "reasoning_headroom": self.headroom(),
            "judging_effort": self.judging_effort,
            "judging_tokens_seen": self.judging_tokens,
            "judging_headroom": self.judging_headroom(),
            "extra_body_keys": sorted(self.extra_body),
            "probe_requests": self.probes,
            "summary": self.summary(),
            "notes": list(self.notes),
        }


_CURRENT = Dialect()


def current() -> Dialect:
    """The dialect of this run (the 2024 default until the preflight has negotiated one)."""
    return _CURRENT


def use(dialect: Dialect) -> None:
    global _CURRENT
    _CURRENT = dialect


# --- reading replies ------------------------------------------------------------------------


def reasoning_seen(body: Any) -> tuple[int, str | None, bool]:
    """(reasoning tokens, visible reasoning field, empty content cut by the limit) of a reply."""
    if not isinstance(body, dict):
        return 0, None, False
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    details = usage.get("completion_tokens_details")
    tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
    tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0
    choices = body.get("choices") if isinstance(body.get("choices"), list) else []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    visible = next((f for f in REASONING_FIELDS if message.get(f)), None)
    starved = choice.get("finish_reason") == "length" and not message.get("content")
    return tokens, visible, starved


# --- negotiation ------------------------------------------------------------------------------


def negotiate(transport: Any, model: str, overrides: Overrides) -> Dialect:
    """Settle the dialect with a few small requests; never raises on a hostile answer."""
    dialect = Dialect(extra_body=dict(overrides.extra_body))
    if overrides.token_field:
        dialect.token_field = overrides.token_field
        dialect.notes.append(f"token-limit field {overrides.token_field}: set by the user")
    if overrides.temperature is False:
        dialect.temperature = None
        dialect.notes.append("temperature not sent: set by the user")
    if overrides.seed is False:
        dialect.seed = None
        dialect.notes.append("seed not sent: set by the user")
    if overrides.reasoning_effort:
        dialect.reasoning_effort = overrides.reasoning_effort
        dialect.notes.append(f"reasoning_effort {overrides.reasoning_effort}: set by the user")
    messages = [{"role": "user", "content": PROBE_PROMPT}]

    def probe(label: str, visible: int = PROBE_TOKENS) -> Exchange:
        dialect.probes += 1
        body = dialect.base(model, messages, visible)
        return transport.send(RequestSpec(f"dialect probe: {label}", json=body))

    answer = probe("base request")
    for _ in range(4):  # at most one step per negotiable field
        if answer.ok or not _adjust(dialect, answer, overrides):
            break
        answer = probe("base request, adjusted")
    if not answer.ok:
        dialect.notes.append(f"base request still rejected: {describe_answer(answer)}")
        return dialect
    tokens, visible, starved = reasoning_seen(answer.json)
    if not (tokens or visible or starved):
        return dialect
    dialect.reasoning = True
    dialect.reasoning_field = visible
    dialect.reasoning_tokens = tokens
    dialect.judging_effort = dialect.reasoning_effort  # the user's, or None: the default
    dialect.judging_tokens, dialect.judging_starved = tokens, starved
    dialect.notes.append(
        f"reasoning seen: {tokens} reasoning tokens"
        + (f", text in '{visible}'" if visible else "")
        + (", content empty with finish_reason length" if starved else "")
    )
    if dialect.reasoning_effort is None:
        _choose_effort(dialect, probe)
    return dialect


def _adjust(dialect: Dialect, answer: Exchange, overrides: Overrides) -> bool:
    """Drop or rename the one field a 400 names; False when it names none we may change."""
    if answer.status != 400:
        return False
    names = named_params(answer)
    why = describe_answer(answer)
    if "max_tokens" in names and dialect.token_field == "max_tokens" and not overrides.token_field:
        dialect.token_field = "max_completion_tokens"
        dialect.notes.append(f"max_completion_tokens: max_tokens rejected ({why})")
        return True
    if "temperature" in names and dialect.temperature is not None and overrides.temperature is None:
        dialect.temperature = None
        dialect.notes.append(f"temperature not sent: temperature 0 rejected ({why})")
        return True
    if "seed" in names and dialect.seed is not None and overrides.seed is None:
        dialect.seed = None
        dialect.notes.append(f"seed not sent: rejected ({why})")
        return True
    if "reasoning_effort" in names and dialect.reasoning_effort and not overrides.reasoning_effort:
        dialect.reasoning_effort = None
        return True
    return False


def _choose_effort(dialect: Dialect, probe: Any) -> None:
    """Use the cheapest reasoning_effort the endpoint accepts; keep the default otherwise."""
    for effort in EFFORTS_CHEAPEST_FIRST:
        dialect.reasoning_effort = effort
        answer = probe(f"reasoning_effort {effort}", PROBE_TOKENS + HEADROOM_FLOOR)
        if answer.ok:
            tokens, visible, starved = reasoning_seen(answer.json)
            dialect.reasoning_tokens = tokens
            dialect.notes.append(f"reasoning_effort {effort}: accepted, {tokens} reasoning tokens")
            if tokens or visible:  # it still reasons: cheap enough to judge reasoning with
                dialect.judging_effort = effort
                dialect.judging_tokens, dialect.judging_starved = tokens, starved
            else:
                dialect.notes.append(
                    f"reasoning_effort {effort} showed no reasoning: reasoning checks send "
                    "the endpoint's default effort"
                )
            return
        if not rejection_names(answer, ("reasoning_effort",)):
            dialect.notes.append(f"reasoning_effort {effort}: {describe_answer(answer)}; not used")
            break
        dialect.notes.append(f"reasoning_effort {effort}: rejected")
    dialect.reasoning_effort = None


# --- options and wiring -----------------------------------------------------------------------


def add_options(group: Any) -> None:
    """The switches that fix the dialect by hand (registered by the plugin)."""
    group.addoption(
        "--token-limit-field",
        choices=TOKEN_FIELDS,
        default=None,
        help="token-limit field every request uses (default: negotiated at preflight)",
    )
    group.addoption(
        "--no-temperature",
        action="store_true",
        default=False,
        help="never send temperature (default: temperature 0 where the endpoint accepts it)",
    )
    group.addoption(
        "--no-seed",
        action="store_true",
        default=False,
        help="never send seed (default: seed 7 where the endpoint accepts it)",
    )
    group.addoption(
        "--reasoning-effort",
        default=None,
        help="reasoning_effort for every request (default: the cheapest the endpoint accepts, "
        "on reasoning models only)",
    )
    group.addoption(
        "--extra-body",
        default=None,
        help="JSON object merged into every request body, e.g. '{\"top_k\": 1}'",
    )


def overrides_from(config: Any) -> Overrides:
    """Read the dialect switches; raise ValueError with a one-line reason for bad input."""
    raw = config.getoption("extra_body", None)
    extra: Any = {}
    if raw:
        try:
            extra = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"--extra-body is not valid JSON ({exc.msg})") from None
        if not isinstance(extra, dict):
            raise ValueError("--extra-body must be a JSON object")
    return Overrides(
        token_field=config.getoption("token_limit_field", None),
        temperature=False if config.getoption("no_temperature", False) else None,
        seed=False if config.getoption("no_seed", False) else None,
        reasoning_effort=config.getoption("reasoning_effort", None),
        extra_body=extra,
    )


def settle(config: Any, transport: Any, model: str) -> Dialect:
    """Negotiate once per run, make it the current dialect and record it for the reports."""
    from conformance.verdicts.outcomes import state_of  # the run state lives with the outcomes

    negotiated = negotiate(transport, model, overrides_from(config))
    use(negotiated)
    state_of(config).dialect = negotiated.as_dict()
    return negotiated
