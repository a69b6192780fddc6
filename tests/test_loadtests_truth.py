"""The load test's client-side truths: connect time, end of stream, censoring, dialect, reasoning.

No timing is asserted: only which numbers exist, how they relate, and what the report says.
Locust itself runs in a subprocess (it monkey-patches the standard library with gevent).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from slow_tls_proxy import SlowTLSProxy, self_signed

from conformance.transport.sse import Event
from loadtests.aggregate import Window, aggregate, parse_goodput
from loadtests.censored import warning
from loadtests.dialect import TokenField, describe, names_max_tokens
from loadtests.http_stream import PROBE_SIZE, ChunkedDecoder, StreamError, StreamingClient
from loadtests.metrics import Sample, StreamMeter
from loadtests.report import run_notes
from loadtests.slo import check, parse_gates

LOCUSTFILE = str(Path(__file__).resolve().parents[1] / "loadtests" / "locustfile.py")
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
TRUTH = (
    sys.executable,
    "-m",
    "loadtests.selfbench.truth_server",
    "--port",
    "0",
    "--max-seconds",
    "60",
)
LOCUST = (
    *(sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--only-summary"),
    *("-u", "2", "-r", "2", "-t", "3s", "--max-tokens", "8", "--ignore-eos"),
    *("--report-name", "r", "--exit-code-on-error", "0"),
)
FINISH = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def chunk(**delta: object) -> dict:
    return {"id": "c", "choices": [{"index": 0, "delta": delta}]}


def framed(*events: object) -> bytes:
    """Chunked SSE body: one chunk per event, then the terminal chunk."""
    out = b""
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        payload = f"data: {data}\n\n".encode()
        out += b"%x\r\n%s\r\n" % (len(payload), payload)
    return out + b"0\r\n\r\n"


def measure(*events: object) -> Sample:
    """Events arrive 10 ms apart from t=0.05 s; the request started at 0."""
    meter = StreamMeter(0.0)
    for i, event in enumerate(events):
        data = event if isinstance(event, str) else json.dumps(event)
        meter.on_events([Event(data, received_at=0.05 + i * 0.01)])
    return meter.finish(Sample(start_wall=0.0), 1.0, None)


# --- end of stream ------------------------------------------------------------------------

END_CASES = {
    "done and finish_reason": ((chunk(content="a"), FINISH, "[DONE]"), True, "", ""),
    "only [DONE]": ((chunk(content="a"), "[DONE]"), True, "", ""),
    "finish_reason, no [DONE]": ((chunk(content="a"), FINISH), True, "", "no_done"),
    "neither": ((chunk(content="a"), chunk(content="b")), False, "truncated_stream", ""),
    "nothing at all": ((), False, "truncated_stream", ""),
    "error null is not an error": (
        ({**chunk(content="a"), "error": None}, FINISH, "[DONE]"),
        True,
        "",
        "",
    ),
    "error object": (
        (chunk(content="a"), {"error": {"message": "overloaded"}}),
        False,
        "stream_error_event",
        "",
    ),
    "done without output": (("[DONE]",), False, "no_output", ""),
}


@pytest.mark.parametrize("case", END_CASES)
def test_end_of_stream_decides_success(case: str) -> None:
    events, ok, kind, warning_kind = END_CASES[case]
    sample = measure(*events)
    assert (sample.ok, sample.error_kind, sample.protocol_warning) == (ok, kind, warning_kind)


def test_reasoning_deltas_start_ttft_and_content_starts_ttfc() -> None:
    usage = {"choices": [], "usage": {"completion_tokens": 4, "prompt_tokens": 3}}
    usage["usage"]["completion_tokens_details"] = {"reasoning_tokens": 2}
    sample = measure(
        chunk(role="assistant", content=""),
        chunk(reasoning_content="think"),
        chunk(reasoning="more"),
        chunk(content="answer"),
        FINISH,
        usage,
        "[DONE]",
    )
    assert sample.ok
    assert sample.ttft_ms == pytest.approx(60.0)
    assert sample.ttfc_ms == pytest.approx(80.0)
    assert (sample.reasoning_chunks, sample.reasoning_tokens) == (2, 2)


def test_plain_stream_has_ttfc_equal_to_ttft_and_no_reasoning() -> None:
    sample = measure(chunk(content="a"), FINISH, "[DONE]")
    assert sample.ttfc_ms == sample.ttft_ms
    assert (sample.reasoning_chunks, sample.reasoning_tokens) == (0, None)


# --- the client: connect time and exact reads ----------------------------------------------


def serve(responses: list[bytes], close_each: bool = False) -> str:
    """A loopback server answering each request with the next response, keep-alive or not."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)

    def run() -> None:
        pending = list(responses)
        with listener:
            while pending:
                conn, _ = listener.accept()
                with conn:
                    while pending:
                        if not conn.recv(65536):
                            break
                        conn.sendall(pending.pop(0))
                        if close_each:
                            break

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


