"""bench-peers' judgement on crafted outputs: windows, joins, each peer's file format, verdicts.

The benchmark itself (installing and running the peers) is the nox session ``bench-peers``;
nothing here starts a tool or asserts a timing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.selfbench import peer_tools
from loadtests.selfbench.peer_tools import Measured, Row
from loadtests.selfbench.peers import judge
from loadtests.selfbench.peers_report import replace_section, table, verdicts
from loadtests.selfbench.truth import TruthRecord

MS = 1_000_000  # ns
SECONDS = 10.0


def record(start_ms: float, done: bool = True) -> TruthRecord:
    """Arrival at start, first token 50 ms later, then 10 ms apart (3 tokens)."""
    first = int((start_ms + 50) * MS)
    return TruthRecord(int(start_ms * MS), [first, first + 10 * MS, first + 20 * MS], done)


TRUTH = {
    "early": record(0.0),  # the first arrival: before the window
    "a": record(4000.0),
    "b": record(5000.0),
    "cut": record(6000.0, done=False),
    "late": record(9000.0),  # after the window (seconds - 2)
}


def test_only_requests_inside_the_common_window_are_judged() -> None:
    measured = [Measured(cid, 50.5, gaps_ms=[10.0, 10.25]) for cid in TRUTH]
    row = judge("x", "1", 16, measured, TRUTH, SECONDS)
    assert row.requests == 2  # a and b: not early, late, nor the unfinished one
    assert row.ttft_err_p50_ms == pytest.approx(0.5)
    assert row.itl_err_p99_ms == pytest.approx(0.25, abs=0.01)


def test_a_per_request_mean_is_judged_against_the_true_mean() -> None:
    row = judge("g", "1", 16, [Measured("a", 50.0, itl_mean_ms=10.5)], TRUTH, SECONDS)
    assert (row.itl_basis, row.itl_err_p99_ms) == ("request mean", pytest.approx(0.5))


def test_rate_counts_tokens_the_server_sent_inside_the_window() -> None:
    row = judge("x", "1", 1, [], TRUTH, SECONDS)
    window_s = SECONDS - 3.0 - 2.0
    ideal = 100 / 1.04
    assert row.rate_ratio == pytest.approx(9 / window_s / ideal)  # a, b and the cut stream


def test_inference_perf_output_is_read_per_chunk(tmp_path: Path) -> None:
    chunk = json.dumps({"id": "cmpl-1", "choices": [{"text": " a"}]})
    entry = {
        "start_time": 100.0,
        "error": None,
        "info": {
            "response_metrics": {"chunk_times": [100.05, 100.06], "response_chunks": [chunk] * 2}
        },
    }
    failed = {"start_time": 1.0, "error": {"error_type": "x"}, "info": {}}
    out = tmp_path / "inference-perf"
    out.mkdir()
    (out / "per_request_lifecycle_metrics.json").write_text(json.dumps([entry, failed]))
    [measured] = peer_tools.read_inference_perf(tmp_path)
    assert measured.completion_id == "cmpl-1"
    assert measured.ttft_ms == pytest.approx(50.0)
    assert measured.gaps_ms == [pytest.approx(10.0)]


def test_guidellm_output_is_read_per_request(tmp_path: Path) -> None:
    timings = {"request_start": 10.0, "first_token_iteration": 10.05}
    entry = {"response_id": "c-1", "info": {"timings": timings}, "inter_token_latency_ms": 10.1}
    report = {"benchmarks": [{"requests": {"successful": [entry, {**entry, "response_id": None}]}}]}
    (tmp_path / "guidellm.json").write_text(json.dumps(report))
    [measured] = peer_tools.read_guidellm(tmp_path)
    assert (measured.completion_id, measured.itl_mean_ms) == ("c-1", 10.1)
    assert measured.ttft_ms == pytest.approx(50.0)


def row(tool: str, p50: float, p99: float, itl: float = 0.01, rate: float = 0.99) -> Row:
    return Row(tool, "1", 256, p50, p99, itl, rate)


def test_verdicts_name_every_miss_and_its_size() -> None:
    rows = [row("chatcompat", 0.1, 9.0, rate=0.9), row("guidellm", 4.0, 5.0)]
    [verdict] = verdicts(rows)
    assert "ttft_err_p99_ms 9.000 vs guidellm 5.000" in verdict
    assert "events vs ideal 0.900 < 0.97" in verdict
    assert verdicts([row("chatcompat", 0.1, 1.0), row("guidellm", 4.0, 5.0)]) == [
        "256 streams: meets every target"
    ]
    assert "(per-request mean)" in table([Row("guidellm", "1", 16, 1, 2, 3, 1, itl_basis="m")])


def test_the_docs_section_is_replaced_between_its_markers(tmp_path: Path) -> None:
    doc = tmp_path / "d.md"
    doc.write_text("intro\n<!-- bench-peers:start -->\nold\n<!-- bench-peers:end -->\nrest\n")
    replace_section(doc, "new table")
    assert doc.read_text() == (
        "intro\n<!-- bench-peers:start -->\nnew table\n<!-- bench-peers:end -->\nrest\n"
    )
