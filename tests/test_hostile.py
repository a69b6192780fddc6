"""The suite against hostile endpoints: it never hangs, never crashes, never leaks the key.

Every behaviour of tests/hostile_server.py gets one suite run (all runs start together in a
module fixture: most of their time is spent waiting on the small timeouts below). For each we
assert: the affected checks fail with a specific message (or the behaviour works, for gzip
and close-delimited bodies; or the preflight stops the run with one line and exit code 2 when
the behaviour costs the preflight's requests a timeout or a cap: the model list, or the
dialect probe, the run's first chat request; or, when requests get no answer at all (a
timeout, a broken connection, the breaker), the checks are not judged and the run is
incomplete: exit code 2, ``complete: false``, a ``run_error`` with advice, no rate); no
traceback; the reports are written; memory stays bounded; and, across the whole catalogue,
the API key appears in no file and no output.
The time each run takes is measured against the timeouts in tests/test_hostile_timing.py.

Runs select the areas that the shared exchanges feed (CORE), to keep the module under two
minutes on two cores; the key-echoing behaviour and one hanging behaviour run the whole suite.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hostile_runner import MeasuredRun, run_many
from hostile_server import HostileServer, self_signed_context

from conformance.reference import ReferenceConfig, ReferenceServer

KEY = "sk-hostile-" + secrets.token_hex(16)  # a fresh secret: any trace of it is a leak
MODEL = "chatcompat-ref-1"
TIMEOUTS = ["--request-timeout=2", "--total-timeout=5"]
TOTAL_TIMEOUT = 5.0
CORE = ("-k", "response. or stream. or models.")
SDK = ("-k", "sdk.")
SDK_CHECKS = ("sdk.plain_completion", "sdk.stream")
# The official SDK reads through its own httpx client: bounded only if test_sdk.py builds it
# with Transport.sdk_http_client() (a 1 GiB body or a drip otherwise hangs or bloats the run).
SDK_BOUNDED = (
    "sdk_http_client"
    in Path(__file__).parents[1].joinpath("conformance", "checks", "sdk.py").read_text()
)
MAX_RSS_MB = 400  # a suite process stays far below this whatever the endpoint sends


@dataclass(frozen=True)
class Case:
    """One run: behaviour, where it applies, what the suite must say about it."""

    behaviour: str
    expect: str  # "fail" | "incomplete" (not judged) | "pass" | "preflight"
    message: str = ""  # must appear in a failing check's message (or the one preflight line)
    failing: tuple[str, ...] = ("response.object", "stream.content_type")
    everywhere: bool = False  # GET /models too: the preflight meets it
    args: tuple[str, ...] = ()
    select: tuple[str, ...] = CORE  # () = the whole suite
    server: str = "plain"  # plain | tls
    also: tuple[tuple[str, str], ...] = ()  # more (check, message) pairs that must fail so
    finding: str = ""  # must appear in one of the run's findings (one cause, one finding)
    sdk_only: bool = False  # only the official SDK's requests meet the behaviour
    verdicts: tuple[str, ...] = ()  # outcomes the failing checks may have (default: by expect)

    @property
    def tag(self) -> str:
        """The server-side tag of this case's connections (see HostileServer.url)."""
        return re.sub(r"[^A-Za-z0-9_.-]", ".", self.id)

    @property
    def id(self) -> str:
        sdk = "sdk:" if self.select == SDK else ""
        return ("all:" if self.everywhere else "") + sdk + self.behaviour + "".join(self.args)


READ_TIMEOUT = "no data for 2 s (read timeout, --request-timeout)"
TOTAL = "no complete response within the total timeout of 5 s (--total-timeout)"
BODY_CAP = "exceeded the cap of 8388608 bytes"
SILENT = "stopped answering during the preflight: the first POST /chat/completions got no "

