"""A managed server subprocess: free port, log file, readiness polling, guaranteed teardown.

Real servers under test (llama.cpp, vLLM, ...) are separate programs that take seconds to load
a model, may die at start-up, and may spawn helpers of their own. Every test that uses one needs
the same four things, so they live here once:

- a free loopback port, so parallel runs do not collide;
- the child's stdout and stderr in one log file, whose tail is shown when anything goes wrong;
- readiness measured by the server itself answering an HTTP URL, with a deadline, because
  "process started" is not "model loaded";
- teardown of the whole process group (SIGTERM, then SIGKILL after a grace period) that runs
  on every exit path, so no server outlives the test run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from conformance.transport.ports import (  # re-exported: loadtests uses them here
    LOOPBACK,
    free_port,
    wait_for_port,
)

__all__ = [
    "LOOPBACK",
    "ManagedProcess",
    "ServerStartError",
    "free_port",
    "log_tail",
    "managed_process",
    "wait_for_port",
]

TAIL_LINES = 40

# Live processes, stopped at interpreter exit in case a caller never reached its teardown
# (e.g. KeyboardInterrupt between start() and the ``with`` block).
_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


class ServerStartError(RuntimeError):
    """The server died or missed its readiness deadline; the message carries the log tail."""

    def __init__(self, message: str, *, log_path: Path | None = None, tail: str = "") -> None:
        self.log_path = log_path
        self.tail = tail
        text = message
        if log_path is not None:
            text += f"\n--- last {TAIL_LINES} lines of {log_path} ---\n{tail or '(log is empty)'}"
        super().__init__(text)


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """Last ``lines`` lines of a log file, decoded leniently (servers print raw bytes)."""
    try:
        with open(path, "rb") as fh:
            tail = deque(fh, maxlen=lines)
    except FileNotFoundError:
        return ""
    return b"".join(tail).decode("utf-8", errors="replace").rstrip("\n")


def _set_parent_death_signal() -> None:
    """Linux: have the kernel SIGTERM the child if the parent dies without teardown (SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except Exception:  # best effort; normal teardown still applies
        pass


def _group_members(pgid: int) -> list[int]:
    """PIDs still running (not zombies) in process group ``pgid``.

    Uses /proc where available because a zombie still "exists" for kill(0) until something
    reaps it, and in containers nothing may ever reap orphaned grandchildren.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


class ManagedProcess:
    """One server subprocess in its own session, logging to a file, ready when a URL answers.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`); ``stop`` is idempotent
    and is also registered to run at interpreter exit.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        ready_url: str,
        ready_statuses: Collection[int] = (200,),
        startup_timeout: float = 60.0,
        grace: float = 5.0,
        log_path: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        name: str | None = None,
        poll_interval: float = 0.1,
        die_with_parent: bool = True,
    ) -> None:
        """Describe the process; nothing starts until :meth:`start`.

        ``die_with_parent`` sets Linux's parent-death signal. The kernel ties it to the
        *thread* that started the child, so pass False when starting from a short-lived thread.
        """
        self.argv = [str(a) for a in argv]
        self.ready_url = ready_url
        self.ready_statuses = frozenset(ready_statuses)
        self.startup_timeout = startup_timeout
        self.grace = grace
        self.name = name or Path(self.argv[0]).name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.poll_interval = poll_interval
        self.die_with_parent = die_with_parent
        if log_path is None:
            fd, tmp = tempfile.mkstemp(prefix=f"chatcompat-{self.name}-", suffix=".log")
            os.close(fd)
            log_path = tmp
        self.log_path = Path(log_path)
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        #: Seconds from spawn to the first ready answer.
        self.startup_seconds: float | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def start(self) -> ManagedProcess:
        """Spawn the child and block until it is ready; on any failure nothing is left running."""
        if self.popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.started_at = time.monotonic()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: teardown reaches grandchildren
                preexec_fn=_set_parent_death_signal
                if self.die_with_parent and sys.platform.startswith("linux")
                else None,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        """Poll ``ready_url`` until it answers a ready status, the child exits, or time runs out."""
        assert self.popen is not None and self.started_at is not None
        deadline = self.started_at + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(trust_env=False) as client:
            while True:
                code = self.popen.poll()
                if code is not None:
                    raise self._error(f"exited with code {code} before it was ready ({last})")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._error(
                        f"not ready after {self.startup_timeout:.1f}s at {self.ready_url} ({last})"
                    )
                try:
                    resp = client.get(self.ready_url, timeout=max(0.05, min(2.0, remaining)))
                except httpx.HTTPError as exc:
                    last = f"last attempt: {type(exc).__name__}"
                else:
                    if resp.status_code in self.ready_statuses:
                        self.startup_seconds = time.monotonic() - self.started_at
                        return
                    last = f"last answer: HTTP {resp.status_code} {resp.text[:200]!r}"
                time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL whatever is left after ``grace`` seconds.

        Safe to call twice and on a process that already exited; returns the exit code.
        """
        with _LIVE_LOCK:
            _LIVE.discard(self)
        popen = self.popen
        if popen is None:
            return None
        pgid = popen.pid  # start_new_session makes the child its group leader
        if popen.poll() is None or _group_members(pgid):
            self._signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + self.grace
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=self.grace)
            while _group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if popen.poll() is None or _group_members(pgid):
                self._signal_group(pgid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    popen.wait(timeout=5.0)
        return popen.poll()

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    # -- helpers ---------------------------------------------------------------------------

    def _signal_group(self, pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _error(self, what: str) -> ServerStartError:
        return ServerStartError(
            f"{self.name} (pid {self.pid}) {what}",
            log_path=self.log_path,
            tail=self.log_tail(),
        )

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "new" if self.popen is None else f"pid={self.popen.pid} rc={self.returncode}"
        return f"<ManagedProcess {self.name} {state} log={self.log_path}>"


@contextlib.contextmanager
def managed_process(
    argv: Sequence[str], *, ready_url: str, **kwargs: Any
) -> Iterator[ManagedProcess]:
    """``with managed_process([...], ready_url=...) as proc:`` -- see :class:`ManagedProcess`."""
    proc = ManagedProcess(argv, ready_url=ready_url, **kwargs)
    with proc:
        yield proc


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        proc.stop()
