"""The self-contained HTML report: tables of the aggregates and the plots as inline PNGs.

One file, no scripts, no external assets, so it can be attached to a CI run or mailed.
Every value shown comes from the same dict that is written as JSON.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from loadtests import plots
from loadtests.aggregate import Window
from loadtests.metrics import Sample

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.pass{color:#0a0;font-weight:bold}.fail{color:#c00;font-weight:bold}
.note{color:#666;font-size:12px}img{max-width:100%;border:1px solid #eee}
"""
METRICS = (
    ("TTFT (from request issued)", "ttft_ms"),
    ("TTFT after write (server view)", "ttft_write_ms"),
    ("TTFC (first content, reasoning streams)", "ttfc_ms"),
    ("Connect (requests that opened one)", "connect_ms"),
    ("ITL", "itl_ms"),
    ("TPOT", "tpot_ms"),
    ("E2E", "e2e_ms"),
    ("Schedule lag", "schedule_lag_ms"),
    ("Read delay (tool lag)", "read_delay_ms"),
)
STATS = ("count", "mean", "p50", "p90", "p95", "p99", "max")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _n(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode()
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></p>'


def _latency_table(entry: dict[str, Any]) -> str:
    head = "".join(f"<th>{s}</th>" for s in STATS)
    rows = []
    for label, key in METRICS:
        summary = entry[key] if key != "ttfc_ms" else entry["reasoning"][key]
        if not summary.get("count"):
            continue
        cells = "".join(f"<td>{_n(summary.get(s))}</td>" for s in STATS)
        rows.append(f'<tr><th class="l">{_e(label)} (ms)</th>{cells}</tr>')
    return f'<table><tr><th class="l">metric</th>{head}</tr>{"".join(rows)}</table>'


def _overview(entry: dict[str, Any]) -> str:
    req = entry["requests"]
    thr = entry["throughput"]
    out = entry["output_tokens"]
    good = entry["goodput"]
    pairs = [
        ("window (s)", _n(entry["window"]["seconds"], 1)),
        (
            "requests ok / failed / interrupted",
            f"{req['ok']} / {req['failed']} / {req['interrupted']}",
        ),
        ("error rate", _n(entry["error_rate"], 4)),
        ("requests/s (completed)", _n(thr["requests_per_s"], 2)),
        ("output tokens/s", _n(thr["output_tokens_per_s"], 1)),
        ("content events/s", _n(thr["content_events_per_s"], 1)),
        ("achieved concurrency", _n(entry["achieved_concurrency"], 2)),
        (
            "target rate / achieved start rate",
            f"{_n(entry['target_rate'], 2)} / {_n(thr['achieved_rate_per_s'], 2)}",
        ),
        ("goodput share (limits)", f"{_n(good['share'], 4)} ({_e(json.dumps(good['limits']))})"),
        (
            "output tokens mean (target, share at target)",
            f"{_n(out.get('mean'), 1)} ({_n(out.get('target'))}, "
            f"{_n(out.get('share_at_target'), 3)})",
        ),
        ("output token source", _e(json.dumps(out.get("sources")))),
        ("prompt tokens mean", _n(entry["prompt_tokens"].get("mean"), 1)),
        ("arrival stamps", _e(json.dumps(entry["stamps"]))),
        ("share of requests that opened a connection", _n(entry["connect_share"], 3)),
        ("censored (in flight at the end)", _censored(entry["censored"])),
        ("protocol warnings", _e(json.dumps(entry["protocol_warnings"]))),
        ("token-limit field sent", _e(json.dumps(entry["token_field"]))),
        ("reasoning tokens mean", _n(entry["reasoning"]["reasoning_tokens"].get("mean"), 1)),
    ]
    rows = "".join(f'<tr><th class="l">{_e(k)}</th><td>{v}</td></tr>' for k, v in pairs)
    return f"<table>{rows}</table>"


def _censored(view: dict[str, Any]) -> str:
    e2e, bound = view["e2e_ms_completed"]["p99"], view["e2e_ms_with_censored_at_least"]["p99"]
    return (
        f"{view['count']} ({_n(view['share'], 4)}); E2E p99 completed {_n(e2e, 1)} ms, "
        f"with censored &ge; {_n(bound, 1)} ms"
    )


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f"<h2>Notes</h2><ul>{items}</ul>"


def _errors(entry: dict[str, Any]) -> str:
    kinds = entry["errors_by_kind"]
    if not kinds:
        return "<p>No errors.</p>"
    rows = "".join(f'<tr><td class="l">{_e(k)}</td><td>{v}</td></tr>' for k, v in kinds.items())
    return f'<table><tr><th class="l">kind</th><th>count</th></tr>{rows}</table>'


def _slo(verdicts: list[dict[str, Any]]) -> str:
    if not verdicts:
        return "<p>No SLO gates were set (<code>--slo</code>).</p>"
    rows = "".join(
        f'<tr><td class="l">{_e(v["gate"])}</td><td>{_n(v["value"])}'
        + (f" ({_e(v['note'])})" if v.get("note") else "")
        + "</td>"
        + ('<td class="pass">PASS</td></tr>' if v["passed"] else '<td class="fail">FAIL</td></tr>')
        for v in verdicts
    )
    return f'<table><tr><th class="l">gate</th><th>measured</th><th>verdict</th></tr>{rows}</table>'


def _steps(steps: list[dict[str, Any]]) -> str:
    if not steps:
        return ""
    head = (
        "<tr><th class='l'>step</th><th>ok</th><th>failed</th><th>concurrency</th>"
        "<th>req/s</th><th>tok/s</th><th>TTFT p50</th><th>TTFT p99</th><th>ITL p50</th>"
        "<th>ITL p99</th><th>TPOT p50</th><th>E2E p50</th></tr>"
    )
    rows = "".join(
        f'<tr><td class="l">{_e(s["label"])}</td><td>{s["requests"]["ok"]}</td>'
        f"<td>{s['requests']['failed']}</td><td>{_n(s['achieved_concurrency'], 2)}</td>"
        f"<td>{_n(s['throughput']['requests_per_s'], 2)}</td>"
        f"<td>{_n(s['throughput']['output_tokens_per_s'], 1)}</td>"
        f"<td>{_n(s['ttft_ms']['p50'])}</td><td>{_n(s['ttft_ms']['p99'])}</td>"
        f"<td>{_n(s['itl_ms']['p50'])}</td><td>{_n(s['itl_ms']['p99'])}</td>"
        f"<td>{_n(s['tpot_ms']['p50'])}</td><td>{_n(s['e2e_ms']['p50'])}</td></tr>"
        for s in steps
    )
    return f"<h2>Sweep steps</h2><table>{head}{rows}</table>"


def _settings(settings: dict[str, Any], run: dict[str, Any]) -> str:
    merged = {**{f"run.{k}": v for k, v in run.items()}, **settings}
    rows = "".join(
        f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(json.dumps(v))}</td></tr>'
        for k, v in merged.items()
    )
    return f"<table>{rows}</table>"


