"""stream.*: server-sent-event framing and chunk invariants of a streamed completion.

Each check runs over both shared streams (with and without include_usage) unless it is
about one of them only.
"""

from __future__ import annotations

import pytest

from conformance.api import dialect
from conformance.api.schemas import schema_errors
from conformance.exchanges.expect import choices_of, ok_json, ok_stream, streamed_content
from conformance.exchanges.requests import chat_body
from conformance.transport.client import NOT_JSON, RequestSpec
from conformance.verdicts.check import SSE_CLIENTS, check, expect, not_applicable, observe, short
from conformance.verdicts.premises import (
    CONTENT_STRING,
    DONE_EVENT,
    FINISHED_STREAM,
    STREAM_CHOICES,
    TWO_CHUNKS,
)


@pytest.fixture(autouse=True)
def _streaming_offered(shared, capabilities):
    """Every stream.* check needs streaming: a clean 400 naming ``stream`` makes them
    unsupported (OpenAI's early o1 models could not stream), and a 200 records it offered."""
    if shared.stream.ok or shared.stream.status == 400:  # other failures: each check says
        capabilities.gate("streaming", shared.stream)


def _streams(shared):
    """Both shared streams; the include_usage one only when it was sent and not rejected
    cleanly (the usage.* checks give that verdict; a clean 400 says nothing about framing)."""
    extra = shared.stream_usage
    if extra is None or extra.status == 400:
        return (shared.stream,)
    return (shared.stream, extra)


@check(
    "stream.content_type",
    "MUST",
    "With stream: true, the response is sent as data-only server-sent events "
    "(Content-Type: text/event-stream).",
    rationale=SSE_CLIENTS,
    broken_by={"stream_as_json": "got 'application/json'"},
)
def test_content_type(shared):
    for exchange in _streams(shared):
        ok_stream(exchange)
        expect(
            exchange.content_type == "text/event-stream",
            "Content-Type text/event-stream",
            repr(exchange.header("content-type")),
            exchange,
        )


@check(
    "stream.events_are_json",
    "MUST",
    "Every event's data is one JSON chunk object, or the literal [DONE].",
    rationale=SSE_CLIENTS,
    broken_by={"non_json_event": "(2, 'keep-alive')"},
)
def test_events_are_json(shared):
    for exchange in _streams(shared):
        ok_stream(exchange)
        bad = [
            (i, e.data[:80])
            for i, (e, p) in enumerate(zip(exchange.events, exchange.payloads, strict=True))
            if p is NOT_JSON or (p != "[DONE]" and not isinstance(p, dict))
        ]
        expect(
            not bad,
            "every data line to be a JSON object or [DONE]",
            f"events (index, data) {short(bad)}",
            exchange,
        )


@check(
    "stream.chunk_schema",
    "MUST",
    "Every chunk validates against CreateChatCompletionStreamResponse (OpenAI OpenAPI spec).",
    rationale="the contract typed clients are generated from",
    broken_by={
        "usage_counts_as_strings": "usage.completion_tokens: '",
        "usage_stream_wrong_object": "chunk 0: object: 'chat.completion' is not one of",
        "wrong_chunk_object": "chunk 0: object: 'chat.completion' is not one of",
        "chunk_bad_delta": "delta.content: 5 is not valid",
        "float_created_chunks": "is not of type 'integer'",
    },
)
def test_chunk_schema(shared):
    for exchange in _streams(shared):
        for number, chunk in enumerate(ok_stream(exchange)):
            errors = schema_errors(chunk, "chunk", limit=5)
            expect(
                not errors, "no schema errors", f"chunk {number}: " + "; ".join(errors), exchange
            )


@check(
    "stream.chunk_object",
    "MUST",
    "object: The object type, which is always chat.completion.chunk.",
    rationale="clients dispatch on object",
    broken_by={
        "wrong_chunk_object": "got ['chat.completion']",
        "usage_stream_wrong_object": "got ['chat.completion']",
    },
    needs=(STREAM_CHOICES,),
)
def test_chunk_object(shared):
    streams = [(e, ok_stream(e)) for e in _streams(shared)]
    # a stream of no chunks (only [DONE]) has no object to judge: stream.first_delta_role
    # fails it for carrying no choice delta
    STREAM_CHOICES.require(any(chunks for _, chunks in streams), "every stream had no chunk")
    for exchange, chunks in streams:
        if not chunks:
            continue
        objects = {c.get("object") for c in chunks}
        expect(
            objects == {"chat.completion.chunk"},
            "every chunk object 'chat.completion.chunk'",
            short(sorted(map(str, objects))),
            exchange,
        )


def _constant(shared, key: str) -> None:
    """The same ``key`` on every chunk of each stream; a one-chunk stream has nothing that
    could differ, so it is no evidence either way (``TWO_CHUNKS``), never a pass."""
    streams = [(e, ok_stream(e)) for e in _streams(shared)]
    judged = [(e, chunks) for e, chunks in streams if len(chunks) >= 2]
    TWO_CHUNKS.require(judged, f"chunk counts {[len(chunks) for _, chunks in streams]}")
    for exchange, chunks in judged:
        values = [c.get(key) for c in chunks]
        distinct = list(dict.fromkeys(map(repr, values)))
        expect(
            len(distinct) == 1,
            f"the same {key} on every chunk",
            f"{len(distinct)} distinct values: {short(distinct)}",
            exchange,
        )


