"""Mutation testing of the check modules: does every assertion have a fault that needs it?

Our own mutants of each check's predicate, not a generic tool: a generic mutator re-runs the
project's whole test suite per mutant (the fault matrix alone is ~150 suite runs), which this
2-core machine cannot afford for hundreds of mutants. Here each mutant is judged only by the
suite runs that can see it: the clean run and the faults that break the checks of the
mutated function (or of its module, for a shared helper).

Operators, applied one at a time to every module of ``conformance/checks/``:

* ``drop-expect``: ``expect(cond, ...)`` -> ``expect(True, ...)`` (the assertion is gone);
* ``flip-compare``: the first comparison of an ``expect`` condition is negated or moved off
  by one (``==``/``!=``, ``<=``/``<``, ``in``/``not in``, ...);
* ``drop-guard``: ``if cond: not_applicable(...)`` (or a helper that only calls it,
  ``pytest.skip``, ``return``, ``continue``) -> ``if False: ...`` (the premise is no longer
  checked: the check judges what it cannot, or judges nothing);
* ``early-return`` / ``early-na``: ``return`` / ``not_applicable(...)`` inserted at the top of
  each ``@check`` function (the check passes, or never judges, whatever the server does);
* hand-written mutants (``HAND_MUTANTS``) for defects review found: a stream check skipping
  the include_usage stream, ``content: null`` accepted without an explanation, tool deltas
  grouped across choices, no name required on the first tool-call fragment.

A mutant is *killed* when some run's verdicts differ from the unmutated baseline (outcome of
a check, or a fault's expected message fragment no longer in the message). Checks that judge
nothing on the default reference server (the ``reasoning.*`` area) are also run against the
reasoning profiles (``PROFILE_JOBS``). Usage::

    python tests/mutation.py [--only NAME ...] [--limit N] [--sample K/N] [--operators ...]
                             [--json reports/mutants.json]
    python tests/mutation.py --worker plan.json   (internal: runs suite jobs in one process)
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import fault_table  # tests/: what each fault breaks, from the checks' declarations

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "conformance"
CHECKS = PACKAGE / "checks"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
EXCLUDED = {"__init__.py"}
#: Check areas that judge nothing on the default reference server: profiles that exercise them.
PROFILE_JOBS = {"reasoning": ("reasoning", "reasoning_content")}
#: Statements that end a check without a verdict (or its loop step): a guard's body.
GUARD_CALLS = {"not_applicable", "skip", "unmet"}  # unmet: a premise ends it
OPERATORS = ("drop-expect", "flip-compare", "drop-guard", "early-return", "early-na")
EARLY = {"early-return": "return", "early-na": 'not_applicable("mutant: judged nothing")'}
FLIPS = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass
class Mutant:
    name: str
    module: str  # file name under conformance/checks/
    old: str  # exact source text replaced (first occurrence after ``line``)
    new: str
    line: int = 0
    function: str = ""
    checks: list[str] = field(default_factory=list)  # base check ids whose runs judge it
    killed: bool | None = None
    killed_by: str = ""


#: Defects found by review (issue 10): each must be killed by the fast CI subset.
HAND_MUTANTS = [
    Mutant(
        "stream-skips-include-usage-stream",
        "stream.py",
        "    return (shared.stream, extra)\n",
        "    return (shared.stream,)\n",
        checks=["stream.chunk_object"],
    ),
    Mutant(
        "null-content-always-allowed",
        "response.py",
        "return isinstance(content, str) or (content is None and explained)",
        "return isinstance(content, str) or content is None",
        checks=["response.content_string"],
    ),
    Mutant(
        "tool-deltas-grouped-across-choices",
        "tools.py",
        'calls.setdefault((choice, delta["index"]), []).append(delta)',
        'calls.setdefault((0, delta["index"]), []).append(delta)',
        checks=["tools.stream_deltas"],
    ),
    Mutant(
        "tool-delta-name-not-required",
        "tools.py",
        'if not (head.get("id") and _call_type_ok(head) and call_name(head)):',
        'if not (head.get("id") and _call_type_ok(head)):',
        checks=["tools.stream_deltas"],
    ),
    Mutant(
        "tool-delta-type-not-required",
        "tools.py",
        'if not (head.get("id") and _call_type_ok(head) and call_name(head)):',
        'if not (head.get("id") and call_name(head)):',
        checks=["tools.stream_deltas"],
    ),
    Mutant(
        "usage-shape-judged-without-usage-chunk",
        "usage.py",
        "    if not found:\n        _no_usage_chunk()\n    number, chunk = found[-1]\n",
        "    if not found:\n        return\n    number, chunk = found[-1]\n",
        checks=["usage.stream_chunk_empty_choices"],
    ),
    Mutant(
        "structured-refusal-read-as-not-json",
        "response_format.py",
        "    if content is None and refusal:\n",
        "    if False:\n",
        checks=["response_format.json_schema"],
    ),
    Mutant(
        "media-accepted-and-ignored-passes",
        "messages.py",
        "        tokens[0] > tokens[1],\n",
        "        tokens[0] >= tokens[1],\n",
        checks=["messages.image_input"],
    ),
]


# --- generating mutants ----------------------------------------------------------------------


def _check_ids(function: ast.FunctionDef | None) -> list[str]:
    """The check ids a decorated test function registers (empty for helpers)."""
    ids = []
    for deco in function.decorator_list if function else []:
        if isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "check":
            first = deco.args[0] if deco.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                ids.append(first.value)
    return ids


def _module_checks(tree: ast.Module) -> list[str]:
    ids = [
        i for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) for i in _check_ids(node)
    ]
    for node in ast.walk(tree):  # check("id", ...)(factory()) assignments (test_limits)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                ids.append(first.value)
    return sorted(set(ids))


def _functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef, ast.AST]]:
    for top in tree.body:
        if isinstance(top, ast.FunctionDef):
            for node in ast.walk(top):
                yield top, node


def _expect_mutants(path: Path, source: str, function, node, checks) -> list[Mutant]:
    """drop-expect and flip-compare for one ``expect(...)`` call."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "expect"):
        return []
    if not node.args:
        return []
    condition = node.args[0]
    text = ast.get_source_segment(source, condition)
    if text is None or text == "False":
        return []
    base = f"{path.stem}:{condition.lineno}"
    out = [
        Mutant(
            f"{base}:drop-expect", path.name, text, "True", condition.lineno, function.name, checks
        )
    ]
    compare = next((n for n in ast.walk(condition) if isinstance(n, ast.Compare)), None)
    if compare is not None and type(compare.ops[0]) in FLIPS:
        flipped = ast.Compare(
            compare.left,
            [FLIPS[type(compare.ops[0])](), *compare.ops[1:]],
            compare.comparators,
        )
        old = ast.get_source_segment(source, compare)
        if old:
            new = ast.unparse(flipped)
            name = f"{base}:flip-compare"
            out.append(Mutant(name, path.name, old, new, compare.lineno, function.name, checks))
    return out


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return getattr(func, "id", "") or getattr(func, "attr", "")
    return ""


