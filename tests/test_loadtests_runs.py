"""Short Locust runs against the reference server, each Locust in its own process.

Locust monkey-patches the standard library with gevent when imported, which must not happen
inside this (asyncio-using) pytest process; so every run here is a subprocess, and the
assertions read the files and logs it leaves.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from realservers.process import free_port, wait_for_port

LOCUSTFILE = str(Path(__file__).resolve().parents[1] / "loadtests" / "locustfile.py")
KEY = f"sk-chatcompat-secret-{uuid.uuid4().hex}"
TTFT_MS = 50.0


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    """The reference server with injected latency and a required API key."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance.reference",
            "--port",
            str(port),
            "--api-key",
            KEY,
            "--ttft-ms",
            str(TTFT_MS),
            "--itl-ms",
            "10",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=10)


def locust(*args: str, cwd: Path, env: dict[str, str] | None = None, wait: bool = True):
    command = [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    environment.update(env or {})
    process = subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait:
        return process
    out, err = process.communicate(timeout=90)
    return process.returncode, out, err


RUN = ("--headless", "--only-summary", "-u", "4", "-r", "4", "--max-tokens", "20", "--ignore-eos")


def test_headless_run_writes_every_report_with_accurate_ttft_and_no_key(
    host: str, tmp_path: Path
) -> None:
    code, out, err = locust(
        *RUN,
        "--host",
        host,
        "-t",
        "3s",
        "--report-dir",
        str(tmp_path),
        "--report-name",
        "run",
        "--slo",
        "ttft_p95_ms=5000",
        "--csv",
        str(tmp_path / "locust"),
        "--html",
        str(tmp_path / "locust.html"),
        "--json-file",
        str(tmp_path / "locust"),
        cwd=tmp_path,
        env={"OPENAI_API_KEY": KEY},
    )
    assert code == 0, err[-2000:]
    report = json.loads((tmp_path / "run.json").read_text())
    overall = report["overall"]
    assert overall["requests"]["ok"] >= 8 and overall["requests"]["failed"] == 0
    assert TTFT_MS <= overall["ttft_ms"]["p50"] <= TTFT_MS + 10
    assert 9.0 <= overall["itl_ms"]["p50"] <= 11.0
    assert overall["output_tokens"]["sources"] == {"usage": overall["requests"]["ok"]}
    assert overall["output_tokens"]["share_at_target"] == 1.0
    assert report["slo"] == [
        {
            "gate": "ttft_p95_ms <= 5000",
            "value": pytest.approx(overall["ttft_ms"]["p95"]),
            "passed": True,
            "note": "",
        }
    ]
    assert report["settings"]["api_key"] == "<set>"
    csv_text = (tmp_path / "run-samples.csv").read_text()
    assert csv_text.count("\n") == report["run"]["samples"] + 1
    html = (tmp_path / "run.html").read_text()
    assert "TTFT" in html
    plotted = importlib.util.find_spec("matplotlib") is not None
    assert ("data:image/png;base64," in html) == plotted
    assert ("Plots need matplotlib" in html) != plotted
    assert '"TTFT","chat"' in (tmp_path / "locust_stats.csv").read_text().replace(
        "TTFT,chat", '"TTFT","chat"'
    )
    locust_rows = {
        (r["method"], r["name"]): r["num_requests"]
        for r in json.loads((tmp_path / "locust.json").read_text())
    }
    with (tmp_path / "run-samples.csv").open() as handle:
        ok = [r for r in csv.DictReader(handle) if r["ok"] == "1"]
    assert locust_rows["TTFT", "chat"] == locust_rows["TPOT", "chat"] == len(ok)
    assert locust_rows["ITL", "chat"] == sum(len(r["itl_ms"].split()) for r in ok)
    assert_key_absent(tmp_path, out + err)


def test_slo_gate_fails_the_run_and_key_from_option_stays_secret(host: str, tmp_path: Path) -> None:
    code, out, err = locust(
        *RUN,
        "--host",
        host,
        "-t",
        "2s",
        "--api-key",
        KEY,
        "--report-dir",
        str(tmp_path),
        "--report-name",
        "gate",
        "--slo",
        "ttft_p95_ms=1",
        "--slo",
        "error_rate<=0",
        cwd=tmp_path,
    )
    assert code == 3, err[-2000:]
    assert "SLO FAIL: ttft_p95_ms <= 1" in out
    assert "SLO PASS: error_rate <= 0" in out
    report = json.loads((tmp_path / "gate.json").read_text())
    assert [v["passed"] for v in report["slo"]] == [False, True]
    assert_key_absent(tmp_path, out + err)


def test_wrong_key_is_an_http_401_error_kind(host: str, tmp_path: Path) -> None:
    code, out, err = locust(
        *RUN,
        "--host",
        host,
        "-t",
        "2s",
        "-r",
        "100",
        "--no-report",
        "--exit-code-on-error",
        "0",
        "--slo",
        "error_rate<=0",
        cwd=tmp_path,
        env={"OPENAI_API_KEY": "sk-wrong"},
    )
    assert code == 3, err[-2000:]
    assert "errors: http_401" in out, out[-2000:]


def test_distributed_master_merges_exactly_what_two_workers_sent(host: str, tmp_path: Path) -> None:
    port = str(free_port())
    master = locust(
        *RUN,
        "--host",
        host,
        "-t",
        "4s",
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
        "--expect-workers",
        "2",
        "--report-dir",
        str(tmp_path),
        "--report-name",
        "dist",
        cwd=tmp_path,
        env={"OPENAI_API_KEY": KEY},
        wait=False,
    )
    workers = [
        locust(
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            port,
            cwd=tmp_path,
            env={"OPENAI_API_KEY": KEY},
            wait=False,
        )
        for _ in range(2)
    ]
    out, err = master.communicate(timeout=90)
    worker_logs = [w.communicate(timeout=60)[1] for w in workers]
    assert master.returncode == 0, err[-2000:]
    sent = [
        int(re.search(r"chatcompat worker totals: requests=(\d+)", log).group(1))
        for log in worker_logs
    ]
    report = json.loads((tmp_path / "dist.json").read_text())
    by_worker = report["run"]["samples_by_worker"]
    assert len(by_worker) == 2 and all(n > 0 for n in sent)
    assert sorted(by_worker.values()) == sorted(sent)
    assert report["run"]["samples"] == sum(sent)
    overall = report["overall"]["requests"]
    assert overall["started"] <= sum(sent) and overall["failed"] == 0
    assert_key_absent(tmp_path, out + err + "".join(worker_logs))


def assert_key_absent(directory: Path, output: str) -> None:
    assert KEY not in output
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert KEY.encode() not in path.read_bytes(), f"the API key leaked into {path.name}"
