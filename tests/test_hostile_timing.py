"""Silence costs one timeout: against every behaviour of the hostile server, the whole suite
ends within about three times the longest timeout.

Measured on whole-suite runs (no ``-k``), all started together (most of their time is spent
waiting), in two groups:

* **scaled**: every behaviour, in both forms (chat requests only, ``/b/``; every request,
  ``/all/``, except where the two are the same), with the timeouts scaled down to ``SCALED``
  (longest: the 20 s total timeout). What a run costs beyond the clean runs of the same batch
  (their median: the batch shares the machine, and the first runs also share its start-up),
  divided by that timeout, must stay at most ``RATIO`` (3): timeouts and caps trip the
  breaker, so they cannot add up;
* **defaults**: the behaviours that cost the most at the default options (30 s read, 60 s
  total timeout; and HTTP 429 answers whose Retry-After waits are honoured, a cost that does
  not scale with the timeouts), whose whole run must end within ``RATIO`` x 60 s.

``-v`` prints the table the closing note quotes (wall time, excess, ratio per behaviour).
"""

from __future__ import annotations

import secrets
import statistics
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hostile_runner import MeasuredRun, run_many
from hostile_server import BEHAVIOURS, HostileServer

from conformance.reference import ReferenceConfig, ReferenceServer

KEY = "sk-timing-" + secrets.token_hex(12)
MODEL = "chatcompat-ref-1"
SCALED_TOTAL = 20.0
SCALED = ("--request-timeout=10", f"--total-timeout={SCALED_TOTAL:g}")
DEFAULT_TOTAL = 60.0  # the longest default timeout (--total-timeout)
RATIO = 3.0
#: (behaviour, everywhere) run at the default options: the costliest timeouts and waits.
AT_DEFAULTS = (
    ("drip", False),  # every chat answer dies at the total timeout
    ("trickle", False),  # an endless body at 64 KiB/s: the total timeout again
    ("stream_no_response", False),  # models and JSON answer; streams are silent
    ("no_response", True),  # nothing answers, GET /models included
    ("rate_limit_once", False),  # every request waits out one Retry-After: 1
)
#: Behaviours whose /all/ form is their /b/ form (streams only, chat only, round robin).
SAME_EVERYWHERE = {"non_json_data", "stream_no_response", "abort_on_overlap", "mixed"}
CLEAN_RUNS = 3  # spread through the batch: the baseline is their median


@dataclass(frozen=True)
class Job:
    behaviour: str
    everywhere: bool
    defaults: bool
    number: int = 0  # tells the clean runs apart

    @property
    def id(self) -> str:
        form = "all" if self.everywhere else "b"
        suffix = (":defaults" if self.defaults else "") + (f":{self.number}" if self.number else "")
        return f"{form}:{self.behaviour}{suffix}"


SCALED_JOBS = [
    Job(name, everywhere, False)
    for name in BEHAVIOURS
    for everywhere in (False, True)
    if not (everywhere and name in SAME_EVERYWHERE)
]
CLEAN = [Job("clean", False, False, n) for n in range(1, CLEAN_RUNS + 1)]
# Default-option runs first (the longest), clean runs at the start, middle and end.
JOBS = [Job(name, everywhere, True) for name, everywhere in AT_DEFAULTS]
middle = len(SCALED_JOBS) // 2
JOBS += [CLEAN[0], *SCALED_JOBS[:middle], CLEAN[1], *SCALED_JOBS[middle:], CLEAN[2]]


@dataclass
class Timings:
    runs: dict[str, MeasuredRun]

    @property
    def clean_s(self) -> float:
        return statistics.median(self.runs[job.id].wall_s for job in CLEAN)

    def excess_ratio(self, job: Job) -> float:
        return (self.runs[job.id].wall_s - self.clean_s) / SCALED_TOTAL


@pytest.fixture(scope="module")
def timings(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Timings]:
    root = tmp_path_factory.mktemp("timing")
    with (
        ReferenceServer(ReferenceConfig(api_key=KEY)) as reference,
        HostileServer(reference.origin) as server,
    ):
        jobs = {}
        for job in JOBS:
            if job.behaviour == "clean":
                url = server.url()
            else:
                url = server.url(job.behaviour, job.everywhere, tag=job.id.replace(":", "."))
            timeouts = () if job.defaults else SCALED
            args = [f"--base-url={url}", f"--api-key={KEY}", f"--model={MODEL}", *timeouts]
            jobs[job.id] = (root / job.id.replace(":", "_"), args)
        found = Timings(run_many(jobs, workers=6, timeout=RATIO * DEFAULT_TOTAL + 120))
        yield found
        _print_table(request, found)


def _print_table(request: pytest.FixtureRequest, timings: Timings) -> None:
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or request.config.get_verbosity() < 1:
        return
    cleans = ", ".join(f"{timings.runs[j.id].wall_s:.1f}" for j in CLEAN)
    lines = [f"whole-suite runs; clean runs {cleans} s"]
    for job in JOBS:
        run = timings.runs[job.id]
        if job.defaults:
            lines.append(f"  {job.id:<34} exit {run.returncode}  {run.wall_s:6.1f} s (defaults)")
        else:
            ratio = timings.excess_ratio(job)
            lines.append(
                f"  {job.id:<34} exit {run.returncode}  {run.wall_s:6.1f} s  "
                f"excess/total-timeout {ratio:+.2f}"
            )
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def _ended_cleanly(run: MeasuredRun) -> None:
    assert not run.timed_out, run.output[-2000:]
    assert run.returncode in (0, 1, 2), run.output[-2000:]
    assert "Traceback" not in run.output and "INTERNALERROR" not in run.output


@pytest.mark.parametrize("job", SCALED_JOBS, ids=lambda j: j.id)
def test_scaled_timeouts_cost_at_most_three_timeouts(timings: Timings, job: Job) -> None:
    run = timings.runs[job.id]
    _ended_cleanly(run)
    assert timings.excess_ratio(job) <= RATIO, (run.wall_s, timings.clean_s)


@pytest.mark.parametrize("job", [j for j in JOBS if j.defaults], ids=lambda j: j.id)
def test_default_options_end_within_three_timeouts(timings: Timings, job: Job) -> None:
    run = timings.runs[job.id]
    _ended_cleanly(run)
    assert run.wall_s <= RATIO * DEFAULT_TOTAL, run.wall_s


def test_every_behaviour_is_timed() -> None:
    assert {j.behaviour for j in JOBS} - {"clean"} == set(BEHAVIOURS)
    assert all((name, e) in {(j.behaviour, j.everywhere) for j in JOBS} for name, e in AT_DEFAULTS)


def test_a_preflight_stop_names_the_timeout_and_its_option(timings: Timings) -> None:
    """The silent endpoint at the default options: one line, one timeout, which one and how
    to change it."""
    output = timings.runs["all:no_response:defaults"].output
    lines = [line for line in output.splitlines() if "chatcompat: " in line]
    assert len(lines) == 1 and "no data for 30 s (read timeout, --request-timeout)" in lines[0]