def _ending_helpers(tree: ast.Module) -> set[str]:
    """Module functions whose body always ends the check unjudged (``_no_usage_chunk``)."""
    return {
        top.name
        for top in tree.body
        if isinstance(top, ast.FunctionDef)
        and top.body
        and _call_name(top.body[-1]) in GUARD_CALLS
        and not any(isinstance(n, (ast.If, ast.For, ast.While, ast.Try)) for n in top.body)
    }


def _is_guard(node: ast.AST, enders: set[str]) -> bool:
    """``if cond: <end the check or the loop step>`` with no else branch."""
    if not isinstance(node, ast.If) or node.orelse or len(node.body) != 1:
        return False
    body = node.body[0]
    if isinstance(body, (ast.Return, ast.Continue)):
        return isinstance(body, ast.Continue) or body.value is None
    return _call_name(body) in GUARD_CALLS | enders


def _guard_mutant(path: Path, source: str, function, node: ast.If, checks) -> Mutant | None:
    text = ast.get_source_segment(source, node.test)
    if text is None or "\n" in text:  # a multi-line condition: replaced by its first line
        lines = source.splitlines()
        first = lines[node.test.lineno - 1][node.test.col_offset :]
        if not first.rstrip().endswith(("(", "[", "{")):
            return None
        text = first.rstrip()[:-1]
        if not text:
            return None
        new = "False and ("
        text += first.rstrip()[-1]
    else:
        new = "False"
    name = f"{path.stem}:{node.lineno}:drop-guard"
    return Mutant(name, path.name, text, new, node.test.lineno, function.name, checks)


