"""reports/badge.svg: "OpenAI-compat | 97% MUST", for a README or a vendor's page.

A run that did not judge every check publishes no rate: "incomplete: 62 of 198 judged".

Drawn by hand (two rectangles, two texts): a badge service would need the network, and the
page and the badge must come from results.json alone.
"""

from __future__ import annotations

from html import escape
from typing import Any

LABEL = "OpenAI-compat"
CHAR_PX = 7  # Verdana 11px averages about 7 px a character
PAD_PX = 10
COLOURS = ((100.0, "#2e7d32"), (95.0, "#689f38"), (80.0, "#f9a825"), (0.0, "#c62828"))
GREY = "#757575"


def incomplete(results: dict[str, Any]) -> dict[str, int] | None:
    """``{"judged": 62, "total": 198}`` when the run did not judge every check, else None.

    Then no rate is published (here nor on the page): a rate over the checks that happened
    to get an answer would read as a verdict on the endpoint (a slow server's "0% MUST"). A
    run the preflight stopped has no checks: it is "stopped", not incomplete.
    """
    raw = results.get("checks")
    checks = [c for c in raw.values() if isinstance(c, dict)] if isinstance(raw, dict) else []
    unjudged = sum(c.get("outcome") == "not_judged" for c in checks)
    if not checks or (not unjudged and results.get("complete") is not False):
        return None
    return {"judged": len(checks) - unjudged, "total": len(checks)}


def badge_text(results: dict[str, Any], must: dict[str, Any]) -> tuple[str, str]:
    """The right-hand text and its colour: the MUST pass rate, or why there is none."""
    partial = incomplete(results)
    if partial is not None:
        return f"incomplete: {partial['judged']} of {partial['total']} judged", GREY
    if results.get("run_error"):
        return "run stopped", GREY
    if not must.get("judged"):
        return "no MUST verdict", GREY
    rate = must["rate"]
    colour = next(c for floor, c in COLOURS if rate >= floor)
    shown = 100 if rate == 100.0 else min(int(rate), 99)  # 99.6% is not 100%
    return f"{shown}% MUST", colour


def render_badge(results: dict[str, Any], must: dict[str, Any]) -> str:
    value, colour = badge_text(results, must)
    left = len(LABEL) * CHAR_PX + 2 * PAD_PX
    right = len(value) * CHAR_PX + 2 * PAD_PX
    width = left + right
    title = escape(f"{LABEL}: {value}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" '
        f'role="img" aria-label="{title}"><title>{title}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2}" y="14">{escape(LABEL)}</text>'
        f'<text x="{left + right / 2}" y="14">{escape(value)}</text>'
        "</g></svg>\n"
    )
