"""Real api.openai.com responses, recorded in public test cassettes, pass the suite.

The corpus (``tests/fixtures/openai_recorded/``, provenance in its README) holds what OpenAI
really sent: reasoning models (o1-mini, o3-mini, o4-mini, gpt-5, gpt-5-mini, gpt-5.4-mini) and
gpt-4o-style ones, tool calls, structured output, usage with reasoning tokens, include_usage
streams, and error bodies. A check that rejects any of it is a false alarm.

1. Offline: every 200 body validates against the response schema, every stream decodes with
   the suite's SSE decoder into chunks that validate against the chunk schema and ends with
   ``[DONE]``, every error body validates against the error schema.
2. Over HTTP: ``replay_server.py`` plays the recordings and the suite runs against it, one
   run per plain body (each run also plays a tool-call body, two plain streams, a tool-call
   stream and an error, rotating so every recording is judged). Selected are the checks that
   judge the *shape* of a response, which a recording can honour whatever was asked:
   ``response.*``, ``stream.*``, ``usage.*``, ``errors.*``, and the tool-call and reasoning
   checks whose verdict rests on shape alone (``SHAPE_ELSEWHERE``).
   Deselected (``BEHAVIOUR``) are the checks that judge how a response answers its request
   or its clock, which a replay cannot honour; each says why. Auth is not exercised: the
   runs carry no API key (there is no recorded 401 in the corpus), so every error the suite
   judges is a recorded one.

Every fail, error or warn in a run must be a known false alarm (``FALSE_ALARMS``): each is
listed there with the recordings that trigger it, and has a strict xfail test that starts
passing, and so demands removal, once the check is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from replay_server import CORPUS, UNKNOWN_MODEL, Recording, ReplayServer, Route, load_corpus
from suite_runner import SuiteRun, run_many

from conformance.api.schemas import schema_errors
from conformance.transport.sse import decode_all

RECORDINGS = load_corpus()
LICENSES = {"MIT", "Apache-2.0", "BSD-3-Clause", "BSD-2-Clause"}
BAD = {"fail", "error", "warn"}

#: Checks that judge behaviour a replay cannot honour: deselected, with the reason.
BEHAVIOUR = {
    "response.created_recent": "judges the clock: recordings are months old",
    "stream.matches_non_streamed": "compares two answers to one prompt: recordings differ",
    "usage.stream_matches_non_streamed": "same: streamed and plain recordings differ",
    "usage.stream_absent_unrequested": "every recorded stream asked for include_usage",
    "usage.within_max_tokens": "judges the limit the suite sent; recordings had others",
    "stream.connection_persists": "judges the replay server's keep-alive, not a recording",
    "errors.invalid_names_param": "recorded errors name the parameter of their own request",
    "errors.auth": "no recorded 401; runs carry no key",
    "usage.prompt_tokens_grow": "compares the usage of two prompts: recordings answer others",
    "usage.length_spends_limit": "judges the limit the suite sent; recordings had others",
    "usage.prompt_tokens_once_for_n": "compares n=2 with n=1: recordings answer other prompts",
    "response.distinct_ids": "one recording answers many requests: its id repeats by design",
}
#: Checks of areas that mostly judge behaviour whose verdict rests on the response's shape
#: alone (the rest of tools.*, reasoning.* and sdk.* ask for what a replay cannot honour).
SHAPE_ELSEWHERE = (
    "tools.forced_call",
    "tools.call_ids",
    "tools.arguments_json_string",
    "tools.finish_reason",
    "tools.stream_deltas",
    "reasoning.tokens_within_completion",
    "reasoning.no_think_tags",
    "reasoning.stream_reasoning_first",
    "reasoning.stream_matches_message",
    "sdk.plain_completion",  # the official SDK parses the recorded body, stream, tool stream
    "sdk.stream",
    "sdk.stream_tools",
)
#: Judged in every run (the recordings have what they need): never "not applicable".
MUST_PASS = {
    "response.schema",
    "stream.chunk_schema",
    "usage.stream_one_usage_chunk",
    "reasoning.tokens_within_completion",
    *(c for c in SHAPE_ELSEWHERE if c.startswith(("tools.", "sdk."))),
}
SELECTION = (
    f"(response. or stream. or usage. or errors. or {' or '.join(SHAPE_ELSEWHERE)}) "
    f"and not ({' or '.join(BEHAVIOUR)})"
)

#: check id -> (recordings that trigger it, why it is a false alarm). Report, never hide:
#: the lead fixes the check, then the strict xfail below turns red and the entry goes.
FALSE_ALARMS: dict[str, tuple[frozenset[str], str]] = {
    # None left. Fixed so far: response.logprobs_key (OpenAI omits the key for gpt-5, o4-mini,
    # gpt-4o-audio-preview and gpt-4o-search-preview: now INFO) and usage.stream_chunk_last /
    # usage.stream_null_elsewhere (a moderation chunk after the usage chunk: now "no choices
    # after the usage chunk"). A new one goes here with its recordings and a reason.
}


def _kind(rec: Recording) -> str:
    if rec.status != 200:
        return "error"
    if rec.is_stream:
        return "tool_stream" if '"tool_calls"' in rec.body else "stream"
    message = json.loads(rec.body)["choices"][0]["message"]
    return "tool_body" if message.get("tool_calls") else "body"


def _names(kind: str) -> list[str]:
    return [n for n, r in RECORDINGS.items() if _kind(r) == kind and n != "error_model_not_found"]


def _routes() -> dict[str, Route]:
    """One route per plain body; the other slots rotate so every recording is played."""
    tools, streams, tool_streams, errors = (
        _names(k) for k in ("tool_body", "stream", "tool_stream", "error")
    )
    return {
        body: Route(
            body,
            tools[i % len(tools)],
            streams[i % len(streams)],
            streams[(i + 1) % len(streams)],
            tool_streams[i % len(tool_streams)],
            errors[i % len(errors)],
        )
        for i, body in enumerate(_names("body"))
    }


ROUTES = _routes()


def _chunks(rec: Recording) -> list[dict]:
    events, framing = decode_all(rec.body.encode("utf-8"))
    assert not framing.unterminated_tail and not framing.invalid_utf8_lines, framing.notes()
    assert events and events[-1].data == "[DONE]"
    return [json.loads(e.data) for e in events[:-1]]


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_recording_is_from_openai(name):
    rec = RECORDINGS[name]
    source = rec.provenance
    assert source["license"] in LICENSES
    assert source["uri"] == "https://api.openai.com/v1/chat/completions"
    assert len(source["commit"]) == 40 and source["repo"] and source["path"]
    if rec.status == 200:  # the answering model is the one asked for (no proxy re-recording)
        bodies = _chunks(rec) if rec.is_stream else [json.loads(rec.body)]
        assert all(b["model"].startswith(rec.model) for b in bodies), rec.model


@pytest.mark.parametrize("name", [n for n, r in RECORDINGS.items() if _kind(r).endswith("body")])
def test_body_matches_response_schema(name):
    assert schema_errors(json.loads(RECORDINGS[name].body), "response") == []


@pytest.mark.parametrize("name", [n for n, r in RECORDINGS.items() if r.is_stream])
def test_stream_decodes_to_schema_valid_chunks(name):
    chunks = _chunks(RECORDINGS[name])
    assert [e for c in chunks for e in schema_errors(c, "chunk")] == []


@pytest.mark.parametrize("name", [n for n, r in RECORDINGS.items() if r.status != 200])
def test_error_matches_error_schema(name):
    assert schema_errors(json.loads(RECORDINGS[name].body), "error") == []


def test_every_recording_is_replayed():
    played = {n for route in ROUTES.values() for n in route.names()} | {"error_model_not_found"}
    assert played == set(RECORDINGS)


ROUTE = Route("body", "tool_body", "stream", "usage_stream", "tool_stream", "error")
USER = [{"role": "user", "content": "hi"}]
USAGE = {"include_usage": True}


@pytest.mark.parametrize(
    ("request_body", "slot"),
    [
        ({"model": "m", "messages": USER}, "body"),
        ({"model": "m", "messages": USER, "stream": True}, "stream"),
        ({"model": "m", "messages": USER, "stream": True, "stream_options": USAGE}, "usage_stream"),
        ({"model": "m", "messages": USER, "tools": [{}]}, "tool_body"),
        ({"model": "m", "messages": USER, "tools": [{}], "stream": True}, "tool_stream"),
        ({"model": "m", "messages": USER, "temperature": 5}, "error"),
        ({"model": "m", "messages": USER, "n": 0, "stream": True}, "error"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}, "error"),
        ({"model": "m", "messages": []}, "error"),
        ({"model": "m"}, "error"),
        ({"messages": USER}, "error"),  # no model: OpenAI's 400, not the unknown-model 404
        ({"model": "m", "messages": USER, "max_completion_tokens": 0}, "error"),
        ({"model": "m", "messages": USER, "temperature": "hot"}, "error"),
        ({"model": "m", "messages": "hi"}, "error"),
        ({"model": "m", "messages": USER, "response_format": {"type": "yaml"}}, "error"),
        (
            {
                "model": "m",
                "messages": USER,
                "tools": [{"type": "function", "function": {"name": "noop"}}],
                "tool_choice": {"type": "function", "function": {"name": "absent"}},
            },
            "error",
        ),
        (None, "error"),  # malformed JSON
        ({"model": "no-such-model", "messages": USER}, UNKNOWN_MODEL),
    ],
)
def test_route_picks_the_recording_for_the_request(request_body, slot):
    assert ROUTE.pick(request_body, {"m"}) == slot


def test_replay_is_byte_for_byte():
    route = next(iter(_routes().values()))
    with ReplayServer(RECORDINGS, max_seconds=30) as server:
        url = server.url(route)
        models = httpx.get(f"{url}/models").json()
        body = {"model": RECORDINGS[route.body].model, "messages": USER, "stream": True}
        reply = httpx.post(f"{url}/chat/completions", json=body)
    assert [m["id"] for m in models["data"]] == [RECORDINGS[route.body].model]
    recorded = RECORDINGS[route.stream]
    assert reply.headers["content-type"] == recorded.content_type
    assert reply.content == recorded.body.encode("utf-8")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, SuiteRun]:
    root = tmp_path_factory.mktemp("recorded")
    with ReplayServer(RECORDINGS) as server:
        jobs = [
            (
                root / name / "reports",
                [
                    f"--base-url={server.url(route)}",
                    f"--model={RECORDINGS[name].model}",
                    # results.json is what we read; the unraisable-exception hook costs a
                    # full gc.collect() x5 per run in a warm worker (~40% of the run's CPU)
                    *("-p", "no:html", "-p", "no:unraisableexception", "-k", SELECTION),
                ],
            )
            for name, route in ROUTES.items()
        ]
        done = run_many(jobs)
    return dict(zip(ROUTES, done, strict=True))


def _known(check_id: str, route: Route) -> bool:
    entry = FALSE_ALARMS.get(check_id.split("[")[0])
    return entry is not None and bool(entry[0] & set(route.names()))


@pytest.mark.parametrize("name", list(ROUTES))
def test_suite_accepts_recorded_responses(runs, name):
    run = runs[name]
    assert (run.reports / "results.json").is_file(), run.output[-3000:]
    outcomes = run.outcomes
    passed = {c.split("[")[0] for c, o in outcomes.items() if o == "pass"}
    assert not MUST_PASS - passed, sorted(MUST_PASS - passed)
    unknown = {
        cid: f"{o}: {run.results['checks'][cid].get('message', '')[:300]}"
        for cid, o in outcomes.items()
        if o in BAD and not _known(cid, ROUTES[name])
    }
    assert unknown == {}, ROUTES[name]


def _false_alarm_cases() -> list:
    return [
        pytest.param(
            check_id,
            recording,
            marks=pytest.mark.xfail(strict=True, reason=f"false alarm: {check_id}: {why}"),
            id=f"{check_id}@{recording}",
        )
        for check_id, (recordings, why) in FALSE_ALARMS.items()
        for recording in sorted(recordings)
    ]


if FALSE_ALARMS:  # each known false alarm is a strict xfail that turns red once fixed

    @pytest.mark.parametrize(("check_id", "recording"), _false_alarm_cases())
    def test_known_false_alarm(runs, check_id, recording):
        for name, route in ROUTES.items():
            if recording in route.names():
                judged = {
                    cid: o
                    for cid, o in runs[name].outcomes.items()
                    if cid.split("[")[0] == check_id
                }
                assert not set(judged.values()) & BAD, (name, judged)


def test_corpus_readme_lists_every_recording():
    readme = (Path(CORPUS) / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in RECORDINGS)