def _early_mutants(path: Path, source: str, function: ast.FunctionDef) -> list[Mutant]:
    """``return`` / ``not_applicable(...)`` as the first statement of a check function."""
    ids = _check_ids(function)
    body = function.body
    if not ids or not body:
        return []
    first = body[1] if len(body) > 1 and _is_docstring(body[0]) else body[0]
    line = source.splitlines(keepends=True)[first.lineno - 1]
    indent = line[: len(line) - len(line.lstrip())]
    return [
        Mutant(
            f"{path.stem}:{function.lineno}:{op}",
            path.name,
            line,
            f"{indent}{statement}\n{line}",
            first.lineno,
            function.name,
            ids,
        )
        for op, statement in EARLY.items()
    ]


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant)


def generated_mutants(operators: tuple[str, ...] = OPERATORS) -> list[Mutant]:
    out: list[Mutant] = []
    for path in sorted(CHECKS.glob("*.py")):
        if path.name in EXCLUDED:
            continue
        source = path.read_text()
        tree = ast.parse(source)
        module_checks = _module_checks(tree)
        enders = _ending_helpers(tree)
        for function, node in _functions(tree):
            checks = _check_ids(function) or module_checks
            out += _expect_mutants(path, source, function, node, checks)
            if _is_guard(node, enders):
                guard = _guard_mutant(path, source, function, node, checks)
                out += [guard] if guard else []
        for top in tree.body:
            if isinstance(top, ast.FunctionDef):
                out += _early_mutants(path, source, top)
    return [m for m in out if m.name.rsplit(":", 1)[-1] in operators]


def sample(mutants: list[Mutant], spec: str) -> list[Mutant]:
    """``K/N``: every N-th mutant from the K-th (0-based), in the stable generated order."""
    k, n = (int(x) for x in spec.split("/"))
    return mutants[k::n]


def apply(mutant: Mutant, source: str) -> str:
    """The module source with the mutant applied at (or after) its line."""
    lines = source.splitlines(keepends=True)
    offset = sum(len(x) for x in lines[: max(mutant.line - 1, 0)])
    at = source.find(mutant.old, offset)
    if at < 0:
        raise ValueError(f"{mutant.name}: text not found: {mutant.old!r}")
    return source[:at] + mutant.new + source[at + len(mutant.old) :]


# --- judging ---------------------------------------------------------------------------------


def plan_for(checks: list[str]) -> dict[str, tuple[tuple[str, ...], list[str]]]:
    """Job name -> (faults played, check ids judged): the clean run and every fault,
    not-passing variant or combination that touches one of ``checks``."""
    from test_fault_matrix import COMBINATIONS, UNSUPPORTED_BY_VARIANT

    from conformance.reference.faults import FAULTS

    def touches(check_id: str) -> bool:
        return check_id.split("[")[0] in checks

    jobs: dict[str, tuple[tuple[str, ...], list[str]]] = {"clean": ((), list(checks))}
    for area, profiles in PROFILE_JOBS.items():
        hit = [c for c in checks if c.startswith(f"{area}.")]
        for profile in profiles if hit else ():
            jobs[profile] = ((profile,), hit)
    for name in FAULTS:
        hit = [c for c in fault_table.breaks(name) if touches(c)]
        if hit:
            jobs[name] = ((name,), hit)
    for variant, expected in UNSUPPORTED_BY_VARIANT.items():  # allowed, but not a pass
        hit = [c for c in expected if touches(c)]
        if hit:
            jobs[variant] = ((variant,), hit)
    for names, expected in COMBINATIONS.items():
        hit = [c for c in expected if touches(c)]
        if hit:
            jobs["+".join(names)] = (names, hit)
    return jobs


