"""Small results.json documents for the report page, badge and diff tests."""

from __future__ import annotations

import copy
from typing import Any

#: Endpoint output is hostile: each of these must reach a page as text, never as markup.
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">&amp;"\''

#: check id -> (level, outcome): every outcome, two areas, both rated levels.
CHECKS = {
    "alpha.one": ("MUST", "pass"),
    "alpha.two": ("MUST", "fail"),
    "alpha.three": ("SHOULD", "warn"),
    "alpha.four": ("MUST", "unsupported"),
    "beta.one": ("MUST", "not_applicable"),
    "beta.two": ("INFO", "info"),
    "beta.three": ("MUST", "error"),
    "beta.four": ("SHOULD", "pass"),
    "beta.five": ("MUST", "pass"),
}


def _check(cid: str, level: str, outcome: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "outcome": outcome,
        "level": level,
        "area": cid.split(".")[0],
        "capability": "tools" if cid == "alpha.four" else None,
        "requirement": f"requirement of {cid}",
        "message": "" if outcome == "pass" else f"message of {cid} {HOSTILE}",
        "nodeid": f"test_x.py::test_{cid}",
        "duration_s": 0.01,
    }
    if outcome in ("fail", "warn"):
        entry |= {
            "expected": f"expected of {cid}",
            "actual": f"actual of {cid} {HOSTILE}",
            "note": "",
            "exchanges": [
                {
                    "label": "streamed completion",
                    "exchange": f"> POST http://h/v1/chat/completions\n< HTTP 200\n< {HOSTILE}",
                    "curl": "curl -sS -i -X POST http://h/v1/chat/completions",
                }
            ],
        }
    elif outcome != "pass":
        entry["evidence"] = f"evidence of {cid} {HOSTILE}"
    return entry


def results(**outcomes: str) -> dict[str, Any]:
    """A results.json document; ``outcomes`` overrides verdicts (key: check id with _ for .)."""
    checks = {cid: _check(cid, level, outcome) for cid, (level, outcome) in CHECKS.items()}
    for key, outcome in outcomes.items():
        cid = key.replace("_", ".", 1)
        level = CHECKS.get(cid, ("MUST", outcome))[0]
        checks[cid] = _check(cid, level, outcome)
    counts: dict[str, int] = {}
    for c in checks.values():
        counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
    return copy.deepcopy(
        {
            "tool": {"name": "chatcompat", "version": "9.9.9"},
            "started_at": "2026-12-02T00:00:00+00:00",
            "duration_s": 1.5,
            "complete": True,
            "run_error": None,
            "exit_status": 1,
            "endpoint": {
                "base_url": f"http://h/v1?{HOSTILE}",
                "model": f"model-{HOSTILE}",
                "embedded_reference_server": False,
            },
            "settings": {"strict": False, "reference_faults": []},
            "capabilities": {
                "tools": {"status": "unsupported", "evidence": f"HTTP 400: {HOSTILE}"},
                "n": {"status": "supported", "evidence": ""},
            },
            "dialect": {"token_limit_field": "max_tokens", "temperature": 0, "note": HOSTILE},
            "findings": [f"finding {HOSTILE}", f"finding {HOSTILE}"],
            "counts": counts,
            "spent": {"requests": 3, "total_tokens": 42},
            "checks": checks,
        }
    )
