"""Requests still in flight when the test stopped: right-censored latencies.

Dropping them biases every tail low exactly when the server is saturated: the slowest
requests are the ones most likely to be unfinished at the end. Each one's elapsed time is a
lower bound on its E2E (and, when no output had arrived yet, on its TTFT). Percentiles over
the completed requests together with those lower bounds are therefore lower bounds on the
true percentiles; the report shows them next to the completed-only figures, and warns when
more than ``WARN_SHARE`` of the requests were censored.
"""

from __future__ import annotations

from typing import Any

from loadtests.metrics import Sample
from loadtests.stats import summarize

WARN_SHARE = 0.01
INTERRUPTED = "interrupted"


def censored_view(started: list[Sample], ok: list[Sample]) -> dict[str, Any]:
    """Count, elapsed lower bounds and the with/without tails of TTFT and E2E."""
    cut = [s for s in started if s.error_kind == INTERRUPTED]
    share = len(cut) / len(started) if started else None
    ttft_bounds = [s.ttft_ms if s.ttft_ms is not None else s.e2e_ms for s in cut]
    view: dict[str, Any] = {
        "count": len(cut),
        "share": share,
        "warn": share is not None and share > WARN_SHARE,
        "elapsed_ms": summarize(s.e2e_ms for s in cut),
        "ttft_ms_completed": summarize(s.ttft_ms for s in ok if s.ttft_ms is not None),
        "ttft_ms_with_censored_at_least": summarize(
            [*(s.ttft_ms for s in ok if s.ttft_ms is not None), *ttft_bounds]
        ),
        "e2e_ms_completed": summarize(s.e2e_ms for s in ok),
        "e2e_ms_with_censored_at_least": summarize(
            [*(s.e2e_ms for s in ok), *(s.e2e_ms for s in cut)]
        ),
    }
    return view


def warning(view: dict[str, Any]) -> str:
    """The report's sentence when censored requests exceed the threshold, else ''."""
    if not view["warn"]:
        return ""
    with_e2e = view["e2e_ms_with_censored_at_least"]["p99"]
    without = view["e2e_ms_completed"]["p99"]
    return (
        f"{view['count']} requests ({view['share']:.1%}) were still in flight at the end "
        f"(elapsed up to {_ms(view['elapsed_ms']['max'])}); E2E p99 completed only "
        f"{_ms(without)}, with them as lower bounds >= {_ms(with_e2e)}"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
