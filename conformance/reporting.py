"""Reports: results.json (the compatibility matrix), the terminal summary, HTML additions.

JUnit XML and the HTML file are written by pytest's junitxml and pytest-html; we add the
check ID / level / verdict to both, write results.json ourselves, and finally scrub the key
from every file we produced (a second line of defence behind redaction at the source).

An interrupted run (Ctrl-C, or SIGTERM from CI or a container stop: we turn it into the same
KeyboardInterrupt) still ends in pytest's session finish, so the three reports are written
with what was decided so far, and results.json says ``"complete": false``. results.json is
written atomically, so a second signal never leaves half a file.
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

from .evidence import redact_url
from .outcomes import state_of

OUTCOMES = (
    "pass",
    "fail",
    "warn",
    "unsupported",
    "not_applicable",
    "info",
    "error",
    "skipped",
)
_STARTED = pytest.StashKey[float]()


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
    if _settings(session.config).write_reports and (
        threading.current_thread() is threading.main_thread()
    ):
        session.config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)


def _settings(config: pytest.Config):
    from .plugin import SETTINGS  # late import: plugin imports this module

    return config.stash[SETTINGS]


def build_results(config: pytest.Config, exitstatus: int, interrupted: bool) -> dict[str, Any]:
    state = state_of(config)
    settings = _settings(config)
    started = config.stash.get(_STARTED, time.time())
    counts = Counter(r.outcome for r in state.results.values())
    spend = state.transport.spend if state.transport else None
    checks = {
        cid: {
            "outcome": r.outcome,
            "level": r.info.level.value,
            "area": r.info.area,
            "capability": r.info.capability,
            "requirement": r.info.requirement,
            "message": r.message,
            "nodeid": r.nodeid,
            "duration_s": r.duration_s,
        }
        for cid, r in sorted(state.results.items())
    }
    return {
        "tool": {"name": "chatcompat", "version": _version()},
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "duration_s": round(time.time() - started, 3),
        "complete": not interrupted,
        "run_error": state.run_error
        or (f"interrupted by {_SIGNALLED[-1]}" if interrupted and _SIGNALLED else None),
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
        "counts": {name: counts.get(name, 0) for name in OUTCOMES},
        "spent": {
            "requests": spend.requests if spend else 0,
            "prompt_tokens": spend.prompt_tokens if spend else 0,
            "completion_tokens": spend.completion_tokens if spend else 0,
            "total_tokens": (spend.prompt_tokens + spend.completion_tokens) if spend else 0,
            "retried_429": spend.retries if spend else 0,
        },
        "checks": checks,
    }


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    settings = _settings(config)
    if not settings.write_reports:
        return
    interrupted = bool(session.shouldstop) or exitstatus in (
        pytest.ExitCode.INTERRUPTED,
        pytest.ExitCode.INTERNAL_ERROR,
    )
    results = build_results(config, exitstatus, interrupted)
    path = settings.reports_dir / "results.json"
    text = state_of(config).redact(json.dumps(results, indent=2))
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text + "\n")
    os.replace(partial, path)  # atomic: readers see the old file or the whole new one


def pytest_unconfigure(config: pytest.Config) -> None:
    """Scrub the key from every report file, whichever plugin wrote it."""
    from .plugin import SETTINGS

    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)

    settings = config.stash.get(SETTINGS, None)
    if settings is None or not settings.write_reports or _state_missing(config):
        return
    redact = state_of(config).redact
    for name in ("results.json", "junit.xml", "report.html"):
        path = Path(settings.reports_dir) / name
        if path.is_file():
            text = path.read_text(errors="replace")
            clean = redact(text)
            if clean != text:
                path.write_text(clean)


def _state_missing(config: pytest.Config) -> bool:
    from .outcomes import STATE

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
    areas: dict[str, Counter] = {}
    for result in state.results.values():
        areas.setdefault(result.info.area, Counter())[result.outcome] += 1
    shown = [o for o in OUTCOMES if any(c[o] for c in areas.values())]
    tr.write_line(f"{'area':<10}" + "".join(f"{o:>12}" for o in shown))
    for area, counter in sorted(areas.items()):
        tr.write_line(f"{area:<10}" + "".join(f"{counter[o]:>12}" for o in shown))
    total = Counter(r.outcome for r in state.results.values())
    tr.write_line(f"{'total':<10}" + "".join(f"{total[o]:>12}" for o in shown))
    if state.transport:
        spend = state.transport.spend
        tokens = spend.prompt_tokens + spend.completion_tokens
        retried = f"; {spend.retries} retried after HTTP 429" if spend.retries else ""
        tr.write_line(
            f"spent: {spend.requests} requests, {tokens} tokens "
            f"({spend.prompt_tokens} prompt + {spend.completion_tokens} completion){retried}"
        )
    settings = _settings(config)
    learned = settings.capabilities.summary()
    if learned:
        tr.write_line(
            "capabilities: " + ", ".join(f"{n}={v['status']}" for n, v in learned.items())
        )
    if total["warn"] and not settings.strict:
        tr.write_line(f"{total['warn']} SHOULD-level warnings (run with --strict to fail on them)")
    if settings.write_reports:
        tr.write_line(f"reports: {settings.reports_dir}/report.html, junit.xml, results.json")


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
    counts = ", ".join(f"{total[o]} {o}" for o in OUTCOMES if total[o])
    prefix.append(
        f"<p><b>Endpoint:</b> {escape(str(ep.get('base_url', '?')))} &nbsp; "
        f"<b>Model:</b> {escape(str(ep.get('model', '?')))}</p>"
        f"<p><b>Verdicts:</b> {escape(counts)}. Warn = a SHOULD-level requirement missed "
        "(the row shows as passed; its evidence is in the row's log).</p>"
    )


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list) -> None:
    cells.insert(1, "<th>Check</th>")
    cells.insert(2, "<th>Level</th>")
    cells.insert(3, "<th>Verdict</th>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: Any, cells: list) -> None:
    verdict = getattr(report, "chatcompat", None) or {}
    cells.insert(1, f"<td>{escape(verdict.get('id', ''))}</td>")
    cells.insert(2, f"<td>{escape(verdict.get('level', ''))}</td>")
    cells.insert(3, f"<td>{escape(verdict.get('outcome', ''))}</td>")
