"""Write a run's reports: JSON of every aggregate, CSV of every raw sample, HTML with plots.

Files go to ``--report-dir`` as ``<name>.json``, ``<name>-samples.csv`` and ``<name>.html``.
Settings appear only as ``Settings.redacted()``; error texts were redacted when recorded.
Nothing here runs while requests are in flight: it is called when the test has stopped.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.aggregate import Window, aggregate, parse_goodput
from loadtests.censored import warning
from loadtests.dialect import describe
from loadtests.metrics import Sample
from loadtests.recorder import Step
from loadtests.slo import Verdict, check, parse_gates

CSV_FIELDS = (
    "worker",
    "step",
    "in_window",
    "start_wall",
    "ok",
    "error_kind",
    "error",
    "status",
    "completion_id",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "connect_ms",
    "ttft_write_ms",
    "ttfc_ms",
    "reasoning_chunks",
    "reasoning_tokens",
    "finish_reason",
    "protocol_warning",
    "token_field",
    "output_tokens",
    "tokens_source",
    "content_chunks",
    "prompt_tokens",
    "target_tokens",
    "schedule_lag_ms",
    "read_delay_ms",
    "stamps",
    "itl_ms",
)


@dataclass
class Outcome:
    paths: dict[str, Path] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def slo_failed(self) -> bool:
        return any(not v.passed for v in self.verdicts)


def build_windows(
    recorder: Any, settings: Any, samples: list[Sample]
) -> tuple[Window, list[Window]]:
    """The overall measurement window and one window per sweep step, warm-up removed."""
    end = recorder.stop_wall or max((s.start_wall for s in samples), default=time.time())
    steps: list[Step] = recorder.steps
    step_windows = []
    for i, step in enumerate(steps):
        step_end = step.end_wall or (steps[i + 1].start_wall if i + 1 < len(steps) else end)
        label = f"users={step.users}" if step.rate is None else f"rate={step.rate:g}/s"
        start = min(step.start_wall + settings.warmup, step_end)
        step_windows.append(Window(label, start, step_end, step.users, step.rate))
    if step_windows:
        start = step_windows[0].start
    else:
        begin = recorder.spawned_wall or recorder.test_start_wall or end
        start = min(begin + settings.warmup, end)
        rate = settings.arrival_rate or None
        return Window("overall", start, end, settings.users, rate), step_windows
    return Window("overall", start, end), step_windows


def write_reports(state: Any, environment: Any) -> Outcome:
    settings = state.settings
    recorder = state.recorder
    samples: list[Sample] = recorder.samples
    overall, steps = build_windows(recorder, settings, samples)
    goodput = parse_goodput(settings.goodput)
    result = aggregate(samples, overall, goodput)
    step_results = [aggregate(samples, w, goodput) for w in steps]
    outcome = Outcome(verdicts=check(parse_gates(settings.slo), result))
    notes = run_notes(result, settings.token_field)
    document = {
        "tool": "chatcompat loadtests",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": settings.redacted(),
        "run": run_info(recorder, environment, overall),
        "overall": result,
        "notes": notes,
        "steps": step_results,
        "slo": [
            {"gate": str(v.gate), "value": v.value, "passed": v.passed, "note": v.note}
            for v in outcome.verdicts
        ],
        "method": {
            "percentiles": "linear interpolation between closest ranks over raw samples",
            "arrival_stamps": "kernel receive timestamps (SO_TIMESTAMPNS) where available, "
            "else perf_counter after each read; see 'stamps' per request",
            "ttft": "request issued (before connecting, when a connection was opened) to the "
            "first output chunk (content, reasoning, refusal or tool call)",
            "ttft_write": "TTFT from the request's single write: the server's view, no connect",
            "connect": "TCP connect + TLS handshake, for requests that opened a connection",
            "ttfc": "request issued to the first non-empty content delta (after any reasoning)",
            "censored": "requests in flight at the end; elapsed times are lower bounds",
            "end_of_stream": "neither finish_reason nor [DONE]: truncated_stream (an error); "
            "finish_reason without [DONE]: success with protocol warning no_done",
            "itl": "gap between consecutive output-carrying chunks (per chunk, not per token)",
            "tpot": "(E2E - TTFT) / (output tokens - 1)",
        },
    }
    if settings.no_report:
        print_summary(result, step_results, outcome, {}, notes)
        return outcome
    directory = Path(settings.report_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = settings.report_name or time.strftime(
        "loadtest-%Y%m%d-%H%M%S", time.localtime(recorder.test_start_wall)
    )
    outcome.paths = {
        "json": directory / f"{name}.json",
        "csv": directory / f"{name}-samples.csv",
        "html": directory / f"{name}.html",
    }
    document["files"] = {k: p.name for k, p in outcome.paths.items()}
    outcome.paths["json"].write_text(json.dumps(document, indent=2, default=_json_default))
    write_csv(outcome.paths["csv"], samples, overall, steps)
    from loadtests.report_html import render_html

    outcome.paths["html"].write_text(render_html(document, samples, overall, steps))
    print_summary(result, step_results, outcome, outcome.paths, notes)
    return outcome


def run_notes(result: dict[str, Any], token_option: str) -> list[str]:
    """Sentences a reader must not miss: censoring, protocol warnings, dialect, reasoning."""
    notes = []
    censored = warning(result["censored"])
    if censored:
        notes.append("WARNING: " + censored)
    for kind, count in result["protocol_warnings"].items():
        if kind == "no_done":
            notes.append(
                f"protocol warning: {count} streams ended with a finish_reason but no [DONE]"
            )
        else:
            notes.append(f"protocol warning: {kind} in {count} streams")
    if result["token_field"]:
        notes.append(describe(token_option, result["token_field"]))
    reasoning = result["reasoning"]
    if reasoning["requests_with_reasoning_deltas"]:
        ttfc = reasoning["ttfc_ms"]
        notes.append(
            f"{reasoning['requests_with_reasoning_deltas']} streams carried reasoning deltas: "
            f"TTFT counts the first reasoning delta; time to first content p50/p99 "
            f"{_fmt(ttfc['p50'])} / {_fmt(ttfc['p99'])} ms"
        )
    if reasoning["reasoning_tokens"]["count"]:
        tokens = reasoning["reasoning_tokens"]
        notes.append(
            f"reasoning tokens per request: mean {_fmt(tokens['mean'])}, max {tokens['max']}"
        )
    share = result["connect_share"]
    if share:
        connect = result["connect_ms"]
        notes.append(
            f"{share:.1%} of requests opened a connection (connect p50/p99 "
            f"{_fmt(connect['p50'], 2)} / {_fmt(connect['p99'], 2)} ms, included in TTFT and E2E)"
        )
    return notes


def run_info(recorder: Any, environment: Any, overall: Window) -> dict[str, Any]:
    runner = environment.runner
    options = environment.parsed_options
    return {
        "test_start": recorder.test_start_wall,
        "spawned": recorder.spawned_wall,
        "stop": recorder.stop_wall,
        "measured_from": overall.start,
        "measured_to": overall.end,
        "samples": len(recorder.samples),
        "samples_by_worker": dict(recorder.received_from),
        "workers": len(recorder.received_from) or 1,
        "runner": type(runner).__name__ if runner is not None else None,
        "users": getattr(options, "num_users", None),
        "spawn_rate": getattr(options, "spawn_rate", None),
        "run_time": getattr(options, "run_time", None),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def step_of(sample: Sample, steps: list[Window]) -> str:
    for window in steps:
        if window.start <= sample.start_wall < window.end:
            return window.label
    return ""


def write_csv(path: Path, samples: list[Sample], overall: Window, steps: list[Window]) -> None:
    """One row per request; floats written with repr (full precision); gaps space-separated."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for s in samples:
            in_window = overall.start <= s.start_wall < overall.end
            writer.writerow(
                [
                    s.worker,
                    step_of(s, steps),
                    int(in_window),
                    repr(s.start_wall),
                    int(s.ok),
                    s.error_kind,
                    s.error,
                    s.status,
                    s.completion_id,
                    _num(s.ttft_ms),
                    _num(s.tpot_ms),
                    _num(s.e2e_ms),
                    _num(s.connect_ms),
                    _num(s.ttft_write_ms),
                    _num(s.ttfc_ms),
                    s.reasoning_chunks,
                    _num(s.reasoning_tokens),
                    s.finish_reason,
                    s.protocol_warning,
                    s.token_field,
                    _num(s.output_tokens),
                    s.tokens_source,
                    s.content_chunks,
                    _num(s.prompt_tokens),
                    _num(s.target_tokens),
                    _num(s.schedule_lag_ms),
                    _num(s.read_delay_ms),
                    s.stamps,
                    " ".join(repr(g) for g in s.itl_ms),
                ]
            )


