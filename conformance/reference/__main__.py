"""``python -m conformance.reference --port 8000``: serve the reference model for other tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from conformance.reference.app import DEFAULT_MODEL, REASONING_MODEL, ReferenceConfig, create_app
from conformance.reference.faults import FAULTS, VARIANTS, parse_names
from conformance.reference.reasoning import PROFILES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.reference",
        description="chatcompat reference server (binds to loopback by default).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=None, help="require this bearer key (default: none)")
    parser.add_argument(
        "--model",
        action="append",
        help=f"served model id (default {DEFAULT_MODEL} and {REASONING_MODEL})",
    )
    parser.add_argument("--fault", default="", help="comma-separated faults/variants to switch on")
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first token")
    parser.add_argument("--itl-ms", type=float, default=0.0, help="gap between tokens")
    parser.add_argument("--send-log", type=Path, help="append token send times (JSON lines)")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="play a whole server behaviour (e.g. an OpenAI-style reasoning model)",
    )
    parser.add_argument("--list-faults", action="store_true", help="list faults and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list_faults:
        for fault in FAULTS.values():
            print(f"{fault.name:28} {fault.divergence}")
        for variant in VARIANTS.values():
            print(f"{variant.name:28} (allowed) {variant.allowed_because}")
        for name, behaviour in PROFILES.items():
            print(f"{name:28} (profile) {behaviour}")
        return 0
    try:
        faults = parse_names(args.fault) | ({args.profile} if args.profile else set())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.ttft_ms < 0 or args.itl_ms < 0:
        print("error: latencies must be >= 0", file=sys.stderr)
        return 2
    config = ReferenceConfig(
        api_key=args.api_key,
        models=tuple(args.model or ReferenceConfig.models),
        faults=faults,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        send_log=args.send_log,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
