"""One cause, one finding: failures that share a transport-level cause are named once.

When an endpoint drops streams as soon as a second request arrives, or stops answering, or
rate-limits the run, dozens of checks fail with the same transport error under unrelated
names. Each of them stays a failed check (its own line, its evidence), but the run also gets
one finding per cause saying how many checks it affected and what to do about it, so nobody
reads 24 failures as 24 divergences. Capability verdicts are not touched here: a transport
failure on a capability's request leaves the capability undecided (``capabilities.gate``).

The causes are read from the transport's own error texts (``client.py`` writes them), and
whether requests overlapped from the exchanges' ``in_flight`` count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from conformance.transport.client import Failure, Limits, Transport

#: (cause, fragments of the error text that show it), first match wins.
CAUSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("breaker", ("not sent:",)),
    ("timeout", ("Timeout", "timeout")),
    ("cap", ("exceeded the cap", "--max-events", "--max-body-bytes")),
    ("rate_limit", ("rate limited",)),
    (
        "dropped",
        (
            "RemoteProtocolError",
            "ReadError",
            "WriteError",
            "ConnectError",
            "peer closed",
            "incomplete chunked",
            "Connection reset",
            "the connection broke",
        ),
    ),
)
MIN_CHECKS = 2  # one failing check is its own story


def cause_of(text: str) -> str | None:
    """The transport-level cause a failure message shows, or None (a verdict on content)."""
    if "transport error:" not in text and "not sent:" not in text:
        return None
    return next((cause for cause, marks in CAUSES if any(m in text for m in marks)), None)


def findings(messages: Iterable[str], transport: Transport | None, limits: Limits) -> list[str]:
    """One line per transport-level cause shared by at least ``MIN_CHECKS`` failed checks."""
    counts = Counter(c for c in map(cause_of, messages) if c is not None)
    failures = list(transport.failures) if transport is not None else []
    lines = []
    for cause, count in counts.items():
        if count >= MIN_CHECKS:
            lines.append(_describe(cause, count, failures, transport, limits))
    return lines


def _describe(
    cause: str, count: int, failures: list[Failure], transport: Transport | None, limits: Limits
) -> str:
    affected = f"{count} checks affected"
    if cause == "breaker":
        assert transport is not None
        breaker = transport.breaker
        return (
            f"the endpoint stopped answering ({breaker.reason}): {affected}, "
            f"{breaker.not_sent} requests not sent"
        )
    if cause == "timeout":
        return (
            f"requests timed out: {affected} (read timeout {limits.read_timeout:g} s, "
            f"--request-timeout; total {limits.total_timeout:g} s, --total-timeout)"
        )
    if cause == "cap":
        return f"responses exceeded the size caps: {affected} (--max-body-bytes, --max-events)"
    if cause == "rate_limit":
        return f"rate limited (HTTP 429 after retries): {affected}; lower --concurrency"
    dropped = [f for f in failures if cause_of("transport error: " + f.error) == "dropped"]
    what = "streams aborted" if any(f.streamed for f in dropped) else "connections dropped"
    if limits.max_concurrency > 1 and any(f.in_flight > 1 for f in dropped):
        return f"{what} when requests overlap: {affected}; re-run with --concurrency 1 to separate"
    return f"{what} mid-way: {affected}"
