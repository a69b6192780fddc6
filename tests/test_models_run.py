"""Several models, one run (``--models`` / ``--all-models``): one child run per model against
the embedded reference server (a 2024-style model beside a reasoning one), combined reports,
worst-of exit code, per-model baseline diff, interruption, bad input."""

from __future__ import annotations

import json
import os
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.face import models_plan, models_report, runner
from conformance.face.models_report import ModelRun
from conformance.reference import DEFAULT_MODEL, REASONING_MODEL
from tests.suite_runner import API_KEY, SuiteRun, run_suite

BOTH = f"--models={DEFAULT_MODEL},{REASONING_MODEL}"
FEW_CHECKS = "-k=models. or reasoning. or usage.present"  # the dialects differ all the same


@pytest.fixture(scope="module")
def models_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    reports = tmp_path_factory.mktemp("several") / "reports"
    return run_suite(reports, BOTH, FEW_CHECKS, f"--api-key={API_KEY}")


@pytest.fixture(scope="module")
def all_run(tmp_path_factory: pytest.TempPathFactory, models_run: SuiteRun) -> SuiteRun:
    reports = tmp_path_factory.mktemp("all") / "reports"
    return run_suite(reports, "--all-models", FEW_CHECKS, f"--baseline={models_run.reports}")


def _entries(run: SuiteRun) -> dict[str, dict]:
    return {e["model"]: e for e in run.results["models"]}


@pytest.mark.parametrize("run_name", ["models_run", "all_run"])
def test_both_models_judged_into_one_report(run_name: str, request: pytest.FixtureRequest):
    run: SuiteRun = request.getfixturevalue(run_name)
    assert run.returncode == 0, run.output
    entries = _entries(run)
    assert set(entries) == {DEFAULT_MODEL, REASONING_MODEL}
    assert all(e["complete"] and e["exit_status"] == 0 for e in entries.values())
    page = (run.reports / "index.html").read_text()
    assert all(f"{e['page']}" in page and e["badge"] in page for e in entries.values())


def test_each_model_has_its_own_reports_and_dialect(models_run: SuiteRun):
    fields = set()
    for entry in _entries(models_run).values():
        own = json.loads((models_run.reports / entry["results"]).read_text())
        assert own["endpoint"]["model"] == entry["model"]
        assert (models_run.reports / entry["badge"]).read_text().startswith("<svg")
        fields.add(own["dialect"]["token_limit_field"])
    assert fields == {"max_tokens", "max_completion_tokens"}


def test_junit_names_each_case_with_its_model(models_run: SuiteRun):
    cases = list(ET.parse(models_run.reports / "junit.xml").getroot().iter("testcase"))
    models = {c.get("name", "").rsplit("[", 1)[-1].rstrip("]") for c in cases}
    assert models == {DEFAULT_MODEL, REASONING_MODEL}


def test_key_stays_out_of_every_file(models_run: SuiteRun):
    written = [p for p in models_run.reports.rglob("*") if p.is_file()]
    assert written and not [p for p in written if API_KEY in p.read_text(errors="replace")]


def test_children_say_where_the_key_came_from(reference, tmp_path: Path):
    """The key reaches each child through its environment, yet it came from --api-key: no
    child may claim it was sent from $OPENAI_API_KEY (the notice a remote endpoint gets)."""
    reports = tmp_path / "reports"
    run = run_suite(
        reports,
        f"--base-url={reference.origin}/v1",
        f"--api-key={API_KEY}",
        BOTH,
        "-k=usage.present",
    )
    outputs = list(reports.rglob("output.txt"))
    assert run.returncode == 0 and len(outputs) == 2, run.output
    assert not [p for p in outputs if "$OPENAI_API_KEY" in p.read_text()]


def test_baseline_is_diffed_per_model(all_run: SuiteRun):
    for entry in _entries(all_run).values():
        own = json.loads((all_run.reports / entry["results"]).read_text())
        assert own["diff"]["baseline"]["model"] == entry["model"]
        assert entry["diff"] is not None
    assert all_run.output.count("since the baseline: no change") == 2, all_run.output


