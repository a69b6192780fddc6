"""Bad command-line input: one error line, exit code 4 (pytest's usage error), no traceback.

tests/test_cli.py covers the plain cases (ftp:// URL, negative timeout, unknown fault); these
are the hostile ones: URLs that make ``urlsplit`` itself raise, non-finite numbers that would
switch a bound off, unknown capability names, unparseable config files, a reports directory
that cannot exist, and an API key that httpx would refuse (and quote, key included, in its
error message). All cases run concurrently in one module fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_runner import MeasuredRun, run_many

CR_KEY = "sk-cli-secret-4f9a2c7e1b3d\r"


@dataclass(frozen=True)
class BadInput:
    args: tuple[str, ...]
    message: str
    files: tuple[tuple[str, str], ...] = ()  # (name, content) written in the run's directory
    env: tuple[tuple[str, str], ...] = ()


CASES = {
    "ipv6_url": BadInput(("--base-url=http://[::1/v1",), "--base-url is not a valid URL"),
    "port_out_of_range": BadInput(
        ("--base-url=http://user:pw@host:99999/v1",), "--base-url is not a valid URL"
    ),
    "nan_timeout": BadInput(("--request-timeout=nan",), "must be > 0 and finite"),
    "infinite_total": BadInput(("--total-timeout=inf",), "must be > 0 and finite"),
    "word_timeout": BadInput(("--request-timeout=soon",), "invalid float value: 'soon'"),
    "negative_cap": BadInput(("--max-body-bytes=-5",), "--max-body-bytes must be > 0"),
    "zero_events": BadInput(("--max-events=0",), "--max-events must be > 0"),
    "unknown_capability": BadInput(("--capabilities=teleport",), "unknown capability teleport"),
    "unknown_absent_capability": BadInput(
        ("--without-capabilities=streaming,warp",), "unknown capability warp"
    ),
    "malformed_ini": BadInput(("-c", "bad.ini"), "bad.ini", (("bad.ini", "[pytest\nx = 1\n"),)),
    "malformed_toml": BadInput(
        ("-c", "bad.toml"), "bad.toml", (("bad.toml", "[tool.pytest.ini_options\n"),)
    ),
    "reports_dir_is_a_file": BadInput(
        ("--reports-dir=taken",), "--reports-dir: cannot create", (("taken", "a file"),)
    ),
    "key_with_carriage_return": BadInput(
        (), "the API key contains spaces or control characters", env=(("KEY", CR_KEY),)
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MeasuredRun]:
    root = tmp_path_factory.mktemp("cli")
    jobs = {}
    for name, case in CASES.items():
        workdir = root / name
        workdir.mkdir()
        for file_name, content in case.files:
            (workdir / file_name).write_text(content)
        args = list(case.args)
        if case.env:  # the runner drops OPENAI_*: pass the key the way a user's shell would
            args.append(f"--api-key={dict(case.env)['KEY']}")
        jobs[name] = (workdir, args)
    return run_many(jobs, workers=4)


def _capabilities_option_exists() -> bool:
    plugin = Path(__file__).parents[1] / "conformance" / "face" / "plugin.py"
    return "--without-capabilities" in plugin.read_text()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_4(runs: dict[str, MeasuredRun], name: str) -> None:
    if "capabilit" in name and not _capabilities_option_exists():
        pytest.skip("--capabilities / --without-capabilities are not there yet")
    run = runs[name]
    assert run.returncode == 4, run.output[-2000:]
    assert "Traceback" not in run.output and "INTERNALERROR" not in run.output
    lines = [line for line in run.output.splitlines() if CASES[name].message in line]
    assert len(lines) == 1, run.output[-2000:]
    assert "pw@" not in run.output and CR_KEY.strip() not in run.output


def test_missing_config_file(tmp_path: Path) -> None:
    from hostile_runner import run_suite_measured

    run = run_suite_measured(tmp_path, "-c", "missing.ini")
    if run.returncode != 4 or "Traceback" in run.output:
        # pytest reads -c FILE before any plugin loads: older pytest versions answer with
        # their own traceback and exit 1 (upstream behaviour, outside chatcompat's reach).
        pytest.xfail(f"pytest {pytest.__version__} reports a missing -c file itself")
    assert run.returncode == 4
