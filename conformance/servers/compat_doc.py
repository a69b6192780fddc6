"""Generate ``docs/compatibility.md``: what the suite finds on each real server.

The page is built from the checked-in expectation files, which are themselves written from
runs (``python -m conformance.servers run <target> --update-expectations``): so it shows
verdicts that CI re-checks, with the triage line of every non-pass, and the versions, wall
time, requests and tokens of the run behind them. Levels and requirement sentences come from
the suite's own check registry, so the page never restates the spec by hand.

    python -m conformance.servers doc        # or: python -m conformance.servers.compat_doc
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from . import expectations
from .expectations import Expectation, ExpectationFile
from .targets import TARGETS

__all__ = ["DEFAULT_EXPECTATIONS", "DEFAULT_OUT", "render", "write"]

DEFAULT_EXPECTATIONS = Path("expectations")
DEFAULT_OUT = Path("docs/compatibility.md")
TRIAGE_LABEL = {
    "divergence": "true divergence",
    "false-alarm": "**false alarm** (suite)",
    "redundant": "true, restates another check",
    "observation": "observation",
}
SUMMARY_LABEL = {
    "divergence": "true divergences",
    "false-alarm": "false alarms of the suite",
    "redundant": "restating another check",
    "observation": "observations",
}


def check_registry() -> dict[str, Any]:
    """Every check's CheckInfo, by base ID; importing the suite's modules registers them."""
    import conformance
    from conformance.checks import REGISTRY

    for module in pkgutil.iter_modules(conformance.__path__):
        if module.name.startswith("test_"):
            importlib.import_module(f"conformance.{module.name}")
    return REGISTRY


def _base(check_id: str) -> str:
    return check_id.split("[", 1)[0]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _verdict(e: Expectation | None) -> str:
    if e is None:
        return "-"
    return f"{e.verdict} ~" if e.unstable else e.verdict


def _facts(run: dict[str, Any]) -> list[str]:
    model = run.get("model", {})
    settings = ", ".join(f"{k}={v}" for k, v in run.get("settings", {}).items())
    counts = ", ".join(f"{n} {k}" for k, n in run.get("counts", {}).items())
    lines = [
        f"- **Server:** {run.get('version', '?')}",
        f"- **Model:** `{model.get('file', '?')}` ({model.get('source', '?')}), "
        f"served as `{model.get('alias', '?')}`",
    ]
    if settings:
        lines.append(f"- **Settings:** {settings}")
    lines += [
        f"- **Run:** {run.get('finished_at', '?')}: suite wall time "
        f"{run.get('suite_wall_seconds', '?')} s (+ {run.get('startup_seconds', '?')} s server "
        f"start), {run.get('requests', '?')} requests, {run.get('total_tokens', '?')} tokens",
        f"- **Verdicts:** {counts}",
    ]
    return lines


def _server_section(name: str, exp: ExpectationFile) -> list[str]:
    title = exp.run.get("title", name)
    rows = {cid: e for cid, e in sorted(exp.checks.items()) if e.verdict != "pass" or e.unstable}
    lines = [f"## {title}", "", *_facts(exp.run), _triage_summary(exp), ""]
    if rows:
        lines += ["| Check | Verdict | Triage | Why |", "| --- | --- | --- | --- |"]
        for cid, e in rows.items():
            why = f"{e.why} *Not compared: {e.unstable}*".strip() if e.unstable else e.why
            triage = TRIAGE_LABEL.get(e.triage, e.triage)
            lines.append(f"| `{cid}` | {_verdict(e)} | {triage} | {_cell(why)} |")
        lines += ["", f"The {len(exp.checks) - len(rows)} other checks pass.", ""]
    else:
        lines += ["Every check passes.", ""]
    if exp.notes:
        lines += ["Also seen in raw exchanges (no check covers it yet):", ""]
        lines += [f"- {_cell(note)}" for note in exp.notes]
        lines.append("")
    return lines


def _triage_summary(exp: ExpectationFile) -> str:
    """How the non-pass verdicts split: what a vendor must fix vs what the suite must."""
    tally = Counter(e.triage or "untriaged" for e in exp.checks.values() if e.verdict != "pass")
    parts = [f"{n} {SUMMARY_LABEL.get(t, t)}" for t, n in sorted(tally.items())]
    return "- **Triage of non-pass verdicts:** " + (", ".join(parts) or "none")


def _ordered(found: dict[str, ExpectationFile]) -> list[str]:
    known = [name for name in TARGETS if name in found]
    return known + sorted(set(found) - set(known))


def render(found: dict[str, ExpectationFile], registry: dict[str, Any] | None = None) -> str:
    """The whole page for the given expectation files (by target name)."""
    registry = check_registry() if registry is None else registry
    names = _ordered(found)
    titles = [_cell(found[n].run.get("title", n)) for n in names]
    all_ids = sorted({cid for n in names for cid in found[n].checks})
    lines = [
        "# Compatibility of real servers",
        "",
        "<!-- generated by `python -m conformance.servers doc` from expectations/*.toml; "
        "do not edit by hand -->",
        "",
        "What the chatcompat suite finds on real OpenAI-compatible servers, run offline on a "
        "2-core CPU machine with the same small model. These are the verdicts CI compares "
        "(`tests/test_real_*.py`); each non-pass is triaged from the raw exchange as a true "
        "divergence of the server, a false alarm of the suite, or a true but redundant "
        "consequence of another finding. Verdicts marked `~` depend on sampling or timing "
        "and are recorded but not compared. Wall times come from the recording machine and "
        "grow with its load. Refresh with `nox -s real-<server> -- --update-expectations`.",
        "",
        "## Overview",
        "",
        "| Check | Level | " + " | ".join(titles) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for cid in all_ids:
        info = registry.get(_base(cid))
        level = info.level.value if info is not None else "?"
        cells = " | ".join(_verdict(found[n].checks.get(cid)) for n in names)
        lines.append(f"| `{cid}` | {level} | {cells} |")
    lines.append("")
    for name in names:
        lines += _server_section(name, found[name])
    lines += ["## Requirements", ""]
    for base in sorted({_base(cid) for cid in all_ids}):
        info = registry.get(base)
        text = info.requirement if info is not None else "(no longer in the suite)"
        lines.append(f"- `{base}`: {_cell(text)}")
    return "\n".join(lines).rstrip() + "\n"


def load_all(directory: Path) -> dict[str, ExpectationFile]:
    return {p.stem: expectations.load(p) for p in sorted(directory.glob("*.toml"))}


def write(directory: Path = DEFAULT_EXPECTATIONS, out: Path = DEFAULT_OUT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(load_all(directory)))
    return out


if __name__ == "__main__":
    print(f"wrote {write()}", file=sys.stderr)