def test_worst_exit_code_wins(tmp_path: Path):
    runs = [ModelRun("a", "a", 0), ModelRun("b/c:1", models_plan.safe_name("b/c:1"), 1)]
    for run, outcome in zip(runs, ("pass", "fail"), strict=True):
        (tmp_path / run.dir).mkdir(parents=True)
        checks = {"x.y": {"outcome": outcome, "level": "MUST", "area": "x"}}
        (tmp_path / run.dir / "results.json").write_text(json.dumps({"checks": checks}))
    data = models_report.write(runs, {}, tmp_path, str)
    assert data["exit_status"] == 1 and data["complete"]
    runs.append(ModelRun("d", "d", None, note="not run: interrupted by SIGTERM"))
    data = models_report.write(runs, {}, tmp_path, str)
    assert data["exit_status"] == 2 and not data["complete"]
    assert "interrupted by SIGTERM" in (tmp_path / "junit.xml").read_text()  # its error case


def test_nothing_run_is_incomplete(tmp_path: Path):
    data = models_report.write([], {"run_error": "interrupted by SIGINT"}, tmp_path, str)
    assert data["exit_status"] == 2 and data["complete"] is False and data["run_error"]
    assert "0 models" in (tmp_path / "index.html").read_text()


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-5", "gpt-5"), ("org/m:q4", "org_m_q4-"), ("..", "_.-"), ("a/b", "a_b-")],
)
def test_safe_names_stay_inside_and_distinct(model: str, expected: str):
    name = models_plan.safe_name(model)
    assert name.startswith(expected) and "/" not in name and not name.startswith(".")
    assert models_plan.safe_name("a_b") != models_plan.safe_name("a/b")


@pytest.mark.parametrize(
    "given",
    [
        ["--api-key", API_KEY, "--models=a,b", "-k", "usage.", "--reports-dir=r", "--strict"],
        ["--chatcompat-api-key=" + API_KEY, "--all-models", "-k", "usage.", "--strict"],
        ["--models-match", "a*", "--chatcompat-models", "a", "-k", "usage.", "--strict"],
        ["--junitxml=j.xml", "--concurrency", "8", "--baseline=b", "-k", "usage.", "--strict"],
    ],
)
def test_children_never_get_the_key_or_the_parents_own_options(given: list[str]):
    kept = models_plan.passthrough(given)
    assert kept == ["-k", "usage.", "--strict"]
    assert API_KEY not in " ".join(models_plan.child_args(kept, "a", Path("r/a"), 2, None))


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--models=a,,b"], 4, "--models has an empty item"),
        (["--models=a", "--model=b"], 4, "exclude each other"),
        (["--models=a", "--all-models"], 4, "exclude each other"),
        (["--models-match=a*"], 4, "give one of them"),
        (["--all-models", "--models-match=zz*"], 2, "no model matches"),
        (["--all-models", "--reference-faults=models_bare_list"], 2, "listed no model"),
        (["--all-models", "--base-url=http://127.0.0.1:9/v1"], 2, "failed: ConnectError"),
        ([f"--models={DEFAULT_MODEL},nope/x:1"], 2, "'nope/x:1' not listed by GET /models"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], code: int, fragment: str):
    run = run_suite(tmp_path / "reports", *args)
    assert run.returncode == code and fragment in run.output, run.output
    assert "Traceback" not in run.output and not (tmp_path / "reports" / "models").exists()


def test_sigterm_ends_incomplete_without_traceback(tmp_path: Path):
    reports = tmp_path / "reports"
    started = runner.start(reports, [BOTH], cwd=tmp_path)
    outputs = [reports / "models" / m / "output.txt" for m in (DEFAULT_MODEL, REASONING_MODEL)]
    deadline = time.monotonic() + 60  # a bound on waiting, not a timing assertion
    while not all(p.is_file() and p.stat().st_size for p in outputs):
        assert time.monotonic() < deadline and started.proc.poll() is None
        time.sleep(0.05)
    os.kill(started.proc.pid, signal.SIGTERM)
    run = runner.finish(started, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.output, run.output
    results = run.results
    assert results["complete"] is False and "interrupted by SIGTERM" in results["run_error"]
