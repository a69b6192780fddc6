"""``python -m realservers``: run the suite against a real server, compare, regenerate.

    python -m realservers run llamacpp                       # run + compare
    python -m realservers run llamacpp --update-expectations --repeat 3
    python -m realservers doc                                # docs/compatibility.md
    python -m realservers run litellm -- -k errors.          # extra pytest args

``run`` exits 0 when every verdict matches ``expectations/<target>.toml``, 1 when one
differs (the diff is printed), 2 when the suite gave no verdicts, 3 when the server did not
start. The nox sessions ``real-<target>`` call this, passing their arguments through.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from realservers import compat_doc, expectations
from realservers.process import ServerStartError
from realservers.suite_runner import SuiteRun, SuiteRunError, run_suite
from realservers.targets import TARGETS, start_target

EXIT_MISMATCH, EXIT_NO_VERDICTS, EXIT_NO_SERVER = 1, 2, 3
RUN_KEYS = ("title", "finished_at", "suite_wall_seconds", "requests", "total_tokens")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m realservers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a real server, run the suite, compare verdicts")
    run.add_argument("target", choices=sorted(TARGETS))
    run.add_argument("--reports-dir", type=Path, help="default: reports/<target>")
    run.add_argument("--expectations", type=Path, help="default: expectations/<target>.toml")
    run.add_argument(
        "--update-expectations",
        action="store_true",
        help="rewrite the expectation file from this run (keeps triage) and the docs page",
    )
    run.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the suite N times on one server; verdicts that vary become 'unstable'",
    )
    run.add_argument("--docs", type=Path, default=compat_doc.DEFAULT_OUT)
    doc = sub.add_parser("doc", help="regenerate docs/compatibility.md from expectations/")
    doc.add_argument("--expectations-dir", type=Path, default=compat_doc.DEFAULT_EXPECTATIONS)
    doc.add_argument("--out", type=Path, default=compat_doc.DEFAULT_OUT)
    return parser


def run_facts(run: dict[str, Any]) -> dict[str, Any]:
    """The ``[run]`` table of an expectation file: what was tested and what it cost."""
    facts = run.get("facts", {})
    out: dict[str, Any] = {k: run[k] for k in RUN_KEYS if run.get(k) is not None}
    out["version"] = facts.get("version", "")
    out["versions"] = facts.get("versions", {})
    out["model"] = facts.get("model", {})
    out["settings"] = facts.get("settings", {})
    out["startup_seconds"] = facts.get("startup_seconds", 0.0)
    out["counts"] = {k: v for k, v in run.get("counts", {}).items() if v}
    return out


def _run(args: argparse.Namespace) -> int:
    target_name: str = args.target
    reports = args.reports_dir or Path("reports") / target_name
    exp_path = args.expectations or compat_doc.DEFAULT_EXPECTATIONS / f"{target_name}.toml"
    runs: list[SuiteRun] = []
    try:
        with start_target(target_name, reports / "server") as target:
            print(f"chatcompat: {target.title} at {target.base_url} ({target.facts['version']})")
            repeat = max(1, args.repeat)
            for i in range(repeat):  # the last run's reports are the ones in reports/<target>
                where = reports if i == repeat - 1 else reports / "repeats" / str(i + 1)
                run = run_suite(target, where, extra_args=args.pytest_args)
                runs.append(run)
                print(_summary(run))
    except ServerStartError as exc:
        print(f"chatcompat: the server did not start: {exc}", file=sys.stderr)
        return EXIT_NO_SERVER
    except SuiteRunError as exc:
        print(f"chatcompat: {exc}", file=sys.stderr)
        return EXIT_NO_VERDICTS
    last = runs[-1]
    old = expectations.load(exp_path)
    if args.update_expectations:
        new = expectations.merge(old, [r.results for r in runs], run_facts(last.run))
        exp_path.parent.mkdir(parents=True, exist_ok=True)
        exp_path.write_text(expectations.render(new, target_name))
        print(f"wrote {exp_path}")
        todo = expectations.problems(new)
        if todo:
            print(f"{len(todo)} entries to triage in {exp_path}:\n  " + "\n  ".join(todo))
        compat_doc.write(exp_path.parent, args.docs)
        print(f"wrote {args.docs}")
        return 0
    comparison = expectations.compare(old, last.results)
    print(comparison.report(target_name, str(exp_path)))
    return 0 if comparison.ok else EXIT_MISMATCH


def _summary(run: SuiteRun) -> str:
    r = run.run
    counts = ", ".join(f"{n} {k}" for k, n in r["counts"].items() if n)
    return (
        f"suite: {counts}; {r['requests']} requests, {r['total_tokens']} tokens, "
        f"{r['suite_wall_seconds']} s; reports in {run.reports_dir}/"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Arguments after ``--`` go to the suite's pytest (argparse's own ``--`` handling does
    not reach past a sub-command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:cut])
    args.pytest_args = argv[cut + 1 :]
    if args.command == "doc":
        compat_doc.write(args.expectations_dir, args.out)
        print(f"wrote {args.out}")
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
