"""The compatibility page and badge: from results.json alone, escaped, self-contained, counted
right; and in headless Chromium, loaded without script errors with working filters."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from browser import Elements, dump_dom, matrix_counts, requires_chromium, screenshot
from report_samples import CHECKS, HOSTILE, results

from conformance.face import report_page
from conformance.face.badge import badge_text, render_badge


@pytest.fixture
def written(tmp_path: Path) -> tuple[dict, Path]:
    """A results.json with every outcome, rendered by the command line as a user would."""
    data = results()
    source = tmp_path / "results.json"
    source.write_text(json.dumps(data))
    assert report_page.main([str(source)]) == 0
    return data, tmp_path / "index.html"


def expected_matrix(data: dict) -> dict[tuple[str, str], int]:
    counts = Counter((c["area"], c["outcome"]) for c in data["checks"].values())
    counts.update(("", c["outcome"]) for c in data["checks"].values())
    return dict(counts)


def nonzero(counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    return {k: v for k, v in counts.items() if v}


def test_page_escapes_endpoint_text(written):
    _, page = written
    text = page.read_text()
    assert HOSTILE not in text and "<img" not in text and 'document.title="pwned"' not in text
    assert "&lt;script&gt;document.title" in text


def test_page_is_self_contained(written):
    tags = Elements(written[1].read_text()).tags
    assert not [t for t, a in tags if t in ("link", "img", "iframe", "object") or "src" in a]
    assert all((a.get("href") or "#").startswith("#") for _, a in tags)


def test_matrix_counts_equal_results(written):
    data, page = written
    assert nonzero(matrix_counts(page.read_text())) == expected_matrix(data)


def test_page_shows_run_facts_and_every_non_pass_check(written):
    data, page = written
    text = page.read_text()
    for needle in ("9.9.9", "2026-12-02T00:00:00", "token_limit_field", "requirement of alpha.two"):
        assert needle in text
    sections = {a["id"] for a in Elements(text).with_attr("id", "section")}
    not_passing = {cid for cid, c in data["checks"].items() if c["outcome"] != "pass"}
    assert sections >= {f"c-{cid}" for cid in not_passing}
    assert text.count("finding ") == 1  # a finding repeated by two checks is shown once


@pytest.mark.parametrize(
    ("overrides", "must", "should"),
    [
        ({}, (2, 4, 50.0), (1, 2, 50.0)),  # unsupported / not applicable left out
        ({"alpha_two": "pass", "beta_three": "pass"}, (4, 4, 100.0), (1, 2, 50.0)),
        ({"alpha_three": "pass"}, (2, 4, 50.0), (2, 2, 100.0)),
    ],
)
def test_headline_rates(overrides, must, should):
    rates = report_page.headline(results(**overrides)["checks"])
    for level, (passed, judged, rate) in (("MUST", must), ("SHOULD", should)):
        assert (rates[level]["pass"], rates[level]["judged"], rates[level]["rate"]) == (
            passed,
            judged,
            rate,
        )
    assert rates["MUST"]["not_judged"] == {"unsupported": 1, "not_applicable": 1}


@pytest.mark.parametrize(
    ("must", "run_error", "text"),
    [
        ({"judged": 10, "rate": 100.0}, None, "100% MUST"),
        ({"judged": 300, "rate": 99.7}, None, "99% MUST"),  # never rounded up to 100
        ({"judged": 10, "rate": 50.0}, None, "50% MUST"),
        ({"judged": 0, "rate": None}, None, "no MUST verdict"),
        ({"judged": 10, "rate": 100.0}, "cannot reach", "run stopped"),
    ],
)
def test_badge_text(must, run_error, text):
    assert badge_text({"run_error": run_error}, must)[0] == text
    svg = render_badge({"run_error": run_error}, must)
    assert svg.startswith("<svg") and f"OpenAI-compat: {text}" in svg


def incomplete_results() -> dict:
    """A run where one MUST check got no answer (the breaker had tripped)."""
    data = results(beta_five="not_judged")
    data |= {"complete": False, "run_error": "1 of 9 checks not judged: raise --request-timeout"}
    return data


def test_incomplete_run_publishes_no_rate():
    """Not judged is never failed: the headline and the badge read incomplete, not a rate."""
    data = incomplete_results()
    assert report_page.incomplete(data) == {"judged": 8, "total": 9}
    assert report_page.incomplete(results()) is None
    rates = report_page.headline(data["checks"])
    assert rates["MUST"]["judged"] == 3 and rates["MUST"]["not_judged"]["not_judged"] == 1
    page = report_page.render(data)
    headline = page[page.index('id="headline"') : page.index('id="findings"')]
    assert "incomplete" in headline and "8 of 9 checks judged" in headline
    assert "MUST pass rate" not in headline and "%" not in headline
    assert "Incomplete run:</b>" in page and "raise --request-timeout" in page
    svg = render_badge(data, rates["MUST"])
    assert "OpenAI-compat: incomplete: 8 of 9 judged" in svg and "MUST" not in svg


def test_rerender_writes_badge_beside_results(written):
    badge = written[1].with_name("badge.svg").read_text()
    assert "50% MUST" in badge


def test_partial_and_foreign_documents(tmp_path):
    """An older results.json renders; a file that is not one is refused with exit code 2."""
    assert "Every check passed" in report_page.render({"checks": {}})
    assert report_page.render({"checks": {"x.y": "not a dict"}})
    bad = tmp_path / "results.json"
    for text in ("{not json", "[1, 2]", '{"checks": []}'):
        bad.write_text(text)
        assert report_page.main([str(bad)]) == 2


@requires_chromium
def test_page_in_headless_chromium(written):
    """Scripts run without error, the matrix shows results.json's counts, nothing injected."""
    data, page = written
    dom = dump_dom(page)
    root = Elements(dom).root()
    assert root.get("data-ready") == "1" and "data-js-error" not in root, root
    assert nonzero(matrix_counts(dom)) == expected_matrix(data)
    tags = Elements(dom).tags
    assert not [t for t, _ in tags if t == "img"] and [t for t, _ in tags].count("script") == 1
    assert "<title>pwned</title>" not in dom


