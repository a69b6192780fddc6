"""messages: every role, string and text-part content, names, instructions, image and audio."""

from __future__ import annotations

import pytest

from conformance.exchanges.expect import describe_status, message_of
from conformance.exchanges.requests import Planned, chat_body, send_batch
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import check, expect, not_applicable, observe, short
from conformance.verdicts.premises import CONTENT_STRING, PROMPT_COUNTED

SECRET = "PINEAPPLE"
INSTRUCTION = f"The secret word is {SECRET}. Reply with only the word {SECRET}."
QUESTION = "What is the secret word?"
# 1x1 transparent PNG and 8 samples of 8 kHz silence as WAV: the smallest valid media.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg=="
)
WAV = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="


def _parts(text: str) -> list[dict]:
    return [{"type": "text", "text": text}]


ROLE_HISTORIES = {
    "system": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hi."},
    ],
    "developer": [
        {"role": "developer", "content": "You are terse."},
        {"role": "user", "content": "Say hi."},
    ],
    "assistant": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Again."},
    ],
}
ROLE_CAPABILITY = {"system": None, "developer": "developer_role", "assistant": None}
PART_ROLES = ["system", "developer", "user", "assistant"]


def _parts_history(role: str) -> list[dict]:
    if role == "user":
        return [{"role": "user", "content": _parts("Say hi.")}]
    if role == "assistant":
        return [
            {"role": "user", "content": "Say hi."},
            {"role": "assistant", "content": _parts("Hi.")},
            {"role": "user", "content": "Again."},
        ]
    return [
        {"role": role, "content": _parts("You are terse.")},
        {"role": "user", "content": "Say hi."},
    ]


