"""Reports: results.json (the compatibility matrix), the terminal summary, HTML additions.

JUnit XML and report.html are written by pytest's junitxml and pytest-html; we add the check
ID / level / verdict to both, write results.json ourselves and, from it alone, index.html
(the publishable compatibility page) and badge.svg; with ``--baseline`` the run-to-run diff
goes into all of them. Finally we scrub the key from every file we produced (a second line
of defence behind redaction at the source). Every format tells the same story: each check
that did not pass is named with its Actual in the terminal (even with ``-q``), junit.xml
(``outcome``/``message`` properties), both HTML pages and results.json.

An interrupted run (Ctrl-C, or SIGTERM from CI or a container stop: we turn it into the same
KeyboardInterrupt) still ends in pytest's session finish, so the three reports are written
with what was decided so far, and results.json says ``"complete": false``. results.json is
written atomically, so a second signal never leaves half a file.

A run is complete only when every selected check reached a verdict. Checks never run (an
interruption, ``-x``) and checks whose request got no answer (``outcomes.NOT_JUDGED``) are
not judged: then ``complete`` is false, ``run_error`` says why with advice, the headline and
badge read "incomplete" instead of a rate, and the exit code is 2 whatever pytest decided.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest

from conformance.face import diff as run_diff
from conformance.face.badge import incomplete
from conformance.face.report_page import headline, write_report
from conformance.face.settings import SETTINGS
from conformance.verdicts.evidence import redact_url
from conformance.verdicts.findings import incomplete_reason
from conformance.verdicts.outcomes import (
    NOT_JUDGED,
    CheckResult,
    check_id,
    check_info,
    state_of,
)

OUTCOMES = (
    "pass",
    "fail",
    "warn",
    "unsupported",
    "not_applicable",
    "info",
    "error",
    NOT_JUDGED,
    "skipped",
)
EXIT_INCOMPLETE = 2  # pytest's INTERRUPTED: the run reached no verdict on some checks
_STARTED = pytest.StashKey[float]()
_DIFF = pytest.StashKey[dict]()
#: Files of a run, scrubbed of the key at the end whichever plugin wrote them.
REPORT_FILES = ("results.json", "junit.xml", "report.html", "index.html", "badge.svg")
#: The terminal lists checks that did not pass in this order, each with its Actual.
NOT_PASSING = ("fail", "error", NOT_JUDGED, "warn", "not_applicable", "unsupported", "skipped")


def _version() -> str:
    try:
        return version("chatcompat")
    except PackageNotFoundError:
        return "0+unknown"


def record_endpoint(config: pytest.Config, endpoint: Any) -> None:
    state = state_of(config)
    state.endpoint = {
        "base_url": redact_url(endpoint.base_url),
        "model": endpoint.model,
        "embedded_reference_server": endpoint.embedded,
    }
    try:  # the HTML report's Environment table (pytest-metadata, installed with pytest-html)
        from pytest_metadata.plugin import metadata_key

        metadata = config.stash[metadata_key]
        metadata["Base URL"] = state.endpoint["base_url"]
        metadata["Model"] = endpoint.model
    except (ImportError, KeyError):
        pass


_PREVIOUS_SIGTERM = pytest.StashKey[Any]()
_SIGNALLED: list[str] = []  # the signal that interrupted the run, if any


def _on_sigterm(signum: int, frame: Any) -> None:
    _SIGNALLED.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(f"chatcompat: stopped by {signal.Signals(signum).name}")


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.time()
    _SIGNALLED.clear()  # the warm batch worker runs many sessions in one process
    if _settings(session.config).write_reports and (
        threading.current_thread() is threading.main_thread()
    ):
        session.config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)


def _settings(config: pytest.Config):
    return config.stash[SETTINGS]


def _count_not_run(session: pytest.Session, interrupted: bool) -> None:
    """Selected checks that never reached a verdict are not judged, never silently dropped.

    A run the preflight stopped keeps no per-check entries (its one line says why)."""
    state = state_of(session.config)
    if state.run_error is not None:
        return
    for item in session.items:
        info = check_info(item)
        full_id = check_id(item, info) if info is not None else None
        if info is None or full_id in state.results:
            continue
        message = f"not judged: not run: {_stopped_by(interrupted)}"
        state.results[full_id] = CheckResult(full_id, info, NOT_JUDGED, message, item.nodeid, 0.0)


def _stopped_by(interrupted: bool) -> str:
    if _SIGNALLED:
        return f"interrupted by {_SIGNALLED[-1]}"
    return "interrupted" if interrupted else "the run ended before it (-x or --maxfail)"


def _judge_completeness(session: pytest.Session, interrupted: bool) -> bool:
    """Mark the run incomplete (run_error, exit code 2) when a check was not judged."""
    config = session.config
    state = state_of(config)
    _count_not_run(session, interrupted)
    unjudged = [r.message for r in state.results.values() if r.outcome == NOT_JUDGED]
    if not unjudged and not interrupted:
        return True
    if state.run_error is None:
        reason = incomplete_reason(
            unjudged, len(state.results), state.transport, _settings(config).limits
        )
        state.run_error = f"{_stopped_by(True)}: {reason}" if interrupted else reason
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = EXIT_INCOMPLETE
    return False


def build_results(config: pytest.Config, exitstatus: int, complete: bool) -> dict[str, Any]:
    state = state_of(config)
    settings = _settings(config)
    started = config.stash.get(_STARTED, time.time())
    counts = Counter(r.outcome for r in state.results.values())
    spend = state.transport.spend if state.transport else None
    checks = {cid: _check_entry(r) for cid, r in sorted(state.results.items())}
    results = {
        "tool": {"name": "chatcompat", "version": _version()},
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "duration_s": round(time.time() - started, 3),
        "complete": complete,
        "run_error": state.run_error,
        "exit_status": int(exitstatus),
        "endpoint": state.endpoint,
        "settings": {
            "strict": settings.strict,
            "api_key": "(set)" if settings.api_key or settings.embedded else "(not set)",
            "reference_faults": sorted(settings.reference_faults),
            "verify_tls": settings.verify_tls,
            "limits": asdict(settings.limits),
        },
        "capabilities": settings.capabilities.summary(),
        "dialect": dict(state.dialect),
        "pace": dict(state.pace),
        "findings": list(dict.fromkeys(state.findings)),
        "counts": {name: counts.get(name, 0) for name in OUTCOMES},
        "judged": {"judged": len(checks) - counts.get(NOT_JUDGED, 0), "total": len(checks)},
        "headline": headline(checks),
        "spent": {
            "requests": spend.requests if spend else 0,
            "prompt_tokens": spend.prompt_tokens if spend else 0,
            "completion_tokens": spend.completion_tokens if spend else 0,
            "total_tokens": (spend.prompt_tokens + spend.completion_tokens) if spend else 0,
            "retried_429": spend.retries if spend else 0,
            "reasoning_tokens": spend.reasoning_tokens if spend else 0,  # within completion
        },
        "checks": checks,
    }
    partial = incomplete(results)
    if partial is not None:  # no rate to publish: a consumer must not read one from here
        results["headline"] = {
            level: {**rates, "rate": None} for level, rates in results["headline"].items()
        }
        results["headline"]["incomplete"] = partial
    return results


def _check_entry(r: CheckResult) -> dict[str, Any]:
    """One check in results.json: enough to render its evidence without the run."""
    entry: dict[str, Any] = {
        "outcome": r.outcome,
        "level": r.info.level.value,
        "area": r.info.area,
        "capability": r.info.capability,
        "requirement": r.info.requirement,
        "needs": list(r.info.need_names),
        "message": r.message,
        "nodeid": r.nodeid,
        "duration_s": r.duration_s,
    }
    entry.update(r.detail)  # expected / actual / note / exchanges [{label, exchange, curl}]
    if r.evidence and "expected" not in r.detail:
        entry["evidence"] = r.evidence  # skip reasons, observations, harness tracebacks
    return entry


def _baseline_diff(config: pytest.Config, results: dict[str, Any]) -> dict[str, Any] | None:
    """The diff against ``--baseline``; a missing file (a first CI run) is a note, not an error."""
    path = config.getoption("baseline", None)
    if not path:
        return None
    try:
        old = json.loads(Path(path).read_text())
        if not isinstance(old, dict) or not isinstance(old.get("checks"), dict):
            raise ValueError("not a chatcompat results.json")
    except (OSError, ValueError) as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else str(exc)
        return {"error": f"baseline {path}: {reason}; no diff"}
    return run_diff.compare(old, results, str(path))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    settings = _settings(config)
    if _state_missing(config) or hasattr(config, "workerinput"):
        return  # an xdist worker runs a share of the items: completeness is the run's
    interrupted = (
        bool(session.shouldstop)
        or bool(_SIGNALLED)
        or exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    )
    complete = _judge_completeness(session, interrupted)
    if not settings.write_reports:
        return
    results = build_results(config, session.exitstatus, complete)
    diff = _baseline_diff(config, results)
    if diff is not None:
        config.stash[_DIFF] = diff
        if "error" not in diff:
            results["diff"] = diff
    path = settings.reports_dir / "results.json"
    text = state_of(config).redact(json.dumps(results, indent=2))
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text + "\n")
    os.replace(partial, path)  # atomic: readers see the old file or the whole new one
    # The page is rendered from what was written, so a re-render gives the same page. A bug
    # there must not cost the other reports (junitxml and pytest-html write after us).
    try:
        write_report(json.loads(text), settings.reports_dir)
    except Exception as exc:  # pragma: no cover - a defect of ours, reported, not raised
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        line = f"chatcompat: index.html not written ({type(exc).__name__}: {exc})"
        if reporter is not None:
            reporter.write_line(state_of(config).redact(line), red=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Scrub the key from every report file, whichever plugin wrote it."""
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)

    settings = config.stash.get(SETTINGS, None)
    if settings is None or not settings.write_reports or _state_missing(config):
        return
    redact = state_of(config).redact
    for name in REPORT_FILES:
        path = Path(settings.reports_dir) / name
        if path.is_file():
            text = path.read_text(errors="replace")
            clean = redact(text)
            if clean != text:
                path.write_text(clean)


