"""Run-to-run diff: which checks changed verdict between two results.json files.

Vendors run the suite in CI on every release; a fail that was there last time is known, a new
one is news. ``python -m conformance.face.diff OLD/results.json NEW/results.json`` lists the changes
(new failures first), writes them into NEW's results.json and index.html, and exits 1 when
the gate (``--fail-on``, default: any new fail) trips. The same comparison runs inside the
suite with ``--baseline=OLD/results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: How bad an outcome is; a change to a higher rank is a regression. None: the check is absent.
RANK = {
    "pass": 0,
    "info": 0,
    "skipped": 1,
    "unsupported": 1,
    "not_applicable": 1,
    "not_judged": 1,  # no answer came: neither a regression nor a fix (see _kind)
    "warn": 2,
    "fail": 3,
    "error": 3,
}
FAILING = frozenset({"fail", "error"})
#: Kinds of change, in the order they are listed (new failures first).
KINDS = ("new_fail", "regressed", "changed", "added", "removed", "improved")
GATES = {
    "new-fail": frozenset({"new_fail"}),
    "regression": frozenset({"new_fail", "regressed"}),
    "any-change": frozenset(KINDS),
    "never": frozenset(),
}
EXIT_TRIPPED = 1
EXIT_USAGE = 2


def _kind(before: str | None, after: str | None) -> str | None:
    if before == after:
        return None
    if after in FAILING and before not in FAILING:
        return "new_fail"
    if before is None:
        return "added"
    if after is None:
        return "removed"
    if "not_judged" in (before, after):
        return "changed"  # a check that got no answer says nothing about the endpoint
    rank_before, rank_after = RANK.get(before, 1), RANK.get(after, 1)
    if rank_after > rank_before:
        return "regressed"
    if rank_after < rank_before and rank_after == 0:
        return "improved"  # only a pass is one: fail -> not applicable proves no fix
    return "changed"


def compare(old: dict[str, Any], new: dict[str, Any], baseline: str = "") -> dict[str, Any]:
    """The verdict changes from ``old`` to ``new`` (two results.json documents)."""
    old_checks = old.get("checks") or {}
    new_checks = new.get("checks") or {}
    entries = []
    for cid in sorted(old_checks.keys() | new_checks.keys()):
        before = (old_checks.get(cid) or {}).get("outcome")
        after = (new_checks.get(cid) or {}).get("outcome")
        kind = _kind(before, after)
        if kind is not None:
            message = (new_checks.get(cid) or {}).get("message", "")
            entries.append(
                {"check": cid, "kind": kind, "before": before, "after": after, "message": message}
            )
    entries.sort(key=lambda e: KINDS.index(e["kind"]))  # stable: ids stay sorted per kind
    old_ep, new_ep = old.get("endpoint") or {}, new.get("endpoint") or {}
    notes = []
    if old_ep.get("model") != new_ep.get("model"):
        notes.append(f"the model differs: {old_ep.get('model')!r} -> {new_ep.get('model')!r}")
    for name, run in (("baseline", old), ("new", new)):
        if run.get("complete") is False or run.get("run_error"):
            reason = run.get("run_error") or "interrupted"
            notes.append(
                f"the {name} run was incomplete ({reason}): its checks not judged (or absent) "
                "got no verdict"
            )
    return {
        "baseline": {
            "path": baseline,
            "started_at": old.get("started_at"),
            "version": (old.get("tool") or {}).get("version"),
            "model": old_ep.get("model"),
        },
        "counts": {k: sum(e["kind"] == k for e in entries) for k in KINDS},
        "entries": entries,
        "notes": notes,
    }


def tripped(diff: dict[str, Any], fail_on: str) -> bool:
    return any(diff["counts"].get(kind) for kind in GATES[fail_on])


_LABELS = {
    "new_fail": "NEW FAIL",
    "regressed": "REGRESSED",
    "changed": "CHANGED",
    "added": "ADDED",
    "removed": "REMOVED",
    "improved": "IMPROVED",
}


def _arrow(entry: dict[str, Any]) -> str:
    return f"{entry['before'] or '(absent)'} -> {entry['after'] or '(absent)'}"


def format_text(diff: dict[str, Any]) -> list[str]:
    """Terminal lines: one summary line, then one per changed check."""
    base = diff["baseline"]
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in diff["counts"].items() if n)
    head = f"since baseline ({base.get('started_at') or 'unknown date'}): {counts or 'no change'}"
    lines = [head, *(f"note: {n}" for n in diff["notes"])]
    for e in diff["entries"]:
        line = f"{_LABELS[e['kind']]:<10} {e['check']}  {_arrow(e)}"
        if e["message"] and e["kind"] in ("new_fail", "regressed", "changed", "added"):
            line += f"  -- {e['message'][:200]}"
        lines.append(line)
    return lines


def format_markdown(diff: dict[str, Any]) -> str:
    """For a CI job summary or a pull-request comment."""
    lines = ["| change | check | before | after |", "|---|---|---|---|"]
    for e in diff["entries"]:
        cells = (_LABELS[e["kind"]], f"`{e['check']}`", e["before"] or "", e["after"] or "")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join([format_text(diff)[0], "", *lines]) + "\n"


def _load(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"conformance.face.diff: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("checks"), dict):
        raise SystemExit(f"conformance.face.diff: {path} is not a chatcompat results.json")
    return data


def _write_into_report(path: str, results: dict[str, Any], diff: dict[str, Any]) -> None:
    from conformance.face.report_page import write_report  # late: the diff itself needs no HTML

    results["diff"] = diff
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(results, indent=2) + "\n")
    partial.replace(target)
    write_report(results, target.parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.face.diff",
        description="List the checks whose verdict changed between two chatcompat runs.",
    )
    parser.add_argument("old", help="the baseline results.json (e.g. the last release's)")
    parser.add_argument("new", help="the results.json of this run")
    parser.add_argument(
        "--fail-on",
        choices=sorted(GATES),
        default="new-fail",
        help="exit 1 on: a new fail or error (default), any regression (warn, unsupported "
        "included), any change, or never",
    )
    parser.add_argument(
        "--format", choices=("text", "markdown", "json"), default="text", help="output format"
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="do not write the diff into NEW's results.json and index.html",
    )
    args = parser.parse_args(argv)
    try:
        old, new = _load(args.old), _load(args.new)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    diff = compare(old, new, args.old)
    if args.format == "json":
        print(json.dumps(diff, indent=2))
    elif args.format == "markdown":
        print(format_markdown(diff), end="")
    else:
        print("\n".join(format_text(diff)))
    if not args.no_write:
        _write_into_report(args.new, new, diff)
    return EXIT_TRIPPED if tripped(diff, args.fail_on) else 0


if __name__ == "__main__":
    sys.exit(main())
