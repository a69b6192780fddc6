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
lanes side by side when the machine has the cores for it (``--lanes``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from conformance.face import diff as run_diff
from realservers import expectations
from realservers.expectations import Expectation, ExpectationFile

__all__ = [
    "FAST",
    "SERVERS",
    "SLOW",
    "build_results",
    "label_of",
    "print_verdict_diff",
    "record_history",
    "suite_identity",
]

FAST = ("llamacpp", "litellm")
SLOW = ("transformers", "fastchat", "vllm")
SERVERS = FAST + SLOW
DEFAULT_OUT = Path("docs/matrix")
DEFAULT_REPORTS = Path("reports/matrix")
DEFAULT_EXPECTATIONS = Path("expectations")
#: The three labels the page shows, from the expectation files' triage values.
LABELS = {
    "divergence": "true divergence",
    "redundant": "true divergence",
    "limitation": "known limitation",
    "suite-issue": "suite issue",
}
UNTRIAGED = "untriaged"
NOT_JUDGED = "not_judged"
#: Slow servers answer one request at a time at a few tokens per second on 2 busy cores: a
#: request queued behind the suite's concurrent ones waits minutes for its turn. Longer
#: limits give a verdict on the answer instead of "not judged" for want of patience.
SLOW_SUITE_ARGS = ["--request-timeout=600", "--total-timeout=900"]
_ROOT = Path(__file__).resolve().parents[1]


# -- what the suite is ----------------------------------------------------------------------


def suite_identity(root: Path = _ROOT) -> dict[str, str]:
    """The suite's version and the commit of this checkout ("+dirty" with local changes)."""
    try:
        ver = version("chatcompat")
    except PackageNotFoundError:
        ver = "0+unknown"
    commit = _git(root, "rev-parse", "--short=10", "HEAD") or "unknown"
    if commit != "unknown" and _git(root, "status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {"version": ver, "commit": commit}


def _git(root: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


# -- labels -------------------------------------------------------------------------------------


def label_of(outcome: str, message: str, exp: Expectation | None, file: str) -> dict[str, str]:
    """The triage shown for one verdict: the expectation's when it expects this verdict (or
    marks it unstable); else *untriaged*, saying what the file expected."""
    if outcome == "pass" and (exp is None or exp.verdict == "pass" or exp.unstable):
        return {}
    if outcome == NOT_JUDGED:  # no verdict to triage: the run is incomplete (and says so)
        return {"label": "no verdict", "why": " ".join(message.split())[:200]}
    if exp is not None and (exp.verdict == outcome or exp.unstable) and exp.triage:
        out = {"triage": exp.triage, "label": LABELS.get(exp.triage, exp.triage), "why": exp.why}
        if exp.unstable:
            out["unstable"] = exp.unstable
        return out
    said = " ".join(message.split())[:200]
    expected = f"{file} expects {exp.verdict}" if exp is not None else f"not in {file}"
    return {"triage": UNTRIAGED, "label": UNTRIAGED, "why": f"{expected}; the suite said: {said}"}


# -- results.json of one server -------------------------------------------------------------------


def build_results(
    run: Mapping[str, Any],
    results: Mapping[str, Any],
    exp: ExpectationFile,
    suite: Mapping[str, str],
    exp_file: str,
) -> dict[str, Any]:
    """The compact, publishable results of one server: facts, cost, labelled verdicts."""
    facts = run.get("facts", {})
    spent = results.get("spent", {})
    checks = {}
    for cid, c in sorted(results.get("checks", {}).items()):
        entry = {k: c.get(k) for k in ("outcome", "level", "area") if c.get(k) is not None}
        entry["message"] = " ".join(str(c.get("message", "")).split())[:300]
        entry |= label_of(c["outcome"], c.get("message", ""), exp.checks.get(cid), exp_file)
        checks[cid] = entry
    return {
        "server": {
            "name": run.get("target"),
            "title": run.get("title"),
            "version": facts.get("version", ""),
            "versions": facts.get("versions", {}),
            "model": facts.get("model", {}),
            "settings": facts.get("settings", {}),
        },
        "suite": dict(suite),
        "run": {
            "finished_at": run.get("finished_at"),
            "complete": results.get("complete"),
            "suite_wall_seconds": run.get("suite_wall_seconds"),
            "startup_seconds": facts.get("startup_seconds"),
            "requests": spent.get("requests"),
            "prompt_tokens": spent.get("prompt_tokens"),
            "completion_tokens": spent.get("completion_tokens"),
            "total_tokens": spent.get("total_tokens"),
            "counts": {k: v for k, v in results.get("counts", {}).items() if v},
        },
        "checks": checks,
    }


def relabel(published: dict[str, Any], exp: ExpectationFile, exp_file: str) -> dict[str, Any]:
    """The same results with labels from the current expectation file (after triage)."""
    out = dict(published)
    out["checks"] = {}
    for cid, c in published.get("checks", {}).items():
        base = {k: v for k, v in c.items() if k not in ("triage", "label", "why", "unstable")}
        exp_entry = exp.checks.get(cid)
        out["checks"][cid] = base | label_of(
            c["outcome"], c.get("message", ""), exp_entry, exp_file
        )
    return out


def untriaged(published: Mapping[str, Any]) -> list[str]:
    return [cid for cid, c in published.get("checks", {}).items() if c.get("triage") == UNTRIAGED]


# -- history ---------------------------------------------------------------------------------------


def _key(suite: Mapping[str, Any]) -> tuple[str, str]:
    return (str(suite.get("version", "")), str(suite.get("commit", "")).removesuffix("+dirty"))


def record_history(history: dict[str, Any], published: Mapping[str, Any]) -> dict[str, Any]:
    """``history`` with this run: one entry per suite version and commit (a re-run at the
    same suite replaces its entry), oldest first; ``changes`` in ``published`` are computed
    against the newest entry of a *different* suite."""
    entries = [e for e in history.get("runs", []) if _key(e["suite"]) != _key(published["suite"])]
    entries.append(
        {
            "suite": dict(published["suite"]),
            "server_version": published["server"].get("version", ""),
            "finished_at": published["run"].get("finished_at"),
            "counts": published["run"].get("counts", {}),
            "verdicts": {cid: c["outcome"] for cid, c in published["checks"].items()},
        }
    )
    return {"server": published["server"].get("name"), "runs": entries}


def seed_history(exp: ExpectationFile, suite: Mapping[str, str]) -> dict[str, Any]:
    """A history whose one run is a recorded expectation file: what the server got at the
    suite (``suite``) that recorded it, before the matrix kept history of its own."""
    if not exp.checks:
        return {"runs": []}
    run = {
        "suite": {**suite, "source": "expectations file"},
        "server_version": exp.run.get("version", ""),
        "finished_at": exp.run.get("finished_at"),
        "counts": exp.run.get("counts", {}),
        "verdicts": {cid: e.verdict for cid, e in exp.checks.items()},
    }
    return {"runs": [run]}


def changes_since_previous(history: Mapping[str, Any], published: Mapping[str, Any]) -> dict:
    """conformance.face.diff's comparison with the newest run at another suite (or None)."""
    older = [e for e in history.get("runs", []) if _key(e["suite"]) != _key(published["suite"])]
    if not older:
        return {"since": None, "entries": [], "counts": {}}
    prev = older[-1]
    old = {"checks": {cid: {"outcome": o} for cid, o in prev["verdicts"].items()}}
    new = {"checks": {cid: {"outcome": c["outcome"], "message": ""} for cid, c in
                      published["checks"].items()}}  # fmt: skip
    found = run_diff.compare(old, new)
    since = {**prev["suite"], "server_version": prev.get("server_version", "")}
    return {"since": since, "entries": found["entries"], "counts": found["counts"]}


# -- files -----------------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    partial.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def publish(
    name: str,
    published: dict[str, Any],
    out: Path,
    *,
    keep_history: bool = True,
) -> dict[str, Any]:
    """Write results.json and the history of one server; returns results with changes."""
    hist_path = out / "history" / f"{name}.json"
    history = _read_json(hist_path)
    published["changes"] = changes_since_previous(history, published)
    if keep_history:
        _write_json(hist_path, record_history(history, published))
    _write_json(out / name / "results.json", published)
    return published


def load_published(out: Path) -> dict[str, dict[str, Any]]:
    """Every server's stored results.json, in :data:`SERVERS` order, then any others."""
    found = {p.parent.name: _read_json(p) for p in sorted(out.glob("*/results.json"))}
    order = [n for n in SERVERS if n in found] + sorted(set(found) - set(SERVERS))
    return {n: found[n] for n in order if found[n].get("checks")}


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
        commit = _git(_ROOT, "log", "-1", "--format=%h", "--diff-filter=AM", "--", str(exp_path))
        _write_json(hist_path, seed_history(old, {"version": suite["version"], "commit": commit}))
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
        _write_json(out / name / "results.json", data)
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
    if getattr(args, "update_expectations", False):
        from realservers import compat_doc

        print(f"wrote {compat_doc.write(exp_dir, compat_doc.DEFAULT_OUT)}")
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
