"""``nox -s bench``: a short benchmark against the reference server, report in ``reports/``.

Starts the reference server (TTFT 50 ms, ITL 10 ms) on a free loopback port, runs the
locustfile headless for a bounded time, and stops the server. Extra arguments go to Locust
(e.g. ``nox -s bench -- -u 32 -t 30s`` or ``-- --arrival-rate 20``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
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
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the reference server did not start") from None
                time.sleep(0.1)
        locustfile = Path(__file__).with_name("locustfile.py")
        command = [sys.executable, "-m", "locust", "-f", str(locustfile)]
        command += ["--host", f"http://127.0.0.1:{port}/v1", *DEFAULTS, *argv]
        return subprocess.run(command, timeout=3600).returncode
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
