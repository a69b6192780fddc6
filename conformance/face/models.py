"""Several models, one run: a child suite run per model, then the combined reports.

Registered by the plugin when ``--models`` or ``--all-models`` is given. The parent run then
checks nothing itself: it lists the models (``--all-models``: ``GET /models``, or the embedded
server's list), runs one ``python -m pytest ... --model=M --reports-dir=REPORTS/models/<dir>``
child per model (the ordinary single-model run: its own preflight, dialect, pace and
reports), at most ``--concurrency`` at once and sharing that many requests in flight, and
writes ``models_report``'s combined files. The key reaches a child only as
``OPENAI_API_KEY`` in its environment (never in argv); each child has its own session, so
Ctrl-C reaches the parent alone, which forwards SIGTERM: the children end with their partial
reports, and the run ends incomplete (exit 2) without a traceback.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from conformance.exchanges.expect import model_ids
from conformance.face import models_plan, models_report, reporting, runner
from conformance.face.models_plan import Plan
from conformance.face.models_report import ModelRun
from conformance.face.report_page import LABELS
from conformance.face.settings import KEY_SOURCE_ENV, Settings
from conformance.reference import ReferenceConfig, ReferenceServer
from conformance.transport.client import Exchange, RequestSpec, Transport
from conformance.verdicts.evidence import Redactor, redact_url

EXIT_STOPPED = 2
POLL_S = 0.1
GRACE_S = 30.0  # a child told to stop writes its partial reports within this


def _stop(message: str) -> None:
    pytest.exit(message, EXIT_STOPPED)


@contextlib.contextmanager
def _endpoint(settings: Settings) -> Iterator[Transport]:
    """A transport to the endpoint (the embedded server is started for the moment)."""
    server, base_url, key = None, settings.base_url, settings.api_key
    if settings.embedded:
        key = "sk-chatcompat-ref-" + secrets.token_hex(12)
        config = ReferenceConfig(api_key=key, faults=settings.reference_faults)
        server = ReferenceServer(config).start()
        base_url = server.base_url
    assert base_url is not None
    try:
        yield Transport(base_url, key, settings.limits, settings.verify_tls)
    finally:
        if server is not None:
            server.stop()


def _list(transport: Transport) -> tuple[str, Exchange]:
    where = f"GET {redact_url(transport.base_url)}/models"
    spec = RequestSpec("several models: list models", method="GET", path="/models")
    return where, transport.send(spec)


def list_models(settings: Settings) -> list[str]:
    """Every id ``GET /models`` lists, or stop the run with one line (exit 2)."""
    with _endpoint(settings) as transport:
        where, exchange = _list(transport)
    if exchange.error is not None:
        _stop(f"chatcompat: --all-models: {where} failed: {exchange.error}")
    if exchange.status != 200:
        _stop(f"chatcompat: --all-models: {where} answered HTTP {exchange.status}; use --models")
    ids = model_ids(exchange)
    if not ids:
        _stop(f"chatcompat: --all-models: {where} listed no model; use --models")
    return ids


def refuse_unknown(settings: Settings, models: list[str]) -> None:
    """Stop (one line, exit 2) for ids that are neither listed nor served: a typo would
    otherwise cost a whole run of failures. Both sides are asked, since neither is believed
    alone: a server may serve ids it does not list (aliases; llama.cpp answers any name), so
    an unlisted id is refused only when a one-token request for it also gets HTTP 404."""
    with _endpoint(settings) as transport:
        _, exchange = _list(transport)
        listed = set(model_ids(exchange))
        if exchange.status != 200 or not listed:
            return  # no usable list: each child judges its model
        unknown = []
        for model in (m for m in models if m not in listed):
            body = {"model": model, "messages": [{"role": "user", "content": "Say OK"}]}
            probe = transport.send(
                RequestSpec(f"several models: is {model!r} served", json={**body, "max_tokens": 1})
            )
            if probe.status == 404:
                unknown.append(model)
    if unknown:
        names = ", ".join(repr(m) for m in unknown)
        _stop(
            f"chatcompat: --models: {names} not listed by GET /models and answered HTTP 404 "
            f"(listed: {', '.join(sorted(listed)[:10])})"
        )


class SeveralModels:
    """The parent run's plugin (see the module docstring)."""

    def __init__(self, config: pytest.Config, settings: Settings, plan: Plan) -> None:
        self.config, self.settings, self.plan = config, settings, plan
        self.models: list[str] = []
        self.runs: list[ModelRun] = []
        self.exit_status: int | None = None
        self.stopped_by: str | None = None
        self.started = time.time()
        self.data: dict[str, Any] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        """The parent collects nothing: each child collects (and selects) for its model.
        The models are listed here, where a stop is reported in one line."""
        if session.config.option.collectonly:
            return None  # --collect-only lists the checks, as without --models
        session.items = []
        with _signals_as_interrupt():
            try:
                self._choose_models()
            except KeyboardInterrupt as exc:  # nothing ran yet: no model, incomplete
                self.stopped_by, self.models = _signal_name(exc), []
        return True

    def _choose_models(self) -> None:
        listed = list_models(self.settings) if self.plan.all_models else self.plan.models
        self.models = self.plan.select(listed)
        if not self.models:
            _stop(f"chatcompat: no model matches --models-match={self.plan.match!r}")
        if not self.plan.all_models:
            refuse_unknown(self.settings, self.models)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if session.config.option.collectonly:
            return None
        self.runs = [ModelRun(m, models_plan.safe_name(m)) for m in self.models]
        self._run_all()
        about = self._about()
        data = models_report.write(
            self.runs, about, self.settings.reports_dir, Redactor(self.settings.api_key)
        )
        self.exit_status = data["exit_status"]
        self.data = data
        return True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.exit_status is not None:
            session.exitstatus = self.exit_status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.exit_status is None:
            return
        tr = terminalreporter
        tr.section("chatcompat: several models")
        for entry in self.data["models"]:
            tr.write_line(_summary_line(entry))
        root = self.settings.reports_dir
        tr.write_line(
            f"reports: {root}/index.html (models x areas), junit.xml, results.json; "
            f"each model's own under {root}/models/"
        )

    # --- running the children -----------------------------------------------------------

    def _about(self) -> dict[str, Any]:
        base = self.settings.base_url
        return {
            "tool": {"name": "chatcompat", "version": reporting._version()},
            "started_at": datetime.fromtimestamp(self.started, UTC).isoformat(),
            "duration_s": round(time.time() - self.started, 3),
            "endpoint": {
                "base_url": redact_url(base) if base else None,
                "embedded_reference_server": base is None,
            },
            "run_error": f"interrupted by {self.stopped_by}" if self.stopped_by else None,
            "concurrency": dict(zip(("models_at_once", "per_model"), self._shares(), strict=True)),
        }

    def _shares(self) -> tuple[int, int]:
        return models_plan.shares(len(self.runs), self.settings.limits.max_concurrency)

    def _env(self) -> dict[str, str]:
        extra = {"OPENAI_BASE_URL": self.settings.base_url} if self.settings.base_url else {}
        if self.settings.key_source:
            extra[KEY_SOURCE_ENV] = self.settings.key_source
        return runner.child_env(extra, self.settings.api_key)

    def _start(self, run: ModelRun, per_model: int) -> subprocess.Popen:
        root = self.settings.reports_dir
        reports = root / run.dir
        reports.mkdir(parents=True, exist_ok=True)
        base = models_plan.passthrough(self.config.invocation_params.args)
        baseline = models_plan.baseline_for(self.config.getoption("baseline", None), run.safe)
        args = models_plan.child_args(base, run.model, reports, per_model, baseline)
        with (reports / "output.txt").open("wb") as sink:
            return subprocess.Popen(
                [sys.executable, "-m", "pytest", *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.config.invocation_params.dir,
                env=self._env(),
                start_new_session=True,  # Ctrl-C reaches the parent only; it forwards
                preexec_fn=runner._default_sigint,
            )

    def _run_all(self) -> None:
        at_once, per_model = self._shares()
        pending = list(self.runs)
        running: dict[int, tuple[ModelRun, subprocess.Popen]] = {}
        with _signals_as_interrupt():
            try:
                while pending or running:
                    while pending and len(running) < at_once:
                        run = pending.pop(0)
                        proc = self._start(run, per_model)
                        running[proc.pid] = (run, proc)
                    for pid, (run, proc) in list(running.items()):
                        if proc.poll() is not None:
                            run.returncode = proc.returncode
                            del running[pid]
                            self._progress(run)
                    time.sleep(POLL_S)
            except KeyboardInterrupt as exc:
                self.stopped_by = _signal_name(exc)
                for run in pending:
                    run.note = f"not run: interrupted by {self.stopped_by}"
        if running:
            _stop_children(list(running.values()))

    def _progress(self, run: ModelRun) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"chatcompat: {run.model}: exit code {run.returncode} "
                f"({self.settings.reports_dir}/{run.dir}/)"
            )


