"""Installing chatcompat changes nothing in a pytest run that does not collect its checks.

The pytest11 entry point loads ``conformance/entry.py`` into every pytest run of the
environment; these tests run pytest in subprocesses, in the same environment, and prove that
an unrelated project keeps its own ``--model`` option, ignores hostile ``OPENAI_*`` variables
and gets no file written, while the suite itself still answers to its options, including a
``--model`` value written as a separate argument.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.face import entry, plugin

REPO = Path(__file__).resolve().parents[1]
HOSTILE_ENV = {"OPENAI_BASE_URL": "localhost:8000", "OPENAI_API_KEY": "sk-inert-test\r"}
CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--model", default="none", help="the project's own model option")
"""
TEST = """
def test_model(request):
    assert request.config.getoption("model") == "/models/smollm2"
"""


def pytest_run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _make_project(root: Path) -> Path:
    """An unrelated project: its own --model option, its own test, its own ini file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_one.py").write_text(TEST)
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _make_project(tmp_path / "project")


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.parametrize("model", ["--model=/models/smollm2", "--model /models/smollm2"])
def test_unrelated_project_is_untouched(tmp_path: Path, model: str) -> None:
    """Same exit code and same files as with chatcompat disabled (-p no:chatcompat)."""
    args = ["-q", *model.split(" ")]
    without = _make_project(tmp_path / "without")
    code_without, _ = pytest_run(without, "-p", "no:chatcompat", *args, env=HOSTILE_ENV)
    project = _make_project(tmp_path / "with")
    code, output = pytest_run(project, *args, env=HOSTILE_ENV)
    assert code == code_without == 0, output
    assert "chatcompat" not in output.lower()
    assert _files(project) == _files(without)  # no reports/, nothing else of ours


def test_unrelated_help_lists_no_chatcompat_option(project: Path) -> None:
    code, output = pytest_run(project, "--help", env=HOSTILE_ENV)
    assert code == 0 and "--chatcompat-" not in output and "the project's own model" in output


def test_project_tests_do_not_start_the_suite() -> None:
    """``pytest tests`` in this repository: our plugin stays out (no options, no checks)."""
    code, output = pytest_run(REPO, "tests", "--help", env=HOSTILE_ENV)
    assert code == 0 and "--chatcompat-" not in output
    code, output = pytest_run(REPO, "--help")
    assert code == 0 and "--chatcompat-model" in output  # testpaths = conformance: the suite


def test_suite_yields_a_taken_name_and_keeps_its_alias(project: Path) -> None:
    """Running the suite inside a project that owns --model: ours is --chatcompat-model."""
    reports = project / "reports"
    code, output = pytest_run(
        project,
        "--pyargs",
        "conformance",
        "-q",
        "-k",
        "models.list_schema",
        "--chatcompat-model=chatcompat-ref-1",
        f"--reports-dir={reports}",
    )
    assert code == 0, output[-2000:]
    assert "--model belong to another plugin or conftest; use --chatcompat-model" in output


@pytest.mark.parametrize("value", ["/models/smollm2", "/models/my model"])
def test_separate_model_path_stops_with_one_line(tmp_path: Path, value: str) -> None:
    """An existing directory given as ``--model DIR`` would move pytest's rootdir."""
    model_dir = tmp_path / value.lstrip("/")
    model_dir.mkdir(parents=True)
    code, output = pytest_run(REPO, "--co", "-q", "--model", str(model_dir))
    assert code == 4, output[-2000:]
    lines = [line for line in output.splitlines() if "chatcompat:" in line]
    assert len(lines) == 1 and "write --model=" in lines[0], output[-2000:]


def test_separate_model_name_works_as_typed(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    args = ["--pyargs", "conformance", "-q", "-k", "models.list_schema"]
    _, output = pytest_run(tmp_path, *args, "--model", "my model", f"--reports-dir={reports}")
    assert "write --model=" not in output
    assert '"model": "my model"' in (reports / "results.json").read_text(), output[-2000:]


class _Recorder:
    """Stands in for pytest's parser and option group: records what the plugin adds."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict]] = []

    def getgroup(self, *_args: object) -> _Recorder:
        return self

    def addoption(self, *names: str, **attrs: object) -> None:
        self.options.append((names, attrs))


def test_every_value_option_is_known_to_the_entry_point() -> None:
    """entry.py must recognise the separate values of every option the plugin registers."""
    recorder = _Recorder()
    plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    takes_value = {
        name
        for names, attrs in recorder.options
        for name in names
        if attrs.get("action") not in ("store_true", "store_false")
        and not name.startswith(entry.ALIAS_PREFIX)
    }
    assert takes_value and takes_value <= entry.VALUE_OPTIONS