def signature(reports: Path, faults: tuple[str, ...], judged: list[str]) -> dict[str, str]:
    """check id -> outcome (and whether each fault's expected fragment is in the message)."""
    from conformance.reference.faults import FAULTS

    try:
        results = json.loads((reports / "results.json").read_text())["checks"]
    except (OSError, ValueError, KeyError):
        return {"<run>": "no results"}
    bases = {c.split("[")[0] for c in judged}
    out = {}
    for check_id, entry in results.items():
        if check_id.split("[")[0] not in bases and check_id not in judged:
            continue
        verdict = entry["outcome"]
        fault = FAULTS.get(faults[0]) if len(faults) == 1 else None  # None: variant, combo
        if fault is not None:
            fragment = fault_table.fragment(fault.name, check_id)
            if fragment and fault_table.covers(fault.name, check_id):
                verdict += "+message" if fragment in entry["message"] else "-message"
        out[check_id] = verdict
    return out


def _selection(checks: list[str]) -> list[str]:
    return ["-k", " or ".join(sorted({c.split("[")[0] for c in checks}))]


def _same(verdicts: dict[str, str], baseline: dict[str, str], judged: list[str]) -> bool:
    bases = {c.split("[")[0] for c in judged}
    return verdicts == {k: v for k, v in baseline.items() if k.split("[")[0] in bases}


def run_jobs(
    origin: str, package_root: Path | None, jobs, workdir: Path, baselines: dict | None = None
) -> dict:
    """Run suite jobs in one worker process importing conformance from ``package_root``.

    With ``baselines`` the worker stops at the first job whose verdicts differ (the mutant is
    killed; the remaining jobs would add nothing): the jobs not run are absent from the result.
    """
    from suite_runner import suite_args

    plan = []
    for name, (faults, judged) in jobs.items():
        reports = workdir / name / "reports"
        plan.append(
            {
                "reports": str(reports),
                "args": [*suite_args(origin, *faults), *_selection(judged)],
                "faults": list(faults),
                "judged": judged,
                "expected": None if baselines is None else baselines[name],
            }
        )
    workdir.mkdir(parents=True, exist_ok=True)
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(plan))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if package_root is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(package_root), env.get("PYTHONPATH", "")])
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", str(plan_file)],
        env=env,
        cwd=workdir,
        timeout=900,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {
        name: signature(workdir / name / "reports", faults, judged)
        for name, (faults, judged) in jobs.items()
        if baselines is None or (workdir / name / "reports").is_dir()
    }


def _copy_package(source: Path, root: Path) -> Path:
    """A copy of the package under ``root/pkg`` (schemas beside it, where schemas.py looks)."""
    shutil.copytree(
        source, root / "pkg" / "conformance", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "pkg" / "schemas").symlink_to(ROOT / "schemas")
    return root / "pkg" / "conformance"


def judge(mutant: Mutant, origin: str, baselines: dict, scratch: Path) -> Mutant:
    """Run the mutant's jobs against a patched copy of the package; compare to baseline."""
    jobs = plan_for(mutant.checks)
    root = scratch / mutant.name.replace(":", "_")
    copy = _copy_package(scratch / "pristine" / "pkg" / "conformance", root)
    target = copy / "checks" / mutant.module
    try:
        target.write_text(apply(mutant, target.read_text()))
    except ValueError as exc:
        mutant.killed, mutant.killed_by = None, f"not applied: {exc}"
        return mutant
    got = run_jobs(origin, root / "pkg", jobs, root / "runs", baselines)
    for name, verdicts in got.items():
        judged = {c.split("[")[0] for c in jobs[name][1]}
        expected = {k: v for k, v in baselines[name].items() if k.split("[")[0] in judged}
        if verdicts != expected:
            changed = sorted(
                k for k in verdicts.keys() | expected.keys() if verdicts.get(k) != expected.get(k)
            )
            diff = {k: (expected.get(k), verdicts.get(k)) for k in changed[:3]}
            mutant.killed, mutant.killed_by = True, f"{name}: {diff}"
            break
    else:
        mutant.killed = False
    shutil.rmtree(root, ignore_errors=True)
    return mutant


