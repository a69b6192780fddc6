"""``python -m realservers``: run the suite against a real server, compare, regenerate.

    python -m realservers run llamacpp                       # run + compare
    python -m realservers run llamacpp --update-expectations --repeat 3
    python -m realservers doc                                # docs/compatibility.md
    python -m realservers run litellm -- -k errors.          # extra pytest args
    python -m realservers rerecord litellm                   # re-record, print the diff
    python -m realservers matrix [--servers a b]             # docs/matrix/ (nox -s matrix)
    python -m realservers matrix --render-only               # re-label and re-render only

``run`` exits 0 when every verdict matches ``expectations/<target>.toml``, 1 when one
differs (the diff is printed), 2 when the suite gave no verdicts, 3 when the server did not
start. The nox sessions ``real-<target>`` call this, passing their arguments through;
``rerecord`` is ``run --update-expectations`` that also prints what changed in the file;
``matrix`` is :mod:`realservers.matrix`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from realservers import compat_doc, expectations
from realservers.expectations import run_facts
from realservers.process import ServerStartError
from realservers.suite_runner import SuiteRun, SuiteRunError, run_suite
from realservers.targets import TARGETS, start_target

EXIT_MISMATCH, EXIT_NO_VERDICTS, EXIT_NO_SERVER = 1, 2, 3


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
    rerecord = sub.add_parser(
        "rerecord", help="re-record one server's expectations and print the diff for triage"
    )
    rerecord.add_argument("target", choices=sorted(TARGETS))
    rerecord.add_argument("--reports-dir", type=Path, help="default: reports/<target>")
    rerecord.add_argument("--expectations", type=Path, help="default: expectations/<target>.toml")
    rerecord.add_argument("--repeat", type=int, default=1, help="as for run")
    rerecord.add_argument("--docs", type=Path, default=compat_doc.DEFAULT_OUT)
    _matrix_parser(sub)
    doc = sub.add_parser("doc", help="regenerate docs/compatibility.md from expectations/")
    doc.add_argument("--expectations-dir", type=Path, default=compat_doc.DEFAULT_EXPECTATIONS)
    doc.add_argument("--out", type=Path, default=compat_doc.DEFAULT_OUT)
    return parser


def _matrix_parser(sub: Any) -> None:
    from realservers import matrix

    m = sub.add_parser("matrix", help="run every real server and write docs/matrix/")
    m.add_argument("--servers", nargs="*", choices=sorted(TARGETS), help="default: all")
    m.add_argument("--lanes", type=int, help="1 = one server at a time; default: by cores")
    m.add_argument("--out", type=Path, default=matrix.DEFAULT_OUT)
    m.add_argument("--reports-dir", type=Path, default=matrix.DEFAULT_REPORTS)
    m.add_argument("--expectations-dir", type=Path, default=matrix.DEFAULT_EXPECTATIONS)
    m.add_argument("--docs", type=Path, default=compat_doc.DEFAULT_OUT)
    m.add_argument(
        "--update-expectations",
        action="store_true",
        help="also merge each run into expectations/<server>.toml (TODO for new verdicts)",
    )
    m.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing: re-label stored results from expectations/ and rewrite the page",
    )


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
        if args.command == "rerecord":
            from realservers.matrix import print_verdict_diff

            print_verdict_diff(target_name, old, new)
        elif todo := expectations.problems(new):
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
    if args.command == "matrix":
        from realservers import matrix

        return matrix.main(args)
    if args.command == "rerecord":
        args.update_expectations = True
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
