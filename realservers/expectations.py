"""Checked-in expected verdicts of a real server, compared against a fresh run.

``expectations/<target>.toml`` pins, per check ID, the verdict the suite gives on that server
and, for every non-pass, one line saying why it is right (what the spec says, what the server
sends). A CI run then proves two things at once: the server still behaves as documented, and
the suite still judges it the same way. The file holds:

- ``notes``: findings seen in raw exchanges that no check covers yet (kept as written);
- ``[run]``: facts of the run that produced it (versions, settings, wall time, requests,
  tokens), which ``docs/compatibility.md`` shows;
- ``[checks]``: ``"id" = "pass"``, or an inline table with ``verdict``, ``why``, ``triage``
  (required for every non-pass: ``divergence`` = a true divergence of the server,
  ``redundant`` = a true consequence of a divergence another check already reports,
  ``limitation`` = a known limitation of the server or the small model that leaves nothing
  to judge or only something to report, ``suite-issue`` = the suite is wrong) and optionally
  ``unstable`` (why the verdict depends on sampling or timing; such checks are not compared).
  Older files said ``false-alarm`` and ``observation``; they load as ``suite-issue`` and
  ``limitation``.

Regenerate with ``python -m realservers run <target> --update-expectations`` (or
``nox -s real-<target> -- --update-expectations``): existing ``why`` lines are kept for
unchanged verdicts, changed or new non-pass verdicts get a ``TODO`` line to triage.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.face.reporting import (
    OUTCOMES,  # one list of outcomes: verdicts are recorded as the suite names them
)

__all__ = [
    "OUTCOMES",
    "Comparison",
    "Expectation",
    "ExpectationFile",
    "compare",
    "load",
    "merge",
    "problems",
    "render",
    "run_facts",
    "staleness",
]

TRIAGES = ("divergence", "redundant", "limitation", "suite-issue")
#: Labels of older files, read as today's.
LEGACY_TRIAGES = {"false-alarm": "suite-issue", "observation": "limitation"}
TODO = "TODO"
RUN_KEYS = ("title", "finished_at", "suite_wall_seconds", "requests", "total_tokens")


@dataclass
class Expectation:
    verdict: str
    why: str = ""
    triage: str = ""
    unstable: str = ""  # non-empty: depends on sampling/timing; recorded, never compared

    def as_toml(self) -> str:
        if not (self.why or self.triage or self.unstable):
            return _toml_value(self.verdict)
        parts = {"verdict": self.verdict}
        parts |= {k: v for k in ("triage", "unstable", "why") if (v := getattr(self, k))}
        return _toml_value(parts)


@dataclass
class ExpectationFile:
    run: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Expectation] = field(default_factory=dict)
    #: Hand-written findings from raw exchanges that no check covers yet; kept on regeneration.
    notes: list[str] = field(default_factory=list)


# -- reading and writing -------------------------------------------------------------------


def load(path: Path) -> ExpectationFile:
    """Parse an expectation file; a missing file is an empty one (first run)."""
    if not path.is_file():
        return ExpectationFile()
    data = tomllib.loads(path.read_text())
    checks = {}
    for cid, value in data.get("checks", {}).items():
        if isinstance(value, str):
            checks[cid] = Expectation(value)
        else:
            checks[cid] = Expectation(
                verdict=str(value.get("verdict", "")),
                why=str(value.get("why", "")),
                triage=_triage(str(value.get("triage", ""))),
                unstable=str(value.get("unstable", "")),
            )
    notes = [str(n) for n in data.get("notes", [])]
    return ExpectationFile(run=dict(data.get("run", {})), checks=checks, notes=notes)


def _triage(label: str) -> str:
    return LEGACY_TRIAGES.get(label, label)


def render(exp: ExpectationFile, target: str) -> str:
    """TOML text, one line per check, sorted by ID: small diffs when verdicts change."""
    lines = [
        f"# Expected chatcompat verdicts for the real target {target!r}.",
        "# Each non-pass says why it is right; 'unstable' ones are recorded, not compared.",
        f"# Regenerate: nox -s real-{target} -- --update-expectations [--repeat 3]",
        "",
        "notes = [",
        *(f"  {_toml_value(note)}," for note in exp.notes),
        "]",
        "",
        "[run]",
        *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in exp.run.items()),
        "",
        "[checks]",
        *(f"{_toml_key(cid)} = {e.as_toml()}" for cid, e in sorted(exp.checks.items())),
    ]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    """TOML for the few types we store; JSON string escapes are valid TOML basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value is None:
        return '""'
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


# -- checking the file itself -----------------------------------------------------------------


def problems(exp: ExpectationFile) -> list[str]:
    """What makes a file unacceptable to check in: bad verdicts, missing or TODO whys."""
    found = []
    for cid, e in sorted(exp.checks.items()):
        if e.verdict not in OUTCOMES:
            found.append(f"{cid}: unknown verdict {e.verdict!r}")
        if e.triage and e.triage not in TRIAGES:
            found.append(f"{cid}: unknown triage {e.triage!r} (one of {', '.join(TRIAGES)})")
        needs_why = e.verdict != "pass"
        if needs_why and not e.why.strip():
            found.append(f"{cid}: {e.verdict} without a 'why'")
        if needs_why and not e.triage:
            found.append(f"{cid}: {e.verdict} without a triage label ({', '.join(TRIAGES)})")
        elif e.why.startswith(TODO) or e.unstable.startswith(TODO):
            found.append(f"{cid}: not triaged yet ({e.why or e.unstable})")
        if "\n" in e.why:
            found.append(f"{cid}: 'why' must be one line")
    return found


