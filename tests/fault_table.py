"""What each reference-server fault must break, read from the checks' own declarations
(``@check(..., broken_by={fault: fragment})``): the fault matrix and the mutation tool both
derive their cases from here, so adding a check with its fault touches no table of ours."""

from __future__ import annotations

from functools import cache
from typing import Any

from conformance.face.catalog import load_all_checks
from conformance.verdicts.check import breaks_under


def base(check_id: str) -> str:
    return check_id.split("[", 1)[0]


@cache
def declared(fault: str) -> dict[str, str]:
    """Declared check id (a base id means every parametrization) -> message fragment."""
    load_all_checks()
    return breaks_under(fault)


def breaks(fault: str) -> tuple[str, ...]:
    """The check ids ``fault`` declares broken (base ids where every parametrization is)."""
    return tuple(declared(fault))


def fragment(fault: str, check_id: str) -> str | None:
    """The fragment expected for ``check_id`` (its exact id first, then its base id)."""
    table = declared(fault)
    return table.get(check_id) or table.get(base(check_id))


def covers(fault: str, check_id: str) -> bool:
    return check_id in declared(fault) or base(check_id) in declared(fault)


def expected(fault: str, results: dict[str, Any]) -> dict[str, str]:
    """Full check id in a run's results -> fragment, for every check ``fault`` must break; a
    declared id the run did not produce maps to itself (so a missing check is reported)."""
    out: dict[str, str] = {}
    for check_id, frag in declared(fault).items():
        hits = [
            c for c in results if c == check_id or ("[" not in check_id and base(c) == check_id)
        ]
        for hit in hits or [check_id]:
            out[hit] = frag
    return out