@check(
    "stream.id_constant",
    "MUST",
    "id: Each chunk has the same ID.",
    rationale="clients keep the first chunk's id",
    needs=(TWO_CHUNKS,),
    broken_by={"changing_id": "distinct values"},
)
def test_id_constant(shared):
    _constant(shared, "id")


@check(
    "stream.created_constant",
    "MUST",
    "created: The Unix timestamp of when the completion was created. Each chunk has the "
    "same timestamp.",
    rationale="clients keep the first chunk's metadata",
    needs=(TWO_CHUNKS,),
    broken_by={"changing_created": "distinct values"},
)
def test_created_constant(shared):
    _constant(shared, "created")


@check(
    "stream.model_constant",
    "MUST",
    "model: The model to generate the completion (the same for every chunk of one completion).",
    rationale="clients keep the first chunk's model",
    needs=(TWO_CHUNKS,),
    broken_by={"changing_model": "2 distinct values"},
)
def test_model_constant(shared):
    _constant(shared, "model")


def _by_choice(chunks):
    """{index: [(chunk number, choice), ...]} in stream order."""
    out: dict = {}
    for number, chunk in enumerate(chunks):
        for choice in choices_of(chunk):
            out.setdefault(choice.get("index"), []).append((number, choice))
    return out


@check(
    "stream.first_delta_role",
    "MUST",
    "The first delta of each choice carries role: 'assistant' (OpenAI always sends it; "
    "clients that accumulate messages rely on it).",
    rationale=(
        "Spec-optional (delta.role): MUST because OpenAI always sends it and "
        "accumulating clients build the message from it"
    ),
    broken_by={
        "no_role": "got first delta {'content': ''",
        "stream_no_choices": "at least one choice delta; got none",
    },
)
def test_first_delta_role(shared):
    for exchange in _streams(shared):
        per_choice = _by_choice(ok_stream(exchange))
        expect(bool(per_choice), "at least one choice delta", "none", exchange)
        for index, entries in per_choice.items():
            delta = entries[0][1].get("delta") or {}
            expect(
                delta.get("role") == "assistant",
                f"choice {index}: first delta with role 'assistant'",
                f"first delta {short(delta)}",
                exchange,
            )


@check(
    "stream.one_finish_reason",
    "MUST",
    "finish_reason is null on every chunk but one per choice, which carries the reason.",
    rationale="clients finalize a choice on its finish_reason",
    broken_by={
        "usage_chunk_with_choices": "exactly one non-null finish_reason; got 2",
        "no_finish_reason": "got 0: []",
        "two_finish_reasons": "got 2: ['stop', 'stop']",
        "stream_no_choices": "at least one choice delta; got none",
    },
)
def test_one_finish_reason(shared):
    for exchange in _streams(shared):
        per_choice = _by_choice(ok_stream(exchange))
        expect(bool(per_choice), "at least one choice delta", "none", exchange)
        for index, entries in per_choice.items():
            reasons = [c.get("finish_reason") for _, c in entries if c.get("finish_reason")]
            expect(
                len(reasons) == 1,
                f"choice {index}: exactly one non-null finish_reason",
                f"{len(reasons)}: {short(reasons)}",
                exchange,
            )


@check(
    "stream.finish_reason_last",
    "MUST",
    "The chunk with a choice's finish_reason is that choice's last chunk.",
    rationale="clients stop reading a choice at its finish_reason",
    needs=(FINISHED_STREAM,),
    broken_by={
        "usage_chunk_with_choices": "nothing after its finish_reason",
        "two_finish_reasons": "nothing after its finish_reason",
        "content_after_finish": "1 more chunk(s)",
    },
)
def test_finish_reason_last(shared):
    judged = 0
    for exchange in _streams(shared):
        for index, entries in _by_choice(ok_stream(exchange)).items():
            finished = [n for n, (_, c) in enumerate(entries) if c.get("finish_reason")]
            if not finished:
                continue  # stream.one_finish_reason reports it
            judged += 1
            after = entries[finished[0] + 1 :]
            expect(
                not after,
                f"choice {index}: nothing after its finish_reason",
                f"{len(after)} more chunk(s), first {short(after[0][1]) if after else ''}",
                exchange,
            )
    if not judged:
        FINISHED_STREAM.unmet("no choice carried a finish_reason")


@check(
    "stream.terminates_with_done",
    "MUST",
    "The stream is terminated by a data: [DONE] message, sent exactly once.",
    rationale="the SDKs and most clients wait for [DONE]",
    broken_by={"unterminated_done": "got 0 [DONE] events", "missing_done": "got 0 [DONE] events"},
)
def test_terminates_with_done(shared):
    for exchange in _streams(shared):
        ok_stream(exchange)
        dones = [i for i, e in enumerate(exchange.events) if e.data == "[DONE]"]
        tail = exchange.framing.unterminated_tail if exchange.framing else b""
        note = f"bytes after the last complete event: {tail[-120:]!r}" if tail else None
        expect(
            len(dones) == 1,
            "exactly one data: [DONE] event",
            f"{len(dones)} [DONE] events among {len(exchange.events)}",
            exchange,
            note=note,
        )