def staleness(exp: ExpectationFile, catalog: Iterable[str]) -> tuple[list[str], list[str]]:
    """(check IDs the catalog has and the file misses, IDs the file names that the catalog
    no longer has): both must be empty, or the file no longer describes the suite."""
    ids = set(catalog)
    return sorted(ids - set(exp.checks)), sorted(set(exp.checks) - ids)


# -- comparing a run ---------------------------------------------------------------------------


@dataclass
class Comparison:
    """Differences between expected and observed verdicts, ready to print."""

    changed: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, exp, got, msg
    new: list[tuple[str, str, str]] = field(default_factory=list)  # id, got, message
    missing: list[tuple[str, str]] = field(default_factory=list)  # id, expected
    unstable: list[tuple[str, str, str]] = field(default_factory=list)  # id, expected, got

    @property
    def new_non_pass(self) -> list[tuple[str, str, str]]:
        return [n for n in self.new if n[1] != "pass"]

    @property
    def ok(self) -> bool:
        """New checks that pass need no triage; anything else does."""
        return not (self.changed or self.new_non_pass or self.missing)

    def report(self, target: str, path: str) -> str:
        regen = f"nox -s real-{target} -- --update-expectations"
        lines = []
        if self.changed:
            lines.append(f"verdicts that differ from {path}:")
            lines += [f"  {cid}: expected {e}, got {g}" + _msg(m) for cid, e, g, m in self.changed]
        if self.new_non_pass:
            lines.append(f"new checks with no expectation (triage, then `{regen}`):")
            lines += [f"  {cid}: got {g}" + _msg(m) for cid, g, m in self.new_non_pass]
        if self.missing:
            lines.append("expected checks that did not run (renamed, removed, or run cut short?):")
            lines += [f"  {cid}: expected {e}, not run" for cid, e in self.missing]
        passing_new = [n for n in self.new if n[1] == "pass"]
        if passing_new:
            lines.append(f"new checks that pass ({len(passing_new)}; add them with `{regen}`):")
            lines += [f"  {cid}" for cid, _, _ in passing_new]
        moved = [u for u in self.unstable if u[1] != u[2]]
        if moved:
            lines.append("unstable checks (sampling/timing dependent, not compared) that moved:")
            lines += [f"  {cid}: recorded {e}, got {g}" for cid, e, g in moved]
        if not lines:
            compared = "all verdicts as expected"
            lines.append(f"{compared} ({path}; {len(self.unstable)} unstable not compared)")
        return "\n".join(lines)


def _msg(message: str) -> str:
    message = " ".join(message.split())
    return f"  -- {message[:160]}" if message else ""


def compare(exp: ExpectationFile, results: Mapping[str, Any]) -> Comparison:
    """Compare a results.json mapping with the expectations."""
    got = results.get("checks", {})
    out = Comparison()
    for cid in sorted(set(exp.checks) | set(got)):
        e = exp.checks.get(cid)
        g = got.get(cid)
        if e is None:
            out.new.append((cid, g["outcome"], g.get("message", "")))
        elif g is None:
            out.missing.append((cid, e.verdict))
        elif e.unstable:
            out.unstable.append((cid, e.verdict, g["outcome"]))
        elif e.verdict != g["outcome"]:
            out.changed.append((cid, e.verdict, g["outcome"], g.get("message", "")))
    return out


# -- regenerating ------------------------------------------------------------------------------


def merge(
    old: ExpectationFile,
    runs: Iterable[Mapping[str, Any]],
    run_facts: Mapping[str, Any],
) -> ExpectationFile:
    """New expectations from one or more runs' results, keeping the triage that still holds.

    The last run's verdict is recorded. A check whose verdict differed between runs becomes
    unstable (unless already marked); a changed or new non-pass verdict gets a TODO ``why``
    that :func:`problems` refuses until someone triages it.
    """
    runs = list(runs)
    seen: dict[str, list[str]] = {}
    messages: dict[str, str] = {}
    for results in runs:
        for cid, check in results.get("checks", {}).items():
            seen.setdefault(cid, []).append(check["outcome"])
            messages[cid] = check.get("message", "")
    checks = {}
    for cid, outcomes in seen.items():
        verdict = outcomes[-1]
        prev = old.checks.get(cid)
        e = Expectation(verdict)
        if prev is not None and (prev.verdict == verdict or prev.unstable):
            e.why, e.triage, e.unstable = prev.why, prev.triage, prev.unstable
        if e.why.startswith(TODO):  # an untriaged line is refreshed, not kept
            e.why = ""
        if not e.unstable and len(set(outcomes)) > 1:
            tally = ", ".join(f"{o} x{n}" for o, n in Counter(outcomes).items())
            e.unstable = f"{TODO}: varied across {len(outcomes)} runs ({tally}); say why"
        if verdict != "pass" and not e.why:
            e.why = f"{TODO}: triage; the suite said: " + " ".join(messages[cid].split())[:200]
        checks[cid] = e
    return ExpectationFile(run=dict(run_facts), checks=checks, notes=list(old.notes))


def run_facts(run: dict[str, Any]) -> dict[str, Any]:
    """The ``[run]`` table of an expectation file: what was tested and what it cost."""
    facts = run.get("facts", {})
    out: dict[str, Any] = {k: run[k] for k in RUN_KEYS if run.get(k) is not None}
    out["version"] = facts.get("version", "")
    out["versions"] = facts.get("versions", {})
    out["model"] = facts.get("model", {})
    out["settings"] = facts.get("settings", {})
    out["startup_seconds"] = facts.get("startup_seconds", 0.0)
    out["counts"] = {k: v for k, v in run.get("counts", {}).items() if v}
    return out
