"""reports/index.html: the compatibility report a vendor can publish, from results.json alone.

pytest-html's report.html stays the detailed log of one pytest run; this page is the summary
with a verdict: headline pass rates, a matrix of areas x outcomes, the capabilities with their
evidence, and every check that did not pass with Requirement / Expected / Actual, the redacted
exchange and a curl line. Everything it shows comes from results.json, so a stored
results.json can be re-rendered later:
``python -m conformance.face.report_page reports/results.json``.

Endpoint output is hostile: the template autoescapes every value, and the page loads nothing
from the network (inline CSS and a few lines of inline JS for the filters).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from conformance.face.badge import incomplete, render_badge

#: Outcomes in display order, with the label shown for each.
LABELS = {
    "pass": "pass",
    "fail": "fail",
    "warn": "warn",
    "unsupported": "unsupported",
    "not_applicable": "not applicable",
    "info": "info",
    "error": "error",
    "not_judged": "not judged",
    "skipped": "skipped",
}
JUDGED = ("pass", "fail", "warn", "error")  # the denominator of a pass rate
NOT_JUDGED = ("unsupported", "not_applicable", "not_judged", "skipped")
DETAIL_ORDER = (
    "fail",
    "error",
    "not_judged",
    "warn",
    "not_applicable",
    "unsupported",
    "info",
    "skipped",
)
TEMPLATE = "report_page.html.j2"


def headline(checks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """MUST and SHOULD pass rates: passes / (pass + fail + warn + error) of that level.

    Unsupported, not-applicable and skipped checks reached no verdict on the endpoint, so
    they are left out of the denominator and counted apart; an error (no verdict because
    the harness failed) stays in it: a check we could not run earns no credit.
    """
    out = {}
    for level in ("MUST", "SHOULD"):
        count = Counter(c.get("outcome") for c in checks.values() if c.get("level") == level)
        judged = sum(count[o] for o in JUDGED)
        out[level] = {
            "pass": count["pass"],
            "judged": judged,
            "rate": round(100 * count["pass"] / judged, 1) if judged else None,
            "not_judged": {o: count[o] for o in NOT_JUDGED if count[o]},
            "total": sum(count.values()),
        }
    return out


def matrix(checks: dict[str, Any]) -> dict[str, Counter]:
    """Area -> Counter of outcomes (the page's matrix; the test compares it to results.json)."""
    areas: dict[str, Counter] = {}
    for check in checks.values():
        areas.setdefault(str(check.get("area", "?")), Counter())[check.get("outcome")] += 1
    return dict(sorted(areas.items()))


def _shown_outcomes(checks: dict[str, Any]) -> list[str]:
    """The seven verdicts always (so the legend is complete); not judged and skipped only
    when present."""
    present = {c.get("outcome") for c in checks.values()}
    return [o for o in LABELS if o not in ("not_judged", "skipped") or o in present]


def _capability_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks = checks_of(results)
    rows = []
    for name, state in sorted((results.get("capabilities") or {}).items()):
        needing = {cid: c for cid, c in checks.items() if c.get("capability") == name}
        rows.append(
            {
                "name": name,
                "status": (state or {}).get("status", "?"),
                "evidence": (state or {}).get("evidence", ""),
                "checks": Counter(c.get("outcome") for c in needing.values()),
            }
        )
    return rows


def _details(checks: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rank = {o: n for n, o in enumerate(DETAIL_ORDER)}
    chosen = [(cid, c) for cid, c in checks.items() if c.get("outcome") != "pass"]
    return sorted(chosen, key=lambda item: (rank.get(item[1].get("outcome"), 99), item[0]))


def checks_of(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-check entries, ignoring anything that is not one (a hand-edited file)."""
    checks = results.get("checks")
    if not isinstance(checks, dict):
        return {}
    return {str(k): v for k, v in checks.items() if isinstance(v, dict)}


def render(results: dict[str, Any]) -> str:
    """The whole page as one string."""
    import jinja2  # pytest-html's own template engine, so always installed with the suite

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # an older or partial results.json still renders
        trim_blocks=True,
        lstrip_blocks=True,
    )
    checks = checks_of(results)
    rates = headline(checks)
    return env.get_template(TEMPLATE).render(
        r=results,
        checks=checks,
        rates=rates,
        labels=LABELS,
        outcomes=_shown_outcomes(checks),
        matrix=matrix(checks),
        totals=Counter(c.get("outcome") for c in checks.values()),
        capabilities=_capability_rows(results),
        details=_details(checks),
        badge=jinja2.utils.markupsafe.Markup(render_badge(results, rates["MUST"])),
        incomplete=incomplete(results),
        dialect=results.get("dialect") or {},
        findings=list(dict.fromkeys(results.get("findings") or [])),
        diff=results.get("diff"),
    )


def write_report(results: dict[str, Any], directory: Path) -> list[Path]:
    """Write index.html and badge.svg into ``directory``; returns the paths written."""
    rates = headline(checks_of(results))
    written = []
    for name, text in (
        ("index.html", render(results)),
        ("badge.svg", render_badge(results, rates["MUST"])),
    ):
        path = directory / name
        partial = path.with_name(name + ".partial")
        partial.write_text(text)
        partial.replace(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.face.report_page",
        description="Render index.html and badge.svg from a chatcompat results.json.",
    )
    parser.add_argument("results", help="path to results.json")
    parser.add_argument("--out", help="directory to write to (default: beside results.json)")
    args = parser.parse_args(argv)
    source = Path(args.results)
    try:
        results = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        print(f"conformance.face.report_page: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(results, dict) or not isinstance(results.get("checks"), dict):
        print(
            f"conformance.face.report_page: {source} is not a chatcompat results.json",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) if args.out else source.parent
    out.mkdir(parents=True, exist_ok=True)
    for path in write_report(results, out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
