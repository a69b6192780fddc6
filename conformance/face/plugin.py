"""The pytest plugin: options, settings, the endpoint fixture with its preflight, and wiring.

Loaded only when a run collects the suite (``entry.py`` decides; that is what the pytest11
entry point names), so nothing here touches an unrelated pytest run. Every option answers to
``--chatcompat-NAME``; the short name (``--model``) is added too unless a conftest or another
plugin of the same run already owns it (the run then says which names it left alone).
``--base-url`` belongs to pytest-base-url (two plugins registering it would crash pytest), so
we read it from there. The settings live in ``settings.py``, outcome handling in
``outcomes.py``, report writing in ``reporting.py``, shared exchanges in ``exchanges/``.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conformance.api import dialect, pace
from conformance.api.capabilities import Capabilities, parse_capabilities
from conformance.exchanges import errors as error_exchanges
from conformance.exchanges import limits, logprobs, sampling, shared
from conformance.exchanges.expect import model_ids
from conformance.face import models, reporting
from conformance.face.entry import ALIAS_PREFIX
from conformance.face.settings import KEY_SOURCE_ENV, SETTINGS, Settings
from conformance.reference import DEFAULT_MODEL, ReferenceConfig, ReferenceServer
from conformance.reference.faults import parse_names
from conformance.transport.client import Limits, RequestSpec, Transport
from conformance.verdicts import findings, outcomes
from conformance.verdicts.evidence import Redactor, redact_url

__all__ = ["SETTINGS", "Endpoint", "Settings", "resolve_settings"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # conformance/
CHECKS_DIR = PACKAGE_DIR / "checks"
EXIT_PREFLIGHT = 2  # pytest's INTERRUPTED: the run was stopped before any verdict
OPENAI_HOST = "api.openai.com"


@dataclass
class Endpoint:
    """The endpoint under test, reachable and with a model chosen."""

    transport: Transport
    base_url: str
    model: str
    embedded: bool
    models_exchange: object = None
    notes: list[str] = field(default_factory=list)


#: Short option names left to whoever registered them first in this run (see the docstring).
_YIELDED: list[str] = []


def _taken_names(parser: pytest.Parser) -> set[str]:
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]
    return {name for group in groups if group for opt in group.options for name in opt.names()}


class _Group:
    """An option group whose options all get a ``--chatcompat-`` alias (see the docstring)."""

    def __init__(self, parser: pytest.Parser) -> None:
        self._parser = parser
        self._group = parser.getgroup("chatcompat", "chatcompat conformance suite")

    def addoption(self, *names: str, **attrs: Any) -> None:
        attrs.setdefault("dest", names[0].removeprefix("--").replace("-", "_"))
        aliases = [ALIAS_PREFIX + n.removeprefix("--") for n in names]
        taken = _taken_names(self._parser)
        short = [n for n in names if n not in taken]
        _YIELDED.extend(n for n in names if n in taken)
        try:
            self._group.addoption(*short, *aliases, **attrs)
        except (ValueError, argparse.ArgumentError):  # taken in a way we could not see
            _YIELDED.extend(short)
            self._group.addoption(*aliases, **attrs)


def pytest_addoption(parser: pytest.Parser) -> None:
    _YIELDED.clear()
    group = _Group(parser)
    group.addoption(
        "--api-key",
        default=None,
        help="API key sent as a Bearer token (default: $OPENAI_API_KEY; '' sends none). "
        "Never shown.",
    )
    group.addoption(
        "--no-api-key",
        action="store_true",
        default=False,
        help="send no API key at all (not even $OPENAI_API_KEY)",
    )
    group.addoption(
        "--model", default=None, help="model to test (default: the first id from GET /models)"
    )
    group.addoption(
        "--reports-dir",
        default=None,
        help="where report.html, junit.xml and results.json go (default: reports)",
    )
    group.addoption(
        "--request-timeout",
        type=float,
        default=None,
        help="seconds without data before a request fails (default 30)",
    )
    group.addoption(
        "--total-timeout",
        type=float,
        default=None,
        help="seconds a whole request may take (default 60)",
    )
    group.addoption(
        "--max-body-bytes",
        type=int,
        default=None,
        help="cap on a response body, in bytes (default 8 MiB)",
    )
    group.addoption(
        "--max-events",
        type=int,
        default=None,
        help="cap on the events of one stream (default 20000)",
    )
    group.addoption(
        "--concurrency",
        type=int,
        default=None,
        help="requests in flight at once (default 4; match the server's parallel slots)",
    )
    group.addoption(
        "--insecure",
        action="store_true",
        default=False,
        help="do not verify TLS certificates (off by default)",
    )
    group.addoption(
        "--capabilities",
        default=None,
        help="capabilities the endpoint must support (comma list; a rejection is a fail)",
    )
    group.addoption(
        "--without-capabilities",
        default=None,
        help="capabilities the endpoint lacks: their checks are skipped and not sent",
    )
    group.addoption(
        "--reference-faults",
        default="",
        help="start the embedded reference server with these faults (comma list)",
    )
    group.addoption(
        "--baseline",
        default=None,
        help="an earlier results.json: list the checks whose verdict changed since "
        "(read by reporting.py; a missing file is noted, not an error)",
    )
    group.addoption(
        "--models",
        default=None,
        help="judge several models in one run (comma list); reports per model under "
        "REPORTS/models/ and one combined index.html",
    )
    group.addoption(
        "--all-models",
        action="store_true",
        default=False,
        help="judge every model GET /models lists (see --models-match)",
    )
    group.addoption(
        "--models-match",
        default=None,
        help="only the models whose id matches this glob (with --all-models or --models)",
    )
    dialect.add_options(group)


def _usage_error(message: str) -> pytest.UsageError:
    return pytest.UsageError(f"chatcompat: {message}")


def _positive(config: pytest.Config, name: str, default: float) -> float:
    value = config.getoption(name)
    if value is None:
        return default
    if not value > 0 or not math.isfinite(value):  # nan/inf would disable the bound
        raise _usage_error(f"--{name.replace('_', '-')} must be > 0 and finite (got {value})")
    return value


def _base_url(config: pytest.Config) -> str | None:
    value = config.getoption("base_url", None) or os.environ.get("OPENAI_BASE_URL") or None
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:  # the URL itself is not shown: it may hold credentials
        raise _usage_error(f"--base-url is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _usage_error(
            f"--base-url must be an http(s) URL like https://host/v1 (got {redact_url(value)!r})"
        )
    return value.rstrip("/")


def resolve_settings(config: pytest.Config) -> Settings:
    """Read options and environment; raise a one-line UsageError for bad input."""
    base_url = _base_url(config)
    api_key, key_source = _api_key(config)
    if api_key and not all("!" <= c <= "~" for c in api_key):
        # httpx would refuse the header and quote it, key included, in its error message.
        raise _usage_error(
            "the API key contains spaces or control characters (a trailing newline or CR "
            "from a file?); it was not sent"
        )
    try:
        faults = parse_names(config.getoption("reference_faults") or "")
    except ValueError as exc:
        raise _usage_error(f"--reference-faults: {exc}") from None
    try:
        dialect.overrides_from(config)  # validated here so bad input stops the run at once
        declared = parse_capabilities(config.getoption("capabilities"))
        absent = parse_capabilities(config.getoption("without_capabilities"))
    except ValueError as exc:
        raise _usage_error(str(exc)) from None
    if declared & absent:
        both = ", ".join(sorted(declared & absent))
        raise _usage_error(f"capability declared both present and absent: {both}")
    if faults and base_url:
        raise _usage_error("--reference-faults applies only to the embedded server (no --base-url)")
    limits = Limits(
        read_timeout=_positive(config, "request_timeout", 30.0),
        connect_timeout=min(10.0, _positive(config, "request_timeout", 30.0)),
        total_timeout=_positive(config, "total_timeout", 60.0),
        max_body_bytes=int(_positive(config, "max_body_bytes", 8 * 1024 * 1024)),
        max_events=int(_positive(config, "max_events", 20_000)),
        max_concurrency=int(_positive(config, "concurrency", 4)),
    )
    return Settings(
        base_url=base_url,
        api_key=api_key,
        model=config.getoption("model"),
        strict=bool(config.getini("strict")),
        reports_dir=Path(config.getoption("reports_dir") or "reports"),
        limits=limits,
        verify_tls=not config.getoption("insecure"),
        reference_faults=faults,
        capabilities=Capabilities(declared, absent),
        key_source=key_source,
    )


def _api_key(config: pytest.Config) -> tuple[str | None, str | None]:
    """The key and where it came from; ``--api-key ''`` and ``--no-api-key`` send none."""
    if config.getoption("no_api_key"):
        return None, None
    given = config.getoption("api_key")
    if given is not None:
        return (given, "option") if given else (None, None)
    from_env = os.environ.get("OPENAI_API_KEY") or None
    inherited = os.environ.get(KEY_SOURCE_ENV)  # a child of a several-models run
    source = inherited if inherited in ("option", "environment") else "environment"
    return from_env, (source if from_env else None)


def key_notice(settings: Settings) -> str | None:
    """One line when the environment's key goes to an endpoint that is not OpenAI's."""
    if settings.key_source != "environment" or settings.base_url is None:
        return None
    parts = urlsplit(settings.base_url)
    if parts.scheme == "https" and parts.hostname == OPENAI_HOST:
        return None
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return (
        f"chatcompat: sending the API key from $OPENAI_API_KEY to {redact_url(origin)} "
        f"(not {OPENAI_HOST}); --no-api-key sends none"
    )


def _is_conformance_run(config: pytest.Config) -> bool:
    """True when the run collects our suite (so reports belong in reports/)."""
    if config.getoption("reports_dir"):
        return True
    for arg in config.args:
        target = arg.split("::", 1)[0]
        if target == "conformance" or target.startswith("conformance."):
            return True
        try:
            path = Path(target).resolve()
        except OSError:
            continue
        if path == PACKAGE_DIR or PACKAGE_DIR in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Check modules are named by area (``checks/usage.py`` holds every ``usage.*`` check),
    not ``test_*.py``, so tools never mistake them for tests: collect them here."""
    if (
        file_path.parent == CHECKS_DIR
        and file_path.suffix == ".py"
        and file_path.stem != "__init__"
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chatcompat_check(info): a chatcompat conformance check (ID, level, capability)"
    )
    settings = resolve_settings(config)
    config.stash[SETTINGS] = settings
    for batch in (shared, error_exchanges, limits, logprobs, sampling):  # shared requests
        config.pluginmanager.register(batch, f"chatcompat.{batch.__name__}")
    config.pluginmanager.register(outcomes, "chatcompat.outcomes")
    config.pluginmanager.register(reporting, "chatcompat.reporting")
    outcomes.install(config, Redactor(settings.api_key))
    several = models.install(config, settings)  # the parent of one child run per model
    settings.write_reports = (
        _is_conformance_run(config) and not hasattr(config, "workerinput") and not several
    )
    if several:
        _make_reports_dir(settings)
    if settings.write_reports:
        _make_reports_dir(settings)
        if not config.getoption("xmlpath", None):
            config.option.xmlpath = str(settings.reports_dir / "junit.xml")
        if not config.getoption("htmlpath", None):
            config.option.htmlpath = str(settings.reports_dir / "report.html")
        config.option.self_contained_html = True
    if settings.base_url and getattr(config.option, "base_url", None):
        config.option.base_url = redact_url(settings.base_url)  # pytest-base-url prints it


