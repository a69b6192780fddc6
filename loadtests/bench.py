"""``nox -s bench``: a short benchmark against the reference server, report in ``reports/``.

Starts the reference server (TTFT 50 ms, ITL 10 ms) on a free loopback port, runs the
locustfile headless for a bounded time, and stops the server. Extra arguments go to Locust
(e.g. ``nox -s bench -- -u 32 -t 30s`` or ``-- --arrival-rate 20``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conformance.transport.ports import free_port, wait_for_port

DEFAULTS = [
    "--headless",
    "--only-summary",
    "-u",
    "16",
    "-r",
    "16",
    "-t",
    "20s",
    "--max-tokens",
    "100",
    "--ignore-eos",
    "--prompt-tokens",
    "128",
    "--warmup",
    "2",
    "--report-dir",
    "reports",
    "--slo",
    "ttft_p95_ms=500",
]


def main(argv: list[str]) -> int:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance.reference",
            "--port",
            str(port),
            "--ttft-ms",
            "50",
            "--itl-ms",
            "10",
        ],
    )
    try:
        wait_for_port(port)
        locustfile = Path(__file__).with_name("locustfile.py")
        command = [sys.executable, "-m", "locust", "-f", str(locustfile)]
        command += ["--host", f"http://127.0.0.1:{port}/v1", *DEFAULTS, *argv]
        return subprocess.run(command, timeout=3600).returncode
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
