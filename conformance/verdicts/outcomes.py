"""Turn pytest results into chatcompat verdicts: pass, fail, warn, unsupported, error, info,
not_judged.

* MUST broken -> fail (a pytest failure, exit code 1).
* SHOULD broken -> warn: reported with its evidence, the test itself passes, unless pytest
  runs with ``--strict`` (which we honour as "warnings fail").
* INFO -> info: an observation, never a failure.
* ``pytest.skip("unsupported: ...")`` -> unsupported; a fixture or harness crash -> error.
* ``not_applicable(reason)`` -> not_applicable: the check could not judge (its premise was not
  met); counted apart, never as a pass. Any other skip is reported as "skipped".
* A failure whose Actual is a request that got no answer to judge (not sent: the breaker had
  tripped; timed out; broken in transport; still rate-limited) -> not_judged: no verdict on
  the endpoint, out of every pass rate, reported as a pytest skip. One such check makes the
  run incomplete (``complete: false``, exit code 2, the reason in ``run_error``): a slow or
  flaky endpoint must read "incomplete", never "0% MUST".
Evidence (Requirement / Expected / Actual, exchanges, curl) replaces the traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.transport.client import Exchange, Transport
from conformance.verdicts.check import NOT_APPLICABLE_PREFIX, CheckFailure, CheckInfo, Observation
from conformance.verdicts.evidence import Redactor, curl_command, format_exchange
from conformance.verdicts.findings import NO_ANSWER, cause_of

UNSUPPORTED_PREFIX = "unsupported:"
NOT_JUDGED = "not_judged"
EVIDENCE_LIMIT = 6000  # a harness traceback's tail kept as evidence


@dataclass
class Verdict:
    """What a check concluded, with the evidence every report format shows."""

    outcome: str
    message: str  # one line: "expected X; got Y", the skip reason, the observation
    evidence: str = ""  # the full text: Requirement / Expected / Actual, exchanges, curl
    detail: dict[str, Any] = field(default_factory=dict)  # expected, actual, note, exchanges


@dataclass
class CheckResult:
    check_id: str
    info: CheckInfo
    outcome: str
    message: str
    nodeid: str
    duration_s: float
    evidence: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunState:
    redact: Redactor
    transport: Transport | None = None
    results: dict[str, CheckResult] = field(default_factory=dict)
    endpoint: dict[str, Any] = field(default_factory=dict)
    run_error: str | None = None  # the preflight message that stopped the run, if any
    #: The negotiated request dialect (token-limit field, temperature, seed, reasoning), set
    #: once at preflight; every report shows it.
    dialect: dict[str, Any] = field(default_factory=dict)
    #: Run-level findings with one cause (e.g. "streams aborted when requests overlap: N checks
    #: affected"), named once in every report instead of as N unrelated failures.
    findings: list[str] = field(default_factory=list)
    #: The endpoint's pace measured at preflight and the timeouts scaled to it (``pace.py``).
    pace: dict[str, Any] = field(default_factory=dict)


STATE = pytest.StashKey[RunState]()


def install(config: pytest.Config, redact: Redactor, transport: Transport | None = None) -> None:
    """(Re)bind the run state: called at configure time and once the endpoint is known."""
    state = config.stash.get(STATE, None)
    if state is None:
        config.stash[STATE] = RunState(redact, transport)
        return
    state.redact = redact
    if transport is not None:
        state.transport = transport


def state_of(config: pytest.Config) -> RunState:
    return config.stash[STATE]


def check_info(item: pytest.Item) -> CheckInfo | None:
    marker = item.get_closest_marker("chatcompat_check")
    return marker.args[0] if marker else None


def check_id(item: pytest.Item, info: CheckInfo) -> str:
    callspec = getattr(item, "callspec", None)
    return f"{info.id}[{callspec.id}]" if callspec else info.id


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Make check IDs selectable with -k (e.g. ``-k stream.``) and visible in JUnit; checks
    declared ``last`` (they judge what the whole run received) run after all others."""
    items.sort(key=lambda item: bool((info := check_info(item)) and info.last))
    for item in items:
        info = check_info(item)
        if info is None:
            continue
        full_id = check_id(item, info)
        item.extra_keyword_matches.update({full_id, info.id, info.area, info.level.value})
        item.user_properties += [
            ("check_id", full_id),
            ("level", info.level.value),
            ("capability", info.capability or ""),
        ]


def exchange_evidence(exchanges: list[Exchange], redact: Redactor) -> list[dict[str, str]]:
    """Each exchange as redacted text plus the curl line that replays it."""
    return [
        {
            "label": redact(e.label),
            "exchange": format_exchange(e, redact),
            "curl": curl_command(e, redact),
        }
        for e in exchanges
    ]


def failure_detail(exc: CheckFailure, redact: Redactor) -> dict[str, Any]:
    return {
        "expected": redact(exc.expected),
        "actual": redact(exc.actual),
        "note": redact(exc.note or ""),
        "exchanges": exchange_evidence(exc.exchanges, redact),
    }


def render_failure(info: CheckInfo, full_id: str, exc: CheckFailure, redact: Redactor) -> str:
    lines = [
        f"[{info.level.value}] {full_id}",
        f"Requirement: {info.requirement}",
        f"Expected:    {exc.expected}",
        f"Actual:      {exc.actual}",
    ]
    if exc.note:
        lines.append(f"Note:        {exc.note}")
    for exchange in exc.exchanges:
        lines += ["", f"--- exchange: {exchange.label} ---", format_exchange(exchange, redact)]
        lines += ["", "Reproduce with:", "  " + curl_command(exchange, redact)]
    return redact("\n".join(lines))