def render_html(
    document: dict[str, Any], samples: list[Sample], overall: Window, steps: list[Window]
) -> str:
    measured = [s for s in samples if overall.start <= s.start_wall < overall.end and s.ok]
    origin = document["run"]["test_start"] or overall.start
    figures = [
        _img(plots.distributions(measured), "TTFT and ITL distributions"),
        _img(plots.over_time(samples, origin, overall), "latency and throughput over time"),
        _img(plots.sweep(document["steps"]), "metrics against the swept level"),
    ]
    note = (
        ""
        if plots.AVAILABLE
        else (
            '<p class="note">Plots need matplotlib (<code>pip install chatcompat[load]</code>).</p>'
        )
    )
    method = "".join(
        f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>'
        for k, v in document["method"].items()
    )
    overall_entry = document["overall"]
    model = document["settings"]["model"] or "(first model the server lists)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chatcompat load test</title>
<style>{STYLE}</style></head><body>
<h1>chatcompat load test — {_e(document["settings"]["host"])}</h1>
<p class="note">Created {_e(document["created"])}; model {_e(model)};
measured window excludes warm-up (grey band in the time plots).
All numbers come from raw per-request samples.</p>
{_notes(document.get("notes", []))}
<h2>SLO gates</h2>{_slo(document["slo"])}
<h2>Overview</h2>{_overview(overall_entry)}
<h2>Latency</h2>{_latency_table(overall_entry)}
<h2>Errors by kind</h2>{_errors(overall_entry)}
{_steps(document["steps"])}
<h2>Plots</h2>{note}{"".join(figures)}
<h2>Method</h2><table>{method}</table>
<h2>Settings (redacted) and run</h2>{_settings(document["settings"], document["run"])}
</body></html>
"""