def _make_reports_dir(settings: Settings) -> None:
    try:
        settings.reports_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"--reports-dir: cannot create {exc.filename}: {exc.strerror}"
        raise _usage_error(message) from None


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Say, before any request, where the environment's key goes and which names we yielded."""
    config = session.config
    lines = [key_notice(config.stash[SETTINGS])]
    if _YIELDED:
        names = ", ".join(_YIELDED)
        aliases = ", ".join(ALIAS_PREFIX + n.removeprefix("--") for n in _YIELDED)
        lines.append(f"chatcompat: {names} belong to another plugin or conftest; use {aliases}")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in filter(None, lines):
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line, file=sys.stderr)


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session):
    """Before any report is written: name each shared transport-level cause once."""
    config = session.config
    state = config.stash.get(outcomes.STATE, None)
    if state is not None:
        failed = (
            r.message
            for r in state.results.values()
            if r.outcome in ("fail", "error", "warn", outcomes.NOT_JUDGED)
        )
        for line in findings.findings(failed, state.transport, config.stash[SETTINGS].limits):
            if line not in state.findings:
                state.findings.append(line)
    return (yield)


def _reference_key(settings: Settings) -> str:
    """The embedded server's key: one given on the command line, else a throwaway one (the
    environment's key, likely a real one, has no business there)."""
    if settings.api_key and settings.key_source == "option":
        return settings.api_key
    return "sk-chatcompat-ref-" + secrets.token_hex(12)