OK_STREAM = HEAD + framed(chunk(content="a"), FINISH, "[DONE]")


def test_first_request_on_a_connection_counts_its_connect_time() -> None:
    client = StreamingClient(serve([OK_STREAM, OK_STREAM]))
    first = client.post("/chat/completions", b"{}", {}, lambda events: None)
    again = client.post("/chat/completions", b"{}", {}, lambda events: None)
    assert first.connect_s is not None and first.connect_s >= 0
    assert first.start <= first.sent_at - first.connect_s <= first.sent_at
    assert again.connect_s is None and again.start <= again.sent_at


def test_server_closing_after_each_response_means_a_connect_every_time() -> None:
    closing = OK_STREAM.replace(b"200 OK\r\n", b"200 OK\r\nconnection: close\r\n")
    client = StreamingClient(serve([closing, closing], close_each=True))
    times = [client.post("/chat/completions", b"{}", {}, lambda e: None).connect_s for _ in "ab"]
    assert all(t is not None for t in times)


def test_a_refused_connection_is_timed_from_the_request() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(StreamError) as raised:
        StreamingClient(f"http://127.0.0.1:{port}/v1").post("/chat/completions", b"{}", {})
    assert raised.value.kind == "connect_error"
    assert raised.value.response is not None and raised.value.response.connect_s is not None


def test_exact_reads_never_reach_past_the_current_chunk() -> None:
    decoder = ChunkedDecoder()
    assert decoder.wanted() == PROBE_SIZE
    decoder.feed(b"f3\r\nd")  # size line and the first payload byte
    assert decoder.wanted() == 0xF3 - 1 + 2
    decoder.feed(b"x" * (0xF3 - 1))
    assert decoder.wanted() == 2  # only the CRLF is left
    decoder.feed(b"\r\n")
    assert decoder.wanted() == PROBE_SIZE


BODY = framed(chunk(content="a"), FINISH, "[DONE]")
PAYLOAD = b"".join(
    f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode()
    for e in (chunk(content="a"), FINISH, "[DONE]")
)


def test_reads_of_the_wanted_size_decode_the_whole_body() -> None:
    decoder, body, out = ChunkedDecoder(), BODY, b""
    while body:
        size = decoder.wanted()
        out, body = out + decoder.feed(body[:size]), body[size:]
    assert (out, decoder.done) == (PAYLOAD, True)


@pytest.mark.parametrize("cut_at", range(1, len(BODY), 7))
def test_any_split_decodes_the_same(cut_at: int) -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(BODY[:cut_at]) + decoder.feed(BODY[cut_at:]) == PAYLOAD


def test_a_close_delimited_stream_without_an_end_is_truncated() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
    body = f"data: {json.dumps(chunk(content='a'))}\n\n".encode()
    meter = StreamMeter(0.0)
    response = StreamingClient(serve([head + body], close_each=True)).post(
        "/chat/completions", b"{}", {}, meter.on_events
    )
    sample = meter.finish(Sample(start_wall=0.0), response.end, None)
    assert response.complete and sample.error_kind == "truncated_stream"


# --- censored requests ---------------------------------------------------------------------


def finished(start: float, e2e: float) -> Sample:
    return Sample(start_wall=start, ok=True, ttft_ms=50.0, e2e_ms=e2e, itl_ms=[10.0])


def cut(start: float, elapsed: float, ttft: float | None = None) -> Sample:
    return Sample(start_wall=start, error_kind="interrupted", e2e_ms=elapsed, ttft_ms=ttft)


def test_censored_requests_are_counted_and_bound_the_tail() -> None:
    samples = [finished(1.0 + i * 0.01, 100.0) for i in range(50)]
    samples += [cut(2.0, 900.0), cut(2.1, 800.0, ttft=40.0)]
    result = aggregate(samples, Window("overall", 0.0, 10.0))
    view = result["censored"]
    assert (view["count"], view["warn"]) == (2, True)
    assert view["elapsed_ms"]["max"] == 900.0
    assert view["e2e_ms_completed"]["max"] == 100.0
    assert view["e2e_ms_with_censored_at_least"]["max"] == 900.0
    assert view["ttft_ms_with_censored_at_least"]["max"] == 900.0  # no token yet: elapsed
    assert "still in flight" in warning(view)
    assert any(n.startswith("WARNING: 2 requests") for n in run_notes(result, "auto"))