def _media_message(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": [*_parts("Describe this input in five words."), *parts]}]


@pytest.fixture(scope="session")
def messaged(endpoint, capabilities):
    model = endpoint.model

    def planned(cap, label, messages, **extra):
        body = chat_body(model, messages=messages, max_tokens=extra.pop("max_tokens", 16))
        return Planned(cap, RequestSpec(label, json={**body, **extra}))

    plan = {}
    for role, history in ROLE_HISTORIES.items():
        plan[("role", role)] = planned(ROLE_CAPABILITY[role], f"role {role}", history)
    for role in PART_ROLES:
        cap = "developer_role" if role == "developer" else "content_parts"
        plan[("parts", role)] = planned(cap, f"{role} content as text parts", _parts_history(role))
    for role in ("system", "developer"):
        history = [
            {"role": role, "content": _parts(INSTRUCTION)},
            {"role": "user", "content": QUESTION},
        ]
        cap = "developer_role" if role == "developer" else "content_parts"
        plan[("instruction", role)] = planned(cap, f"instruction in a {role} part", history)
    question = [{"role": "user", "content": QUESTION}]
    for number in (1, 2):  # twice: the difference test needs a repeatable baseline
        plan[("baseline", number)] = planned(None, f"the question alone ({number})", question)
    say_hi = [{"role": "user", "content": "Say hi."}]
    plan["user_string"] = planned(None, "user content as a string", say_hi)
    named = [{"role": "user", "content": "Say hi.", "name": "alice"}]
    plan["name"] = planned(None, "message with name", named)
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    audio = {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
    plan["vision"] = planned("vision", "image_url part", _media_message(image))
    plan["audio"] = planned("audio_input", "input_audio part", _media_message(audio))
    plan["media_twin"] = planned(None, "the same text without media parts", _media_message())
    return send_batch(endpoint, capabilities, plan)


@check(
    "messages.role_accepted",
    "MUST",
    "Conversations with system, developer and assistant messages are accepted (developer is "
    "the newer name of system; rejecting it cleanly is 'unsupported').",
    rationale="system/developer/assistant are in every conversation",
    broken_by={"non_user_roles_500": "got HTTP 500"},
)
@pytest.mark.parametrize("role", list(ROLE_HISTORIES))
def test_role_accepted(messaged, capabilities, role):
    exchange = messaged[("role", role)]
    if ROLE_CAPABILITY[role]:
        capabilities.gate(ROLE_CAPABILITY[role], exchange)
    expect(exchange.ok, "HTTP 200", describe_status(exchange), exchange)
    message_of(exchange)


@check(
    "messages.content_parts",
    "MUST",
    "content may be an array of text parts for every role ([{'type': 'text', 'text': ...}]), "
    "read like the same text as a string: the answer equals the string twin's (judged when "
    "the endpoint repeats itself at temperature 0).",
    capability="content_parts",
    needs=(CONTENT_STRING,),
    rationale="every OpenAI model takes text parts; SDK helpers send them",
    broken_by={
        "content_parts_500": "got HTTP 500",
        "parts_text_dropped": "the answer to the same text as a string",
    },
)
@pytest.mark.parametrize("role", PART_ROLES)
def test_content_parts(messaged, capabilities, role):
    exchange = messaged[("parts", role)]
    if role == "developer":
        capabilities.gate("developer_role", messaged[("role", "developer")])
    capabilities.gate("content_parts", exchange)
    content = message_of(exchange).get("content")
    CONTENT_STRING.require(isinstance(content, str), f"content {short(content, 80)}")
    twin = messaged["user_string"] if role == "user" else messaged[("role", role)]
    if twin is None or not twin.ok:
        not_applicable("the same messages with string content got no answer to compare")
    _repeatable(messaged)
    expected = message_of(twin).get("content")
    expect(
        content == expected,
        f"the answer to the same text as a string: {short(expected)}",
        short(content),
        exchange,
        twin,
    )


def _repeatable(messaged) -> str:
    """The baseline answer, or not applicable when the same request twice differs."""
    alone = [message_of(messaged[("baseline", n)]).get("content") or "" for n in (1, 2)]
    if alone[0] != alone[1]:
        not_applicable(
            f"the same request twice got two different answers ({short(alone[0], 60)} / "
            f"{short(alone[1], 60)}): comparing answers would prove nothing"
        )
    return alone[0]


def _instruction_answer(messaged, capabilities, role: str):
    exchange = messaged[("instruction", role)]
    if role == "developer":
        capabilities.gate("developer_role", messaged[("role", "developer")])
    capabilities.gate("content_parts", exchange)
    content = message_of(exchange).get("content")
    CONTENT_STRING.require(isinstance(content, str), f"content {short(content, 80)}")
    return exchange, content


@check(
    "messages.system_honoured",
    "MUST",
    "A system or developer message reaches the model: at temperature 0 the answer with it "
    "differs from the answer to the same question without it (judged only when the question "
    "alone gets the same answer twice). Any model passes when the API reads the message.",
    needs=(CONTENT_STRING,),
    rationale="a dropped system prompt is a silent wrong answer",
    broken_by={"drop_system": "got the same answer with and without it"},
)
@pytest.mark.parametrize("role", ["system", "developer"])
def test_system_honoured(messaged, capabilities, role):
    exchange, content = _instruction_answer(messaged, capabilities, role)
    first = messaged[("baseline", 1)]
    alone = _repeatable(messaged)
    expect(
        content != alone,
        f"an answer that differs from the answer without the {role} message",
        f"the same answer with and without it: {short(content)}",
        exchange,
        first,
        note=f"the {role} message says: {INSTRUCTION!r}",
    )


@check(
    "messages.instruction_followed",
    "INFO",
    "Whether the model obeys an instruction given only in a system or developer text part "
    "(a probe of the model, not of the API: messages.system_honoured judges the API).",
    needs=(CONTENT_STRING,),
    rationale="judges the model, not the API: a probe only",
)
@pytest.mark.parametrize("role", ["system", "developer"])
def test_instruction_followed(messaged, capabilities, role):
    exchange, content = _instruction_answer(messaged, capabilities, role)
    obeyed = SECRET.lower() in content.lower()
    verdict = "obeyed" if obeyed else "did not say"
    observe(f"{verdict} the secret word: {short(content, 80)}", exchange)


@check(
    "messages.name_accepted",
    "MUST",
    "messages[].name: An optional name for the participant; it is accepted.",
    rationale="SDKs and frameworks send name; rejecting it breaks them",
    broken_by={"reject_name": "expected HTTP 200; got HTTP 400"},
)
def test_name_accepted(messaged):
    exchange = messaged["name"]
    expect(exchange.ok, "HTTP 200", describe_status(exchange), exchange)


@check(
    "messages.image_input",
    "MUST",
    "An image_url part (data URI) is accepted and read (it costs prompt tokens against a twin "
    "without it), or cleanly rejected as unsupported.",
    capability="vision",
    needs=(CONTENT_STRING, PROMPT_COUNTED),
    rationale="accepted images that are not read answer about nothing",
    broken_by={
        "image_500": "got HTTP 500",
        "drop_media": "the image part was accepted and ignored",
        "media_empty_answer": "a text answer; got ''",
    },
)
def test_image_input(messaged, capabilities):
    _media_read(messaged, capabilities, "vision", "image")


@check(
    "messages.audio_input",
    "MUST",
    "An input_audio part (base64 WAV) is accepted and read (it costs prompt tokens against a "
    "twin without it), or cleanly rejected as unsupported.",
    capability="audio_input",
    needs=(CONTENT_STRING, PROMPT_COUNTED),
    rationale="accepted audio that is not read answers about nothing",
    broken_by={
        "audio_500": "got HTTP 500",
        "drop_media": "the audio part was accepted and ignored",
        "media_empty_answer": "a text answer; got ''",
    },
)
def test_audio_input(messaged, capabilities):
    _media_read(messaged, capabilities, "audio_input", "audio")


def _prompt_counts(messaged) -> set[int]:
    """The prompt_tokens of every answered messages request: different prompts, so a usage
    that counts prompts shows more than one value."""
    usages = [getattr(x, "usage", None) for x in messaged.values()]
    return {u["prompt_tokens"] for u in usages if isinstance(u, dict) and _count(u)}


def _count(usage: dict) -> bool:
    value = usage.get("prompt_tokens")
    return isinstance(value, int) and not isinstance(value, bool)


def _media_read(messaged, capabilities, name: str, kind: str) -> None:
    """Accepted media must be read: the part costs prompt tokens, against a twin without it."""
    key = "vision" if name == "vision" else "audio"
    exchange, twin = messaged[key], messaged["media_twin"]
    capabilities.gate(name, exchange)
    content = message_of(exchange).get("content")
    # content that is never a string (the twin's neither) is response.content_string's failure
    twin_content = message_of(twin).get("content") if twin.ok else ""
    CONTENT_STRING.require(
        isinstance(content, str) or isinstance(twin_content, str), short(content, 80)
    )
    expect(isinstance(content, str) and content != "", "a text answer", short(content), exchange)
    tokens = [(x.usage or {}).get("prompt_tokens") for x in (exchange, twin)]
    if not all(isinstance(t, int) for t in tokens):
        not_applicable(f"no usage.prompt_tokens to compare with the twin without the {kind}")
    PROMPT_COUNTED.require(
        tokens[1] > 0 and len(_prompt_counts(messaged)) > 1,
        f"prompt_tokens {sorted(_prompt_counts(messaged))} over the messages requests",
    )
    capabilities.effect(
        name, tokens[0] > tokens[1], f"prompt_tokens with and without the {kind}", exchange
    )
    expect(
        tokens[0] > tokens[1],
        f"more prompt_tokens than the twin without the {kind} part ({tokens[1]})",
        f"prompt_tokens {tokens[0]}: the {kind} part was accepted and ignored",
        exchange,
        twin,
        note=f"answers: with {short(content, 60)}, without "
        f"{short(message_of(twin).get('content'), 60)}",
    )
