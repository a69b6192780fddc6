"""Run-to-run diff: kinds of change, order, the CI gate and the diff written into the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_samples import results

from conformance.face import diff


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ("pass", "fail", "new_fail"),
        ("warn", "error", "new_fail"),
        (None, "fail", "new_fail"),  # a new check that fails is news too
        ("pass", "warn", "regressed"),
        ("pass", "unsupported", "regressed"),
        ("unsupported", "not_applicable", "changed"),
        ("pass", "info", "changed"),
        ("fail", "error", "changed"),
        ("fail", "not_applicable", "changed"),  # could not judge: no proof of a fix
        ("warn", "unsupported", "changed"),
        ("pass", "not_judged", "changed"),  # no answer came: no proof of a regression
        ("fail", "not_judged", "changed"),
        ("not_judged", "pass", "changed"),  # nor of a fix
        ("not_judged", "fail", "new_fail"),
        ("fail", "pass", "improved"),
        ("warn", "pass", "improved"),
        (None, "pass", "added"),
        ("pass", None, "removed"),
        ("fail", None, "removed"),
        ("pass", "pass", None),
    ],
)
def test_kind_of_change(before, after, kind):
    assert diff._kind(before, after) == kind


def test_new_failures_listed_first():
    old = results(beta_five="fail")
    new = results(alpha_one="warn", beta_five="pass", beta_four="fail")
    found = diff.compare(old, new, "old.json")
    assert [(e["check"], e["kind"]) for e in found["entries"]] == [
        ("beta.four", "new_fail"),
        ("alpha.one", "regressed"),
        ("beta.five", "improved"),
    ]
    assert found["baseline"]["path"] == "old.json" and found["counts"]["new_fail"] == 1
    assert diff.format_text(found)[1].startswith("NEW FAIL   beta.four  pass -> fail")


@pytest.fixture
def runs(tmp_path: Path):
    """Two stored runs: OLD, and NEW where one check newly fails and one newly warns."""
    paths = []
    for name, data in (("old", results()), ("new", results(beta_four="fail", alpha_one="warn"))):
        (tmp_path / name).mkdir()
        paths.append(tmp_path / name / "results.json")
        paths[-1].write_text(json.dumps(data))
    return paths


@pytest.mark.parametrize(
    ("new", "fail_on", "code"),
    [
        ({"beta_four": "fail"}, "new-fail", 1),
        ({"beta_four": "fail"}, "never", 0),
        ({"alpha_one": "warn"}, "new-fail", 0),
        ({"alpha_one": "warn"}, "regression", 1),
        ({"alpha_two": "pass"}, "regression", 0),
        ({"alpha_two": "pass"}, "any-change", 1),
        ({}, "any-change", 0),
    ],
)
def test_gate_exit_codes(tmp_path, new, fail_on, code):
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old_path.write_text(json.dumps(results()))
    new_path.write_text(json.dumps(results(**new)))
    assert diff.main([str(old_path), str(new_path), "--fail-on", fail_on, "--no-write"]) == code


def test_diff_is_written_into_the_report(runs, capsys):
    old, new = runs
    assert diff.main([str(old), str(new)]) == 1
    assert "NEW FAIL   beta.four" in capsys.readouterr().out
    stored = json.loads(new.read_text())["diff"]
    assert stored["counts"]["new_fail"] == 1 and stored["counts"]["regressed"] == 1
    page = (new.parent / "index.html").read_text()
    assert "Changes since the baseline" in page and 'data-diff="new_fail"' in page


def test_no_write_leaves_files_alone(runs):
    old, new = runs
    before = new.read_text()
    diff.main([str(old), str(new), "--no-write", "--format", "json"])
    assert new.read_text() == before and not (new.parent / "index.html").exists()


def test_markdown_for_ci_summaries(runs, capsys):
    diff.main([*map(str, runs), "--no-write", "--format", "markdown"])
    out = capsys.readouterr().out
    assert "| NEW FAIL | `beta.four` | pass | fail |" in out


@pytest.mark.parametrize("text", ["{oops", "[]", '{"checks": 3}'])
def test_unreadable_input_is_a_usage_error(tmp_path, runs, text, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    assert diff.main([str(bad), str(runs[1])]) == diff.EXIT_USAGE
    assert "conformance.face.diff:" in capsys.readouterr().err
    assert diff.main([str(tmp_path / "missing.json"), str(runs[1])]) == diff.EXIT_USAGE


def test_incomplete_runs_are_noted():
    stopped = {**results(), "complete": False, "run_error": "interrupted by SIGTERM"}
    notes = diff.compare(results(), stopped)["notes"]
    assert notes == [
        "the new run was incomplete (interrupted by SIGTERM): its checks not judged (or absent) "
        "got no verdict"
    ]