def baseline(origin: str, mutants: list[Mutant], scratch: Path) -> dict:
    """The unmutated verdicts, from a snapshot of the package (edits during a long run
    neither shift the mutants nor change the baseline)."""
    _copy_package(PACKAGE, scratch / "pristine")
    checks = sorted({c for m in mutants for c in m.checks})
    return run_jobs(origin, scratch / "pristine" / "pkg", plan_for(checks), scratch / "baseline")


def run(mutants: list[Mutant], workers: int = 2) -> list[Mutant]:
    from suite_runner import API_KEY

    from conformance.reference import ReferenceConfig, ReferenceServer

    with (
        ReferenceServer(ReferenceConfig(api_key=API_KEY)) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        scratch = Path(tmp)
        base = baseline(server.origin, mutants, scratch)
        done = iter(range(1, len(mutants) + 1))

        def one(mutant: Mutant) -> Mutant:
            judge(mutant, server.origin, base, scratch)
            verdict = {True: "killed", False: "SURVIVED", None: "not applied"}[mutant.killed]
            print(f"[{next(done)}/{len(mutants)}] {mutant.name}: {verdict}", file=sys.stderr)
            return mutant

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, mutants))


# --- worker and command line -----------------------------------------------------------------


def worker(plan_file: Path) -> None:
    """Run the plan's jobs in order; stop after the first that differs from its baseline."""
    import pytest

    for job in json.loads(plan_file.read_text()):
        reports = Path(job["reports"])
        reports.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pytest.main(
                [
                    "--pyargs",
                    "conformance",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--reports-dir={reports}",
                    *job["args"],
                ]
            )
        expected = job.get("expected")
        if expected is not None:
            got = signature(reports, tuple(job["faults"]), job["judged"])
            if not _same(got, expected, job["judged"]):
                return


def _operator(mutant: Mutant) -> str:
    last = mutant.name.rsplit(":", 1)[-1]
    return last if last in OPERATORS else "hand"


def _tree_state() -> dict[str, object]:
    """The commit measured, and whether the package differed from it (then say so)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "package_modified": bool(git("status", "--porcelain", "--", "conformance", "schemas")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", type=Path)
    parser.add_argument("--only", nargs="*", help="mutant names (or prefixes) to run")
    parser.add_argument("--hand", action="store_true", help="only the hand-written mutants")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument(
        "--sample", help="K/N: every N-th generated mutant from the K-th (deterministic)"
    )
    parser.add_argument("--operators", nargs="*", choices=OPERATORS, default=list(OPERATORS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "mutants.json")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    generated = [] if args.hand else generated_mutants(tuple(args.operators))
    if args.sample:
        generated = sample(generated, args.sample)
    mutants = [*HAND_MUTANTS, *generated]
    if args.only:
        mutants = [m for m in mutants if any(m.name.startswith(o) for o in args.only)]
    if args.limit:
        mutants = mutants[: args.limit]
    started = time.monotonic()
    tree = _tree_state()
    done = run(mutants, args.workers)
    skipped = [m for m in done if m.killed is None]  # the text moved: not applied
    done = [m for m in done if m.killed is not None]
    killed = sum(1 for m in done if m.killed)
    for m in done:
        if not m.killed:
            print(f"SURVIVED {m.name} in {m.function or m.module}: {m.old!r} -> {m.new!r}")
    for m in skipped:
        print(f"NOT APPLIED {m.name}: {m.killed_by}")
    seconds = time.monotonic() - started
    score = 100 * killed / max(len(done), 1)
    print(f"mutation score: {killed}/{len(done)} killed ({score:.1f}%) in {seconds:.0f}s")
    by_operator: dict[str, list[int]] = {}
    for m in done:
        counts = by_operator.setdefault(_operator(m), [0, 0])
        counts[0] += bool(m.killed)
        counts[1] += 1
    print("by operator: " + ", ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(by_operator.items())))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "killed": killed,
                "total": len(done),
                "not_applied": len(skipped),
                "by_operator": by_operator,
                "seconds": round(seconds),
                "command": " ".join(["python", *sys.argv]),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **tree,
                "mutants": [asdict(m) for m in done],
            },
            indent=1,
        )
    )
    return 0 if killed == len(done) else 1


if __name__ == "__main__":
    sys.exit(main())
