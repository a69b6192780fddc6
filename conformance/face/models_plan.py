"""Several models, one run: which models, and the child command line that judges each.

``--models a,b`` or ``--all-models`` (filtered by ``--models-match GLOB``) turns a run into one
child suite run per model, the ordinary single-model machinery with ``--model=M`` and its own
reports directory (``models.py`` runs them and ``models_report.py`` combines what they wrote).
This module is the pure part: reading the options, naming directories, building argv and env.

An unknown id given to ``--models`` is judged, not refused: many servers serve ids they do
not list (llama.cpp answers any name, gateways route aliases), and the suite already reports
both sides of it (``models.lists_model``, the preflight's model-not-found line).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.face.entry import ALIAS_PREFIX

#: Our options a child must not inherit from the parent's command line (with their value):
#: the parent sets each of them per child, or passes it by environment (key, base URL).
_DROPPED_VALUES = frozenset(
    {
        "--models",
        "--models-match",
        "--model",
        "--reports-dir",
        "--baseline",
        "--api-key",
        "--base-url",
        "--concurrency",
    }
)
_DROPPED_FLAGS = frozenset({"--all-models"})
#: pytest's own report options: each child writes its own junit.xml and report.html.
_PYTEST_REPORT_VALUES = frozenset({"--junitxml", "--junit-xml", "--html"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
SAFE_MAX = 64


@dataclass(frozen=True)
class Plan:
    """What the options asked for: explicit ids or every listed one, and a filter."""

    models: tuple[str, ...] = ()
    all_models: bool = False
    match: str | None = None

    def select(self, ids: Sequence[str]) -> list[str]:
        """The ids to judge: in order, without repeats, those the glob matches."""
        unique = list(dict.fromkeys(ids))
        if self.match is None:
            return unique
        return [m for m in unique if fnmatch.fnmatchcase(m, self.match)]


def _error(message: str) -> pytest.UsageError:
    return pytest.UsageError(f"chatcompat: {message}")


def read_plan(config: pytest.Config) -> Plan | None:
    """The plan, or None for an ordinary single-model run; bad input is one UsageError."""
    given = config.getoption("models", None)
    every = bool(config.getoption("all_models", False))
    match = config.getoption("models_match", None)
    if given is None and not every:
        if match is not None:
            raise _error("--models-match filters --all-models or --models; give one of them")
        return None
    if given is not None and every:
        raise _error("--models and --all-models exclude each other; give one")
    if config.getoption("model", None) is not None:
        raise _error("--model and --models/--all-models exclude each other; give one")
    if match is not None and not match:
        raise _error("--models-match needs a glob, e.g. 'gpt-5*'")
    models: tuple[str, ...] = ()
    if given is not None:
        models = tuple(item.strip() for item in given.split(","))
        if not all(models):
            raise _error(f"--models has an empty item ({given!r}); write --models=a,b")
    return Plan(models, every, match)


def safe_name(model: str) -> str:
    """A directory name for a model id (ids hold ``/`` and ``:``); distinct ids stay distinct
    (a changed name gets a hash of the id), and nothing reaches outside ``models/``."""
    safe = _UNSAFE.sub("_", model)[:SAFE_MAX]
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if safe == model:
        return safe
    return f"{safe}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def _option_name(token: str) -> str:
    name = token.split("=", 1)[0]
    if name.startswith(ALIAS_PREFIX):
        return "--" + name.removeprefix(ALIAS_PREFIX)
    return name


def passthrough(args: Sequence[str]) -> list[str]:
    """The parent's arguments a child keeps: selection (``-k``, paths), strictness,
    capabilities, faults, dialect overrides; not what the parent sets per child."""
    kept: list[str] = []
    tokens = iter(args)
    for token in tokens:
        name = _option_name(token)
        if name in _DROPPED_FLAGS:
            continue
        if name in _DROPPED_VALUES or name in _PYTEST_REPORT_VALUES:
            if "=" not in token:
                next(tokens, None)  # the value came as the next argument
            continue
        kept.append(token)
    return kept


def baseline_for(baseline: str | None, safe: str) -> str | None:
    """``--baseline DIR`` (an earlier several-models run, or its results.json): the same
    model's results.json there; a missing file is the child's note, not an error."""
    if not baseline:
        return None
    root = Path(baseline)
    if root.suffix == ".json":
        root = root.parent
    return str(root / "models" / safe / "results.json")


def child_args(
    base: Sequence[str], model: str, reports: Path, concurrency: int, baseline: str | None
) -> list[str]:
    """One child's pytest arguments (the key and the base URL travel by environment)."""
    args = [
        *base,
        f"--model={model}",
        f"--reports-dir={reports}",
        f"--concurrency={concurrency}",
        "-p",
        "no:cacheprovider",  # children at once must not race on .pytest_cache
    ]
    if baseline:
        args.append(f"--baseline={baseline}")
    return args


def shares(models: int, concurrency: int) -> tuple[int, int]:
    """(children at once, --concurrency of each): requests in flight stay within the
    user's --concurrency, which is the endpoint's parallel slots."""
    at_once = max(1, min(models, concurrency))
    return at_once, max(1, concurrency // at_once)