def _observation(value: Observation, redact: Redactor) -> Verdict:
    text = redact(value.text)
    lines = [text]
    for exchange in value.exchanges:
        lines += ["", f"--- exchange: {exchange.label} ---", format_exchange(exchange, redact)]
    evidence = redact("\n".join(lines))
    detail = {"exchanges": exchange_evidence(value.exchanges, redact)}
    return Verdict("info", text, evidence, detail)


def _classify(
    report: pytest.TestReport,
    call: pytest.CallInfo,
    info: CheckInfo,
    full_id: str,
    state: RunState,
    strict: bool,
) -> Verdict:
    """Decide the verdict and rewrite the report accordingly."""
    redact = state.redact
    if report.skipped:
        premise = getattr(call.excinfo.value, "premise", None) if call.excinfo else None
        if premise is not None and premise not in info.needs:
            message = (
                f"suite defect, no verdict: the check reached premise '{premise.name}' "
                f"it does not declare (needs={list(info.need_names)})"
            )
            report.outcome = "failed"
            return Verdict("error", message, message)
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if premise is not None:  # pytest prefixes a skip subclass's reason with its name
            reason = call.excinfo.value.msg
            report.longrepr = (*report.longrepr[:2], reason)
        reason = redact(reason.removeprefix("Skipped: "))
        if reason.startswith(UNSUPPORTED_PREFIX):
            return Verdict("unsupported", reason, reason)
        if reason.startswith(NOT_APPLICABLE_PREFIX):
            return Verdict("not_applicable", reason, reason)
        return Verdict("skipped", reason, reason)
    if report.when != "call" and report.failed:
        text = redact(str(report.longrepr))
        report.longrepr = text
        last = text.strip().splitlines()[-1][:300] if text.strip() else "setup failed"
        return Verdict("error", last, text[-EVIDENCE_LIMIT:])
    excinfo = call.excinfo
    if excinfo is None:
        if info.level.value == "INFO":
            return Verdict("info", "nothing to report")
        return Verdict("pass", "")
    value = excinfo.value
    if isinstance(value, Observation):
        report.outcome = "passed"
        report.longrepr = None
        verdict = _observation(value, redact)
        report.sections.append(("chatcompat observation", verdict.evidence))
        return verdict
    if isinstance(value, CheckFailure):
        text = render_failure(info, full_id, value, redact)
        message = redact(f"expected {value.expected}; got {value.actual}")
        detail = failure_detail(value, redact)
        if cause_of(value.actual) in NO_ANSWER:
            return _not_judged(report, message, text, detail)
        if info.level.value == "INFO":  # an observation, whatever the check raised: no verdict
            report.outcome = "passed"
            report.longrepr = None
            report.sections.append(("chatcompat observation", text))
            return Verdict("info", message, text, detail)
        if info.level.value == "MUST" or strict:
            report.longrepr = text
            return Verdict("fail", message, text, detail)
        report.outcome = "passed"
        report.longrepr = None
        report.sections.append(("chatcompat warning (SHOULD)", text))
        return Verdict("warn", message, text, detail)
    text = redact(str(report.longrepr))
    report.longrepr = text
    message = redact(f"harness error, no verdict: {type(value).__name__}: {value}")[:300]
    return Verdict("error", message, text[-EVIDENCE_LIMIT:])


def _not_judged(
    report: pytest.TestReport, message: str, text: str, detail: dict[str, Any]
) -> Verdict:
    """No answer came to judge: a skip for pytest (not a failure), with the evidence kept."""
    reason = f"not judged: {message}"
    report.outcome = "skipped"
    report.longrepr = (str(report.location[0]), (report.location[1] or 0) + 1, reason)
    report.sections.append(("chatcompat: not judged", text))
    return Verdict(NOT_JUDGED, reason, text, detail)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    info = check_info(item)
    if info is None:
        return report
    state = state_of(item.config)
    full_id = check_id(item, info)
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if not decisive:
        return report
    strict = bool(item.config.getini("strict"))
    verdict = _classify(report, call, info, full_id, state, strict)
    outcome = verdict.outcome
    report.chatcompat = {
        "id": full_id,
        "level": info.level.value,
        "outcome": outcome,
        "message": verdict.message,
    }
    # junitxml reads the item's properties when the test ends (teardown), so one property
    # per item: the last decisive phase wins, as in results.json.
    props = [p for p in item.user_properties if p[0] not in ("outcome", "message", "evidence")]
    props.append(("outcome", outcome))
    if verdict.message:
        props.append(("message", verdict.message))
    if outcome in ("warn", "info", NOT_JUDGED) and verdict.evidence:
        props.append(("evidence", verdict.evidence))  # a fail has it in <failure>
    item.user_properties[:] = props
    if full_id not in state.results or outcome != "pass":
        state.results[full_id] = CheckResult(
            full_id,
            info,
            outcome,
            verdict.message,
            item.nodeid,
            round(report.duration, 4),
            verdict.evidence,
            verdict.detail,
        )
    return report


_STATUS = {
    "warn": ("warn", "W", ("WARN", {"yellow": True})),
    "info": ("info", "i", ("INFO", {"cyan": True})),
    "unsupported": ("unsupported", "u", ("UNSUPPORTED", {"yellow": True})),
    "not_applicable": ("not applicable", "n", ("NOT APPLICABLE", {"cyan": True})),
    NOT_JUDGED: ("not judged", "J", ("NOT JUDGED", {"yellow": True})),
    "error": ("error", "E", ("ERROR", {"red": True})),
}


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    verdict = getattr(report, "chatcompat", None)
    if verdict is None:
        return None
    status = _STATUS.get(verdict["outcome"])
    if status is None:
        return None
    return status  # a harness error in the call phase too: counted as an error, not a fail
