"""Ctrl-C or SIGTERM in the middle of a run still leaves valid, partial reports.

CI systems and container runtimes stop jobs with SIGTERM; people press Ctrl-C. Either way the
vendor needs to see what was decided so far, and results.json must say the run is incomplete.
The suite is stopped while it waits on an endpoint that never answers streamed requests (long
timeouts), i.e. at the worst moment: inside a concurrent batch of requests, after the models
checks (which need no streamed request) have already passed.
"""

from __future__ import annotations

import json
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from hostile_runner import finish, run_suite_measured, start_suite
from hostile_server import HostileServer

from conformance.reference import ReferenceConfig, ReferenceServer

KEY = "sk-interrupt-7c1e9b2a5d3f4e6a"


@pytest.fixture(scope="module")
def silent() -> Iterator[HostileServer]:
    with (
        ReferenceServer(ReferenceConfig(api_key=KEY)) as reference,
        HostileServer(reference.origin) as server,
    ):
        yield server


def _wait_for_chat_request(server: HostileServer, seen: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.records_of("stream_no_response")) <= seen:
        assert time.monotonic() < deadline, "the suite never reached the silent endpoint"
        time.sleep(0.05)


def _selected_count(tmp_path, args: list[str]) -> int:
    """How many checks the same selection collects (``--collect-only`` sends nothing)."""
    listed = run_suite_measured(tmp_path / "collect", *args, "--collect-only")
    return sum("::test_" in line for line in listed.output.splitlines())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_run_leaves_partial_reports(silent, tmp_path, signum) -> None:
    seen = len(silent.records_of("stream_no_response"))
    args = [
        f"--base-url={silent.url('stream_no_response')}",
        f"--api-key={KEY}",
        "--model=chatcompat-ref-1",
        "--request-timeout=60",
        "--total-timeout=120",
        "-k",
        "(models. or stream.) and not connection",
    ]
    started = start_suite(tmp_path, *args)
    try:
        _wait_for_chat_request(silent, seen)
        time.sleep(0.3)  # inside the batch, waiting
        stopped_at = time.monotonic()
        started.proc.send_signal(signum)
        run = finish(started, timeout=40)
    finally:
        if started.proc.returncode is None:
            started.proc.kill()
    assert time.monotonic() - stopped_at < 15, "the run did not stop promptly"
    assert run.returncode == 2, run.output[-2000:]  # pytest's INTERRUPTED
    assert "Traceback" not in run.output and "INTERNALERROR" not in run.output
    assert KEY not in run.output
    results = json.loads((run.reports / "results.json").read_text())
    assert results["complete"] is False and results["exit_status"] == 2
    if signum == signal.SIGTERM:
        assert results["run_error"].startswith("interrupted by SIGTERM: ")
    assert results["counts"]["pass"] >= 2  # the verdicts reached before the signal are kept
    # Checks never run are not judged, never silently dropped: every selected check is there.
    selected = _selected_count(tmp_path, args)
    assert len(results["checks"]) == selected
    unjudged = [c for c, v in results["checks"].items() if v["outcome"] == "not_judged"]
    assert unjudged and f"{len(unjudged)} of {selected} checks not judged" in results["run_error"]
    assert "incomplete" in (run.reports / "badge.svg").read_text()
    assert results["checks"]["models.list_schema"]["outcome"] == "pass"
    assert len(list(ET.parse(run.reports / "junit.xml").getroot().iter("testcase"))) >= 2
    assert "</html>" in (run.reports / "report.html").read_text()
    leftovers = [p.name for p in run.reports.iterdir() if p.suffix == ".partial"]
    assert not leftovers
