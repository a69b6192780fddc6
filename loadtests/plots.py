"""Figures for the HTML report, as PNG bytes (matplotlib, Agg backend; optional dependency).

Everything is drawn from the raw samples: distributions of TTFT and ITL, latency and
throughput over time (1-second bins of chunk arrivals), and for sweeps the metrics against
the swept concurrency or rate.
"""

from __future__ import annotations

import io
from typing import Any

from loadtests.aggregate import Window, chunk_arrivals, end_wall
from loadtests.metrics import Sample
from loadtests.stats import percentile

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover - the HTML says plots need matplotlib
    plt = None

AVAILABLE = plt is not None
COLORS = {
    "ttft": "#1f77b4",
    "itl": "#ff7f0e",
    "e2e": "#2ca02c",
    "tok": "#9467bd",
    "conc": "#7f7f7f",
}


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=96)
    plt.close(fig)
    return buffer.getvalue()


def _mark(ax: Any, values: list[float]) -> None:
    ordered = sorted(values)
    for q, style in ((50, "--"), (99, ":")):
        value = percentile(ordered, q)
        if value is not None:
            ax.axvline(
                value, color="black", linestyle=style, linewidth=1, label=f"p{q} {value:.2f}"
            )
    ax.legend(fontsize=8)


def distributions(samples: list[Sample]) -> bytes | None:
    if plt is None:
        return None
    ttft = [s.ttft_ms for s in samples if s.ttft_ms is not None]
    itl = [g for s in samples for g in s.itl_ms]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    if ttft:
        left.hist(ttft, bins=60, color=COLORS["ttft"])
        _mark(left, ttft)
    left.set(title=f"TTFT ({len(ttft)} requests)", xlabel="ms", ylabel="requests")
    if itl:
        right.hist(itl, bins=80, color=COLORS["itl"], log=True)
        _mark(right, itl)
    right.set(title=f"ITL ({len(itl)} gaps)", xlabel="ms", ylabel="gaps (log)")
    return _png(fig)


def over_time(samples: list[Sample], origin: float, window: Window) -> bytes | None:
    """TTFT/E2E per request, ITL p50/p99, output tokens/s and concurrency per second."""
    if plt is None or not samples:
        return None
    bins = max(int(window.end - origin), 1)  # whole seconds only: a partial last bin reads as a dip
    tokens = [0.0] * bins
    inflight = [0.0] * bins
    gaps: list[list[float]] = [[] for _ in range(bins)]
    for s in samples:
        arrivals = chunk_arrivals(s)
        per_chunk = (s.output_tokens or len(arrivals)) / len(arrivals) if arrivals else 0.0
        for i, at in enumerate(arrivals):
            b = int(at - origin)
            if 0 <= b < bins:
                tokens[b] += per_chunk
                if i:
                    gaps[b].append(s.itl_ms[i - 1])
        lo, hi = s.start_wall - origin, end_wall(s) - origin
        for b in range(max(int(lo), 0), min(int(hi) + 1, bins)):
            inflight[b] += max(min(hi, b + 1) - max(lo, b), 0.0)
    fig, (a, b, c) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True)
    ok = [s for s in samples if s.ttft_ms is not None]
    a.scatter(
        [s.start_wall - origin for s in ok],
        [s.ttft_ms for s in ok],
        s=4,
        color=COLORS["ttft"],
        label="TTFT",
    )
    a.scatter(
        [s.start_wall - origin for s in ok],
        [s.e2e_ms for s in ok],
        s=4,
        color=COLORS["e2e"],
        label="E2E",
    )
    scale = "log" if any(s.ttft_ms > 0 for s in ok) else "linear"  # no data: no log axis
    a.set(ylabel="ms", title="Latency per request (by start time)", yscale=scale)
    a.legend(fontsize=8, loc="upper right")
    xs = [i + 0.5 for i in range(bins)]
    p50 = [percentile(sorted(g), 50) if g else None for g in gaps]
    p99 = [percentile(sorted(g), 99) if g else None for g in gaps]
    b.plot(
        xs,
        [v if v is not None else float("nan") for v in p50],
        color=COLORS["itl"],
        label="ITL p50",
    )
    b.plot(
        xs,
        [v if v is not None else float("nan") for v in p99],
        color=COLORS["itl"],
        linestyle=":",
        label="ITL p99",
    )
    b.set(ylabel="ms", title="Inter-token latency per second")
    b.legend(fontsize=8, loc="upper right")
    c.plot(xs, tokens, color=COLORS["tok"], label="output tokens/s")
    c.set(ylabel="tokens/s", xlabel="seconds since test start", title="Throughput and concurrency")
    twin = c.twinx()
    twin.plot(xs, inflight, color=COLORS["conc"], linestyle="--", label="requests in flight")
    twin.set_ylabel("in flight")
    c.legend(fontsize=8, loc="upper left")
    twin.legend(fontsize=8, loc="upper right")
    for ax in (a, b, c):
        ax.axvspan(0, max(window.start - origin, 0), color="#dddddd", alpha=0.6)
        ax.axvline(window.end - origin, color="#999999", linewidth=1)
    return _png(fig)


def sweep(steps: list[dict[str, Any]]) -> bytes | None:
    """TTFT, ITL and throughput against the swept users or rate, one point per step."""
    if plt is None or len(steps) < 2:
        return None
    by_rate = steps[0].get("target_rate") is not None
    xs = [s["target_rate"] if by_rate else s["users"] for s in steps]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, title in ((axes[0], "ttft_ms", "TTFT"), (axes[1], "itl_ms", "ITL")):
        for stat, style in (("p50", "-o"), ("p99", ":o")):
            ax.plot(xs, [s[key][stat] for s in steps], style, label=stat)
        ax.set(title=title, ylabel="ms", xlabel="rate (req/s)" if by_rate else "users")
        ax.legend(fontsize=8)
    axes[2].plot(
        xs, [s["throughput"]["output_tokens_per_s"] for s in steps], "-o", color=COLORS["tok"]
    )
    axes[2].set(title="Output tokens/s", xlabel="rate (req/s)" if by_rate else "users")
    return _png(fig)
