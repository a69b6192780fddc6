"""bench-peers' output: the table, our verdicts against the targets, the docs section.

Targets (issue 12): ours has the lowest TTFT error p50 and p99 at every level, ITL error p99
<= 0.1 ms at 16 and 64 streams, and >= 0.97 of the ideal event rate at 256 streams on one
core; every miss is printed with its size.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

from loadtests.selfbench.accuracy import ITL_MS, TOKENS, TTFT_MS

if TYPE_CHECKING:
    from loadtests.selfbench.peer_tools import Row

TOOLS = ("chatcompat", "inference-perf", "guidellm", "vllm")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:+.{digits}f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| streams | tool | TTFT err p50 | TTFT err p99 | ITL err p99 | events vs ideal "
        "| requests | tool CPU | other CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.streams, TOOLS.index(r.tool))):
        itl = _fmt(r.itl_err_p99_ms) + (" (per-request mean)" if r.itl_basis != "gap" else "")
        ratio = "-" if r.rate_ratio is None else f"{r.rate_ratio:.3f}"
        procs = f" ({r.processes} processes)" if r.processes > 1 else ""
        lines.append(
            f"| {r.streams} | {r.tool} {r.version}{procs} | {_fmt(r.ttft_err_p50_ms)} "
            f"| {_fmt(r.ttft_err_p99_ms)} | {itl} | {ratio} | {r.requests} "
            f"| {r.tool_cpu:.2f} | {r.other_cpu:.2f} |"
        )
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> list[str]:
    """Our targets: lowest TTFT error p50/p99 at every level, ITL p99 <= 0.1 ms at 16/64,
    >= 0.97 of the ideal event rate at 256; each miss with its size."""
    out = []
    for level in sorted({r.streams for r in rows}):
        here = [r for r in rows if r.streams == level]
        ours = next((r for r in here if r.tool == "chatcompat"), None)
        if ours is None:
            continue
        misses = []
        if ours.ttft_err_p50_ms is None or ours.ttft_err_p99_ms is None:
            out.append(f"{level} streams: no request of ours could be judged")
            continue
        for key in ("ttft_err_p50_ms", "ttft_err_p99_ms"):
            mine = abs(getattr(ours, key))
            for peer in here:
                theirs = getattr(peer, key)
                if peer is not ours and theirs is not None and abs(theirs) < mine:
                    misses.append(f"{key} {mine:.3f} vs {peer.tool} {abs(theirs):.3f}")
        if level <= 64 and (ours.itl_err_p99_ms is None or ours.itl_err_p99_ms > 0.1):
            misses.append(f"ITL err p99 {ours.itl_err_p99_ms:.3f} ms > 0.1 ms")
        if level >= 256 and (ours.rate_ratio or 0.0) < 0.97:
            misses.append(f"events vs ideal {ours.rate_ratio:.3f} < 0.97")
        verdict = "meets every target" if not misses else "misses: " + "; ".join(misses)
        out.append(f"{level} streams: {verdict}")
    return out


def report(rows: list[Row], skipped: dict[str, str], seconds: float) -> str:
    """The Markdown block: conditions, the table, skipped peers, our verdicts."""
    info = machine()
    lines = [
        f"Measured {info['date']} on {info['cpu']}, Linux {info['kernel']}, Python "
        f"{info['python']}: truth server TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, {TOKENS} "
        f"tokens, closed loop, {seconds:g} s per tool and level, server on core 0 and tool "
        "on core 1 (`taskset`), no real-time priority. Errors = reported - true, in ms; "
        "CPU in cores (other CPU: every other process on the machine meanwhile).",
        "",
        table(rows),
        "",
    ]
    lines += [f"* {tool}: skipped ({reason})" for tool, reason in skipped.items()]
    lines += [f"* {verdict}" for verdict in verdicts(rows)]
    return "\n".join(lines)


def replace_section(path: Path, text: str) -> None:
    """Put ``text`` between the bench-peers markers of a Markdown file (appended if absent)."""
    start, end = "<!-- bench-peers:start -->", "<!-- bench-peers:end -->"
    doc = path.read_text()
    block = f"{start}\n{text}\n{end}"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc)


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{model} x {os.cpu_count()}",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
