"""nox sessions: tests, conformance, lint (and the benchmark / real-server sessions below).

Each session installs the project into its own virtualenv, so ``nox -s NAME`` works on a
fresh machine. Sessions that start servers bind them to loopback and stop them on exit.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "conformance"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own tests (parser, server, faults, redaction, metrics, ...)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """The conformance suite; against the embedded reference server unless --base-url given."""
    session.install("-e", ".")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


# --- benchmark sessions (loadtests/) --------------------------------------------------------

# --- real third-party server sessions (conformance/servers/) --------------------------------
