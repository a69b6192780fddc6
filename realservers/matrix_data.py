"""What the matrix publishes per server: labelled verdicts, history, the stored files.

The data half of :mod:`realservers.matrix` (which runs the servers): ``results.json`` of one
server built from a suite run and its expectation file (:func:`build_results`; every
non-pass verdict labelled or marked untriaged), re-labelled after triage (:func:`relabel`),
and the history of suite versions with the changes since the previous one
(:func:`record_history`, :func:`changes_since_previous`, from
:func:`conformance.face.diff.compare`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from conformance.face import diff as run_diff
from realservers.expectations import Expectation, ExpectationFile

__all__ = [
    "FAST",
    "LABELS",
    "NOT_JUDGED",
    "SERVERS",
    "SLOW",
    "UNTRIAGED",
    "build_results",
    "changes_since_previous",
    "label_of",
    "load_published",
    "publish",
    "record_history",
    "relabel",
    "seed_history",
    "suite_identity",
    "untriaged",
]

FAST = ("llamacpp", "litellm")
SLOW = ("transformers", "fastchat", "vllm")
SERVERS = FAST + SLOW
#: The three labels the page shows, from the expectation files' triage values.
LABELS = {
    "divergence": "true divergence",
    "redundant": "true divergence",
    "limitation": "known limitation",
    "suite-issue": "suite issue",
}
UNTRIAGED = "untriaged"
NOT_JUDGED = "not_judged"
#: What "the suite" is, for its identity: the checks and the schemas they validate against.
SUITE_PATHS = ("conformance", "schemas")
ROOT = Path(__file__).resolve().parents[1]


# -- what the suite is ----------------------------------------------------------------------


def suite_identity(root: Path = ROOT) -> dict[str, str]:
    """The suite's version and the last commit that changed the suite itself (its checks and
    schemas, not its docs, launchers or expectations), "+dirty" when those files differ from
    it: runs at the same suite share one identity, so history and changes follow the suite."""
    try:
        ver = version("chatcompat")
    except PackageNotFoundError:
        ver = "0+unknown"
    commit = git(root, "log", "-1", "--format=%h", "--abbrev=10", "--", *SUITE_PATHS) or "unknown"
    if commit != "unknown" and git(root, "status", "--porcelain", "--", *SUITE_PATHS):
        commit += "+dirty"
    return {"version": ver, "commit": commit}


def git(root: Path, *args: str) -> str:
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


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    partial.replace(path)


def read_json(path: Path) -> dict[str, Any]:
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
    history = read_json(hist_path)
    published["changes"] = changes_since_previous(history, published)
    if keep_history:
        write_json(hist_path, record_history(history, published))
    write_json(out / name / "results.json", published)
    return published


def load_published(out: Path) -> dict[str, dict[str, Any]]:
    """Every server's stored results.json, in :data:`SERVERS` order, then any others."""
    found = {p.parent.name: read_json(p) for p in sorted(out.glob("*/results.json"))}
    order = [n for n in SERVERS if n in found] + sorted(set(found) - set(SERVERS))
    return {n: found[n] for n in order if found[n].get("checks")}