def _state_missing(config: pytest.Config) -> bool:
    from conformance.verdicts.outcomes import STATE

    return config.stash.get(STATE, None) is None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _state_missing(config):
        return
    state = state_of(config)
    if not state.results:
        return
    tr = terminalreporter
    tr.section("chatcompat summary")
    if state.endpoint:
        ep = state.endpoint
        where = (
            "embedded reference server" if ep.get("embedded_reference_server") else ep["base_url"]
        )
        tr.write_line(f"endpoint: {where}   model: {ep['model']}")
    if state.dialect:
        tr.write_line(f"dialect: {dialect_line(state.dialect)}")
    if state.pace.get("summary"):
        tr.write_line(f"pace: {state.pace['summary']}")
    unjudged = sum(r.outcome == NOT_JUDGED for r in state.results.values())
    if unjudged or state.run_error:
        judged = len(state.results) - unjudged
        tr.write_line(
            f"INCOMPLETE: {judged} of {len(state.results)} checks judged, no pass rate: "
            f"{state.run_error or 'interrupted'}",
            yellow=True,
            bold=True,
        )
    for finding in dict.fromkeys(state.findings):
        tr.write_line(f"finding: {finding}")
    areas: dict[str, Counter] = {}
    for result in state.results.values():
        areas.setdefault(result.info.area, Counter())[result.outcome] += 1
    shown = [o for o in OUTCOMES if any(c[o] for c in areas.values())]
    labels = [o.replace("_", " ") for o in shown]
    first = max(len(a) for a in [*areas, "total"]) + 1
    widths = [max(len(label) + 2, 7) for label in labels]

    def row(name: str, cells: list) -> str:
        padded = (f"{c!s:>{w}}" for c, w in zip(cells, widths, strict=True))
        return f"{name:<{first}}" + "".join(padded)

    tr.write_line(row("area", labels))
    for area, counter in sorted(areas.items()):
        tr.write_line(row(area, [counter[o] for o in shown]))
    total = Counter(r.outcome for r in state.results.values())
    tr.write_line(row("total", [total[o] for o in shown]))
    if state.transport:
        spend = state.transport.spend
        tokens = spend.prompt_tokens + spend.completion_tokens
        retried = f"; {spend.retries} retried after HTTP 429" if spend.retries else ""
        tr.write_line(
            f"spent: {spend.requests} requests, {tokens} tokens "
            f"({spend.prompt_tokens} prompt + {spend.completion_tokens} completion"
            + (f", of which {spend.reasoning_tokens} reasoning" if spend.reasoning_tokens else "")
            + f"){retried}"
        )
    settings = _settings(config)
    learned = settings.capabilities.summary()
    if learned:
        tr.write_line(
            "capabilities: " + ", ".join(f"{n}={v['status']}" for n, v in learned.items())
        )
    if total["warn"] and not settings.strict:
        tr.write_line(f"{total['warn']} SHOULD-level warnings (run with --strict to fail on them)")
    _write_not_passing(tr, state.results.values())
    diff = config.stash.get(_DIFF, None)
    if diff is not None:
        lines = [diff["error"]] if "error" in diff else run_diff.format_text(diff)
        tr.section("chatcompat changes since the baseline", sep="-")
        for line in lines:
            tr.write_line(line)
    if settings.write_reports:
        tr.write_line(
            f"reports: {settings.reports_dir}/index.html (compatibility page), report.html, "
            "junit.xml, results.json, badge.svg"
        )


