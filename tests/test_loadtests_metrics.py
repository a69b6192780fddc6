"""Metric computation on crafted streams, and the pure helpers around it (no Locust here).

Locust monkey-patches the process with gevent when imported, so these tests import only the
Locust-free modules of ``loadtests``; the runs themselves are in test_loadtests_runs.py.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from conformance.transport.sse import Event
from loadtests.aggregate import Window, aggregate, parse_goodput
from loadtests.http_stream import ChunkedDecoder, EventSplitter, StreamError, StreamingClient
from loadtests.metrics import Sample, StreamMeter
from loadtests.recorder import Recorder, to_row
from loadtests.schedule import ArrivalSchedule
from loadtests.selfbench.truth import TruthRecord, compare
from loadtests.settings import Settings
from loadtests.slo import check, parse_gates
from loadtests.stats import percentile, summarize
from loadtests.workload import Prompts, request_body

ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
USAGE_ONLY = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5}}


def chunk(**delta: object) -> dict:
    return {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta}]}


def measure(events: list[tuple[float, object]], start: float = 0.0, end: float = 1.0) -> Sample:
    """Feed (arrival seconds, chunk or literal) pairs through a meter; return the sample."""
    meter = StreamMeter(start)
    for at, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        meter.on_events([Event(text, received_at=at)])
    return meter.finish(Sample(start_wall=0.0), end, target_tokens=None)


def test_role_only_first_chunk_does_not_start_ttft() -> None:
    sample = measure(
        [(0.001, ROLE), (0.050, chunk(content="Hi")), (0.060, chunk(content="!")), (0.07, "[DONE]")]
    )
    assert sample.ok
    assert sample.ttft_ms == pytest.approx(50.0)
    assert sample.itl_ms == [pytest.approx(10.0)]


def test_usage_only_last_chunk_gives_tokens_but_no_gap() -> None:
    events = [
        (0.05, chunk(content="a")),
        (0.06, chunk(content="b")),
        (0.061, USAGE_ONLY),
        (0.062, "[DONE]"),
    ]
    sample = measure(events, end=0.062)
    assert (sample.output_tokens, sample.tokens_source, sample.prompt_tokens) == (5, "usage", 7)
    assert len(sample.itl_ms) == 1
    assert sample.tpot_ms == pytest.approx((62.0 - 50.0) / 4)


def test_without_usage_tokens_are_counted_chunks() -> None:
    sample = measure([(0.05, chunk(content="a")), (0.06, chunk(content="b")), (0.07, "[DONE]")])
    assert (sample.output_tokens, sample.tokens_source) == (2, "chunks")


def test_multi_token_chunks_give_one_gap_per_chunk_and_tpot_per_token() -> None:
    events = [
        (0.05, chunk(content="one two three")),
        (0.08, chunk(content=" four five six")),
        (0.081, {"choices": [], "usage": {"completion_tokens": 6}}),
        (0.081, "[DONE]"),
    ]
    sample = measure(events, end=0.08)
    assert sample.itl_ms == [pytest.approx(30.0)]
    assert sample.content_chunks == 2
    assert sample.tpot_ms == pytest.approx(30.0 / 5)


def test_tool_call_deltas_carry_output() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    events = [
        (0.01, ROLE),
        (0.04, chunk(tool_calls=[call])),
        (0.05, chunk(tool_calls=[{"index": 0, "function": {"arguments": "{}"}}])),
        (0.05, "[DONE]"),
    ]
    sample = measure(events)
    assert sample.ttft_ms == pytest.approx(40.0)
    assert sample.itl_ms == [pytest.approx(10.0)]


def test_reasoning_deltas_count_as_output() -> None:
    sample = measure(
        [(0.02, chunk(reasoning_content="hmm")), (0.05, chunk(content="x")), (0.05, "[DONE]")]
    )
    assert sample.ttft_ms == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        ({"error": {"message": "overloaded", "type": "server_error"}}, "stream_error_event"),
        ("{not json", "malformed_chunk"),
        ("[1, 2]", "malformed_chunk"),
    ],
)
def test_errors_mid_stream_fail_the_request_with_their_kind(bad: object, kind: str) -> None:
    sample = measure([(0.05, chunk(content="a")), (0.06, bad), (0.07, chunk(content="b"))])
    assert not sample.ok
    assert sample.error_kind == kind
    assert sample.ttft_ms == pytest.approx(50.0)


def test_stream_without_output_is_an_error() -> None:
    sample = measure([(0.01, ROLE), (0.02, USAGE_ONLY), (0.02, "[DONE]")])
    assert (sample.ok, sample.error_kind) == (False, "no_output")


def test_chunked_decoder_handles_split_and_whole_chunks() -> None:
    decoder = ChunkedDecoder()
    out = (
        decoder.feed(b"5\r\nhel")
        + decoder.feed(b"lo\r\n3;ext=1\r\nabc\r")
        + decoder.feed(b"\n0\r\n\r\n")
    )
    assert out == b"helloabc"
    assert decoder.done
    assert ChunkedDecoder().feed(b"a\r\ndata: x\n\n\n\r\n") == b"data: x\n\n\n"
    with pytest.raises(StreamError):
        ChunkedDecoder().feed(b"zz\r\n")


def test_event_splitter_fast_path_matches_the_decoder_and_falls_back() -> None:
    splitter = EventSplitter()
    fast = splitter.feed(b"data: {}\n\ndata: [DONE]\n\n", 1.5)
    assert [(e.data, e.received_at) for e in fast] == [("{}", 1.5), ("[DONE]", 1.5)]
    assert splitter.decoder is None
    assert [e.data for e in splitter.feed(b": ping\r\n\r\ndata:x\r\n\r\n", 2.0)] == ["x"]
    assert splitter.decoder is not None
    cut = EventSplitter()
    assert cut.feed(b'data: {"a"', 1.0) == []
    assert [e.data for e in cut.feed(b":1}\n\n", 2.0)] == ['{"a":1}']


def _serve_once(response: bytes) -> tuple[str, threading.Thread]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(response)
        conn.close()
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", thread


def test_client_reports_a_stream_cut_mid_event() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    body = ChunkedDecoderFrame(b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n')
    url, thread = _serve_once(head + body + b"5\r\ndata:")
    meter = StreamMeter(0.0)
    with pytest.raises(StreamError) as raised:
        StreamingClient(url).post("/chat/completions", b"{}", {}, meter.on_events)
    thread.join(5)
    assert raised.value.kind == "truncated_body"
    assert meter.first is not None


def test_client_reads_a_whole_stream_with_arrival_stamps() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    events = [ROLE, chunk(content="a"), chunk(content="b"), USAGE_ONLY]
    body = b"".join(ChunkedDecoderFrame(f"data: {json.dumps(e)}\n\n".encode()) for e in events)
    url, thread = _serve_once(head + body + ChunkedDecoderFrame(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    meter = StreamMeter(0.0)
    response = StreamingClient(url).post("/chat/completions", b"{}", {}, meter.on_events)
    thread.join(5)
    meter.start = response.start
    sample = meter.finish(Sample(start_wall=0.0), response.end, 2)
    assert response.complete and response.status == 200
    assert sample.ok and sample.output_tokens == 5 and sample.ttft_ms is not None
    assert response.start <= meter.first <= response.end


def ChunkedDecoderFrame(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def test_percentiles_interpolate_over_raw_samples() -> None:
    assert percentile([1.0, 2.0], 50) == 1.5
    summary = summarize(float(v) for v in range(1, 101))
    assert summary["p99"] == pytest.approx(99.01)
    assert summary["count"] == 100 and summary["max"] == 100.0
    assert summarize([])["p50"] is None


def _ok(start: float, ttft: float, e2e: float, tokens: int = 10) -> Sample:
    gaps = [(e2e - ttft) / (tokens - 1)] * (tokens - 1)
    return Sample(
        start_wall=start,
        ok=True,
        ttft_ms=ttft,
        e2e_ms=e2e,
        itl_ms=gaps,
        output_tokens=tokens,
        tokens_source="usage",
        content_chunks=tokens,
    )


def test_aggregate_windows_goodput_and_concurrency() -> None:
    samples = [_ok(0.0, 50, 1000), _ok(10.0, 50, 1000), _ok(10.5, 900, 1900), _ok(30.0, 50, 500)]
    samples.append(Sample(start_wall=11.0, error_kind="http_500", e2e_ms=5.0))
    result = aggregate(samples, Window("w", 10.0, 20.0), parse_goodput("ttft_ms=500"))
    assert result["requests"]["ok"] == 2 and result["requests"]["failed"] == 1
    assert result["error_rate"] == pytest.approx(1 / 3)
    assert result["errors_by_kind"] == {"http_500": 1}
    assert result["goodput"]["share"] == pytest.approx(1 / 3)
    assert result["achieved_concurrency"] == pytest.approx((1.0 + 1.9 + 0.005) / 10)
    assert result["ttft_ms"]["max"] == 900
    assert result["throughput"]["output_tokens_per_s"] == pytest.approx(2.0)


def test_slo_gates_parse_and_decide() -> None:
    gates = parse_gates(["ttft_p95_ms=500", "goodput=0.9,error_rate<=0.01"])
    assert [str(g) for g in gates] == ["ttft_p95_ms <= 500", "goodput >= 0.9", "error_rate <= 0.01"]
    aggregates = {"ttft_ms": {"p95": 400.0}, "goodput": {"share": 0.8}, "error_rate": 0.0}
    assert [v.passed for v in check(gates, aggregates)] == [True, False, True]
    with pytest.raises(ValueError):
        parse_gates(["ttft_p42_ms=1"])
    missing = check(parse_gates(["itl_p99_ms=5"]), {"itl_ms": {"p99": None}})
    assert not missing[0].passed


def test_open_loop_schedule_is_absolute_and_interleaved_across_workers() -> None:
    one = ArrivalSchedule(10.0, start=100.0)
    assert [one.next_due() for _ in range(3)] == [100.0, 100.1, 100.2]
    second_of_two = ArrivalSchedule(10.0, start=0.0, workers=2, index=1)
    assert [round(second_of_two.next_due(), 6) for _ in range(3)] == [0.1, 0.3, 0.5]
    poisson = ArrivalSchedule(100.0, start=0.0, kind="poisson", seed=1)
    dues = [poisson.next_due() for _ in range(2000)]
    assert dues == sorted(dues)
    assert 2000 / dues[-1] == pytest.approx(100.0, rel=0.1)


def test_samples_survive_the_worker_report_round_trip() -> None:
    worker, master = Recorder(), Recorder()
    worker.add(_ok(1.0, 50.0, 100.0))
    worker.add(Sample(start_wall=2.0, error_kind="interrupted"))
    rows = worker.take_unsent()
    assert worker.samples == [] and worker.sent_total == 2
    master.ingest("w1", json.loads(json.dumps(rows)))
    assert [s.worker for s in master.samples] == ["w1", "w1"]
    assert [to_row(s)[:-1] for s in master.samples] == [r[:-1] for r in rows]
    assert master.total_recorded == 1 and master.received_from == {"w1": 2}


def test_settings_never_expose_the_key() -> None:
    settings = Settings(api_key="sk-test-123456")
    assert "sk-test-123456" not in json.dumps(settings.redacted())
    assert "sk-test-123456" not in repr(settings)
    assert settings.redact("bad key sk-test-123456") == "bad key <redacted>"


def test_synthetic_prompts_and_body() -> None:
    prompts = Prompts(prompt_tokens=64, seed=3)
    first, second = prompts.next(), prompts.next()
    assert first != second
    assert 50 <= len(first[0]["content"].split()) <= 70
    body = json.loads(request_body("m", first, 32, min_tokens=32, ignore_eos=True))
    assert body["max_tokens"] == body["min_tokens"] == 32 and body["ignore_eos"] is True
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_truth_comparison_is_reported_minus_true() -> None:
    truth = {"c1": TruthRecord(start_ns=0, token_sent_ns=[50_000_000, 60_000_000, 70_000_000])}
    errors = compare([("c1", 50.2, [10.1, 9.9]), ("other", 1.0, [])], truth)
    assert errors.ttft == [pytest.approx(0.2)]
    assert errors.itl == [pytest.approx(0.1), pytest.approx(-0.1)]
    assert (errors.matched, errors.unmatched) == (1, 1)
