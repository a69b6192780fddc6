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

import math
from collections import Counter
from collections.abc import Iterable

from conformance.transport.client import Completion, Failure, Limits, Transport

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
#: Causes that leave a check without an answer to judge: not judged, never failed (a cap hit
#: is an answer, too large: a verdict; a redirect is one too).
NO_ANSWER = frozenset({"breaker", "timeout", "dropped", "rate_limit"})
TIMEOUT_ADVICE_FACTOR = 4  # suggested timeouts: this many times the ones that ran out


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
    if transport is not None:
        lines += cut_streams(transport.completions)
    return lines


CUT_STREAMS = "streams cut but reported complete"


def cut_streams(completions: list[Completion]) -> list[str]:
    """One line for every stream that ended ``data: [DONE]`` with a choice lacking a
    finish_reason: the server cut the output and said it was complete. Checks that lean on a
    finished stream end not applicable (``FINISHED_STREAM``) and this line names the cause
    once, with whether another request overlapped it (servers that cut under load)."""
    cut = [c for c in completions if c.unfinished]
    if not cut:
        return []
    busy = [c for c in cut if c.in_flight > 1 or any(c.overlaps(o) for o in completions)]
    labels = ", ".join(repr(c.label) for c in cut[:5]) + (" ..." if len(cut) > 5 else "")
    overlap = (
        f"{len(busy)} of them while another request was in flight; re-run with "
        "--concurrency 1 to separate"
        if busy
        else "no other request overlapped them"
    )
    return [
        f"{CUT_STREAMS}: {len(cut)} stream(s) ended with [DONE] leaving a choice without "
        f"finish_reason ({labels}); {overlap}"
    ]


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


def incomplete_reason(
    not_judged: Iterable[str], total: int, transport: Transport | None, limits: Limits
) -> str:
    """``run_error`` of a run with checks not judged: how many, why, and what to change.

    The advice uses what the transport measured (its slowest complete answer), so a slow
    endpoint reads "the endpoint answered 16 tokens in 29 s; raise --request-timeout".
    """
    messages = list(not_judged)
    causes = Counter(c for c in map(cause_of, messages) if c is not None)
    head = f"{len(messages)} of {total} checks not judged"
    why = [f"{n} {_CAUSE_WORDS.get(c, c)}" for c, n in causes.most_common() if c != "breaker"]
    not_run = sum("not run:" in m for m in messages)
    if not_run:
        why.append(f"{not_run} not run")
    if transport is not None and transport.breaker.tripped:
        sent = f"{causes['breaker']} not sent after " if causes["breaker"] else ""
        why.append(f"{sent}the endpoint stopped answering ({transport.breaker.reason})")
    advice = _advice(causes, transport, limits)
    return "; ".join([f"{head}: {', '.join(why)}" if why else head, *advice])


_CAUSE_WORDS = {
    "timeout": "timed out",
    "dropped": "lost to a broken connection",
    "rate_limit": "rate limited",
}


def _advice(causes: Counter, transport: Transport | None, limits: Limits) -> list[str]:
    reason = (transport.breaker.reason or "") if transport is not None else ""
    advice = []
    if causes["timeout"] or "imeout" in reason:
        slowest = transport.slowest if transport is not None else None
        if slowest is not None:
            tokens = f"{slowest.tokens} tokens" if slowest.tokens is not None else "its answer"
            advice.append(f"the endpoint answered {tokens} in {slowest.seconds:.1f} s at most")
        read = math.ceil(TIMEOUT_ADVICE_FACTOR * limits.read_timeout)
        total = math.ceil(TIMEOUT_ADVICE_FACTOR * limits.total_timeout)
        advice.append(
            f"if it is only slow, raise --request-timeout (now {limits.read_timeout:g} s) and "
            f"--total-timeout (now {limits.total_timeout:g} s), e.g. --request-timeout={read} "
            f"--total-timeout={total}"
        )
    if causes["dropped"] or cause_of(f"transport error: {reason}") == "dropped":
        advice.append("re-run with --concurrency 1 if the endpoint drops overlapping requests")
    if causes["rate_limit"] or "rate limited" in reason:
        advice.append("lower --concurrency, or raise the endpoint's rate limit")
    if "exceeded the cap" in reason:
        advice.append("raise --max-body-bytes / --max-events if answers are legitimately large")
    return advice
