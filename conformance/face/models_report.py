"""The combined reports of a several-models run, built from what each child wrote.

``reports/results.json`` indexes the per-model ``models/<dir>/results.json`` (each model's
headline, counts per area, dialect, exit status); ``reports/index.html`` is the models x
areas table with a switcher to each model's own page; ``reports/junit.xml`` holds every
model's test cases, each name carrying its model. Only the children's files are read: a
model whose child wrote nothing (killed, interrupted before its session) is incomplete.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from conformance.face.report_page import LABELS, headline, matrix
from conformance.face.reporting import dialect_line

EXIT_INCOMPLETE = 2
#: Exit codes from best to worst (pytest's: 5 no tests, 1 failures, 2 incomplete or stopped,
#: 4 usage error, 3 internal error); anything else (a killed child) counts as incomplete.
_SEVERITY = (0, 5, 1, 2, 4, 3)


@dataclass
class ModelRun:
    """One model's child run as the parent saw it."""

    model: str
    safe: str
    returncode: int | None = None  # None: never started
    note: str = ""  # why there are no results (not run, killed)
    results: dict[str, Any] = field(default_factory=dict)

    def load(self, root: Path) -> None:
        """Read the child's results.json (absent or unreadable: no results)."""
        try:
            data = json.loads((root / self.dir / "results.json").read_text())
        except (OSError, ValueError):
            data = None
        self.results = data if isinstance(data, dict) else {}

    @property
    def dir(self) -> str:
        return f"models/{self.safe}"

    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        raw = self.results.get("checks")
        if not isinstance(raw, dict):
            return {}
        return {str(k): v for k, v in raw.items() if isinstance(v, dict)}

    @property
    def complete(self) -> bool:
        return bool(self.results) and self.results.get("complete") is not False

    @property
    def exit_status(self) -> int:
        code = self.returncode
        if code is None or code not in _SEVERITY or (code in (0, 1) and not self.complete):
            return EXIT_INCOMPLETE
        return code

    @property
    def why(self) -> str | None:
        """The run error of this model, if any (the child's own, else ours)."""
        if self.results.get("run_error"):
            return str(self.results["run_error"])
        if not self.results:
            return self.note or f"no results.json (exit code {self.returncode})"
        return None


def worst(codes: list[int]) -> int:
    """The worst exit code (see ``_SEVERITY``); no models at all is incomplete."""
    return max(codes, key=_SEVERITY.index) if codes else EXIT_INCOMPLETE


def index(runs: list[ModelRun], about: dict[str, Any]) -> dict[str, Any]:
    """reports/results.json of the run: ``about`` (tool, endpoint, timing) plus the models."""
    entries = []
    for run in runs:
        checks = run.checks
        entries.append(
            {
                "model": run.model,
                "dir": run.dir,
                "results": f"{run.dir}/results.json",
                "page": f"{run.dir}/index.html",
                "badge": f"{run.dir}/badge.svg",
                "exit_status": run.exit_status,
                "complete": run.complete,
                "run_error": run.why,
                "headline": run.results.get("headline") or headline(checks),
                "counts": dict(Counter(c.get("outcome") for c in checks.values())),
                "areas": {a: dict(c) for a, c in matrix(checks).items()},
                "dialect": run.results.get("dialect") or {},
                "diff": (run.results.get("diff") or {}).get("counts"),
            }
        )
    codes = [e["exit_status"] for e in entries]
    incomplete = [e["model"] for e in entries if not e["complete"]]
    return {
        **about,
        "kind": "several_models",
        "complete": bool(entries) and not incomplete,
        "run_error": about.get("run_error")
        or (f"incomplete models: {', '.join(incomplete)}" if incomplete else None),
        "exit_status": worst(codes),
        "models": entries,
    }


def _rate(entry: dict[str, Any], level: str) -> str:
    rates = (entry.get("headline") or {}).get(level) or {}
    rate = rates.get("rate")
    return "—" if rate is None else f"{rate}% ({rates.get('pass')}/{rates.get('judged')})"


