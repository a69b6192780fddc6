"""SLO gates: ``--slo ttft_p95_ms=500`` and friends, checked against the run's aggregates.

A gate is ``<name><op><number>`` with op ``<=``, ``>=`` or ``=``. ``=`` means "at most" for
latencies and the error rate and "at least" for goodput and throughput, which is what anyone
writing ``ttft_p95_ms=500`` or ``goodput=0.9`` means. Names:

* ``<metric>_<stat>_ms`` with metric ttft, itl, tpot, e2e, schedule_lag and stat
  p50/p90/p95/p99/max/mean (e.g. ``itl_p99_ms``);
* ``error_rate``, ``goodput`` (share, 0..1), ``requests_per_s``, ``output_tokens_per_s``.

A gate whose value is missing (no successful request) fails: no evidence is not a pass.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

LATENCIES = ("ttft", "itl", "tpot", "e2e", "schedule_lag")
STATS = ("p50", "p90", "p95", "p99", "max", "mean")
HIGHER_IS_BETTER = {"goodput", "requests_per_s", "output_tokens_per_s"}
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


def check(gates: list[Gate], aggregates: dict[str, Any]) -> list[Verdict]:
    compare = {"<=": operator.le, ">=": operator.ge}
    verdicts = []
    for gate in gates:
        value = value_of(gate.name, aggregates)
        passed = value is not None and compare[gate.op](value, gate.limit)
        verdicts.append(Verdict(gate, value, passed))
    return verdicts
