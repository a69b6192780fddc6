"""The pytest11 entry point: chatcompat stays inert unless the run collects its suite.

Installing a package with a pytest11 entry point loads that module into *every* pytest run
of the environment. So this module is all that loads there, and it does nothing but decide,
once the command line and the initial conftests are known, whether the run targets the suite:

* its paths (or, with none, the ini file's ``testpaths`` when run from the rootdir, else the
  current directory) lead into this package, or ``--pyargs`` names it (``conformance``,
  ``conformance.checks.usage``);
* only then is the real plugin (``conformance.face.plugin``) registered. Its options are added at
  that moment, *after* the project's own conftest options, so a conftest that owns ``--model``
  keeps it (ours then answers to ``--chatcompat-model``, as every option also does), and no
  setting or environment variable (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``) is read, and no
  file is written, in any other run.

Why decide here (``pytest_load_initial_conftests``) and not in ``pytest_addoption``: options
must exist before pytest's final parse of the command line, but which paths a run collects is
only known after the first, partial parse; this hook sits between the two. A value written as
a separate argument (``--model /models/smollm2``) is, at that first parse, a path to pytest:
it may pick its rootdir and ini file from it. When that changed the configuration, the run
stops at once with one line asking for ``--model=/models/smollm2``; otherwise it works as
typed.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the conformance package, not face/
PACKAGE = PACKAGE_DIR.name
PLUGIN = f"{PACKAGE}.face.plugin"
ALIAS_PREFIX = "--chatcompat-"
#: Options of the suite that take a value (tests/test_inert_plugin.py keeps this complete):
#: their separate values must not be mistaken for paths when deciding the target.
VALUE_OPTIONS = frozenset(
    {
        "--api-key",
        "--model",
        "--models",
        "--models-match",
        "--reports-dir",
        "--request-timeout",
        "--total-timeout",
        "--max-body-bytes",
        "--max-events",
        "--concurrency",
        "--capabilities",
        "--without-capabilities",
        "--reference-faults",
        "--baseline",
        "--token-limit-field",
        "--reasoning-effort",
        "--extra-body",
    }
)


def _known_options(config: pytest.Config) -> set[str]:
    """Option strings pytest knows right now (its own, plugins', loaded conftests')."""
    return set(getattr(config, "_opt2dest", {}))


def _ours(option: str) -> bool:
    return option in VALUE_OPTIONS or option.startswith(ALIAS_PREFIX)


def separate_values(config: pytest.Config, args: Sequence[str]) -> list[tuple[str, str]]:
    """``(option, value)`` for each unknown ``--option value`` pair of the command line.

    pytest does not know our options yet, so it read these values as positional paths.
    """
    known = _known_options(config)
    pairs = []
    for option, value in itertools.pairwise(args):
        if option == "--":
            break
        unknown = option.startswith("--") and "=" not in option and option not in known
        if unknown and _ours(option) and not value.startswith("-"):
            pairs.append((option, value))
    return pairs


def _paths(config: pytest.Config, values: Iterable[str]) -> list[str]:
    """The positional arguments that really are paths (or module names with --pyargs)."""
    positional = list(getattr(config.known_args_namespace, "file_or_dir", None) or [])
    for value in values:
        if value in positional:
            positional.remove(value)
    return positional


def _is_ours(target: str, pyargs: bool, base: Path) -> bool:
    target = target.split("::", 1)[0]
    if pyargs and (target == PACKAGE or target.startswith(PACKAGE + ".")):
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin and PACKAGE_DIR in (Path(origin).resolve(), *Path(origin).resolve().parents):
            return True
    try:
        path = (base / target).resolve()
    except (OSError, ValueError):
        return False
    return path == PACKAGE_DIR or PACKAGE_DIR in path.parents


def targets_suite(config: pytest.Config, args: Sequence[str]) -> bool:
    """True when this run collects chatcompat's checks."""
    pyargs = bool(getattr(config.known_args_namespace, "pyargs", False))
    cwd = Path(config.invocation_params.dir)
    paths = _paths(config, (v for _, v in separate_values(config, args)))
    if paths:
        return any(_is_ours(p, pyargs, cwd) for p in paths)
    if cwd == Path(config.rootpath):
        testpaths = config.getini("testpaths") or []
        if testpaths:
            return any(_is_ours(p, pyargs, cwd) for p in testpaths)
    return _is_ours(".", False, cwd)


def _setup_without(config: pytest.Config, values: Sequence[str]) -> tuple[Path, Path | None]:
    """(rootdir, ini file) pytest would have chosen had ``values`` not been read as paths."""
    from _pytest.config.findpaths import determine_setup  # no public API for this

    ns = config.known_args_namespace
    kwargs = {
        "inifile": getattr(ns, "inifilename", None),
        "args": _paths(config, values),
        "rootdir_cmd_arg": getattr(ns, "rootdir", None) or None,
        "invocation_dir": Path(config.invocation_params.dir),
    }
    if "override_ini" in inspect.signature(determine_setup).parameters:
        kwargs["override_ini"] = getattr(ns, "override_ini", None)
    rootpath, inipath, *_ = determine_setup(**kwargs)
    return Path(rootpath), inipath


def refuse_misread_values(config: pytest.Config, args: Sequence[str]) -> None:
    """Stop with one line if a separate option value changed pytest's rootdir or ini file."""
    pairs = separate_values(config, args)
    if not pairs:
        return
    try:
        wanted = _setup_without(config, [v for _, v in pairs])
    except Exception:  # pytest internals moved: judge by the values alone
        wanted = None
    if wanted is not None and wanted == (Path(config.rootpath), config.inipath):
        return
    if wanted is None and not any(Path(v).is_absolute() for _, v in pairs):
        return
    option, value = pairs[0]
    raise pytest.UsageError(
        f"chatcompat: write {option}={shlex.quote(value)} (with '='): given as a separate "
        "argument, pytest reads it as a test path and picks its configuration from there"
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
):
    result = yield  # the project's initial conftests load (and add their options) here
    # An option still unknown now is nobody else's: a run that uses one of ours is ours.
    refuse_misread_values(early_config, args)
    manager = early_config.pluginmanager
    if not manager.has_plugin(PLUGIN) and targets_suite(early_config, args):
        manager.import_plugin(PLUGIN)
    return result
