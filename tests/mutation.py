"""Mutation testing of the check modules: does every assertion have a fault that needs it?

Our own mutants of each check's predicate, not a generic tool: a generic mutator re-runs the
project's whole test suite per mutant (the fault matrix alone is ~150 suite runs), which this
2-core machine cannot afford for hundreds of mutants. Here each mutant is judged only by the
suite runs that can see it: the clean run and the faults that break the checks of the
mutated function (or of its module, for a shared helper).

Operators, applied one at a time to ``conformance/checks/*.py``:

* ``drop-expect``: ``expect(cond, ...)`` -> ``expect(True, ...)`` (the assertion is gone);
* ``flip-compare``: the first comparison of an ``expect`` condition is negated or moved off
  by one (``==``/``!=``, ``<=``/``<``, ``in``/``not in``, ...);
* hand-written mutants (``HAND_MUTANTS``) for defects review found: a stream check skipping
  the include_usage stream, ``content: null`` accepted without an explanation, tool deltas
  grouped across choices, no name required on the first tool-call fragment.

A mutant is *killed* when some run's verdicts differ from the unmutated baseline (outcome of
a check, or a fault's expected message fragment no longer in the message). Usage::

    python tests/mutation.py [--only NAME ...] [--limit N] [--json reports/mutants.json]
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

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "conformance"
CHECKS = PACKAGE / "checks"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
#: Modules other sessions own or that need the SDK and recorded data: not mutated here.
EXCLUDED = {"__init__.py", "sdk.py", "reasoning.py"}
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


def generated_mutants() -> list[Mutant]:
    out = []
    for path in sorted(CHECKS.glob("*.py")):
        if path.name in EXCLUDED:
            continue
        source = path.read_text()
        tree = ast.parse(source)
        module_checks = _module_checks(tree)
        for function, node in _functions(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "expect"):
                continue
            if not node.args:
                continue
            condition = node.args[0]
            text = ast.get_source_segment(source, condition)
            if text is None or text == "False":
                continue
            checks = _check_ids(function) or module_checks
            base = f"{path.stem}:{condition.lineno}"
            out.append(
                Mutant(
                    f"{base}:drop-expect",
                    path.name,
                    text,
                    "True",
                    condition.lineno,
                    function.name,
                    checks,
                )
            )
            compare = next((n for n in ast.walk(condition) if isinstance(n, ast.Compare)), None)
            if compare is not None and type(compare.ops[0]) in FLIPS:
                flipped = ast.Compare(
                    compare.left,
                    [FLIPS[type(compare.ops[0])](), *compare.ops[1:]],
                    compare.comparators,
                )
                old = ast.get_source_segment(source, compare)
                if old:
                    out.append(
                        Mutant(
                            f"{base}:flip-compare",
                            path.name,
                            old,
                            ast.unparse(flipped),
                            compare.lineno,
                            function.name,
                            checks,
                        )
                    )
    return out


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
    for name, fault in FAULTS.items():
        hit = [c for c in fault.breaks if touches(c)]
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
            fragment = fault.fragment(check_id)
            if fragment and check_id in fault.breaks:
                verdict += "+message" if fragment in entry["message"] else "-message"
        out[check_id] = verdict
    return out


def _selection(checks: list[str]) -> list[str]:
    return ["-k", " or ".join(sorted({c.split("[")[0] for c in checks}))]


def run_jobs(origin: str, package_root: Path | None, jobs, workdir: Path) -> dict:
    """Run suite jobs in one worker process importing conformance from ``package_root``."""
    from suite_runner import suite_args

    plan = []
    for name, (faults, judged) in jobs.items():
        reports = workdir / name / "reports"
        plan.append(
            {"reports": str(reports), "args": [*suite_args(origin, *faults), *_selection(judged)]}
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
    got = run_jobs(origin, root / "pkg", jobs, root / "runs")
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
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda m: judge(m, server.origin, base, scratch), mutants))


# --- worker and command line -----------------------------------------------------------------


def worker(plan_file: Path) -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", type=Path)
    parser.add_argument("--only", nargs="*", help="mutant names (or prefixes) to run")
    parser.add_argument("--hand", action="store_true", help="only the hand-written mutants")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "mutants.json")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    mutants = HAND_MUTANTS if args.hand else [*HAND_MUTANTS, *generated_mutants()]
    if args.only:
        mutants = [m for m in mutants if any(m.name.startswith(o) for o in args.only)]
    if args.limit:
        mutants = mutants[: args.limit]
    started = time.monotonic()
    done = run(mutants)
    done = [m for m in done if m.killed is not None]  # None: the text moved, not applied
    killed = sum(1 for m in done if m.killed)
    for m in done:
        if not m.killed:
            print(f"SURVIVED {m.name} in {m.function or m.module}: {m.old!r} -> {m.new!r}")
    score = 100 * killed / max(len(done), 1)
    print(
        f"mutation score: {killed}/{len(done)} killed ({score:.1f}%) "
        f"in {time.monotonic() - started:.0f}s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"killed": killed, "total": len(done), "mutants": [asdict(m) for m in done]}, indent=1
        )
    )
    return 0 if killed == len(done) else 1


if __name__ == "__main__":
    sys.exit(main())