CASES = [
    # The dialect probe (the run's first chat request) meets these: one timeout or cap, then
    # the preflight's one line and exit code 2; nothing else is sent.
    Case("no_response", "preflight", SILENT + "complete answer: ReadTimeout: " + READ_TIMEOUT),
    Case("headers_then_silence", "preflight", READ_TIMEOUT),
    Case("silence_mid_stream", "preflight", READ_TIMEOUT),
    Case("endless_stream", "preflight", BODY_CAP),
    Case("big_event", "preflight", BODY_CAP),
    Case("gigabyte_body", "preflight", BODY_CAP),
    Case("drip", "preflight", SILENT + "complete answer: " + TOTAL),
    Case("trickle", "preflight", TOTAL),
    Case("rate_limit_always", "preflight", "rate limited: HTTP 429 (Retry-After: '1') after 2"),
    # Streams only: the first streamed request's timeout trips the breaker, the rest of the
    # run is not sent (not judged: the run is incomplete), and one finding names the cause.
    Case(
        "stream_no_response",
        "incomplete",
        READ_TIMEOUT,
        ("stream.content_type",),
        select=(),
        finding="the endpoint stopped answering",
    ),
    Case("invalid_utf8", "fail", "", ("response.object", "stream.events_are_json")),
    Case("non_json_data", "fail", "token number 0 (plain text)", ("stream.events_are_json",)),
    Case(
        "html_200",
        "fail",
        "<h1>Bad Gateway</h1>",
        ("stream.content_type",),
        also=(("response.content_type_json", "not JSON"),),
    ),
    Case("reset_mid_stream", "incomplete", "ReadError: [Errno 104] Connection reset by peer"),
    Case(
        "abort_on_overlap",
        "incomplete",
        "",
        ("stream.terminates_with_done",),
        finding="streams aborted when requests overlap",
    ),
    Case("close_delimited", "pass"),
    Case("redirect", "fail", "redirected (HTTP 307) to 'http://127.0.0.1:"),
    Case("gzip", "pass"),
    Case("echo", "fail", "", ("response.object", "stream.chunk_object"), select=()),
    Case("rate_limit_once", "pass"),
    Case("rate_limit_long", "incomplete", "not retried: the suite waits at most 10 s"),
    Case("server_error", "fail", "HTTP 500"),
    Case("not_http", "incomplete", "RemoteProtocolError"),
    Case("clean", "pass"),
    Case("clean", "preflight", "CERTIFICATE_VERIFY_FAILED", server="tls"),
    Case("clean", "pass", args=("--insecure",), server="tls"),
    # Behaviours that break GET /models as well: the preflight's one line, exit code 2.
    Case("no_response", "preflight", "cannot reach", everywhere=True),
    Case("drip", "preflight", "total timeout of 5 s", everywhere=True),
    Case("redirect", "preflight", "not followed", everywhere=True),
    Case("rate_limit_always", "preflight", "HTTP 429", everywhere=True),
    Case("server_error", "preflight", "answers every request with a server error", everywhere=True),
    Case("html_200", "preflight", "listed no model (HTTP 200)", everywhere=True),
    # The official SDK's own client (only its requests meet the behaviour), under the
    # behaviours that bloat or hang a plain client: bounded, and counted by the breaker.
    # A cap hit is an answer (too large): a fail; the breaker it trips leaves the rest unsent.
    Case(
        "gigabyte_body",
        "incomplete",
        BODY_CAP,
        SDK_CHECKS,
        select=SDK,
        sdk_only=True,
        verdicts=("fail",),
    ),
    Case(
        "endless_stream",
        "incomplete",
        "",
        SDK_CHECKS,
        select=SDK,
        sdk_only=True,
        verdicts=("fail", "not_judged"),
    ),
    Case("drip", "incomplete", "APITimeoutError", SDK_CHECKS, select=SDK, sdk_only=True),
]
CASE_IDS = [f"{c.id}@{c.server}" for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


@dataclass
class Catalogue:
    plain: HostileServer
    tls: HostileServer
    elsewhere: HostileServer  # the other origin the redirect points at
    runs: dict[str, MeasuredRun] = field(default_factory=dict)
    wall_s: float = 0.0


def _args(case: Case, catalogue: Catalogue) -> list[str]:
    server = catalogue.tls if case.server == "tls" else catalogue.plain
    if case.behaviour == "clean":
        url = server.url()
    else:
        url = server.url(case.behaviour, case.everywhere, case.tag, sdk=case.sdk_only)
    model = [] if case.everywhere else [f"--model={MODEL}"]  # no model: /models must answer
    scope = [] if case.expect == "preflight" else list(case.select)
    return [f"--base-url={url}", f"--api-key={KEY}", *model, *TIMEOUTS, *scope, *case.args]


@pytest.fixture(scope="module")
def catalogue(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Catalogue]:
    """All the runs the selected tests need, started together; the servers they talked to."""
    wanted = _wanted_cases(request)
    root = tmp_path_factory.mktemp("hostile")
    with (
        ReferenceServer(ReferenceConfig(api_key=KEY)) as reference,
        HostileServer(reference.origin) as elsewhere,
        HostileServer(reference.origin, redirect_to=elsewhere.origin) as plain,
        HostileServer(reference.origin, tls=self_signed_context(root)) as tls,
    ):
        found = Catalogue(plain, tls, elsewhere)
        jobs = {
            cid: (root / cid.replace(":", "_").replace("@", "_"), _args(case, found))
            for cid, case in zip(CASE_IDS, CASES, strict=True)
            if cid in wanted and (SDK_BOUNDED or case.select != SDK)
        }
        started = time.monotonic()
        found.runs = run_many(jobs)
        found.wall_s = time.monotonic() - started
        yield found
        _print_table(request, found)


def _wanted_cases(request: pytest.FixtureRequest) -> set[str]:
    """The runs the selected tests of this module need (all of them for the key scan)."""
    wanted = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "case_id" in callspec.params:
            wanted.add(callspec.params["case_id"])
        elif item.name == "test_no_artifact_contains_the_key":
            return set(CASE_IDS)
        elif item.name == "test_gigabyte_body_memory_stays_bounded":
            wanted |= {"gigabyte_body@plain", "clean@plain"}
        elif item.name == "test_transport_cause_leaves_capabilities_alone":
            wanted.add("abort_on_overlap@plain")
        elif item.name.startswith(("test_redirect", "test_rate_limit", "test_key_reached")):
            wanted |= {"redirect@plain", "rate_limit_once@plain", "echo@plain"}
    return wanted


def _print_table(request: pytest.FixtureRequest, catalogue: Catalogue) -> None:
    """Behaviour, exit code, detection time, memory (with -v): what the closing note quotes."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or request.config.get_verbosity() < 1:
        return
    lines = [f"hostile catalogue: {catalogue.wall_s:.1f} s wall for all runs"]
    for cid, case in zip(CASE_IDS, CASES, strict=True):
        run = catalogue.runs.get(cid)
        if run is None:
            continue
        server = catalogue.tls if case.server == "tls" else catalogue.plain
        detect = _detection_s(server, case)
        lines.append(
            f"  {cid:<34} exit {run.returncode}  run {run.wall_s:5.1f} s  "
            f"detected after {'-' if detect is None else f'{detect:.2f}'} s  "
            f"peak rss {run.peak_rss_mb:4.0f} MB"
        )
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def _detection_s(server: HostileServer, case: Case) -> float | None:
    """Longest time from a request meeting the behaviour to the client giving up on it."""
    times = [
        r.detected_after
        for r in server.records_of(case.behaviour, case.tag)
        if r.detected_after is not None and (case.everywhere or r.method == "POST")
    ]
    return max(times, default=None)


def _failing_messages(
    run: MeasuredRun, check_ids: tuple[str, ...], outcomes: tuple[str, ...] = ("fail", "error")
) -> dict[str, str]:
    results = run.results["checks"]
    found = {}
    for cid in check_ids:
        matches = {k: v for k, v in results.items() if k == cid or k.startswith(cid + "[")}
        assert matches, f"{cid} did not run"
        for k, v in matches.items():
            assert v["outcome"] in outcomes, f"{k}: {v['outcome']} {v['message']}"
            found[k] = v["message"]
    return found


def _assert_incomplete(run: MeasuredRun) -> tuple[str, ...]:
    """No answer, no verdict: exit 2, complete false, a reason with advice, no rate anywhere."""
    results = run.results
    assert run.returncode == 2, run.output[-3000:]
    assert results["complete"] is False and results["run_error"], results["run_error"]
    assert "not judged" in results["run_error"] and "--" in results["run_error"]
    assert results["counts"]["not_judged"] > 0
    headline = results["headline"]  # no rate in results.json either
    assert headline["MUST"]["rate"] is None and headline["incomplete"]["total"] > 0
    badge = (run.reports / "badge.svg").read_text()
    assert "incomplete" in badge and "% MUST" not in badge
    page = (run.reports / "index.html").read_text()
    shown = page[page.index('id="headline"') :][:2000]
    assert "checks judged; no pass rate" in shown and "MUST pass rate" not in shown
    for case in ET.parse(run.reports / "junit.xml").iter("testcase"):  # a skip, never a failure
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if props.get("outcome") == "not_judged":
            assert {child.tag for child in case} & {"skipped", "failure"} == {"skipped"}
            assert props["message"] == results["checks"][props["check_id"]]["message"]
    assert ">Not judged<" in html.unescape((run.reports / "report.html").read_text())
    assert "INCOMPLETE" in run.output
    return ("not_judged",)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_behaviour_is_reported(catalogue: Catalogue, case_id: str) -> None:
    case = CASES[CASE_IDS.index(case_id)]
    if case.select == SDK and not SDK_BOUNDED:
        pytest.skip("conformance/checks/sdk.py does not use Transport.sdk_http_client() yet")
    run = catalogue.runs[case_id]
    output = run.output
    assert "Traceback" not in output, output[-3000:]
    assert run.peak_rss_mb < MAX_RSS_MB
    reports = run.reports
    assert {"report.html", "junit.xml", "results.json"} <= {p.name for p in reports.iterdir()}
    ET.parse(reports / "junit.xml")  # well-formed
    if case.expect == "preflight":
        assert run.returncode == 2, output[-3000:]
        lines = [line for line in output.splitlines() if "chatcompat: " in line]
        assert len(lines) == 1 and case.message in lines[0], output[-3000:]
        assert not run.results["checks"]  # stopped before any verdict: no 100 identical failures
        assert run.results["complete"] is False and case.message in run.results["run_error"]
        return
    if case.expect == "pass":
        assert run.returncode == 0, run.output[-3000:]
        assert all(o in ("pass", "info") for o in run.outcomes.values()), run.outcomes
        return
    if case.expect == "incomplete":
        outcomes = _assert_incomplete(run)
    else:
        assert run.returncode == 1, output[-3000:]
        assert run.results["complete"] is True
        outcomes = ("fail", "error")
    messages = _failing_messages(run, case.failing, case.verdicts or outcomes)
    assert any(case.message in m for m in messages.values()), messages
    for check_id, fragment in case.also:
        more = _failing_messages(run, (check_id,))
        assert any(fragment in m for m in more.values()), more
    if case.finding:
        assert any(case.finding in f for f in run.results["findings"]), run.results["findings"]
    server = catalogue.tls if case.server == "tls" else catalogue.plain
    detected = _detection_s(server, case)
    assert detected is not None and detected < TOTAL_TIMEOUT + 5, detected


def test_transport_cause_leaves_capabilities_alone(catalogue: Catalogue) -> None:
    """Streams aborted on overlap: a run finding, and no capability called unsupported."""
    run = catalogue.runs.get("abort_on_overlap@plain")
    if run is None:
        pytest.skip("the abort_on_overlap run was not selected")
    verdicts = {name: v["status"] for name, v in run.results["capabilities"].items()}
    assert not {n: v for n, v in verdicts.items() if v in ("unsupported", "broken")}, verdicts


def test_redirect_did_not_carry_the_key(catalogue: Catalogue) -> None:
    """Not followed at all (raw transport and SDK): the other origin saw nothing."""
    if "redirect@plain" not in catalogue.runs:
        pytest.skip("the redirect run was not selected")
    carried = [r for r in catalogue.elsewhere.records if r.authorization]
    assert not carried


def test_rate_limit_retries_are_reported(catalogue: Catalogue) -> None:
    run = catalogue.runs.get("rate_limit_once@plain")
    if run is None:
        pytest.skip("the rate_limit_once run was not selected")
    assert run.results["spent"]["retried_429"] > 0
    assert "retried after HTTP 429" in run.output


def test_gigabyte_body_memory_stays_bounded(catalogue: Catalogue) -> None:
    """1 GiB offered; the suite reads 8 MiB of it and its memory stays near a clean run's."""
    big, clean = catalogue.runs.get("gigabyte_body@plain"), catalogue.runs.get("clean@plain")
    if big is None or clean is None:
        pytest.skip("the gigabyte_body and clean runs were not both selected")
    assert big.peak_rss_mb < clean.peak_rss_mb + 150, (big.peak_rss_mb, clean.peak_rss_mb)
    sent = sum(r.bytes_sent for r in catalogue.plain.records_of("gigabyte_body"))
    assert sent < 1 << 30  # the client stopped reading long before the end


def _fragments(secret: str, size: int = 10) -> set[str]:
    """Every ``size``-character piece of the secret's random part (a cut key still leaks)."""
    tail = secret.removeprefix("sk-hostile-")
    return {tail[i : i + size] for i in range(len(tail) - size + 1)}


def test_no_artifact_contains_the_key(catalogue: Catalogue) -> None:
    """Every file every run wrote, and every run's output: not the key, not a piece of it."""
    fragments = _fragments(KEY)
    leaks = []
    for cid, run in catalogue.runs.items():
        texts = {"(terminal output)": run.output}
        texts.update({str(p): p.read_bytes().decode("latin-1") for p in run.written_files()})
        for where, text in texts.items():
            if KEY in text or any(f in text for f in fragments):
                leaks.append(f"{cid}: {where}")
    assert not leaks
    echo = catalogue.runs["echo@plain"]
    assert "[REDACTED]" in json.dumps(echo.results) or "[REDACTED]" in echo.output


def test_key_reached_the_echoing_server(catalogue: Catalogue) -> None:
    """The scan above means something only if the key was really echoed back."""
    if "echo@plain" not in catalogue.runs:
        pytest.skip("the echo run was not selected")
    sent = [r for r in catalogue.plain.records_of("echo") if r.authorization == f"Bearer {KEY}"]
    assert sent and all(r.bytes_sent for r in sent)


def test_catalogue_covers_every_behaviour() -> None:
    from hostile_server import BEHAVIOURS

    covered = {c.behaviour for c in CASES} | {"mixed"}  # mixed: tests/test_hostile_loadtest.py
    assert covered - {"clean"} == set(BEHAVIOURS)
