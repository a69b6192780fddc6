"""The API key never appears: not in terminal output, HTML, JUnit or results.json."""

from __future__ import annotations

from suite_runner import API_KEY, run_suite, suite_args

from conformance.transport.client import Exchange, RequestSpec
from conformance.verdicts.evidence import (
    REDACTED,
    Redactor,
    curl_command,
    format_exchange,
    redact_url,
)


def test_redactor_removes_key_and_bearer_tokens():
    redact = Redactor("sk-secret-value")
    text = redact("key sk-secret-value and Authorization: Bearer abcdefghijkl123")
    assert "sk-secret-value" not in text and "abcdefghijkl123" not in text
    assert text.count(REDACTED) == 2


def test_redact_url_drops_userinfo_and_key_query():
    url = redact_url("https://user:pw@host:8443/v1?api-key=abc&x=1")
    assert "pw" not in url and "abc" not in url and "x=1" in url


def test_curl_line_takes_key_from_environment():
    spec = RequestSpec("x", json={"model": "m", "stream": True})
    exchange = Exchange(
        spec, "http://h/v1/chat/completions", {"authorization": "Bearer $OPENAI_API_KEY"}
    )
    line = curl_command(exchange, Redactor("k"))
    assert '"Authorization: Bearer $OPENAI_API_KEY"' in line and " -N " in line


def test_exchange_echoing_the_key_is_redacted():
    spec = RequestSpec("x", json={"model": "m"})
    exchange = Exchange(
        spec,
        "http://h/v1/chat/completions",
        {},
        status=401,
        body=f'{{"error": "bad key {API_KEY}"}}'.encode(),
    )
    assert API_KEY not in format_exchange(exchange, Redactor(API_KEY))


def test_no_artifact_of_a_failing_run_contains_the_key(reference, tmp_path):
    args = suite_args(reference.origin, "missing_done", "status_422", "auth_not_enforced")
    run = run_suite(tmp_path / "reports", *args, "-rA", "-vv")
    assert run.returncode == 1
    assert API_KEY not in run.output
    written = list((tmp_path / "reports").iterdir())
    assert {p.name for p in written} >= {"report.html", "junit.xml", "results.json"}
    for path in written:
        assert API_KEY not in path.read_text(errors="replace"), path.name
