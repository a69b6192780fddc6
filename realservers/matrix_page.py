"""docs/matrix/index.html: servers x checks, every non-pass verdict with its triage label.

Built from the stored ``docs/matrix/<server>/results.json`` alone (so it re-renders after
triage without running a server). One self-contained page: inline CSS and a few lines of
JS for the filters, nothing loaded from the network, every value autoescaped (server
output is hostile). Verdict names and colours are the suite report's
(:mod:`conformance.face.report_page`): the colours are read from that page's template, so
the two pages never disagree.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from conformance.face import report_page
from conformance.face.report_page import LABELS

__all__ = ["palette", "render", "rows"]

TEMPLATE = "matrix_page.html.j2"
#: The triage labels in the order the page explains them, with a one-letter mark per cell.
TRIAGE_MARKS = {
    "true divergence": "D",
    "known limitation": "L",
    "suite issue": "S",
    "untriaged": "?",
    "no verdict": "-",
}


@cache
def palette() -> dict[str, str]:
    """Outcome -> CSS colour, from the ``:root`` block of the suite report's template."""
    text = (Path(report_page.__file__).parent / report_page.TEMPLATE).read_text()
    root = re.search(r":root\s*\{(.*?)\}", text, re.S)
    found = dict(
        re.findall(r"--([a-z_]+)\s*:\s*(#[0-9a-fA-F]{3,8})", root.group(1) if root else "")
    )
    return {o: found.get(o, "#9e9e9e") for o in LABELS}


def rows(published: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per check ID seen on any server: its level, area and per-server cell."""
    ids = sorted({cid for data in published.values() for cid in data.get("checks", {})})
    out = []
    for cid in ids:
        cells = {name: data.get("checks", {}).get(cid) for name, data in published.items()}
        present = [c for c in cells.values() if c]
        first = present[0] if present else {}
        out.append(
            {
                "id": cid,
                "level": first.get("level", ""),
                "area": first.get("area", cid.split(".", 1)[0]),
                "cells": cells,
                "all_pass": all(c and c.get("outcome") == "pass" for c in cells.values()),
            }
        )
    return out


def _triage_tally(data: dict[str, Any]) -> Counter:
    return Counter(c["label"] for c in data.get("checks", {}).values() if c.get("label"))


def render(published: dict[str, dict[str, Any]], *, generated_at: str = "") -> str:
    """The whole page for the given servers' results (by server name)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # an older results.json still renders
        trim_blocks=True,
        lstrip_blocks=True,
    )
    suites = {(d.get("suite") or {}).get("commit", "?"): d.get("suite") for d in published.values()}
    return env.get_template(TEMPLATE).render(
        servers=published,
        rows=rows(published),
        labels=LABELS,
        palette=palette(),
        marks=TRIAGE_MARKS,
        tallies={name: _triage_tally(d) for name, d in published.items()},
        suites=list(suites.values()),
        generated_at=generated_at,
    )
