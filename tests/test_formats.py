"""Every format tells the same story: one run with every outcome, rendered as the terminal,
report.html, junit.xml, results.json and index.html, compared check by check."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from browser import Elements, dump_dom, matrix_counts, requires_chromium
from suite_runner import run_suite

from conformance.exchanges.expect import OK_EXPECTED, describe_status
from conformance.transport.client import Exchange, RequestSpec

#: fail + not_applicable (no usage chunk), fail (bad total), warn (refusal key omitted).
FAULTS = "no_usage_chunk,usage_total_wrong,omit_refusal"
BROKEN_CHECK = "response.model_present"  # our plugin below breaks it: the error outcome
NEW_FAIL = "usage.total_is_sum[non-streamed]"  # passes in the baseline we write
#: A plugin that crashes one check's call, as a harness bug would.
BREAKER = f'''
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("chatcompat_check")
    if marker and marker.args[0].id == "{BROKEN_CHECK}":
        raise RuntimeError("harness <broken> on purpose")
'''
#: pytest's words in the final line -> our outcome names.
PYTEST_WORDS = {
    "passed": "pass",
    "failed": "fail",
    "warn": "warn",
    "unsupported": "unsupported",
    "not applicable": "not_applicable",
    "info": "info",
    "error": "error",
    "errors": "error",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    (root / "chatcompat_breaker.py").write_text(BREAKER)
    baseline = root / "baseline.json"
    baseline.write_text(json.dumps({"checks": {NEW_FAIL: {"outcome": "pass"}}}))
    return run_suite(
        root / "reports",
        f"--reference-faults={FAULTS}",
        "--without-capabilities=audio_input",
        f"--baseline={baseline}",
        "-p",
        "chatcompat_breaker",
        env={"PYTHONPATH": str(root)},
    )


@pytest.fixture(scope="module")
def results(run):
    return run.results


@pytest.fixture(scope="module")
def not_passing(results):
    return {cid: c for cid, c in results["checks"].items() if c["outcome"] != "pass"}


def test_the_run_has_every_outcome(run, results):
    assert run.returncode == 1, run.output[-3000:]
    present = {o for o, n in results["counts"].items() if n}
    assert present == {"pass", "fail", "warn", "unsupported", "not_applicable", "info", "error"}
    assert results["checks"][BROKEN_CHECK]["outcome"] == "error"


def test_terminal_names_each_non_pass_check_with_its_message(run, not_passing):
    lines = run.output.splitlines()
    for cid, check in not_passing.items():
        if check["outcome"] == "info":
            continue
        label = check["outcome"].replace("_", " ").upper()
        said = [line for line in lines if line.startswith(f"{label:<14} {cid}: ")]
        message = " ".join(check["message"].split()).split(": ", 1)[-1]
        assert len(said) == 1 and message[-100:] in said[0], (cid, said)


def test_terminal_counts_equal_results(run, results):
    last = run.output.strip().splitlines()[-1]
    said = Counter()
    for number, words in re.findall(r"(\d+) ([a-z ]+?)(?=,| in )", last):
        said[PYTEST_WORDS[words]] += int(number)
    assert +said == +Counter(results["counts"]), last


def test_junit_agrees(run, results):
    seen = set()
    for case in ET.parse(run.reports / "junit.xml").iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        check = results["checks"][props["check_id"]]
        seen.add(props["check_id"])
        assert props["outcome"] == check["outcome"]
        assert props.get("message", "") == check["message"]
        children = {child.tag for child in case}
        outcome = check["outcome"]
        assert ("failure" in children) == (outcome in ("fail", "error")), props
        assert ("skipped" in children) == (outcome in ("unsupported", "not_applicable"))
        if outcome == "warn":
            assert check["actual"] in props["evidence"]
    assert seen == set(results["checks"])


def _html_rows(report: Path) -> dict[str, list[str]]:
    blob = re.search(r'data-jsonblob="(.*?)"', report.read_text(), re.S)
    tests = json.loads(html.unescape(blob.group(1)))["tests"]
    rows = {}
    for entries in tests.values():
        for entry in entries:
            cells = entry["resultsTableRow"]
            rows[re.sub(r"<.*?>", "", cells[1])] = [*cells, entry["log"]]
    return rows


def test_report_html_agrees(run, results):
    rows = _html_rows(run.reports / "report.html")
    assert set(rows) == set(results["checks"])
    shown = {"warn": ">Warn<", "info": ">Info<", "unsupported": ">Unsupported<"}
    shown["not_applicable"] = ">Not applicable<"
    for cid, check in results["checks"].items():
        cells = rows[cid]
        assert cells[3] == f"<td>{check['outcome']}</td>", cid
        assert shown.get(check["outcome"], "") in cells[0]
        if check["outcome"] in ("fail", "warn"):
            assert html.escape(check["actual"], quote=False) in cells[-1], cid


def test_results_json_carries_the_evidence(results, not_passing):
    for cid, check in not_passing.items():
        if check["outcome"] in ("fail", "warn"):
            assert check["expected"] and check["actual"], cid
            assert all(x["curl"].startswith("curl ") for x in check["exchanges"]), cid
        else:
            assert check.get("evidence") or check.get("exchanges") or check["message"], cid
    assert "harness <broken> on purpose" in results["checks"][BROKEN_CHECK]["evidence"]
    assert {"dialect", "findings", "headline"} <= results.keys()
    # no usage chunk: the streamed sum has nothing to add up, and says who reports it
    usage = results["checks"]["usage.total_is_sum[streamed]"]
    assert usage["outcome"] == "not_applicable"
    assert "(usage.stream_one_usage_chunk reports it)" in usage["message"]


def test_baseline_diff_reaches_terminal_json_and_page(run, results):
    entries = {e["check"]: e for e in results["diff"]["entries"]}
    assert entries[NEW_FAIL] == {
        "check": NEW_FAIL,
        "kind": "new_fail",
        "before": "pass",
        "after": "fail",
        "message": results["checks"][NEW_FAIL]["message"],
    }
    assert f"NEW FAIL   {NEW_FAIL}  pass -> fail" in run.output
    assert 'data-diff="new_fail"' in (run.reports / "index.html").read_text()


def test_index_html_agrees(run, results, not_passing):
    page = (run.reports / "index.html").read_text()
    counts = Counter((c["area"], c["outcome"]) for c in results["checks"].values())
    counts.update(("", o) for o, n in results["counts"].items() for _ in range(n))
    assert {k: v for k, v in matrix_counts(page).items() if v} == dict(counts)
    rows = Elements(page).with_attr("data-check", "tr")
    assert {r["data-check"]: r["data-outcome"] for r in rows} == {
        cid: c["outcome"] for cid, c in results["checks"].items()
    }
    for cid, check in not_passing.items():
        assert f'id="c-{html.escape(cid)}"' in page
        if check["outcome"] in ("fail", "warn"):
            assert html.escape(check["actual"]) in page, cid


@requires_chromium
def test_index_html_in_headless_chromium(run, results):
    dom = dump_dom(run.reports / "index.html")
    root = Elements(dom).root()
    assert root.get("data-ready") == "1" and "data-js-error" not in root, root
    totals = {o: n for (area, o), n in matrix_counts(dom).items() if area == ""}
    assert {o: n for o, n in totals.items() if n} == {
        o: n for o, n in results["counts"].items() if n
    }


@pytest.mark.parametrize(
    ("status", "error", "actual"),
    [
        (200, "ReadTimeout: no data for 30 s", "HTTP 200, then transport error: ReadTimeout"),
        (None, "ConnectError: refused", "transport error: ConnectError: refused"),
        (500, None, "HTTP 500"),
    ],
)
def test_transport_errors_read_as_such(status, error, actual):
    exchange = Exchange(RequestSpec("x", json={}), "http://h/v1", {}, status=status, error=error)
    assert describe_status(exchange).startswith(actual)
    assert OK_EXPECTED == "a complete HTTP 200 response"


def test_sdk_failures_carry_an_exchange_and_curl(tmp_path):
    """The SDK's own exchange is not recorded: a failed SDK check replays its request."""
    run = run_suite(tmp_path / "reports", "--reference-faults=content_as_list", "-k", "sdk.plain")
    check = run.results["checks"]["sdk.plain_completion"]
    assert check["outcome"] == "fail" and "content a string" in check["expected"]
    assert [x["label"] for x in check["exchanges"]] == ["the SDK's request, replayed"]
    assert check["exchanges"][0]["curl"].startswith("curl -sS -i -X POST")
    assert "Reproduce with:" in run.output