def test_few_censored_requests_do_not_warn() -> None:
    samples = [finished(1.0, 100.0) for _ in range(200)] + [cut(2.0, 10.0)]
    view = aggregate(samples, Window("overall", 0.0, 10.0))["censored"]
    assert (view["count"], view["warn"], warning(view)) == (1, False, "")


def test_a_stalled_tail_fails_the_ttft_and_e2e_gates() -> None:
    """6 of 100 requests still waiting for a first token after 2.5 s: TTFT p95 >= 2.5 s."""
    samples = [finished(1.0 + i * 0.01, 100.0) for i in range(94)]
    samples += [cut(2.0, 2500.0) for _ in range(6)]
    result = aggregate(samples, Window("overall", 0.0, 10.0), parse_goodput("ttft_ms=500"))
    assert result["ttft_ms"]["p95"] == 50.0  # completed only: the stall is invisible there
    verdicts = check(parse_gates(["ttft_p95_ms=500,e2e_p99_ms=1000,goodput=0.95"]), result)
    assert [(v.passed, v.value) for v in verdicts] == [
        (False, 2500.0),
        (False, 2500.0),
        (False, pytest.approx(94 / 100)),
    ]
    assert "6 requests still in flight" in verdicts[0].note


def test_censored_requests_below_the_limit_leave_the_gate_passing() -> None:
    """A request cut 30 ms in is no evidence of a slow server: the gate still passes."""
    samples = [finished(1.0 + i * 0.01, 100.0) for i in range(50)] + [cut(2.0, 30.0)]
    result = aggregate(samples, Window("overall", 0.0, 10.0), parse_goodput("ttft_ms=500"))
    verdicts = check(parse_gates(["ttft_p95_ms=500", "goodput=1"]), result)
    assert [(v.passed, v.value, v.note) for v in verdicts] == [(True, 50.0, ""), (True, 1.0, "")]


def test_a_run_where_nothing_finished_still_gets_its_plots() -> None:
    """A busy machine can end a short run before any answer: the report must still be written
    (matplotlib refuses a log axis without positive data)."""
    plots = pytest.importorskip("loadtests.plots")
    if not plots.AVAILABLE:
        pytest.skip("matplotlib is not installed")
    png = plots.over_time([cut(1.0, 5.0)], 0.0, Window("overall", 0.0, 2.0))
    assert png and png.startswith(b"\x89PNG")


def test_a_server_stalling_under_load_fails_the_ttft_gate(tmp_path: Path) -> None:
    """Every 4th stream gets headers and then nothing until the test stops: the requests it
    answered are fast, but TTFT p95 counted with the stalled ones (lower bounds) is not."""
    report, run = locust_against(
        tmp_path, ("--ttft-ms", "20", "--itl-ms", "5", "--stall-every", "4")
    )
    assert run.returncode == 3, run.stdout + run.stderr  # SLO_EXIT_CODE
    overall = report["overall"]
    assert overall["ttft_ms"]["p95"] < 500  # the answered requests alone would pass
    assert overall["censored"]["count"] >= 1
    (gate,) = report["slo"]
    assert (gate["gate"], gate["passed"]) == ("ttft_p95_ms <= 500", False)
    assert gate["value"] > 500 and "still in flight" in gate["note"]
    assert "SLO FAIL: ttft_p95_ms <= 500" in run.stdout


CONNECT_DELAY_S = 0.3


def test_connect_time_is_part_of_ttft(tmp_path: Path) -> None:
    """The TLS handshake waits 300 ms: every request that opened a connection shows it in
    its TTFT (measured from the request's issue), and only its TTFT from the write omits it."""
    cert, key = self_signed(tmp_path)
    with contextlib.ExitStack() as stack:
        report, run = locust_against(
            tmp_path,
            ("--ttft-ms", "20", "--itl-ms", "5"),
            "--model",
            "chatcompat-ref-1",  # no GET /models first: the chat request opens the connection
            host_of=lambda host: _behind_slow_tls(stack, host, cert, key),
            env={"SSL_CERT_FILE": str(cert)},  # trust the proxy's self-signed certificate
        )
    with (tmp_path / "r-samples.csv").open() as handle:
        opened = [r for r in csv.DictReader(handle) if r["ok"] == "1" and r["connect_ms"]]
    assert opened, run.stdout + run.stderr
    for row in opened:
        ttft, connect, write = (float(row[k]) for k in ("ttft_ms", "connect_ms", "ttft_write_ms"))
        assert connect >= CONNECT_DELAY_S * 1000
        assert ttft >= connect + write - 1.0 and write < CONNECT_DELAY_S * 1000
    assert report["overall"]["ttft_ms"]["max"] >= CONNECT_DELAY_S * 1000


