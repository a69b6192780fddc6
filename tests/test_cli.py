"""Bad command-line input and unreachable endpoints: one clear line, the right exit code, fast."""

from __future__ import annotations

import time

import pytest
from suite_runner import API_KEY, run_suite

from conformance.transport.ports import free_port


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-url=ftp://example/v1"], "--base-url must be an http(s) URL"),
        (["--base-url=not a url"], "--base-url must be an http(s) URL"),
        (["--request-timeout=-1"], "--request-timeout must be > 0"),
        (["--total-timeout=0"], "--total-timeout must be > 0"),
        (["--reference-faults=no_such_fault"], "unknown fault or variant: no_such_fault"),
    ],
)
def test_usage_errors(tmp_path, args, message):
    run = run_suite(tmp_path / "reports", *args)
    assert run.returncode == 4
    assert message in run.output
    assert "Traceback" not in run.output


def test_unreachable_endpoint_stops_the_run_with_one_line(tmp_path):
    started = time.monotonic()
    run = run_suite(tmp_path / "reports", f"--base-url=http://127.0.0.1:{free_port()}/v1")
    assert time.monotonic() - started < 20
    assert run.returncode == 2
    lines = [line for line in run.output.splitlines() if "cannot reach" in line]
    assert len(lines) == 1, run.output
    assert "failed" not in run.output.lower().split("cannot reach")[0]


def test_rejected_key_stops_the_run(reference, tmp_path):
    run = run_suite(tmp_path / "reports", f"--base-url={reference.base_url}", "--api-key=sk-wrong")
    assert run.returncode == 2
    assert "rejected the API key (HTTP 401" in run.output


def test_wrong_base_path_is_explained(reference, tmp_path):
    run = run_suite(
        tmp_path / "reports", f"--base-url={reference.origin}/nope", f"--api-key={API_KEY}"
    )
    assert run.returncode == 2
    assert "does --base-url end with /v1?" in run.output


def test_environment_variables_are_read(reference, tmp_path):
    env = {"OPENAI_BASE_URL": reference.base_url, "OPENAI_API_KEY": API_KEY}
    run = run_suite(tmp_path / "reports", "-k", "models.", env=env)
    assert run.returncode == 0, run.output[-2000:]
    assert run.results["endpoint"]["model"] == "chatcompat-ref-1"  # first id from /models


def test_environment_key_sent_elsewhere_is_announced(reference, tmp_path):
    env = {"OPENAI_BASE_URL": reference.base_url, "OPENAI_API_KEY": API_KEY}
    run = run_suite(tmp_path / "reports", "-k", "models.list_schema", env=env)
    lines = [line for line in run.output.splitlines() if "$OPENAI_API_KEY to" in line]
    assert len(lines) == 1 and reference.origin in lines[0], run.output[-2000:]
    assert API_KEY not in run.output


@pytest.mark.parametrize("no_key", ["--no-api-key", "--api-key="])
def test_no_key_sends_none(reference, tmp_path, no_key):
    env = {"OPENAI_API_KEY": API_KEY}
    run = run_suite(tmp_path / "reports", f"--base-url={reference.base_url}", no_key, env=env)
    assert run.returncode == 2 and "rejected the API key (HTTP 401" in run.output
    assert "$OPENAI_API_KEY to" not in run.output


def test_k_selects_an_area(reference, tmp_path):
    run = run_suite(
        tmp_path / "reports",
        "-k",
        "stream.",
        f"--base-url={reference.base_url}",
        f"--api-key={API_KEY}",
    )
    assert run.returncode == 0
    assert run.outcomes and all(cid.startswith("stream.") for cid in run.outcomes)


def test_strict_turns_warnings_into_failures(reference, tmp_path):
    base = f"--base-url={reference.origin}/faults/omit_refusal/v1"
    relaxed = run_suite(tmp_path / "a", base, f"--api-key={API_KEY}")
    strict = run_suite(tmp_path / "b", base, f"--api-key={API_KEY}", "--strict")
    assert relaxed.returncode == 0 and relaxed.outcomes["response.refusal_key"] == "warn"
    assert "1 warn" in relaxed.output
    assert strict.returncode == 1 and strict.outcomes["response.refusal_key"] == "fail"