@check(
    "stream.nothing_after_done",
    "MUST",
    "[DONE] is the last event of the stream.",
    rationale="clients stop at [DONE]; later data is lost or misread",
    needs=(DONE_EVENT,),
    broken_by={"data_after_done": "got 1 event(s)"},
)
def test_nothing_after_done(shared):
    judged = 0
    for exchange in _streams(shared):
        ok_stream(exchange)
        dones = [i for i, e in enumerate(exchange.events) if e.data == "[DONE]"]
        if not dones:
            continue  # stream.terminates_with_done reports it
        judged += 1
        after = exchange.events[dones[0] + 1 :]
        expect(
            not after,
            "no event after [DONE]",
            f"{len(after)} event(s), first {short(after[0].data) if after else ''}",
            exchange,
        )
    if not judged:
        DONE_EVENT.unmet()


@check(
    "stream.events_terminated",
    "MUST",
    "Each event ends with a blank line; an event without one is discarded at end of stream "
    "by WHATWG-conformant clients (EventSource, strict SSE parsers).",
    rationale="strict SSE parsers drop an unterminated last event",
    broken_by={"unterminated_done": "unterminated tail b'data: [DONE]"},
)
def test_events_terminated(shared):
    for exchange in _streams(shared):
        ok_stream(exchange)
        tail = exchange.framing.unterminated_tail if exchange.framing else b""
        expect(
            not tail.strip(),
            "the stream to end after a blank line",
            f"unterminated tail {tail[-200:]!r}",
            exchange,
        )


@check(
    "stream.matches_non_streamed",
    "SHOULD",
    "Concatenated deltas equal the message content of the same temperature-0, seeded "
    "request without streaming (real models may differ slightly; hence SHOULD).",
    rationale="real models may differ slightly between the two paths",
    broken_by={
        "temp0_nondeterministic": "expected streamed content",
        "content_after_finish": " late'",
        "chunk_bad_delta": "got ' number",
        "stream_content_differs": "plain.'; got 'Every",
    },
    needs=(CONTENT_STRING, STREAM_CHOICES),
)
def test_matches_non_streamed(shared):
    if not dialect.current().deterministic:
        not_applicable(
            "the endpoint does not accept temperature 0 (see the dialect): two samples of the "
            "same request need not agree"
        )
    body = ok_json(shared.plain)
    message = (choices_of(body) or [{}])[0].get("message") or {}
    expected = message.get("content")
    CONTENT_STRING.require(isinstance(expected, str), f"content {short(expected, 80)}")
    chunks = ok_stream(shared.stream)
    STREAM_CHOICES.require(any(choices_of(c) for c in chunks), shared.stream.label)
    actual = streamed_content(chunks)
    expect(
        actual == expected,
        f"streamed content {short(expected)}",
        short(actual),
        shared.plain,
        shared.stream,
    )


@check(
    "stream.framing",
    "INFO",
    "Framing variants the spec allows (no space after 'data:', CRLF, comments) are reported, "
    "not failed; some hand-written clients choke on them.",
    rationale="allowed variants; some hand-written clients choke: reported",
)
def test_framing(shared):
    notes = []
    for exchange in _streams(shared):
        ok_stream(exchange)
        if exchange.framing:
            notes += exchange.framing.notes()
    observe("; ".join(dict.fromkeys(notes)) or "plain framing: LF line endings, 'data: ' prefix")


# Every other check sends each request on a fresh connection (see client.Transport), so a
# server that silently drops the connection after a stream would go unnoticed; pooled clients
# (the official SDKs) notice, as "server disconnected without sending a response".
@check(
    "stream.connection_persists",
    "SHOULD",
    "HTTP/1.1 connections are persistent unless a 'Connection: close' says otherwise (RFC 9112 "
    "9.3, 9.6): a server that closes after a streamed response announces it, or clients that "
    "reuse pooled connections race against the close.",
    rationale="pooled clients race the close; most retry",
    broken_by={"close_after_stream": "closed the connection after the stream"},
)
def test_connection_persists(endpoint):
    model = endpoint.model
    specs = [
        RequestSpec(
            "streamed, on a kept-alive connection", json=chat_body(model, stream=True, max_tokens=4)
        ),
        RequestSpec("next request on the same connection", json=chat_body(model, max_tokens=1)),
    ]
    (first, second), connections = endpoint.transport.send_on_one_connection(specs)
    ok_stream(first)
    ok_json(second)
    said = (first.header("connection") or "").lower()
    expect(
        connections == 1 or "close" in said,
        "the connection kept open after the stream, or 'Connection: close' on the response",
        f"the server closed the connection after the stream without announcing it "
        f"(Connection: {first.header('connection')!r}, Keep-Alive: {first.header('keep-alive')!r});"
        f" the next request needed a new connection",
        first,
        second,
    )
