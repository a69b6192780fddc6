"""Open-loop arrivals on an absolute schedule.

Request k is due at ``start + offset(k)``, computed from k alone (constant rate) or from a
seeded sum of exponential gaps (Poisson), never from when request k-1 was actually sent: a
late send does not push the rest of the schedule back (no drift, no coordinated omission).
A free user takes the next due time and sleeps until it; if no user was free in time, the
request goes out late and the lateness is recorded as schedule lag.

In distributed runs each of W workers serves rate/W: constant schedules are interleaved by
worker index (worker i takes offsets (i + kW)/rate), Poisson ones use per-worker seeds (the
superposition of independent Poisson processes is Poisson at the total rate).
"""

from __future__ import annotations

import random


class ArrivalSchedule:
    """Hands out due times (``perf_counter`` seconds) in order; one instance per process."""

    def __init__(
        self,
        rate: float,
        start: float,
        kind: str = "constant",
        seed: int = 0,
        workers: int = 1,
        index: int = 0,
    ) -> None:
        if rate <= 0:
            raise ValueError("an open-loop schedule needs a rate > 0")
        self.rate = rate
        self.start = start
        self.kind = kind
        self.local_rate = rate / max(workers, 1)
        self.workers = max(workers, 1)
        self.index = index
        self.rng = random.Random(f"{seed}-{index}")
        self.issued = 0
        self._poisson_offset = 0.0

    def next_due(self) -> float:
        """The due time of the next request of this process."""
        k = self.issued
        self.issued += 1
        if self.kind == "poisson":
            self._poisson_offset += self.rng.expovariate(self.local_rate)
            return self.start + self._poisson_offset
        return self.start + (self.index + k * self.workers) / self.rate
