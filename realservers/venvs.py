"""Private virtualenvs for servers whose dependencies cannot live beside the suite's.

FastChat needs pydantic 1, ``transformers serve`` and vLLM need their own torch and
transformers, LiteLLM pins half of its world: installed into one environment they break each
other and the suite. Each launcher therefore names its pinned requirements and gets an
interpreter of a private virtualenv made from them, created on first use and reused after:

- the directory is ``$CHATCOMPAT_VENVS/<name>-<hash>`` (default
  ``$XDG_CACHE_HOME/chatcompat/venvs``, i.e. outside any checkout), where the hash covers the
  requirements, so changing a pin makes a new environment instead of patching an old one;
- a marker file is written only after every install step succeeded, so a half-built
  environment (interrupted install, registry error) is rebuilt, never used;
- install steps run in order: torch must come first and alone (``torch==2.13.0`` finds the
  CPU build on local disk; asked for as a dependency of another package it may pull a CUDA
  build of several GB).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "VenvError",
    "VenvSpec",
    "ensure_venv",
    "interpreter_for",
    "package_version",
    "venvs_dir",
]

VENVS_ENV = "CHATCOMPAT_VENVS"
_MARKER = "chatcompat-venv.json"


class VenvError(RuntimeError):
    """A private environment could not be built; carries the tail of pip's output."""


@dataclass(frozen=True)
class VenvSpec:
    """A named environment: install steps (each a list of pip requirements), in order."""

    name: str
    steps: tuple[tuple[str, ...], ...]
    #: Distributions pip pulls in that break imports next to the others (uninstalled last).
    remove: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.steps, self.remove]).encode()).hexdigest()[:10]

    @property
    def requirements(self) -> list[str]:
        """Every requirement, for reports: what exactly the server ran on."""
        return [req for step in self.steps for req in step]


def venvs_dir() -> Path:
    """``$CHATCOMPAT_VENVS`` if set, else ``$XDG_CACHE_HOME/chatcompat/venvs`` (~/.cache)."""
    override = os.environ.get(VENVS_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chatcompat" / "venvs"


def _python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def ensure_venv(spec: VenvSpec, *, timeout: float = 3600.0, log: Path | None = None) -> Path:
    """The interpreter of ``spec``'s environment, building it first if needed.

    ``log`` receives pip's output (default: ``install.log`` inside the environment).
    """
    env_dir = venvs_dir() / f"{spec.name}-{spec.digest}"
    marker = env_dir / _MARKER
    wanted = {"name": spec.name, "steps": [list(s) for s in spec.steps], "remove": [*spec.remove]}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()) == wanted and _python(env_dir).is_file():
            return _python(env_dir)
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(env_dir.parent / f".{spec.name}.lock"):
        with contextlib.suppress(OSError, ValueError):  # built by another process meanwhile
            if json.loads(marker.read_text()) == wanted:
                return _python(env_dir)
        shutil.rmtree(env_dir, ignore_errors=True)
        log = log or env_dir.parent / f"{spec.name}-{spec.digest}.install.log"
        _run([sys.executable, "-m", "venv", str(env_dir)], log, timeout)
        for step in spec.steps:
            pip = [str(_python(env_dir)), "-m", "pip", "install", "--disable-pip-version-check"]
            _run([*pip, "--progress-bar", "off", *step], log, timeout)
        if spec.remove:
            uninstall = [str(_python(env_dir)), "-m", "pip", "uninstall", "-y", *spec.remove]
            _run(uninstall, log, timeout)
        marker.write_text(json.dumps(wanted))
    return _python(env_dir)


def _run(cmd: Sequence[str], log: Path, timeout: float) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise VenvError(f"{cmd[-1]}: install took over {timeout:.0f}s; see {log}") from exc
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        what = " ".join(cmd[-3:])
        raise VenvError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def package_version(python: Path | str, distribution: str) -> str:
    """Installed version of ``distribution`` in ``python``'s environment ("unknown" if none)."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    return proc.stdout.strip() or "unknown"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two matrix lanes asking for the same environment build it once."""
    import fcntl

    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def interpreter_for(spec: VenvSpec, distribution: str, version: str) -> str:
    """This interpreter when it already has ``distribution==version`` (a nox session that
    installed the pin), else the private environment of ``spec``."""
    import importlib.metadata

    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        if importlib.metadata.version(distribution) == version:
            return sys.executable
    return str(ensure_venv(spec))
