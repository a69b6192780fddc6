"""Compare what a load tool reported with what the server logged it did: the accuracy errors.

The server (``--send-log``) writes, per streamed request, when it started handling the
request and when it finished writing each token chunk, in ``perf_counter_ns`` — the
CLOCK_MONOTONIC clock, shared by every process on the machine. Joined on the completion id,
each request gives one TTFT error (reported TTFT minus logged first-token time minus logged
start) and one ITL error per gap (reported gap minus the logged gap between the same two
tokens). Errors are in milliseconds; positive means the tool reported more than was true.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path


@dataclass
class TruthRecord:
    start_ns: int
    token_sent_ns: list[int]
    done: bool = True  # False: still streaming when the server stopped

    @property
    def ttft_ms(self) -> float:
        return (self.token_sent_ns[0] - self.start_ns) / 1e6

    def gaps_ms(self) -> list[float]:
        return [(b - a) / 1e6 for a, b in pairwise(self.token_sent_ns)]


@dataclass
class Errors:
    """Per-request TTFT errors and per-gap ITL errors, plus what could not be matched."""

    ttft: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)
    matched: int = 0
    unmatched: int = 0
    gap_count_mismatch: int = 0


def load_send_log(path: Path) -> dict[str, TruthRecord]:
    records: dict[str, TruthRecord] = {}
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        if line.strip():
            raw = json.loads(line)
            if raw.get("token_sent_ns"):
                records[raw["id"]] = TruthRecord(
                    raw["start_ns"], raw["token_sent_ns"], raw.get("done", True)
                )
    return records


def compare(
    samples: list[tuple[str, float | None, list[float]]], truth: dict[str, TruthRecord]
) -> Errors:
    """``samples``: (completion id, reported TTFT ms, reported ITL gaps ms) per request."""
    errors = Errors()
    for completion_id, ttft_ms, gaps in samples:
        record = truth.get(completion_id)
        if record is None or ttft_ms is None:
            errors.unmatched += 1
            continue
        errors.matched += 1
        errors.ttft.append(ttft_ms - record.ttft_ms)
        true_gaps = record.gaps_ms()
        if len(true_gaps) != len(gaps):
            errors.gap_count_mismatch += 1
        errors.itl.extend(r - t for r, t in zip(gaps, true_gaps, strict=False))
    return errors
