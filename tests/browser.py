"""Headless Chromium for our page tests: the DOM after the page's own script ran, a screenshot,
and a small parser that reads the attributes the report page tags its parts with."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install -y chromium; .ci/run does)",
)
TIMEOUT_S = 90


def _chromium(*args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chatcompat-chromium-") as profile:
        command = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",  # let the page's script run before the dump
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)


def dump_dom(page: Path, fragment: str = "") -> str:
    """The serialized DOM of ``page`` once its scripts ran (``fragment``: e.g. '#area=x')."""
    proc = _chromium("--dump-dom", page.resolve().as_uri() + fragment)
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 2400) -> None:
    proc = _chromium(
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--screenshot={out.resolve()}",
        page.resolve().as_uri(),
    )
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]


class Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def with_attr(self, name: str, tag: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if name in a and (tag is None or t == tag)]

    def root(self) -> dict[str, str | None]:
        return next(a for t, a in self.tags if t == "html")


def matrix_counts(page_text: str) -> dict[tuple[str, str], int]:
    """(area, outcome) -> the count shown in the page's matrix ('' area: the total row)."""
    cells = Elements(page_text).with_attr("data-count", "td")
    return {(c["data-area"] or "", c["data-outcome"] or ""): int(c["data-count"]) for c in cells}