def locust_against(
    tmp_path: Path,
    server_args: tuple[str, ...],
    *locust_args: str,
    host_of: Callable[[str], str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[dict, subprocess.CompletedProcess]:
    """One short Locust run against a truth server: its JSON report and the process."""
    server = subprocess.Popen([*TRUTH, *server_args], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        host = server.stdout.readline().split()[2]
        url = host_of(host) if host_of else f"http://{host}/v1"
        run = subprocess.run(
            [
                *LOCUST,
                *("-t", "5s"),  # Locust may start the clock long before a busy machine sends
                *locust_args,
                "--slo",
                "ttft_p95_ms=500",
                "--host",
                url,
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    return json.loads((tmp_path / "r.json").read_text()), run


def _behind_slow_tls(stack: contextlib.ExitStack, host: str, cert: Path, key: Path) -> str:
    """An https base URL whose handshake waits CONNECT_DELAY_S before relaying to ``host``."""
    address, _, port = host.rpartition(":")
    proxy = SlowTLSProxy((address, int(port)), cert, key, CONNECT_DELAY_S)
    return f"https://127.0.0.1:{stack.enter_context(proxy)}/v1"


# --- token-limit dialect -------------------------------------------------------------------

OPENAI_400 = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}
NAMING = {
    "OpenAI's answer": (400, OPENAI_400, True),
    "param only": (400, {"error": {"message": "bad", "param": "max_tokens"}}, True),
    "message only": (400, {"error": {"message": "max_tokens is too large"}}, True),
    "the other field": (400, {"error": {"message": "max_completion_tokens must be > 0"}}, False),
    "another parameter": (400, {"error": {"message": "bad", "param": "temperature"}}, False),
    "not a 400": (500, OPENAI_400, False),
    "plain text": (400, "max_tokens unsupported", True),
}


@pytest.mark.parametrize("case", NAMING)
def test_a_rejection_names_max_tokens(case: str) -> None:
    status, body, expected = NAMING[case]
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert names_max_tokens(status, raw) is expected


def test_token_field_falls_back_once_and_only_in_auto_mode() -> None:
    raw = json.dumps(OPENAI_400).encode()
    auto = TokenField("auto")
    assert auto.fall_back("max_tokens", 400, raw) and auto.name == "max_completion_tokens"
    assert auto.fall_back("max_tokens", 400, raw)  # a request already in flight: resend it too
    assert not auto.fall_back("max_completion_tokens", 400, raw)
    fixed = TokenField("max_tokens")
    assert not fixed.fall_back("max_tokens", 400, raw) and fixed.name == "max_tokens"
    assert "fell back" in describe("auto", {"max_completion_tokens": 3})
    assert "fell back" not in describe("max_completion_tokens", {"max_completion_tokens": 3})


def test_a_run_against_a_reasoning_endpoint_falls_back_and_reports_reasoning(
    tmp_path: Path,
) -> None:
    server = subprocess.Popen(
        [
            *TRUTH,
            "--ttft-ms",
            "20",
            "--itl-ms",
            "5",
            "--reasoning-tokens",
            "3",
            "--reject-max-tokens",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        host = server.stdout.readline().split()[2]
        run = subprocess.run(
            [*LOCUST, "--host", f"http://{host}/v1", "--report-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=tmp_path,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    report = json.loads((tmp_path / "r.json").read_text())
    overall = report["overall"]
    assert overall["errors_by_kind"] == {}, run.stdout + run.stderr
    assert set(overall["token_field"]) == {"max_completion_tokens"}
    assert overall["reasoning"]["reasoning_tokens"]["max"] == 3
    ttfc, ttft = overall["reasoning"]["ttfc_ms"], overall["ttft_ms"]
    assert ttfc["count"] == overall["requests"]["ok"] > 0 and ttfc["min"] > ttft["min"]
    assert any("fell back to max_completion_tokens" in note for note in report["notes"])
    assert "time to first content" in run.stdout
