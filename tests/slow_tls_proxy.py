"""A loopback TLS proxy whose handshake starts ``delay`` seconds after the TCP connect.

On loopback the kernel completes the TCP handshake before ``accept`` is even called, so a
slow listener cannot make *connecting* slow; a TLS server that waits before answering the
ClientHello can, and TLS set-up is part of what the load tool's ``connect_ms`` and TTFT
count. Behind the handshake every byte is relayed to a plain-HTTP upstream (a truth
server), so the timings inside the stream are the upstream's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (also its own CA, for SSL_CERT_FILE) and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class SlowTLSProxy:
    """``with SlowTLSProxy(upstream, cert, key, 0.3) as port:`` serves until the block ends."""

    def __init__(self, upstream: tuple[str, int], cert: Path, key: Path, delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.closing = False

    def __enter__(self) -> int:
        threading.Thread(target=self._accept, daemon=True).start()
        return self.listener.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.closing = True
        self.listener.close()

    def _accept(self) -> None:
        while not self.closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        time.sleep(self.delay)  # the ClientHello waits: the client is still "connecting"
        try:
            client = self.context.wrap_socket(conn, server_side=True)
            upstream = socket.create_connection(self.upstream)
        except OSError:
            conn.close()
            return
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until either side closes; then close both."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.close()
