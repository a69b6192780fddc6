"""Our command-line options (added to Locust's parser) and the run settings built from them.

The API key comes from ``--api-key`` or ``OPENAI_API_KEY`` and lives only in ``Settings.api_key``;
everything that is printed, sent to the web UI's option list or written to a report goes
through ``Settings.redacted()``, which never contains it. Locust itself shows ``--api-key``
masked in the web UI (``is_secret``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_MAX_REQUESTS = 1_000_000
DEFAULT_MAX_SECONDS = 3600.0
EXACT_READS_MAX_USERS = 128


def add_arguments(parser: Any) -> None:
    """Register our options on Locust's parser (``events.init_command_line_parser``)."""
    group = parser  # Locust's own add_argument (not an argparse group) understands is_secret
    group.add_argument(
        "--model", default="", help="model id (env OPENAI_MODEL; default: the first of GET /models)"
    )
    group.add_argument(
        "--api-key",
        default="",
        is_secret=True,
        help="bearer key (env OPENAI_API_KEY); never printed or written",
    )
    group.add_argument(
        "--prompt-tokens", type=int, default=128, help="target input length of synthetic prompts"
    )
    group.add_argument(
        "--max-tokens", type=int, default=128, help="max_tokens per request (0: not sent)"
    )
    group.add_argument(
        "--token-field",
        choices=["auto", "max_tokens", "max_completion_tokens"],
        default="auto",
        help="field that carries --max-tokens; auto: max_tokens, switching to "
        "max_completion_tokens when the endpoint rejects max_tokens by name (reasoning models)",
    )
    group.add_argument(
        "--min-tokens", type=int, default=0, help="send min_tokens (vLLM-style knob; 0: not sent)"
    )
    group.add_argument(
        "--ignore-eos",
        action="store_true",
        default=False,
        help="send ignore_eos: true (generate exactly max_tokens on servers that honour it)",
    )
    group.add_argument(
        "--dataset",
        default="",
        help="prompts file: JSONL with 'messages' or 'prompt', or plain text lines",
    )
    group.add_argument(
        "--extra-body", default="", help="JSON object merged into every request body"
    )
    group.add_argument(
        "--no-usage",
        action="store_true",
        default=False,
        help="do not ask for stream_options.include_usage",
    )
    group.add_argument(
        "--arrival-rate",
        type=float,
        default=0.0,
        help="open loop: requests/s across all workers (0: closed loop)",
    )
    group.add_argument(
        "--arrival",
        choices=["constant", "poisson"],
        default="constant",
        help="open loop inter-arrival distribution",
    )
    group.add_argument("--seed", type=int, default=0, help="seed for prompts and Poisson arrivals")
    group.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="seconds excluded after all users spawned (and after each sweep step starts)",
    )
    group.add_argument(
        "--sweep-users", default="", help="sweep shape: comma-separated user counts, one step each"
    )
    group.add_argument(
        "--sweep-rates",
        default="",
        help="sweep shape: comma-separated arrival rates (req/s), one step each",
    )
    group.add_argument(
        "--step-time",
        type=float,
        default=30.0,
        help="sweep shape: seconds per step (warm-up included)",
    )
    group.add_argument(
        "--max-requests",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        help="stop the run after this many completed requests",
    )
    group.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="stop the run after this long, even without --run-time",
    )
    group.add_argument(
        "--request-timeout",
        type=float,
        default=120.0,
        help="seconds without data before a request fails",
    )
    group.add_argument(
        "--slo",
        action="append",
        default=None,  # not []: Locust's web form would coerce into an empty list's "int" type
        help="gate, repeatable: ttft_p95_ms=500, itl_p99_ms<=50, error_rate<=0.01, goodput>=0.9",
    )
    group.add_argument(
        "--goodput",
        default="",
        help="per-request SLOs that define goodput, e.g. ttft_ms=500,tpot_ms=50",
    )
    group.add_argument(
        "--itl-rows",
        choices=["gap", "request", "none"],
        default="gap",
        help="Locust stats row for ITL: one entry per gap, per request (mean), or none",
    )
    group.add_argument(
        "--user-stamps",
        action="store_true",
        default=False,
        help="stamp reads in user space even where kernel receive timestamps work",
    )
    group.add_argument(
        "--reads",
        choices=["auto", "exact", "whole"],
        default="auto",
        help="exact: read chunk by chunk, so each event keeps its own kernel stamp when the "
        "tool stalls (a second recv per event); whole: up to 64 KiB per read, cheaper; "
        "auto: exact up to 128 users, whole beyond",
    )
    group.add_argument(
        "--report-dir", default="reports", help="where the JSON, CSV and HTML reports go"
    )
    group.add_argument(
        "--report-name", default="", help="file name stem (default loadtest-YYYYmmdd-HHMMSS)"
    )
    group.add_argument(
        "--no-report", action="store_true", default=False, help="write no report files"
    )