def _cell(counts: dict[str, int]) -> str:
    parts = [f'<span class="{o}">{counts[o]} {LABELS[o]}</span>' for o in LABELS if counts.get(o)]
    return "<br>".join(parts) or "—"


def _row(entry: dict[str, Any], areas: list[str]) -> str:
    page = escape(entry["page"])
    name = escape(entry["model"])
    dialect = entry.get("dialect") or {}
    status = escape(entry["run_error"] or "complete")
    cells = "".join(f"<td>{_cell(entry['areas'].get(a, {}))}</td>" for a in areas)
    return (
        f'<tr id="m-{escape(entry["dir"])}"><th><a href="{page}">{name}</a><br>'
        f'<img src="{escape(entry["badge"])}" alt="badge of {name}"></th>'
        f"<td>{_rate(entry, 'MUST')}</td><td>{_rate(entry, 'SHOULD')}</td>"
        f"<td>{escape(dialect_line(dialect)) if dialect else '—'}</td>"
        f"<td>{entry['exit_status']}: {status}</td><td>{_cell(entry['counts'])}</td>{cells}</tr>"
    )


def render(data: dict[str, Any]) -> str:
    """The combined index.html: a switcher, then models x areas with outcome counts."""
    entries = data["models"]
    areas = sorted({a for e in entries for a in e["areas"]})
    options = "".join(
        f'<option value="{escape(e["page"])}">{escape(e["model"])}</option>' for e in entries
    )
    head = "".join(f"<th>{escape(a)}</th>" for a in areas)
    rows = "".join(_row(e, areas) for e in entries)
    where = (data.get("endpoint") or {}).get("base_url") or "embedded reference server"
    state = "complete" if data["complete"] else f"INCOMPLETE: {data['run_error']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>chatcompat: {len(entries)} models</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;font-size:90%}}
.fail,.error{{color:#c62828}}.warn{{color:#ef6c00}}.pass{{color:#2e7d32}}</style></head>
<body><h1>chatcompat: {len(entries)} models</h1>
<p>endpoint: {escape(where)} · exit code {data["exit_status"]} · {escape(state)}</p>
<nav><label>model: <select id="switcher" onchange="location.href=this.value">
<option value="">choose a model's checks…</option>{options}</select></label></nav>
<table id="models"><thead><tr><th>model</th><th>MUST</th><th>SHOULD</th><th>dialect</th>
<th>exit</th><th>total</th>{head}</tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""


def combine_junit(runs: list[ModelRun], root: Path) -> ET.Element:
    """One <testsuites>: each model's suite named after it, each case name ending [model]."""
    combined = ET.Element("testsuites", name="chatcompat")
    for run in runs:
        try:
            suites = list(ET.parse(root / run.dir / "junit.xml").getroot().iter("testsuite"))
        except (OSError, ET.ParseError):
            suites = [_missing_suite(run)]
        for suite in suites:
            suite.set("name", f"chatcompat[{run.model}]")
            for case in suite.iter("testcase"):
                case.set("name", f"{case.get('name', '')}[{run.model}]")
            combined.append(suite)
    return combined


def _missing_suite(run: ModelRun) -> ET.Element:
    suite = ET.Element("testsuite", tests="1", errors="1", failures="0", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="chatcompat", name="run")
    ET.SubElement(case, "error", message=run.why or "no junit.xml").text = run.why
    return suite


def write(runs: list[ModelRun], about: dict[str, Any], root: Path, redact: Any) -> dict:
    """Write results.json, index.html and junit.xml into ``root``; returns the index."""
    for run in runs:
        run.load(root)
    data = index(runs, about)
    tree = ET.ElementTree(combine_junit(runs, root))
    junit = ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True)
    for name, text in (
        ("results.json", json.dumps(data, indent=2) + "\n"),
        ("index.html", render(data)),
        ("junit.xml", junit + "\n"),
    ):
        partial = root / (name + ".partial")
        partial.write_text(redact(text))
        partial.replace(root / name)
    return data
