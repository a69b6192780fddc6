"""Loopback ports for the servers our tools start: the suite's launchers
(``realservers``), the load tests (``loadtests``) and the project's tests all use
these, so they live at the package's top level rather than inside one of its users."""

from __future__ import annotations

import socket
import time

__all__ = ["LOOPBACK", "free_port", "wait_for_port"]

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a port that is free on ``host`` right now.

    The kernel picks it (bind to port 0), so two runs never choose the same one; there is a
    small window before the child binds it, which is acceptable for test servers.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, host: str = LOOPBACK) -> None:
    """Block until something accepts TCP connections on ``host:port``, or raise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing listens on {host}:{port} after {timeout:g} s"
                ) from None
            time.sleep(0.05)
