"""Slow endpoints are measured, not failed: the preflight's pace scales the timeouts.

The end-to-end test plays a large model on CPU (10 s to the first token, then 1 s per token,
streamed or not) with default options: the stop area's longest answers take about a minute
without a byte, twice the default read timeout, and must pass. It selects ``stop.`` only (the
longest non-streamed answers of the suite, and a streamed one) to stay near two minutes.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from suite_runner import API_KEY, run_suite

from conformance.api import pace
from conformance.face import runner
from conformance.reference import ReferenceConfig, ReferenceServer
from conformance.transport.client import Answered, Limits

TTFT_MS, ITL_MS = 10_000, 1_000
SLOW_RUN_S = 300  # about 140 s expected: preflight 45 s, the stop area's answers 85 s
DEFAULTS = Limits()


@pytest.mark.parametrize(
    ("answered", "concurrency", "read", "total"),
    [
        (Answered(0.05, 16), 4, 30, 60),  # a fast endpoint keeps the defaults
        (Answered(25.0, 16), 1, 263, 263),  # 1.5 x (25 + 96 x 25/16)
        (Answered(25.0, 16), 4, 600, 600),  # queued four deep: capped
        (Answered(3.0, None), 1, 437, 437),  # no usage: one token assumed (an upper bound)
    ],
)
def test_timeouts_scale_with_the_answer(answered, concurrency, read, total):
    limits = Limits(max_concurrency=concurrency)
    need = pace.needed_s(pace.from_answer(answered), pace.LARGEST_TOKENS, concurrency)
    new = pace.scaled(limits, need, read_given=False, total_given=False)
    assert (new.read_timeout, new.total_timeout) == (read, total)


def test_given_timeouts_win():
    new = pace.scaled(DEFAULTS, 500.0, read_given=True, total_given=False)
    assert (new.read_timeout, new.total_timeout) == (30, 500)
    new = pace.scaled(DEFAULTS, 500.0, read_given=True, total_given=True)
    assert new == DEFAULTS


def test_stream_pace_separates_first_token_from_rate():
    """10 s to the first token, then 1 s a token: the largest request needs 10 + 96 s."""
    measured = pace.Pace("stream", 10.0, 1.0, 8, 17.0)
    assert measured.request_s(pace.LARGEST_TOKENS) == 106.0
    assert measured.tokens_per_s == 1.0
    assert "first byte after 10.0 s, 1.0 tokens/s" in measured.describe()


#: Records every request's output budget (token limit x n) in the suite's own process.
RECORDER = textwrap.dedent(
    """
    import json, os
    from conformance.transport import client

    _send = client.Transport._send

    async def recording(self, http, spec):
        body = spec.json if isinstance(spec.json, dict) else {}
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        with open(os.environ["CHATCOMPAT_BUDGETS"], "a") as out:
            out.write(json.dumps([spec.label, limit * (body.get("n") or 1)]) + "\\n")
        return await _send(self, http, spec)

    client.Transport._send = recording
    """
)


@pytest.mark.slow
def test_no_request_asks_for_more_than_the_largest(tmp_path: Path):
    """The scaled timeouts cover ``LARGEST_TOKENS``: no request of the suite asks for more
    (on the reference server: no reasoning headroom). The SDK's requests are capped at 64 by
    sdk.py itself (they bypass our transport)."""
    (tmp_path / "chatcompat_recorder.py").write_text(RECORDER)
    budgets = tmp_path / "budgets.jsonl"
    run = run_suite(
        tmp_path / "reports",
        "-p",
        "chatcompat_recorder",
        env={"PYTHONPATH": str(tmp_path), "CHATCOMPAT_BUDGETS": str(budgets)},
    )
    assert run.returncode == 0, run.output[-3000:]
    asked = dict(json.loads(line) for line in budgets.read_text().splitlines())
    assert max(asked.values()) == pace.LARGEST_TOKENS, sorted(asked.items(), key=lambda i: i[1])
    sdk = (Path(pace.__file__).parents[1] / "checks" / "sdk.py").read_text()
    assert "max_tokens=64" in sdk and "max_tokens=200" not in sdk


@pytest.mark.slow
def test_slow_reference_server_passes_with_default_options(tmp_path: Path):
    config = ReferenceConfig(api_key=API_KEY, ttft_ms=TTFT_MS, itl_ms=ITL_MS)
    with ReferenceServer(config) as slow:
        args = [f"--base-url={slow.base_url}", f"--api-key={API_KEY}", "--model=chatcompat-ref-1"]
        run = runner.run_suite(
            tmp_path / "reports", [*args, "-k", "stop."], cwd=tmp_path, timeout=SLOW_RUN_S
        )
    results = run.results
    assert run.returncode == 0, run.output[-3000:]
    assert results["complete"] is True and not results["counts"]["not_judged"]
    measured = results["pace"]
    assert measured["source"] == "stream" and measured["scaled"] is True
    assert 9.5 < measured["first_byte_s"] < 13 and 0.8 < measured["tokens_per_s"] < 1.1
    largest = TTFT_MS / 1000 + pace.LARGEST_TOKENS * ITL_MS / 1000
    assert results["settings"]["limits"]["read_timeout"] >= largest  # the largest request fits
    assert "pace: streamed probe" in run.output and "timeouts scaled" in run.output