def _num(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fmt(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_summary(
    result: dict[str, Any],
    steps: list[dict[str, Any]],
    outcome: Outcome,
    paths: dict[str, Path],
    notes: list[str] | None = None,
) -> None:
    """A short table on stdout: the numbers a person looks at first."""
    lines = ["", "chatcompat load test (raw samples; ms)"]
    lines.append(
        f"{'window':18} {'ok':>7} {'err':>5} {'conc':>6} {'tok/s':>9} "
        + "".join(f"{m + ' p50/p99':>20}" for m in ("TTFT", "ITL", "TPOT", "E2E"))
    )
    for entry in [*steps, result]:
        req = entry["requests"]
        cells = "".join(
            f"{_fmt(entry[m]['p50']) + ' / ' + _fmt(entry[m]['p99']):>20}"
            for m in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")
        )
        lines.append(
            f"{entry['label']:18} {req['ok']:>7} {req['failed']:>5} "
            f"{entry['achieved_concurrency']:>6.1f} "
            f"{entry['throughput']['output_tokens_per_s']:>9.1f} {cells}"
        )
    if result["errors_by_kind"]:
        lines.append(
            "errors: " + ", ".join(f"{k} {v}" for k, v in result["errors_by_kind"].items())
        )
    lines += notes or []
    for verdict in outcome.verdicts:
        state = "PASS" if verdict.passed else "FAIL"
        note = f"; {verdict.note}" if verdict.note else ""
        lines.append(f"SLO {state}: {verdict.gate} (measured {_fmt(verdict.value, 3)}{note})")
    for kind, path in paths.items():
        lines.append(f"{kind} report: {path}")
    print("\n".join(lines), flush=True)
