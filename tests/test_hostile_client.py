"""The transport's own defences, unit by unit: retry policy, key scrubbing, bounded reprs, and
the bounded HTTP client handed to the official SDK (tested here directly, whether or not the
SDK checks use it yet)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hostile_server import HostileServer

from conformance.reference import ReferenceConfig, ReferenceServer
from conformance.transport.client import (
    Breaker,
    Exchange,
    Failure,
    Limits,
    RequestSpec,
    Transport,
    _scrub_bytes,
    parse_retry_after,
    retry_delay,
)
from conformance.transport.sse import Event
from conformance.verdicts import findings

KEY = "sk-client-3e8d1f0a9b7c6d5e"
CHAT = {"model": "chatcompat-ref-1", "messages": [{"role": "user", "content": "hi"}]}
FAST = Limits(connect_timeout=2, read_timeout=1, total_timeout=2)


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with (
        ReferenceServer(ReferenceConfig(api_key=KEY)) as reference,
        HostileServer(reference.origin) as server,
    ):
        yield server


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("2.5", 2.5), ("-3", 0.0), ("soon", None), ("nan", None), (None, None)],
)
def test_retry_after_values(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now) == 7
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0


def _answer(status: int, **headers: str) -> Exchange:
    exchange = Exchange(RequestSpec("x", json=CHAT), "http://h/v1/chat/completions", {})
    exchange.status, exchange.headers = status, list(headers.items())
    return exchange


def test_retry_policy_is_bounded():
    limits = Limits()
    assert retry_delay(_answer(429), limits) == 1.0  # no Retry-After: wait a second
    assert retry_delay(_answer(429, **{"retry-after": "3"}), limits) == 3.0
    assert retry_delay(_answer(429, **{"retry-after": "3600"}), limits) is None  # too long
    assert retry_delay(_answer(503, **{"retry-after": "1"}), limits) is None  # 429 only


def test_rate_limited_exchange_records_each_retry(hostile):
    transport = Transport(hostile.url("rate_limit_always"), KEY, FAST)
    started = time.monotonic()
    exchange = transport.send(RequestSpec("x", json=CHAT))
    assert 2 <= time.monotonic() - started < 5  # two waits of Retry-After: 1
    assert exchange.status == 429 and len(exchange.retries) == 2
    assert exchange.error == "rate limited: HTTP 429 (Retry-After: '1') after 2 retries"
    assert transport.spend.requests == 3 and transport.spend.retries == 2


def test_scrub_removes_the_key_and_a_cut_off_tail():
    token, marker = KEY.encode(), b"[REDACTED]"
    assert _scrub_bytes(b"a " + token + b" b", token, marker) == b"a [REDACTED] b"
    assert _scrub_bytes(b"capped at " + token[:12], token, marker) == b"capped at [REDACTED]"
    assert _scrub_bytes(b"ends in sk-c", token, marker) == b"ends in sk-c"  # too short to tell


def test_echoed_key_never_reaches_the_exchange(hostile):
    transport = Transport(hostile.url("echo"), KEY, FAST)
    plain, stream = transport.send_all(
        [RequestSpec("a", json=CHAT), RequestSpec("b", json={**CHAT, "stream": True})]
    )
    for exchange in (plain, stream):
        assert exchange.ok
        recorded = repr(exchange.headers) + exchange.body.decode("latin-1")
        recorded += "".join(e.data + e.raw.decode("latin-1") for e in exchange.events)
        assert KEY not in recorded and "[REDACTED]" in recorded


def test_reprs_stay_small_for_huge_answers():
    exchange = _answer(200)
    exchange.body = b"a" * 8_000_000
    exchange.body_size = len(exchange.body)
    exchange.events = [Event(data="b" * 1_000_000, raw=b"c" * 1_000_000)] * 3
    assert len(repr(exchange)) < 300 and len(repr(exchange.events)) < 1000


@pytest.mark.parametrize(
    ("behaviour", "stream", "error"),
    [
        ("gigabyte_body", False, "exceeded the cap"),
        ("gigabyte_body", True, "exceeded the cap"),
        ("drip", False, "total timeout of 2 s"),
        # whichever bound comes first: the deadline, or the cap on a fast machine
        ("endless_stream", True, ("total timeout of 2 s", "exceeded the cap")),
    ],
)
def test_sdk_http_client_is_bounded(hostile, behaviour, stream, error):
    openai = pytest.importorskip("openai")
    # A read timeout longer than the total: only the total bound can stop the drip.
    transport = Transport(hostile.url(behaviour), KEY, Limits(read_timeout=3, total_timeout=2))
    sdk = openai.OpenAI(
        base_url=transport.base_url,
        api_key=KEY,
        max_retries=0,
        http_client=transport.sdk_http_client(),
    )
    started = time.monotonic()
    with pytest.raises(openai.APIError) as raised:
        answer = sdk.chat.completions.create(**CHAT, max_tokens=5, stream=stream)
        for _ in answer if stream else ():
            pass
    assert time.monotonic() - started < 2 + 2
    accepted = (error,) if isinstance(error, str) else error
    assert any(text in str(raised.value.__cause__) for text in accepted)


def test_sdk_http_client_masks_an_echoed_key(hostile):
    openai = pytest.importorskip("openai")
    transport = Transport(hostile.url("echo"), KEY, FAST)
    sdk = openai.OpenAI(
        base_url=transport.base_url,
        api_key=KEY,
        max_retries=0,
        http_client=transport.sdk_http_client(),
    )
    completion = sdk.chat.completions.create(**CHAT, max_tokens=5)
    assert KEY not in completion.model_dump_json()
    assert completion.system_fingerprint == "*" * len(KEY)


def test_first_contact_silence_trips_the_breaker_for_every_path(hostile):
    """One round of read timeouts, then nothing more is sent: not by us, not by the SDK."""
    transport = Transport(hostile.url("no_response"), KEY, FAST)
    started = time.monotonic()
    first = transport.send_all([RequestSpec(f"r{i}", json=CHAT) for i in range(8)])
    assert time.monotonic() - started < 1.9  # one round of read timeouts, then at once
    assert [e.sent for e in first] == [True] * 4 + [False] * 4
    assert first[-1].error.startswith(
        "not sent: the first POST /chat/completions got no complete answer: ReadTimeout: "
        "no data for 1 s (read timeout, --request-timeout)"
    )
    assert transport.spend.requests == 4
    seen = len(hostile.records_of("no_response"))
    assert not transport.send(RequestSpec("later", json=CHAT)).sent
    with transport.sdk_http_client() as client, pytest.raises(httpx.ConnectError, match="not sent"):
        client.post(transport.base_url + "/chat/completions", json=CHAT)
    assert len(hostile.records_of("no_response")) == seen
    assert time.monotonic() - started < 1.9


def _exchange(shape: str, *, timed_out: bool = False, capped: bool = False) -> Exchange:
    method, path, streamed = {
        "models": ("GET", "/models", False),
        "chat": ("POST", "/chat/completions", False),
        "stream": ("POST", "/chat/completions", True),
    }[shape]
    body = {**CHAT, "stream": True} if streamed else (CHAT if method == "POST" else None)
    exchange = Exchange(RequestSpec(shape, json=body, method=method, path=path), "u", {})
    exchange.status = 200
    exchange.timed_out, exchange.truncated = timed_out, capped
    exchange.error = "ReadTimeout: no data" if timed_out else ("capped" if capped else None)
    return exchange


@pytest.mark.parametrize(
    ("sequence", "tripped"),
    [
        (["chat", "chat!"], False),  # answered before: one costly failure is counted, not fatal
        (["chat", "chat!", "chat!"], False),  # two: not yet
        (["chat", "chat!", "models", "chat!", "models", "chat!"], True),  # others do not reset
        (["chat", "chat!", "chat", "chat!", "chat", "chat!"], True),  # nor its own answers
        (["chat", "stream", "chat!", "stream$", "chat!"], True),  # a cap counts like a timeout
        (["models", "stream$"], True),  # a cap at first contact trips at once
        (["models", "chat!"], True),  # silence at first contact trips at once
    ],
)
def test_breaker_counts_costly_failures_per_shape(sequence, tripped):
    breaker = Breaker(after=3)
    for step in sequence:
        shape = step.rstrip("!$")
        breaker.record(_exchange(shape, timed_out=step.endswith("!"), capped=step.endswith("$")))
    assert breaker.tripped is tripped


DROPPED = "expected a complete HTTP 200 response; got HTTP 200, then transport error: ReadError: x"


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (DROPPED, "dropped"),
        ("got transport error: ReadTimeout: no data for 1 s", "timeout"),
        ("got transport error: not sent: the first GET /models got no complete answer", "breaker"),
        ("got transport error: response body exceeded the cap of 8 bytes", "cap"),
        ("expected HTTP 400; got HTTP 500", None),  # a verdict on the answer, not transport
    ],
)
def test_failure_causes(message, cause):
    assert findings.cause_of(message) == cause


@pytest.mark.parametrize(
    ("concurrency", "finding"),
    [
        (4, "streams aborted when requests overlap: 2 checks affected; re-run with "),
        (1, "streams aborted mid-way: 2 checks affected"),
    ],
)
def test_one_cause_one_finding(concurrency, finding):
    limits = Limits(max_concurrency=concurrency)
    transport = Transport("http://127.0.0.1:9/v1", None, limits)
    transport.failures.append(Failure("ReadError: x", in_flight=min(concurrency, 2), streamed=True))
    assert findings.findings([DROPPED, DROPPED, "expected 1; got 2"], transport, limits) == [
        finding + ("" if concurrency == 1 else "--concurrency 1 to separate")
    ]
    assert findings.findings([DROPPED], transport, limits) == []  # one check: its own story
