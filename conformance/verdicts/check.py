"""The check model: stable IDs, levels, capabilities, the spec sentence, and verdict helpers.

A check is one pytest test function decorated with ``@check(...)``. Its ID is semantic
(``area.behaviour``; parametrized checks add ``[param]``) and never shifts. The plugin turns
outcomes into pass / fail / warn / unsupported / info according to the level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

import pytest

from conformance.transport.client import Exchange
from conformance.verdicts.premises import NOT_APPLICABLE_PREFIX, Premise

F = TypeVar("F", bound=Callable[..., Any])


#: Why a level: MUST when a client breaks or a request is silently not honoured; SHOULD when
#: OpenAI does it and strict or typed clients notice but common clients cope; INFO observed,
#: no verdict. A rationale starting "Spec-optional" marks a MUST resting on a field the
#: OpenAPI spec does not require, and says why it is MUST anyway. Phrases several checks share:
CLIENTS_PARSE = "clients parse it without a fallback; a wrong value breaks them"
SILENT = "accepted and ignored would go unnoticed by the caller: a silent wrong answer"
SSE_CLIENTS = "every SSE client (the SDKs, EventSource) assumes it; a violation breaks parsing"
CLEAN_400 = "a clean 400 is honest; 5xx or a wrong status breaks retry and error handling"

#: fault name -> the fragment its failure message must contain, for every parametrization
#: (a string) or for the named parameters only ({param: fragment}).
BrokenBy = Mapping[str, "str | Mapping[str, str]"]


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    INFO = "INFO"


@dataclass(frozen=True)
class CheckInfo:
    id: str
    level: Level
    requirement: str
    capability: str | None = None
    rationale: str = ""  # why this level
    #: what the check needs before it can judge (verdicts/premises.py); reaching any other
    #: premise is a suite defect
    needs: tuple[Premise, ...] = ()
    #: the reference-server faults that must make this check fail, with the message fragment
    #: each must produce (tests/test_fault_matrix.py runs them all)
    broken_by: BrokenBy = field(default_factory=dict, hash=False)
    #: judged after every other check: it reads what the whole run received
    last: bool = False

    @property
    def need_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.needs)

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]


REGISTRY: dict[str, CheckInfo] = {}


def check(
    check_id: str,
    level: Level | str,
    requirement: str,
    capability: str | None = None,
    rationale: str = "",
    needs: tuple[Premise, ...] = (),
    broken_by: BrokenBy | None = None,
    last: bool = False,
) -> Callable[[F], F]:
    """Register a check and attach its metadata to the test function: the check is its own
    declaration (level and why, premises, the faults that break it)."""
    info = CheckInfo(
        check_id,
        Level(level),
        " ".join(requirement.split()),
        capability,
        rationale,
        tuple(needs),
        dict(broken_by or {}),
        last,
    )
    if check_id in REGISTRY and REGISTRY[check_id] != info:
        raise ValueError(f"check id registered twice: {check_id}")
    REGISTRY[check_id] = info

    def decorate(fn: F) -> F:
        return pytest.mark.chatcompat_check(info)(fn)

    return decorate


def breaks_under(fault: str) -> dict[str, str]:
    """Declared check id (a base id: every parametrization) -> expected message fragment,
    for every registered check that declares ``fault`` in its ``broken_by``."""
    out: dict[str, str] = {}
    for check_id, info in REGISTRY.items():
        value = info.broken_by.get(fault)
        if isinstance(value, str):
            out[check_id] = value
        elif value is not None:
            out.update({f"{check_id}[{param}]": frag for param, frag in value.items()})
    return out


class CheckFailure(AssertionError):
    """A broken requirement, with what was expected, what came back and the exchanges."""

    def __init__(
        self,
        expected: str,
        actual: str,
        exchanges: Iterable[Exchange] = (),
        note: str | None = None,
    ) -> None:
        super().__init__(f"expected {expected}; got {actual}")
        self.expected = expected
        self.actual = actual
        self.exchanges = [e for e in exchanges if e is not None]
        self.note = note


class Observation(Exception):
    """Raised by INFO checks to record what was observed (never a failure)."""

    def __init__(self, text: str, exchanges: Iterable[Exchange] = ()) -> None:
        super().__init__(text)
        self.text = text
        self.exchanges = list(exchanges)


def expect(
    condition: bool,
    expected: str,
    actual: str | Callable[[], str],
    *exchanges: Exchange,
    note: str | None = None,
) -> None:
    """Fail the current check with evidence unless ``condition`` holds."""
    if not condition:
        text = actual() if callable(actual) else actual
        raise CheckFailure(expected, text, exchanges, note)


def observe(text: str, *exchanges: Exchange) -> None:
    """Record an INFO observation and end the check."""
    raise Observation(text, exchanges)


def not_applicable(reason: str) -> NoReturn:
    """End the check without a verdict, saying why it could not judge."""
    pytest.skip(f"{NOT_APPLICABLE_PREFIX} {reason}")


def short(value: Any, limit: int = 300) -> str:
    """A compact repr for Actual: lines."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
