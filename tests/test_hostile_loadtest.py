"""A load test against a hostile endpoint: errors are counted by kind, the run keeps going
(the requests that do succeed are still measured), stops at its bound, and leaks no key.

The hostile server's ``mixed`` behaviour plays, request after request, a clean answer, a TCP
reset, an HTML page with 200, a 500, a 429, headers then silence, plain-text data lines and a
stream that echoes the key; Locust runs as a user would start it, in a subprocess (it
monkey-patches the standard library with gevent).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_server import HostileServer

from conformance.reference import ReferenceConfig, ReferenceServer

# Never import locust here: it monkey-patches this process with gevent at import.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="locust is not installed"
)

KEY = "sk-load-hostile-9a4c2e7f1b3d5e8a"
LOCUSTFILE = Path(__file__).parents[1] / "loadtests" / "locustfile.py"
RUN_TIME_S = 6
EXPECTED_KINDS = {
    "connection_error",  # TCP reset mid-stream
    "not_event_stream",  # HTML page with status 200
    "http_500",
    "http_429",
    "read_timeout",  # headers, then silence
    "malformed_chunk",  # plain-text data lines; the key-echoing stream
}


@dataclass
class LoadRun:
    returncode: int
    output: str
    directory: Path
    wall_s: float

    @property
    def report(self) -> dict:
        return json.loads((self.directory / "hostile.json").read_text())


@pytest.fixture(scope="module")
def load_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadRun]:
    """One bounded Locust run against the ``mixed`` behaviour, shared by the tests below."""
    if not LOCUSTFILE.is_file():
        pytest.skip("loadtests/locustfile.py is not there")
    directory = tmp_path_factory.mktemp("load")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_API_KEY"] = KEY
    with (
        ReferenceServer(ReferenceConfig(api_key=KEY)) as reference,
        HostileServer(reference.origin) as server,
    ):
        command = [
            *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"),
            *("--only-summary", "-u", "4", "-r", "4", "-t", f"{RUN_TIME_S}s"),
            *("--max-tokens", "8", "--request-timeout", "2", "--model", "chatcompat-ref-1"),
            *("--host", server.url("mixed"), "--report-dir", str(directory)),
            *("--report-name", "hostile", "--exit-code-on-error", "0"),
        ]
        started = time.monotonic()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=90, env=env, cwd=directory
        )
        yield LoadRun(
            done.returncode, done.stdout + done.stderr, directory, time.monotonic() - started
        )


def test_errors_are_counted_by_kind_and_the_run_stops_at_its_bound(load_run: LoadRun) -> None:
    assert load_run.returncode == 0, load_run.output[-3000:]
    assert "Traceback" not in load_run.output
    assert load_run.wall_s < RUN_TIME_S + 30
    run, overall = load_run.report["run"], load_run.report["overall"]
    assert run["stop"] - run["test_start"] < RUN_TIME_S + 3  # stopped at its bound
    kinds = overall["errors_by_kind"]
    assert set(kinds) >= EXPECTED_KINDS, kinds
    assert overall["requests"]["ok"] > 0  # the clean answers in between are still measured


def test_the_full_key_is_in_no_output_or_file(load_run: LoadRun) -> None:
    assert not _leaks(load_run, [KEY])


def test_no_piece_of_the_key_is_in_any_output_or_file(load_run: LoadRun) -> None:
    tail = KEY.removeprefix("sk-load-hostile-")
    pieces = [KEY[:10]] + [tail[i : i + 10] for i in range(len(tail) - 9)]
    assert not _leaks(load_run, pieces)


def _leaks(load_run: LoadRun, pieces: list[str]) -> list[str]:
    texts = {"(output)": load_run.output}
    files = [p for p in load_run.directory.rglob("*") if p.is_file()]
    texts.update({p.name: p.read_bytes().decode("latin-1") for p in files})
    return sorted({where for where, text in texts.items() for p in pieces if p in text})
