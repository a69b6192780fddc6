"""Our metrics as rows in Locust's own statistics (web UI, ``--csv``, ``--html``).

Each successful request adds a ``TTFT`` and a ``TPOT`` entry, and ``ITL`` entries (one per gap,
or one per request holding its mean gap with ``--itl-rows request``), all named ``chat``.
Locust stores these rounded like its response times and counts them in its "Aggregated"
row; our own report (raw samples) is the reference, these rows are for watching a run live.

Firing a Locust event costs about 5 us; at 25k gaps/s that is an eighth of a core, and done
at the end of each request it would stall every other stream's reads for half a millisecond.
So rows are queued and fired from one greenlet, in small batches, when the event loop has
nothing else to do (``gevent.idle``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gevent

from loadtests.metrics import Sample

BATCH = 16  # Locust events fired per idle slot: about 80 us of work


class StatsRows:
    def __init__(self, environment: Any, mode: str = "gap") -> None:
        self.environment = environment
        self.mode = mode
        self.queue: deque[tuple[str, float]] = deque()
        self.greenlet = gevent.spawn(self._run)

    def push(self, sample: Sample) -> None:
        """Queue the rows of one successful request (cheap: no Locust call here)."""
        queue = self.queue
        if sample.ttft_ms is not None:
            queue.append(("TTFT", sample.ttft_ms))
        tpot = sample.tpot_ms
        if tpot is not None:
            queue.append(("TPOT", tpot))
        gaps = sample.itl_ms
        if not gaps or self.mode == "none":
            return
        if self.mode == "request":
            queue.append(("ITL", sum(gaps) / len(gaps)))
        else:
            queue.extend(("ITL", gap) for gap in gaps)

    def stop(self) -> None:
        self.flush()
        self.greenlet.kill(block=False)

    def flush(self) -> None:
        while self.queue:
            self._fire(*self.queue.popleft())

    def _run(self) -> None:
        queue = self.queue
        while True:
            if not queue:
                gevent.sleep(0.05)
                continue
            gevent.idle()
            for _ in range(min(BATCH, len(queue))):
                self._fire(*queue.popleft())

    def _fire(self, kind: str, value: float) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name="chat",
            response_time=value,
            response_length=0,
            exception=None,
            context={},
        )
