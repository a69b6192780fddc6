"""SLO gates: ``--slo ttft_p95_ms=500`` and friends, checked against the run's aggregates.

A gate is ``<name><op><number>`` with op ``<=``, ``>=`` or ``=``. ``=`` means "at most" for
latencies and the error rate and "at least" for goodput and throughput, which is what anyone
writing ``ttft_p95_ms=500`` or ``goodput=0.9`` means. Names:

* ``<metric>_<stat>_ms`` with metric ttft, itl, tpot, e2e, schedule_lag and stat
  p50/p90/p95/p99/max/mean (e.g. ``itl_p99_ms``);
* ``error_rate``, ``goodput`` (share, 0..1), ``requests_per_s``, ``output_tokens_per_s``.

A gate whose value is missing (no successful request) fails: no evidence is not a pass.

Requests still in flight when the test stopped (censored, ``censored.py``) count in the TTFT
and E2E gates: each one's elapsed time is a lower bound on its latency, so a gate reads the
worse of the completed-only statistic and the statistic with those lower bounds. A server
that stalls some requests under load therefore fails ``ttft_p95_ms`` when the stalled share
exceeds 5%, instead of passing on the requests it did answer. Censored requests also count
against ``goodput`` when they are already past a per-request limit (``aggregate.py``).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

LATENCIES = ("ttft", "itl", "tpot", "e2e", "schedule_lag")
STATS = ("p50", "p90", "p95", "p99", "max", "mean")
HIGHER_IS_BETTER = {"goodput", "requests_per_s", "output_tokens_per_s"}
#: Latencies with a lower bound for each censored request (``censored.censored_view``).
CENSORED_BOUNDS = {"ttft": "ttft_ms_with_censored_at_least", "e2e": "e2e_ms_with_censored_at_least"}
GATE = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|=)\s*([-+0-9.eE]+)\s*$")


@dataclass
class Gate:
    name: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.limit:g}"


@dataclass
class Verdict:
    gate: Gate
    value: float | None
    passed: bool
    note: str = ""  # why the value is not the completed-only figure, when it is not


def parse_gates(items: list[str]) -> list[Gate]:
    """Parse ``--slo`` values (each may hold several, comma-separated); reject unknown names."""
    gates = []
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            match = GATE.match(part)
            if not match:
                raise ValueError(f"--slo: cannot read {part!r}; expected e.g. ttft_p95_ms=500")
            name, op, number = match.groups()
            value_of(name, None)  # validates the name
            if op == "=":
                op = ">=" if name in HIGHER_IS_BETTER else "<="
            gates.append(Gate(name, op, float(number)))
    return gates


def value_of(name: str, aggregates: dict[str, Any] | None) -> float | None:
    """Look a gate's metric up in an aggregate dict; ``aggregates=None`` only checks the name."""
    if name.endswith("_ms"):
        metric, _, stat = name[: -len("_ms")].rpartition("_")
        if metric not in LATENCIES or stat not in STATS:
            raise ValueError(f"--slo: unknown latency {name!r} (e.g. ttft_p95_ms, itl_p99_ms)")
        return None if aggregates is None else aggregates[f"{metric}_ms"].get(stat)
    if name == "error_rate":
        return None if aggregates is None else aggregates["error_rate"]
    if name == "goodput":
        return None if aggregates is None else aggregates["goodput"]["share"]
    if name in ("requests_per_s", "output_tokens_per_s"):
        return None if aggregates is None else aggregates["throughput"][name]
    raise ValueError(f"--slo: unknown metric {name!r}")


def censored_bound(name: str, aggregates: dict[str, Any]) -> tuple[float | None, int]:
    """The gate's statistic with the censored requests' elapsed times as lower bounds, and
    how many there were (``None, 0`` for gates without bounds or a run without them)."""
    metric = name[: -len("_ms")].rpartition("_")[0] if name.endswith("_ms") else ""
    view = aggregates.get("censored") or {}
    if metric not in CENSORED_BOUNDS or not view.get("count"):
        return None, 0
    stat = name[: -len("_ms")].rpartition("_")[2]
    return view[CENSORED_BOUNDS[metric]].get(stat), view["count"]


def check(gates: list[Gate], aggregates: dict[str, Any]) -> list[Verdict]:
    compare = {"<=": operator.le, ">=": operator.ge}
    verdicts = []
    for gate in gates:
        value = value_of(gate.name, aggregates)
        note = ""
        bound, count = censored_bound(gate.name, aggregates)
        if value is not None and bound is not None and bound > value:
            value = bound
            note = f"at least: {count} requests still in flight at the end counted by elapsed time"
        passed = value is not None and compare[gate.op](value, gate.limit)
        verdicts.append(Verdict(gate, value, passed, note))
    return verdicts