def _stop(config: pytest.Config, message: str) -> None:
    """End the whole run with one line; results.json records it as the run's error."""
    outcomes.state_of(config).run_error = message
    pytest.exit(message, EXIT_PREFLIGHT)


def _preflight(
    config: pytest.Config, transport: Transport, model: str | None
) -> tuple[str, object]:
    """At most two cheap requests that prove the endpoint usable, or stop the whole run."""
    where = redact_url(transport.base_url)
    models = transport.send(RequestSpec("preflight: list models", method="GET", path="/models"))
    if models.error is not None:
        _stop(config, f"chatcompat: cannot reach {where}/models: {models.error}")
    if models.status in (401, 403):
        _stop(
            config,
            f"chatcompat: {where} rejected the API key (HTTP {models.status} on GET /models); "
            "pass --api-key or set OPENAI_API_KEY",
        )
    listed = model_ids(models)
    if not listed:
        # No usable model list: make sure there is a chat endpoint at all before going on.
        probe = transport.send(RequestSpec("preflight: empty chat request", json={}))
        if probe.status == 404 or probe.error:
            _stop(
                config,
                f"chatcompat: no chat completions endpoint at {where}/chat/completions "
                f"({probe.error or 'HTTP 404'}); does --base-url end with /v1?",
            )
        if (models.status or 0) >= 500 and (probe.status or 0) >= 500:
            _stop(
                config,
                f"chatcompat: {where} answers every request with a server error (GET /models: "
                f"HTTP {models.status}, POST /chat/completions: HTTP {probe.status})",
            )
    if model:
        return model, models
    if listed:
        return listed[0], models
    _stop(
        config,
        f"chatcompat: GET {where}/models listed no model (HTTP {models.status}); pass --model",
    )
    raise AssertionError("unreachable")  # _stop exits


