"""The check model: stable IDs, levels, capabilities, the spec sentence, and verdict helpers.

A check is one pytest test function decorated with ``@check(...)``. Its ID is semantic
(``area.behaviour``; parametrized checks add ``[param]``) and never shifts. The plugin turns
outcomes into pass / fail / warn / unsupported / info according to the level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

import pytest

from conformance.transport.client import Exchange
from conformance.verdicts.premises import NOT_APPLICABLE_PREFIX, Premise

F = TypeVar("F", bound=Callable[..., Any])


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
    rationale: str = ""  # why this level (see levels.py)
    #: what the check needs before it can judge (verdicts/premises.py); reaching any other
    #: premise is a suite defect
    needs: tuple[Premise, ...] = ()

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
) -> Callable[[F], F]:
    """Register a check and attach its metadata to the test function."""
    from conformance.verdicts.levels import RATIONALE

    why = rationale or RATIONALE.get(check_id, "")
    info = CheckInfo(
        check_id, Level(level), " ".join(requirement.split()), capability, why, tuple(needs)
    )
    if check_id in REGISTRY and REGISTRY[check_id] != info:
        raise ValueError(f"check id registered twice: {check_id}")
    REGISTRY[check_id] = info

    def decorate(fn: F) -> F:
        return pytest.mark.chatcompat_check(info)(fn)

    return decorate


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