def _stop_children(running: list[tuple[ModelRun, subprocess.Popen]]) -> None:
    """SIGTERM each child's process group, give them time to write, then kill."""
    with _signals_ignored():
        for _, proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for run, proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                run.note = "killed: did not stop within 30 s of SIGTERM"
            run.returncode = proc.returncode


_SIGNALLED: list[str] = []


def _raise_interrupt(signum: int, frame: Any) -> None:
    _SIGNALLED.append(signal.Signals(signum).name)
    raise KeyboardInterrupt


def _signal_name(exc: BaseException) -> str:
    return _SIGNALLED[-1] if _SIGNALLED else "SIGINT"


@contextlib.contextmanager
def _signals_as_interrupt():
    """SIGTERM and SIGINT both interrupt the waiting loop (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _SIGNALLED.clear()
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_ignored():
    """A second Ctrl-C while the children write their reports must not cut them short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _summary_line(entry: dict[str, Any]) -> str:
    counts = ", ".join(
        f"{entry['counts'][o]} {label}" for o, label in LABELS.items() if entry["counts"].get(o)
    )
    must = (entry.get("headline") or {}).get("MUST") or {}
    rate = f"MUST {must['rate']}%" if must.get("rate") is not None else "no MUST rate"
    state = entry["run_error"] or rate
    changes = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in (entry["diff"] or {}).items() if n)
    since = f"; since the baseline: {changes or 'no change'}" if entry["diff"] is not None else ""
    return (
        f"{entry['model']}: {counts or 'no checks'}; {state}{since} (exit {entry['exit_status']})"
    )


def install(config: pytest.Config, settings: Settings) -> bool:
    """Register the plugin when the options ask for several models; True if they do."""
    plan = models_plan.read_plan(config)
    if plan is None:
        return False
    config.pluginmanager.register(SeveralModels(config, settings, plan), "chatcompat.models")
    return True