@dataclass
class Settings:
    """Everything a run needs besides Locust's own options."""

    host: str = ""
    model: str = ""
    api_key: str = field(default="", repr=False)
    prompt_tokens: int = 128
    max_tokens: int = 128
    token_field: str = "auto"
    min_tokens: int = 0
    ignore_eos: bool = False
    dataset: str = ""
    extra_body: dict[str, Any] = field(default_factory=dict)
    include_usage: bool = True
    arrival_rate: float = 0.0
    arrival: str = "constant"
    seed: int = 0
    warmup: float = 0.0
    sweep_users: list[int] = field(default_factory=list)
    sweep_rates: list[float] = field(default_factory=list)
    step_time: float = 30.0
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_seconds: float = DEFAULT_MAX_SECONDS
    request_timeout: float = 120.0
    slo: list[str] = field(default_factory=list)
    goodput: str = ""
    itl_rows: str = "gap"
    user_stamps: bool = False
    reads: str = "auto"
    report_dir: str = "reports"
    report_name: str = ""
    no_report: bool = False
    users: int | None = None
    spawn_rate: float | None = None
    run_time: float | None = None

    @classmethod
    def from_options(cls, options: Any, host: str | None) -> Settings:
        """Build from Locust's parsed options (or any namespace), falling back to env vars."""

        def opt(name: str, default: Any = None) -> Any:
            return getattr(options, name, default) if options is not None else default

        extra = opt("extra_body") or ""
        return cls(
            host=(host or opt("host") or os.environ.get("OPENAI_BASE_URL", "")).rstrip("/"),
            model=opt("model") or os.environ.get("OPENAI_MODEL", ""),
            api_key=opt("api_key") or os.environ.get("OPENAI_API_KEY", ""),
            prompt_tokens=opt("prompt_tokens", 128),
            max_tokens=opt("max_tokens", 128),
            token_field=opt("token_field") or "auto",
            min_tokens=opt("min_tokens", 0),
            ignore_eos=bool(opt("ignore_eos", False)),
            dataset=opt("dataset") or "",
            extra_body=json.loads(extra) if extra else {},
            include_usage=not opt("no_usage", False),
            arrival_rate=opt("arrival_rate", 0.0) or 0.0,
            arrival=opt("arrival", "constant"),
            seed=opt("seed", 0),
            warmup=opt("warmup", 0.0) or 0.0,
            sweep_users=parse_list(opt("sweep_users") or "", int),
            sweep_rates=parse_list(opt("sweep_rates") or "", float),
            step_time=opt("step_time", 30.0),
            max_requests=opt("max_requests", DEFAULT_MAX_REQUESTS),
            max_seconds=opt("max_seconds", DEFAULT_MAX_SECONDS),
            request_timeout=opt("request_timeout", 120.0),
            slo=_as_list(opt("slo")),
            goodput=opt("goodput") or "",
            itl_rows=opt("itl_rows", "gap"),
            user_stamps=bool(opt("user_stamps", False)),
            reads=opt("reads") or "auto",
            report_dir=opt("report_dir", "reports"),
            report_name=opt("report_name") or "",
            no_report=bool(opt("no_report", False)),
            users=opt("num_users"),
            spawn_rate=opt("spawn_rate"),
            run_time=opt("run_time"),
        )

    @property
    def exact_reads(self) -> bool:
        """Chunk-by-chunk reads: accurate when the tool stalls, a second recv per event.

        Up to 128 users one process has CPU to spare for it; beyond, the extra reads cost more
        accuracy (a saturated process lags every stream) than they buy.
        """
        if self.reads != "auto":
            return self.reads == "exact"
        return (self.users or 0) <= EXACT_READS_MAX_USERS

    def redacted(self) -> dict[str, Any]:
        """The settings for reports and logs: the API key replaced by whether one was set."""
        out = asdict(self)
        out["api_key"] = "<set>" if self.api_key else "<not set>"
        return out

    def redact(self, text: str) -> str:
        """Remove the key from text that came from elsewhere (a server may echo it back)."""
        if self.api_key and self.api_key in text:
            text = text.replace(self.api_key, "<redacted>")
        return text


def _as_list(value: Any) -> list[str]:
    """``--slo`` arrives as a list (command line) or one string (web UI form)."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def parse_list(text: str, kind: type) -> list:
    return [kind(part) for part in text.replace(" ", "").split(",") if part]
