"""The published matrix of real servers: ``docs/matrix/`` from one suite run per server.

``python -m realservers matrix`` (``nox -s matrix``) starts each server of :data:`SERVERS`,
runs the whole suite against it (evidence in ``reports/matrix/<server>/``) and writes:

- ``docs/matrix/<server>/results.json``: what was tested (server, versions, model, settings),
  with which suite (version, commit), what it cost (requests, tokens, wall time) and every
  verdict with its triage label and one line of why, from ``expectations/<server>.toml``;
- ``docs/matrix/history/<server>.json``: the verdicts of every suite version (and commit) the
  server was run at, so the page can show what changed since the previous one
  (:func:`conformance.face.diff.compare`): a server's progress and a suite change alike;
- ``docs/matrix/index.html`` (:mod:`realservers.matrix_page`).

Triage lives in the expectation files, never in the page: a verdict with no matching
expectation is shown as *untriaged* and the run exits 1 until someone triages it
(``nox -s rerecord -- <server>``), so every non-pass verdict on the page carries a label.
``--render-only`` rebuilds results.json labels and the page from stored runs after triage.
Fast servers (llama.cpp, LiteLLM) and slow ones (transformers, FastChat, vLLM) run in two
lanes side by side when the machine has the cores for it (``--lanes``). What is published
(labels, history, files) is :mod:`realservers.matrix_data`; the page is
:mod:`realservers.matrix_page`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.face import diff as run_diff
from realservers import expectations
from realservers.expectations import ExpectationFile
from realservers.matrix_data import (
    FAST,
    NOT_JUDGED,
    ROOT,
    SERVERS,
    SLOW,
    UNTRIAGED,
    build_results,
    changes_since_previous,
    git,
    label_of,
    load_published,
    publish,
    record_history,
    relabel,
    seed_history,
    suite_identity,
    untriaged,
    write_json,
)

__all__ = [  # the data half is re-exported: one import for callers and tests
    "FAST",
    "SERVERS",
    "SLOW",
    "UNTRIAGED",
    "Outcome",
    "build_results",
    "changes_since_previous",
    "keep_unjudged",
    "label_of",
    "leaks",
    "main",
    "print_verdict_diff",
    "publish",
    "record_history",
    "relabel",
    "run_lanes",
    "seed_history",
    "suite_identity",
    "untriaged",
]

DEFAULT_OUT = Path("docs/matrix")
DEFAULT_REPORTS = Path("reports/matrix")
DEFAULT_EXPECTATIONS = Path("expectations")
#: Slow servers answer one request at a time at a few tokens per second on 2 busy cores: a
#: request queued behind the suite's concurrent ones waits minutes for its turn. Longer
#: limits give a verdict on the answer instead of "not judged" for want of patience.
SLOW_SUITE_ARGS = ["--request-timeout=600", "--total-timeout=900"]

# -- running ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    ok: bool
    detail: str
    wall_s: float


def run_one(
    name: str,
    reports: Path,
    exp_dir: Path,
    out: Path,
    suite: Mapping[str, str],
    *,
    update_expectations: bool,
) -> Outcome:
    """Start one server, run the suite, publish its results; never raises."""
    from realservers.suite_runner import run_suite
    from realservers.targets import start_target

    started = time.monotonic()
    exp_path = exp_dir / f"{name}.toml"
    try:
        with start_target(name, reports / name / "server") as target:
            print(f"matrix: {name}: {target.title} at {target.base_url}", flush=True)
            extra = SLOW_SUITE_ARGS if name in SLOW else []
            run = run_suite(
                target, reports / name, extra_args=extra, timeout=3600, allow_incomplete=True
            )
            key = target.api_key or ""
    except Exception as exc:  # a server that does not start costs its column, not the run
        detail = f"{type(exc).__name__}: {exc}"
        (reports / name).mkdir(parents=True, exist_ok=True)
        (reports / name / "matrix-error.txt").write_text(traceback.format_exc())
        return Outcome(name, False, detail.splitlines()[0][:300], time.monotonic() - started)
    leaked = leaks(reports / name, key)
    if leaked:  # nothing of this run is published: the key is in its files
        return Outcome(name, False, f"API key found in {leaked[:3]}", time.monotonic() - started)
    old = expectations.load(exp_path)
    hist_path = out / "history" / f"{name}.json"
    if not hist_path.exists() and old.checks:  # the file's suite is the previous one
        commit = git(ROOT, "log", "-1", "--format=%h", "--diff-filter=AM", "--", str(exp_path))
        write_json(hist_path, seed_history(old, {"version": suite["version"], "commit": commit}))
    if update_expectations:
        judged = keep_unjudged(run.results, old)
        new = expectations.merge(old, [judged], expectations.run_facts(run.run))
        exp_path.write_text(expectations.render(new, name))
        print_verdict_diff(name, old, new)
        old = new
    published = build_results(run.run, run.results, old, suite, f"expectations/{name}.toml")
    publish(name, published, out)
    r = published["run"]
    detail = (
        f"{r['requests']} requests, {r['total_tokens']} tokens, {r['suite_wall_seconds']} s "
        f"suite + {r['startup_seconds']} s start; {len(untriaged(published))} untriaged"
    )
    return Outcome(name, True, detail, time.monotonic() - started)


def keep_unjudged(results: Mapping[str, Any], old: ExpectationFile) -> dict[str, Any]:
    """``results`` where a check got no answer (not judged) keeps its recorded expectation:
    a timeout on a busy machine says nothing about the server."""
    checks = {}
    for cid, c in results.get("checks", {}).items():
        prev = old.checks.get(cid)
        if c.get("outcome") == NOT_JUDGED and prev is not None:
            c = {"outcome": prev.verdict, "message": prev.why}
        checks[cid] = c
    return {**results, "checks": checks}


def leaks(directory: Path, key: str) -> list[str]:
    """Files under ``directory`` (server logs, suite reports) that contain ``key``."""
    if not key:
        return []
    files = [p for p in directory.rglob("*") if p.is_file()]
    return [str(p) for p in files if key in p.read_text(errors="replace")]


def print_verdict_diff(name: str, old: ExpectationFile, new: ExpectationFile) -> None:
    """What re-recording changed, for triage (conformance.face.diff's wording)."""
    as_results = [
        {"checks": {cid: {"outcome": e.verdict, "message": e.why} for cid, e in f.checks.items()}}
        for f in (old, new)
    ]
    found = run_diff.compare(*as_results, baseline=f"expectations/{name}.toml")
    found["baseline"] = {"started_at": str(old.run.get("finished_at") or "no previous file")}
    print(f"{name}: expectations " + "\n  ".join(run_diff.format_text(found)), flush=True)
    todo = expectations.problems(new)
    if todo:
        print(f"{name}: {len(todo)} to triage:\n  " + "\n  ".join(todo), flush=True)


def default_lanes() -> int:
    """Two lanes (fast servers beside slow ones) only with cores for two servers + suites."""
    return 2 if (os.cpu_count() or 1) >= 4 else 1


def run_lanes(
    names: Iterable[str],
    lanes: int,
    job: Callable[[str], Outcome],
) -> list[Outcome]:
    """Fast servers in one lane (thread), slow ones in another; one lane runs all in order."""
    names = list(names)
    groups = [[n for n in names if n not in SLOW], [n for n in names if n in SLOW]]
    groups = [g for g in groups if g] if lanes > 1 else [names]
    results: list[list[Outcome]] = [[] for _ in groups]

    def lane(i: int) -> None:
        results[i] = [job(n) for n in groups[i]]

    threads = [
        threading.Thread(target=lane, args=(i,), name=f"lane-{i}") for i in range(len(groups))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [o for group in results for o in group]


def render_page(out: Path, exp_dir: Path) -> Path:
    """Relabel every stored results.json from the current expectations; write index.html."""
    from realservers.matrix_page import render

    published = load_published(out)
    for name, data in published.items():
        exp = expectations.load(exp_dir / f"{name}.toml")
        data = relabel(data, exp, f"expectations/{name}.toml")
        write_json(out / name / "results.json", data)
        published[name] = data
    page = out / "index.html"
    page.write_text(render(published, generated_at=_now()))
    return page


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def main(args: Any) -> int:
    """``python -m realservers matrix`` (arguments parsed in :mod:`realservers.cli`)."""
    out, exp_dir, reports = Path(args.out), Path(args.expectations_dir), Path(args.reports_dir)
    outcomes: list[Outcome] = []
    if not args.render_only:
        suite = suite_identity()
        names = args.servers or list(SERVERS)
        lanes = args.lanes or default_lanes()
        print(f"matrix: suite {suite['version']} ({suite['commit']}); {names}; {lanes} lane(s)")
        outcomes = run_lanes(
            names,
            lanes,
            lambda n: run_one(
                n, reports, exp_dir, out, suite, update_expectations=args.update_expectations
            ),
        )
    page = render_page(out, exp_dir)
    print(f"wrote {page}")
    if getattr(args, "update_expectations", False) or args.render_only:  # after triage too
        from realservers import compat_doc

        print(f"wrote {compat_doc.write(exp_dir, Path(args.docs))}")
    for o in outcomes:
        state = "ok" if o.ok else "FAILED"
        print(f"  {o.name:<13} {state:<7} {o.wall_s:7.1f} s  {o.detail}")
    pending = {n: untriaged(d) for n, d in load_published(out).items() if untriaged(d)}
    for name, ids in pending.items():
        print(f"{name}: {len(ids)} untriaged verdicts (nox -s rerecord -- {name}): {ids[:8]}")
    failed = [o for o in outcomes if not o.ok]
    return 1 if (pending or failed) else 0


if __name__ == "__main__":  # pragma: no cover - use python -m realservers matrix
    sys.exit("use: python -m realservers matrix")