@requires_chromium
@pytest.mark.parametrize(("area", "outcome"), [("alpha", "fail"), ("beta", ""), ("", "pass")])
def test_filters_in_headless_chromium(written, area, outcome):
    data, page = written
    rows = Elements(dump_dom(page, f"#area={area}&outcome={outcome}")).with_attr("data-check", "tr")
    shown = {r["data-check"] for r in rows if "hidden" not in r}
    assert shown == {
        cid
        for cid, c in data["checks"].items()
        if (not area or c["area"] == area) and (not outcome or c["outcome"] == outcome)
    }
    assert len(rows) == len(CHECKS)


#: The matrix colour of each outcome (report_page.html.j2), as RGB.
COLOURS = {
    "pass": (0x2E, 0x7D, 0x32),
    "fail": (0xC6, 0x28, 0x28),
    "warn": (0xEF, 0x8F, 0x00),
    "unsupported": (0x60, 0x7D, 0x8B),
    "not_applicable": (0x8D, 0x6E, 0x63),
    "info": (0x15, 0x65, 0xC0),
    "error": (0x6A, 0x1B, 0x9A),
}  # not judged (#455a64) shows only in incomplete runs: test_incomplete_run_publishes_no_rate


@requires_chromium
def test_screenshot_shows_every_outcome_colour(written, tmp_path):
    image = pytest.importorskip("PIL.Image")
    shot = tmp_path / "page.png"
    screenshot(written[1], shot, 1100, 1400)
    pixels = {rgb: n for n, rgb in image.open(shot).convert("RGB").getcolors(1 << 24)}
    assert {o for o, rgb in COLOURS.items() if pixels.get(rgb, 0) > 200} == set(COLOURS)
