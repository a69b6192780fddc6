"""The reference server itself: each request field has its documented, predictable effect."""

from __future__ import annotations

import json

import httpx
import pytest
from suite_runner import API_KEY

from conformance.reference.__main__ import main as reference_main
from conformance.transport.sse import decode_all

USER = [{"role": "user", "content": "Say something."}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture
def post(reference):
    client = httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)

    def send(prefix: str = "", **body) -> httpx.Response:
        body.setdefault("model", "chatcompat-ref-1")
        body.setdefault("messages", USER)
        return client.post(f"{reference.origin}{prefix}/v1/chat/completions", json=body)

    yield send
    client.close()


def _content(response: httpx.Response, index: int = 0) -> str:
    return response.json()["choices"][index]["message"]["content"]


def _chunks(response: httpx.Response) -> list[dict]:
    events, _ = decode_all(response.content)
    return [json.loads(e.data) for e in events if e.data != "[DONE]"]


def test_temperature_zero_is_repeatable(post):
    assert _content(post(temperature=0)) == _content(post(temperature=0))


def test_seed_makes_sampling_repeatable(post):
    first, second = post(temperature=1, seed=3), post(temperature=1, seed=3)
    assert _content(first) == _content(second)
    others = {_content(post(temperature=1, seed=s)) for s in range(4, 9)}
    assert len(others) > 1


def test_n_gives_indexed_choices(post):
    choices = post(n=3, temperature=1, seed=1).json()["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]


def test_stop_cuts_before_the_sequence(post):
    reply = post(messages=[{"role": "user", "content": "count from 1 to 20"}], stop=["7"])
    assert _content(reply) == "1, 2, 3, 4, 5, 6, "
    assert reply.json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_token_limit(post, field):
    body = post(messages=[{"role": "user", "content": "count from 1 to 50"}], **{field: 5}).json()
    assert body["usage"]["completion_tokens"] == 5
    assert body["choices"][0]["finish_reason"] == "length"


def test_ignore_eos_generates_exactly_max_tokens(post):
    body = post(max_tokens=100, ignore_eos=True).json()
    assert body["usage"]["completion_tokens"] == 100


def test_logprobs_are_well_formed(post):
    choice = post(logprobs=True, top_logprobs=3).json()["choices"][0]
    entries = choice["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    for entry in entries:
        assert entry["logprob"] <= 0 and bytes(entry["bytes"]).decode() == entry["token"]
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(tops) <= 3 and tops == sorted(tops, reverse=True)


@pytest.mark.parametrize(
    ("choice", "finish"),
    [
        ("required", "tool_calls"),
        ({"type": "function", "function": {"name": "get_weather"}}, "stop"),
    ],
)
def test_forced_tool_call(post, choice, finish):
    body = post(tools=[TOOL], tool_choice=choice).json()["choices"][0]
    (call,) = body["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and call["id"]
    assert set(json.loads(call["function"]["arguments"])) == {"city", "days"}
    assert body["finish_reason"] == finish and body["message"]["content"] is None


def test_tool_choice_none_answers_in_text(post):
    body = post(tools=[TOOL], tool_choice="none").json()["choices"][0]
    assert "tool_calls" not in body["message"] and body["message"]["content"]


def test_streamed_tool_call_fragments_concatenate(post):
    chunks = _chunks(post(tools=[TOOL], tool_choice="required", stream=True))
    deltas = [d for c in chunks for d in c["choices"][0]["delta"].get("tool_calls", [])]
    assert all("index" in d for d in deltas) and deltas[0]["id"]
    arguments = "".join(d["function"].get("arguments", "") for d in deltas)
    assert set(json.loads(arguments)) == {"city", "days"}


def test_json_schema_output(post):
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}}
    assert isinstance(json.loads(_content(post(response_format=fmt)))["x"], int)


def test_stream_usage_chunk_is_last(post):
    chunks = _chunks(post(stream=True, stream_options={"include_usage": True}))
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"temperature": 2.5}, 400, "temperature"),
        ({"top_p": 1.5}, 400, "top_p"),
        ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        ({"top_logprobs": 2}, 400, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, 400, "top_logprobs"),
        ({"logit_bias": {"5": 101}}, 400, "logit_bias"),
        ({"stream_options": {"include_usage": True}}, 400, "stream_options"),
        ({"reasoning_effort": "extreme"}, 400, "reasoning_effort"),
        ({"unknown_field": 1}, 400, "unknown_field"),
        ({"model": "nope"}, 404, None),
    ],
)
def test_invalid_requests(post, body, status, param):
    reply = post(**body)
    assert reply.status_code == status
    assert reply.json()["error"]["param"] == param


def test_auth_is_enforced(reference):
    reply = httpx.get(f"{reference.base_url}/models")
    assert reply.status_code == 401 and reply.json()["error"]["message"]


def test_unknown_fault_prefix_is_404(reference):
    reply = httpx.get(f"{reference.origin}/faults/bogus/v1/models")
    assert reply.status_code == 404 and "bogus" in reply.json()["error"]["message"]


def test_injected_latency_and_send_log(tmp_path):
    from conformance.reference import ReferenceConfig, ReferenceServer

    log = tmp_path / "send.jsonl"
    config = ReferenceConfig(ttft_ms=30, itl_ms=5, send_log=log)
    with ReferenceServer(config) as server:
        body = {
            "model": "chatcompat-ref-1",
            "messages": USER,
            "stream": True,
            "max_tokens": 10,
            "ignore_eos": True,
        }
        httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10)
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    sent = record["token_sent_ns"]
    assert len(sent) == 10
    assert (sent[0] - record["start_ns"]) / 1e6 >= 29
    # The schedule is absolute (started + ttft + i * itl): a late first send (a busy machine)
    # may shorten the first-to-last gap, but no token may go out before its time.
    assert (sent[-1] - record["start_ns"]) / 1e6 >= 30 + 9 * 5 - 1


def test_cli_lists_faults_and_rejects_unknown(capsys):
    assert reference_main(["--list-faults"]) == 0
    assert "missing_done" in capsys.readouterr().out
    assert reference_main(["--fault", "nope"]) == 2
