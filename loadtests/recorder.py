"""Keeps every request's raw sample, and moves them from workers to the master exactly once.

A worker appends samples as requests finish; each Locust worker report (every 3 s, and a
final one when the worker quits) carries the samples not sent yet, as plain lists (msgpack
friendly), and the worker then forgets them. The master appends what arrives. Nothing is
summarised before merging, so the master's percentiles are those of the union of all
samples, and the merged count is by construction the sum of the workers' counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loadtests.metrics import Sample

FIELDS = (
    "start_wall",
    "ok",
    "error_kind",
    "error",
    "status",
    "completion_id",
    "ttft_ms",
    "e2e_ms",
    "connect_ms",
    "ttft_write_ms",
    "ttfc_ms",
    "reasoning_chunks",
    "reasoning_tokens",
    "finish_reason",
    "protocol_warning",
    "token_field",
    "itl_ms",
    "output_tokens",
    "tokens_source",
    "content_chunks",
    "prompt_tokens",
    "target_tokens",
    "schedule_lag_ms",
    "read_delay_ms",
    "stamps",
    "worker",
)
REPORT_KEY = "chatcompat_samples"


@dataclass(slots=True)
class Step:
    """One sweep step: its label (users or rate) and wall-clock span."""

    index: int
    users: int | None
    rate: float | None
    start_wall: float
    end_wall: float | None = None


@dataclass
class Recorder:
    """All samples of this process (worker: until sent; master/local: the whole run)."""

    samples: list[Sample] = field(default_factory=list)
    total_recorded: int = 0  # finished requests recorded by this process (sent or not)
    unsent: int = 0
    sent_total: int = 0
    sent_gaps: int = 0
    received_from: dict[str, int] = field(default_factory=dict)
    test_start_wall: float | None = None
    spawned_wall: float | None = None
    stop_wall: float | None = None
    steps: list[Step] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        self.unsent += 1
        if sample.error_kind != "interrupted":
            self.total_recorded += 1

    def reset(self) -> None:
        """Forget the previous test (steps belong to the sweep shape, which resets them)."""
        self.samples = []
        self.unsent = self.total_recorded = self.sent_total = self.sent_gaps = 0
        self.received_from = {}
        self.test_start_wall = self.spawned_wall = self.stop_wall = None

    def take_unsent(self) -> list[list[Any]]:
        """Rows for a worker report; the worker keeps nothing it has sent."""
        rows = [to_row(s) for s in self.samples[len(self.samples) - self.unsent :]]
        self.sent_total += len(rows)
        self.sent_gaps += sum(
            len(s.itl_ms) for s in self.samples[len(self.samples) - self.unsent :]
        )
        self.samples.clear()
        self.unsent = 0
        return rows

    def ingest(self, worker: str, rows: list[list[Any]]) -> None:
        for row in rows:
            sample = from_row(row)
            sample.worker = sample.worker or worker
            self.samples.append(sample)
            if sample.error_kind != "interrupted":
                self.total_recorded += 1
        self.received_from[worker] = self.received_from.get(worker, 0) + len(rows)


def to_row(sample: Sample) -> list[Any]:
    return [getattr(sample, name) for name in FIELDS]


def from_row(row: list[Any]) -> Sample:
    values = dict(zip(FIELDS, row, strict=True))
    values["itl_ms"] = list(values["itl_ms"])
    return Sample(**values)
