"""Every check can fail: each fault breaks its checks; the clean server and variants pass.

The suite runs in subprocesses (two at a time) against one reference server that plays a
fault per URL prefix, so the whole matrix costs one suite run per fault.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_runner import SuiteRun, run_many, run_suite, suite_args

from conformance.reference.faults import FAULTS, VARIANTS

FAILING = {"MUST": "fail", "SHOULD": "warn"}


def _selection(fault: str) -> list[str]:
    """-k expression selecting the checks a fault must break (base IDs: -k has no '=')."""
    bases = sorted({check_id.split("[")[0] for check_id in FAULTS[fault].breaks})
    return ["-k", " or ".join(bases)]


@pytest.fixture(scope="module")
def runs(reference, tmp_path_factory) -> dict[str, SuiteRun]:
    """name -> SuiteRun: the whole suite on the clean server and every variant; for each
    fault, the checks it must break (the rest of the suite is covered by the clean run)."""
    root = tmp_path_factory.mktemp("matrix")
    jobs = {"clean": suite_args(reference.origin)}
    jobs.update({v: suite_args(reference.origin, v) for v in VARIANTS})
    jobs.update({f: [*suite_args(reference.origin, f), *_selection(f)] for f in FAULTS})
    done = run_many([(root / name / "reports", args) for name, args in jobs.items()])
    return dict(zip(jobs, done, strict=True))


def test_clean_server_passes_everything(runs):
    run = runs["clean"]
    assert run.returncode == 0, run.output[-3000:]
    assert run.not_passing() == {}
    assert run.results["counts"]["pass"] >= 170


UNSUPPORTED_BY_VARIANT = {
    "no_vision": {"messages.image_input": "unsupported"},
    "no_audio": {"messages.audio_input": "unsupported"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_allowed_variant_passes(runs, variant):
    run = runs[variant]
    assert run.returncode == 0, run.output[-3000:]
    expected = UNSUPPORTED_BY_VARIANT.get(variant, {})
    assert run.not_passing() == expected, VARIANTS[variant].allowed_because


def test_unsupported_names_capability_and_evidence(runs):
    message = runs["no_vision"].results["checks"]["messages.image_input"]["message"]
    assert "capability 'vision'" in message and "HTTP 400" in message
    assert runs["no_vision"].results["capabilities"]["vision"]["status"] == "unsupported"


def test_declared_capability_rejected_is_a_failure(reference, tmp_path):
    args = suite_args(reference.origin, "no_vision")
    run = run_suite(tmp_path / "reports", *args, "--capabilities=vision", "-k", "messages.")
    assert run.returncode == 1
    assert run.outcomes["messages.image_input"] == "fail"


def test_capability_declared_absent_is_not_requested(reference, tmp_path):
    args = suite_args(reference.origin, "image_500")
    run = run_suite(tmp_path / "reports", *args, "--without-capabilities=vision", "-k", "messages.")
    assert run.returncode == 0, run.output[-2000:]
    assert run.outcomes["messages.image_input"] == "unsupported"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_breaks_its_checks(runs, fault):
    run = runs[fault]
    results = run.results["checks"]
    for check_id in FAULTS[fault].breaks:
        assert check_id in results, f"{check_id} did not run under {fault}"
        entry = results[check_id]
        expected = FAILING[entry["level"]]
        assert entry["outcome"] == expected, (fault, check_id, entry)
    levels = {results[c]["level"] for c in FAULTS[fault].breaks}
    assert run.returncode == (1 if "MUST" in levels else 0), run.output[-2000:]


def test_every_check_has_a_fault(runs):
    """A check that no fault can make fail is not done."""
    covered = {check_id for fault in FAULTS.values() for check_id in fault.breaks}
    checks = runs["clean"].results["checks"]
    verdict_checks = {cid for cid, c in checks.items() if c["level"] != "INFO"}
    assert sorted(verdict_checks - covered) == []


def test_info_checks_observe_the_variants(runs):
    """INFO checks carry no verdict, but their observation must change with the framing."""
    clean = runs["clean"].results["checks"]["stream.framing"]["message"]
    crlf = runs["crlf"].results["checks"]["stream.framing"]["message"]
    no_space = runs["no_space_after_data"].results["checks"]["stream.framing"]["message"]
    comments = runs["sse_comments"].results["checks"]["stream.framing"]["message"]
    assert "plain framing" in clean
    assert "CRLF" in crlf
    assert "without a space" in no_space
    assert "comment" in comments


def test_info_checks_observe_the_endpoint(runs):
    """Observations follow what the endpoint does: unknown parameters, token ids."""

    def message(run: str, check_id: str) -> str:
        return runs[run].results["checks"][check_id]["message"]

    assert "rejected" in message("clean", "params.unknown_parameter")
    assert "accepted" in message("unknown_params_accepted", "params.unknown_parameter")
    assert runs["clean"].outcomes["logit_bias.bans_token"] == "pass"
    assert runs["no_token_ids"].outcomes["logit_bias.bans_token"] == "info"
    assert "does not reveal token ids" in message("no_token_ids", "logit_bias.bans_token")


def test_failure_evidence_is_complete(runs):
    """A failing check shows Requirement / Expected / Actual, the exchange and a curl line."""
    output = runs["missing_done"].output
    for needle in (
        "Requirement:",
        "Expected:",
        "Actual:",
        "--- exchange:",
        "Reproduce with:",
        "curl -sS -i -N -X POST",
    ):
        assert needle in output


def test_reports_written_for_failing_run(runs):
    reports = Path(runs["missing_done"].reports)
    html = (reports / "report.html").read_text()
    junit = (reports / "junit.xml").read_text()
    assert "stream.terminates_with_done" in html and "Reproduce with:" in html
    assert 'name="check_id" value="stream.terminates_with_done"' in junit
    assert runs["missing_done"].results["counts"]["fail"] >= 1