def _stop_if_silent(config: pytest.Config, transport: Transport) -> None:
    """The preflight's own requests (model list, dialect probes) tripped the breaker: one
    timeout is all a silent endpoint costs, and one line says which timeout and option."""
    reason = transport.breaker.reason
    if reason is None:
        return
    hint = "; raise it if the endpoint is only slow" if "timeout" in reason else ""
    _stop(
        config,
        f"chatcompat: {redact_url(transport.base_url)} stopped answering during the preflight: "
        f"{reason}{hint}; nothing more was sent",
    )


def _settle_pace(
    config: pytest.Config, transport: Transport, model: str, settings: Settings
) -> None:
    """Scale the timeouts to the endpoint's measured pace (``pace.py``); a timeout the user
    gave is kept. Every later request, the SDK's included, uses the result."""
    limits, record = pace.settle(
        transport,
        model,
        read_given=config.getoption("request_timeout") is not None,
        total_given=config.getoption("total_timeout") is not None,
    )
    _stop_if_silent(config, transport)  # the pace probe met a silent stream
    transport.limits = settings.limits = limits
    outcomes.state_of(config).pace = record


@pytest.fixture(scope="session")
def chatcompat_settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def capabilities(request: pytest.FixtureRequest, chatcompat_settings: Settings) -> Capabilities:
    """Declared and learned capabilities; checks call ``capabilities.gate(name, exchange)``."""
    learned = chatcompat_settings.capabilities

    def reconcile() -> None:  # decided from all uses, whatever the order of the checks
        request.session.testsfailed += learned.reconcile(outcomes.state_of(request.config).results)

    request.addfinalizer(reconcile)
    return learned


@pytest.fixture(scope="session")
def endpoint(request: pytest.FixtureRequest, chatcompat_settings: Settings) -> Endpoint:
    """The endpoint under test: the embedded reference server unless --base-url is given."""
    settings = chatcompat_settings
    base_url = settings.base_url
    api_key = settings.api_key
    if settings.embedded:
        api_key = _reference_key(settings)
        server = ReferenceServer(
            ReferenceConfig(api_key=api_key, faults=settings.reference_faults)
        ).start()
        request.addfinalizer(server.stop)
        base_url = server.base_url
    assert base_url is not None
    transport = Transport(base_url, api_key, settings.limits, settings.verify_tls)
    outcomes.install(request.config, Redactor(api_key), transport)
    model, models_exchange = _preflight(
        request.config, transport, settings.model or (DEFAULT_MODEL if settings.embedded else None)
    )
    settings.capabilities.transport = transport  # for twin requests that attribute a 400
    dialect.settle(request.config, transport, model)
    _stop_if_silent(request.config, transport)
    _settle_pace(request.config, transport, model, settings)
    result = Endpoint(transport, base_url, model, settings.embedded, models_exchange)
    reporting.record_endpoint(request.config, result)
    return result