def dialect_line(dialect: dict[str, Any]) -> str:
    """The negotiated dialect in one line: its own summary if it has one, else key=value."""
    summary = dialect.get("summary")
    if isinstance(summary, str) and summary:
        return summary
    return ", ".join(f"{k}={v}" for k, v in dialect.items() if v not in (None, [], {}, ""))


def _write_not_passing(tr: Any, results: Any) -> None:
    """Name every check that did not pass with its Actual: pytest's own lines do not (with
    -q, warns are not named at all; a fail's line is cut to the terminal width)."""
    rank = {o: n for n, o in enumerate(NOT_PASSING)}
    chosen = sorted(
        (r for r in results if r.outcome in rank), key=lambda r: (rank[r.outcome], r.check_id)
    )
    if not chosen:
        return
    tr.section("chatcompat checks that did not pass", sep="-")
    for r in chosen:
        text = " ".join(r.message.split())  # "expected X; got Y", or the reason
        text = text.removeprefix(r.outcome.replace("_", " ") + ":").strip()
        tr.write_line(f"{r.outcome.replace('_', ' ').upper():<14} {r.check_id}: {text[:400]}")


# --- pytest-html additions (optional hooks: only called when pytest-html is active) ---------


@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report: Any) -> None:
    report.title = "chatcompat conformance report"


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: Any) -> None:
    config = session.config
    if _state_missing(config):
        return
    state = state_of(config)
    total = Counter(r.outcome for r in state.results.values())
    ep = state.endpoint or {}
    counts = ", ".join(f"{total[o]} {o.replace('_', ' ')}" for o in OUTCOMES if total[o])
    dialect = dialect_line(state.dialect) if state.dialect else "default request"
    prefix.append(
        f"<p><b>Endpoint:</b> {escape(str(ep.get('base_url', '?')))} &nbsp; "
        f"<b>Model:</b> {escape(str(ep.get('model', '?')))} &nbsp; "
        f"<b>Dialect:</b> {escape(dialect)} &nbsp; "
        f"<b>Pace:</b> {escape(str(state.pace.get('summary', 'not measured')))}</p>"
        f"<p><b>Verdicts:</b> {escape(counts)}. The Result column shows the chatcompat "
        "verdict; pytest's own counts below file warn and info under Passed, unsupported "
        "and not applicable under Skipped. The compatibility page is index.html.</p>"
    )
    for finding in dict.fromkeys(state.findings):
        prefix.append(f"<p><b>Finding:</b> {escape(finding)}</p>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list) -> None:
    cells.insert(1, "<th>Check</th>")
    cells.insert(2, "<th>Level</th>")
    cells.insert(3, "<th>Verdict</th>")


#: Verdicts pytest-html would show as its own Passed / Skipped, and what to show instead.
_HTML_RESULT = {
    "warn": ("Passed", "Warn", "#ef8f00"),
    "info": ("Passed", "Info", "#1565c0"),
    "unsupported": ("Skipped", "Unsupported", "#607d8b"),
    "not_applicable": ("Skipped", "Not applicable", "#8d6e63"),
    NOT_JUDGED: ("Skipped", "Not judged", "#455a64"),
}


def _result_cell(cell: str, outcome: str) -> str:
    """Show the verdict in pytest-html's Result column without breaking its filters.

    pytest-html files each row under the text of the first ``<td>`` in that cell (its
    Passed / Skipped checkboxes filter on it), so that text stays, in a hidden cell, and a
    visible cell next to it reads the verdict. Any other cell shape is left alone.
    """
    shape = _HTML_RESULT.get(outcome)
    if shape is None or cell != f'<td class="col-result">{shape[0]}</td>':
        return cell
    pytest_text, shown, colour = shape
    return (
        f'<td class="col-result" hidden>{pytest_text}</td>'
        f'<td class="col-verdict" style="color:{colour};width:130px">{shown}</td>'
    )  # not "col-result": pytest-html's "(hide details)" hover text would not follow it


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: Any, cells: list) -> None:
    verdict = getattr(report, "chatcompat", None) or {}
    if cells:
        cells[0] = _result_cell(cells[0], verdict.get("outcome", ""))
    cells.insert(1, f"<td>{escape(verdict.get('id', ''))}</td>")
    cells.insert(2, f"<td>{escape(verdict.get('level', ''))}</td>")
    cells.insert(3, f"<td>{escape(verdict.get('outcome', ''))}</td>")
